package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodePower(t *testing.T) {
	tests := []struct {
		args     []string
		wantBody map[string]any
	}{
		{[]string{"on", "node-0"}, map[string]any{"target": "power on"}},
		{[]string{"off", "node-0"}, map[string]any{"target": "power off"}},
		{[]string{"off", "node-0", "--soft"}, map[string]any{"target": "soft power off"}},
		{[]string{"reboot", "node-0"}, map[string]any{"target": "rebooting"}},
		{[]string{"reboot", "node-0", "--soft", "--power-timeout", "30"}, map[string]any{"target": "soft rebooting", "timeout": float64(30)}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFake(t)
			f.AddNode("node-0", "manageable", nil)
			strata(t, f, append([]string{"node", "power"}, tc.args...)...).mustSucceed(t)
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].String() != "PUT /v1/nodes/node-0/states/power" {
				t.Fatalf("requests: %v", f.requestLines())
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(reqs[0].Body), &body); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}

	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	r := strata(t, f, "node", "power", "status", "node-0").mustSucceed(t)
	if r.stdout != "None\n" {
		t.Errorf("status before: %q", r.stdout)
	}
	strata(t, f, "node", "power", "on", "node-0").mustSucceed(t)
	r = strata(t, f, "node", "power", "status", "node-0").mustSucceed(t)
	if r.stdout != "power on\n" {
		t.Errorf("status after power on: %q", r.stdout)
	}
	r = strata(t, f, "node", "power", "status", "node-0", "-f", "json").mustSucceed(t)
	if diff := cmp.Diff("{\n  \"power_state\": \"power on\",\n  \"target_power_state\": null\n}\n", r.stdout); diff != "" {
		t.Errorf("status json (-want +got):\n%s", diff)
	}
}

func TestNodePowerTimeoutNeedsVersion(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	r := strata(t, f, "node", "power", "on", "node-0", "--power-timeout", "5", "--os-baremetal-api-version", "1.20")
	if r.code != ExitError || r.stderr != "strata: --power-timeout needs bare metal API version 1.27 or later; this connection uses 1.20\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNodeBootDevice(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	strata(t, f, "node", "boot", "device", "set", "node-0", "pxe", "--persistent").mustSucceed(t)
	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].String() != "PUT /v1/nodes/node-0/management/boot_device" || reqs[0].Body != `{"boot_device":"pxe","persistent":true}` {
		t.Errorf("requests: %+v", reqs)
	}
	r := strata(t, f, "node", "boot", "device", "show", "node-0", "-f", "value", "-c", "boot_device", "-c", "persistent").mustSucceed(t)
	if r.stdout != "pxe\nTrue\n" {
		t.Errorf("show: %q", r.stdout)
	}
}

func TestNodeMaintenance(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	strata(t, f, "node", "maintenance", "set", "node-0", "--reason", "bad DIMM").mustSucceed(t)
	if f.Field("node-0", "maintenance") != true || f.Field("node-0", "maintenance_reason") != "bad DIMM" {
		t.Errorf("after set: %v %v", f.Field("node-0", "maintenance"), f.Field("node-0", "maintenance_reason"))
	}
	strata(t, f, "node", "maintenance", "unset", "node-0").mustSucceed(t)
	if f.Field("node-0", "maintenance") != false {
		t.Errorf("after unset: %v", f.Field("node-0", "maintenance"))
	}
	want := []string{"PUT /v1/nodes/node-0/maintenance", "DELETE /v1/nodes/node-0/maintenance"}
	if diff := cmp.Diff(want, f.requestLines()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestNodeValidate(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	r := strata(t, f, "node", "validate", "node-0").mustSucceed(t)
	want := `+------------+--------+---------------------------------------+
| Interface  | Result | Reason                                |
+------------+--------+---------------------------------------+
| console    | None   | not supported                         |
| deploy     | False  | Missing image_source in instance_info |
| management | True   | None                                  |
| power      | True   | None                                  |
+------------+--------+---------------------------------------+
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("validate (-want +got):\n%s", diff)
	}
}

func TestNodeHistory(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	strata(t, f, "node", "manage", "node-0", "--wait").mustSucceed(t)
	r := strata(t, f, "node", "history", "node-0", "-f", "value").mustSucceed(t)
	want := "2026-01-02T03:04:07Z INFO enroll -> verifying\n2026-01-02T03:04:08Z INFO verifying -> manageable\n"
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	r = strata(t, f, "node", "history", "node-0", "--long", "-f", "json").mustSucceed(t)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 || rows[0]["event_type"] != "provisioning" || rows[0]["conductor"] != "undercloud" {
		t.Errorf("history --long: %v\n%s", err, r.stdout)
	}
	if last := f.requestLines()[len(f.requestLines())-1]; last != "GET /v1/nodes/node-0/history?detail=true" {
		t.Errorf("history --long request: %s", last)
	}

	r = strata(t, f, "node", "history", "node-0", "--os-baremetal-api-version", "1.70")
	if r.code != ExitError || r.stderr != "strata: node history needs bare metal API version 1.78 or later; this connection uses 1.70\n" {
		t.Errorf("old version: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPorts(t *testing.T) {
	f := newFake(t)
	node := f.AddNode("node-0", "enroll", nil)

	r := strata(t, f, "port", "create", "52:54:00:AA:BB:01", "--node", "node-0", "--physical-network", "ctlplane",
		"--local-link-connection", "switch_id=00:1c:73:00:00:01", "--local-link-connection", "port_id=Ethernet1/5",
		"-f", "json").mustSucceed(t)
	var port map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &port); err != nil {
		t.Fatal(err)
	}
	if port["node_uuid"] != node || port["address"] != "52:54:00:aa:bb:01" || port["pxe_enabled"] != true {
		t.Errorf("created port: %v", port)
	}
	create := f.Requests()[1]
	var body map[string]any
	if err := json.Unmarshal([]byte(create.Body), &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{
		"address": "52:54:00:aa:bb:01", "node_uuid": node, "physical_network": "ctlplane",
		"local_link_connection": map[string]any{"switch_id": "00:1c:73:00:00:01", "port_id": "Ethernet1/5"},
	}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}

	strata(t, f, "port", "create", "52:54:00:aa:bb:02", "--node", node, "--no-pxe-enabled").mustSucceed(t)
	r = strata(t, f, "port", "create", "52:54:00:aa:bb:02", "--node", node)
	if r.code != ExitError || r.stderr != "strata: A port with MAC address 52:54:00:aa:bb:02 already exists.\n" {
		t.Errorf("duplicate MAC: exit %d, stderr %q", r.code, r.stderr)
	}

	r = strata(t, f, "port", "list", "--node", "node-0", "-f", "value", "-c", "address", "-c", "pxe_enabled").mustSucceed(t)
	if diff := cmp.Diff("52:54:00:aa:bb:01 True\n52:54:00:aa:bb:02 False\n", r.stdout); diff != "" {
		t.Errorf("port list (-want +got):\n%s", diff)
	}
	r = strata(t, f, "port", "list", "--node", "nope")
	if r.code != ExitError || r.stderr != "strata: node \"nope\" not found\n" {
		t.Errorf("port list of a missing node: exit %d, stderr %q", r.code, r.stderr)
	}

	r = strata(t, f, "port", "show", "52:54:00:aa:bb:02", "-f", "value", "-c", "pxe_enabled").mustSucceed(t)
	if r.stdout != "False\n" {
		t.Errorf("port show by MAC: %q", r.stdout)
	}

	r = strata(t, f, "port", "delete", "52:54:00:aa:bb:01", "20000000-0000-4000-8000-000000000099")
	if r.code != ExitError || r.stdout != "Deleted port 52:54:00:aa:bb:01\n" || !strings.Contains(r.stderr, `strata: port "20000000-0000-4000-8000-000000000099" not found`) {
		t.Errorf("port delete: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = strata(t, f, "port", "list", "-f", "value", "-c", "address").mustSucceed(t)
	if r.stdout != "52:54:00:aa:bb:02\n" {
		t.Errorf("ports left: %q", r.stdout)
	}
}
