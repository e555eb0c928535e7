package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodeListTable(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	f.AddNode("node-1", "available", map[string]any{"power_state": "power off", "maintenance": true})

	r := strata(t, f, "node", "list").mustSucceed(t)

	want := `+--------------------------------------+--------+---------------+-------------+--------------------+-------------+
| UUID                                 | Name   | Instance UUID | Power State | Provisioning State | Maintenance |
+--------------------------------------+--------+---------------+-------------+--------------------+-------------+
| 00000000-0000-4000-8000-000000000001 | node-0 | None          | None        | enroll             | False       |
| 00000000-0000-4000-8000-000000000002 | node-1 | None          | power off   | available          | True        |
+--------------------------------------+--------+---------------+-------------+--------------------+-------------+
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("node list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GET /v1/nodes"}, f.requestLines()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for _, req := range f.Requests() {
		if req.Version != "1.87" {
			t.Errorf("%s sent API version %q, want the negotiated 1.87", req, req.Version)
		}
	}
}

func TestNodeListQuery(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"filters", []string{"--provision-state", "manageable", "--driver", "ipmi", "--resource-class", "baremetal"},
			"GET /v1/nodes?driver=ipmi&provision_state=manageable&resource_class=baremetal"},
		{"maintenance", []string{"--maintenance"}, "GET /v1/nodes?maintenance=true"},
		{"no maintenance", []string{"--no-maintenance"}, "GET /v1/nodes?maintenance=false"},
		{"long", []string{"--long"}, "GET /v1/nodes/detail"},
		{"sort", []string{"--sort", "name:desc"}, "GET /v1/nodes?sort_dir=desc&sort_key=name"},
		{"limit and marker", []string{"--limit", "5", "--marker", "00000000-0000-4000-8000-000000000001"},
			"GET /v1/nodes?limit=5&marker=00000000-0000-4000-8000-000000000001"},
		{"extra column asks for its field", []string{"-c", "name", "-c", "driver"}, "GET /v1/nodes?fields=name%2Cdriver"},
		{"default columns need no fields", []string{"-c", "UUID", "-c", "Provisioning State"}, "GET /v1/nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.AddNode("node-0", "enroll", nil)
			strata(t, f, append([]string{"node", "list"}, tc.args...)...).mustSucceed(t)
			if diff := cmp.Diff([]string{tc.want}, f.requestLines()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeListFollowsPages(t *testing.T) {
	f := newFake(t)
	f.pageSize = 2
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		f.AddNode(n, "enroll", nil)
	}

	r := strata(t, f, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if diff := cmp.Diff("a\nb\nc\nd\ne\n", r.stdout); diff != "" {
		t.Errorf("all pages (-want +got):\n%s", diff)
	}
	if got := len(f.Requests()); got != 3 {
		t.Errorf("%d requests for 5 nodes in pages of 2, want 3: %v", got, f.requestLines())
	}

	f2 := newFake(t)
	f2.pageSize = 2
	for _, n := range []string{"a", "b", "c"} {
		f2.AddNode(n, "enroll", nil)
	}
	r = strata(t, f2, "node", "list", "--limit", "2", "-f", "value", "-c", "name").mustSucceed(t)
	if diff := cmp.Diff("a\nb\n", r.stdout); diff != "" {
		t.Errorf("--limit reads one page (-want +got):\n%s", diff)
	}
}

func TestNodeListFormats(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", map[string]any{"power_state": "power off"})

	r := strata(t, f, "node", "list", "-f", "json").mustSucceed(t)
	want := `[
  {
    "uuid": "00000000-0000-4000-8000-000000000001",
    "name": "node-0",
    "instance_uuid": null,
    "power_state": "power off",
    "provision_state": "manageable",
    "maintenance": false
  }
]
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}

	r = strata(t, f, "node", "list", "-f", "yaml", "-c", "name", "-c", "provision_state").mustSucceed(t)
	if diff := cmp.Diff("- name: node-0\n  provision_state: manageable\n", r.stdout); diff != "" {
		t.Errorf("yaml (-want +got):\n%s", diff)
	}

	r = strata(t, f, "node", "list", "-f", "value", "-c", "Name", "-c", "Power State").mustSucceed(t)
	if diff := cmp.Diff("node-0 power off\n", r.stdout); diff != "" {
		t.Errorf("value (-want +got):\n%s", diff)
	}

	empty := newFake(t)
	r = strata(t, empty, "node", "list", "-f", "json").mustSucceed(t)
	if diff := cmp.Diff("[]\n", r.stdout); diff != "" {
		t.Errorf("empty json (-want +got):\n%s", diff)
	}
	r = strata(t, empty, "node", "list").mustSucceed(t)
	if r.stdout != "" {
		t.Errorf("empty table printed %q, want nothing", r.stdout)
	}
}

func TestNodeShow(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", map[string]any{
		"driver_info": map[string]any{"ipmi_address": "10.0.0.5", "ipmi_password": "hunter2"},
		"properties":  map[string]any{"cpus": 8},
	})

	r := strata(t, f, "node", "show", "node-0", "-f", "json").mustSucceed(t)
	if strings.Contains(r.stdout, "hunter2") {
		t.Fatalf("node show printed the BMC password:\n%s", r.stdout)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("node show -f json: %v\n%s", err, r.stdout)
	}
	if diff := cmp.Diff(map[string]any{"ipmi_address": "10.0.0.5", "ipmi_password": "******"}, got["driver_info"]); diff != "" {
		t.Errorf("driver_info (-want +got):\n%s", diff)
	}
	for _, k := range []string{"links", "ports", "states"} {
		if _, ok := got[k]; ok {
			t.Errorf("node show has the link field %q", k)
		}
	}
	if got["provision_state"] != "enroll" || got["name"] != "node-0" {
		t.Errorf("node show: provision_state %v, name %v", got["provision_state"], got["name"])
	}

	r = strata(t, f, "node", "show", "node-0", "-f", "value", "-c", "provision_state", "-c", "properties").mustSucceed(t)
	if diff := cmp.Diff("enroll\n{\"cpus\":8}\n", r.stdout); diff != "" {
		t.Errorf("value (-want +got):\n%s", diff)
	}

	r = strata(t, f, "node", "show", "node-0", "-c", "name", "-c", "driver")
	want := `+--------+---------------+
| Field  | Value         |
+--------+---------------+
| name   | node-0        |
| driver | fake-hardware |
+--------+---------------+
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestNodeNotFound(t *testing.T) {
	f := newFake(t)
	for _, args := range [][]string{
		{"node", "show", "nope"},
		{"node", "set", "nope", "--name", "x"},
		{"node", "manage", "nope"},
		{"node", "manage", "nope", "--wait"},
		{"node", "power", "on", "nope"},
		{"node", "history", "nope"},
		{"node", "boot", "device", "show", "nope"},
		{"node", "validate", "nope"},
		{"port", "create", "52:54:00:aa:bb:01", "--node", "nope"},
	} {
		r := strata(t, f, args...)
		if r.code != ExitError || r.stderr != "strata: node \"nope\" not found\n" {
			t.Errorf("%v: exit %d, stderr %q; want 1 and a not-found message", args, r.code, r.stderr)
		}
	}
}

func TestNodeCreate(t *testing.T) {
	f := newFake(t)
	r := strata(t, f, "node", "create", "--driver", "ipmi", "--name", "node-0",
		"--driver-info", "ipmi_address=10.0.0.5", "--driver-info", "ipmi_port=623",
		"--driver-info", "ipmi_password=hunter2",
		"--property", "cpus=8", "--property", "cpu_arch=x86_64", "--property", "capabilities=profile:compute,boot_mode:uefi",
		"--resource-class", "baremetal", "--description", "rack 4",
		"-f", "json").mustSucceed(t)
	if strings.Contains(r.stdout, "hunter2") {
		t.Errorf("node create printed the password:\n%s", r.stdout)
	}
	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/v1/nodes" {
		t.Fatalf("requests: %v", f.requestLines())
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(reqs[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"driver":         "ipmi",
		"name":           "node-0",
		"resource_class": "baremetal",
		"description":    "rack 4",
		"driver_info":    map[string]any{"ipmi_address": "10.0.0.5", "ipmi_port": float64(623), "ipmi_password": "hunter2"},
		"properties":     map[string]any{"cpus": float64(8), "cpu_arch": "x86_64", "capabilities": "profile:compute,boot_mode:uefi"},
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown["provision_state"] != "enroll" {
		t.Errorf("node create output: %v\n%s", err, r.stdout)
	}

	r = strata(t, f, "node", "create", "--driver", "ipmi", "--name", "node-0")
	if r.code != ExitError || r.stderr != "strata: A node with name node-0 already exists.\n" {
		t.Errorf("duplicate name: exit %d, stderr %q", r.code, r.stderr)
	}
	r = strata(t, f, "node", "create", "--driver", "bogus")
	if r.code != ExitError || !strings.HasPrefix(r.stderr, "strata: Could not find the following driver(s)") {
		t.Errorf("bad driver: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNodeSetUnset(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", map[string]any{"driver_info": map[string]any{"ipmi_port": 623}})

	strata(t, f, "node", "set", "node-0", "--name", "node-9", "--description", "",
		"--driver-info", "ipmi_password=s3cret", "--property", "memory_mb=16384",
		"--instance-info", "image_source=http://10.0.0.1/img.qcow2", "--extra", "rack/unit=4").mustSucceed(t)
	strata(t, f, "node", "unset", "node-9", "--driver-info", "ipmi_port", "--description").mustSucceed(t)

	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests: %v", f.requestLines())
	}
	var set, unset []map[string]any
	if err := json.Unmarshal([]byte(reqs[0].Body), &set); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(reqs[1].Body), &unset); err != nil {
		t.Fatal(err)
	}
	wantSet := []map[string]any{
		{"op": "add", "path": "/name", "value": "node-9"},
		{"op": "add", "path": "/description", "value": ""},
		{"op": "add", "path": "/driver_info/ipmi_password", "value": "s3cret"},
		{"op": "add", "path": "/properties/memory_mb", "value": float64(16384)},
		{"op": "add", "path": "/instance_info/image_source", "value": "http://10.0.0.1/img.qcow2"},
		{"op": "add", "path": "/extra/rack~1unit", "value": float64(4)},
	}
	if diff := cmp.Diff(wantSet, set); diff != "" {
		t.Errorf("set patch (-want +got):\n%s", diff)
	}
	wantUnset := []map[string]any{
		{"op": "remove", "path": "/description"},
		{"op": "remove", "path": "/driver_info/ipmi_port"},
	}
	if diff := cmp.Diff(wantUnset, unset); diff != "" {
		t.Errorf("unset patch (-want +got):\n%s", diff)
	}
	if got := f.Field("node-9", "driver_info"); !cmp.Equal(got, map[string]any{"ipmi_password": "s3cret"}) {
		t.Errorf("driver_info after set and unset: %v", got)
	}
}

func TestNodeDeleteGoesOnAfterAFailure(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	f.AddNode("node-1", "active", nil)
	f.AddNode("node-2", "enroll", nil)

	r := strata(t, f, "node", "delete", "node-0", "node-1", "missing", "node-2")
	if r.code != ExitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	if diff := cmp.Diff("Deleted node node-0\nDeleted node node-2\n", r.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stderr, `strata: node node-1: Can not delete node`) || !strings.Contains(r.stderr, `strata: node "missing" not found`) {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if f.State("node-1") != "active" || f.State("node-0") != "" || f.State("node-2") != "" {
		t.Errorf("after delete: node-0 %q, node-1 %q, node-2 %q", f.State("node-0"), f.State("node-1"), f.State("node-2"))
	}
}

func TestNodeImport(t *testing.T) {
	f := newFake(t)
	f.AddNode("taken", "enroll", nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "instackenv.json")
	writeFile(t, file, `{"nodes": [
  {"name": "node-0", "pm_type": "ipmi", "pm_addr": "192.168.24.11", "pm_user": "admin", "pm_password": "hunter2",
   "ports": [{"address": "52:54:00:aa:bb:01"}], "cpu": 4, "memory": 8192, "disk": 40, "arch": "x86_64"},
  {"name": "taken", "pm_type": "fake-hardware", "mac": ["52:54:00:aa:bb:02"]},
  {"name": "node-2", "pm_type": "fake-hardware", "mac": ["52:54:00:aa:bb:03", "52:54:00:aa:bb:04"]}
]}`)

	r := strata(t, f, "node", "import", file, "-f", "json", "--concurrency", "1")
	if r.code != ExitError {
		t.Fatalf("exit %d, want 1 (one node failed)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Fatalf("import printed a password")
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := []map[string]any{
		{"node": "node-0", "uuid": "00000000-0000-4000-8000-000000000002", "ports": float64(1), "provision_state": "enroll", "error": nil},
		{"node": "taken", "uuid": nil, "ports": float64(0), "provision_state": nil, "error": "A node with name taken already exists."},
		{"node": "node-2", "uuid": "00000000-0000-4000-8000-000000000004", "ports": float64(2), "provision_state": "enroll", "error": nil},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("import summary (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stderr, "imported 2 of 3 nodes") || !strings.Contains(r.stderr, "strata: 1 of 3 nodes failed to import") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	di, _ := f.Field("node-0", "driver_info").(map[string]any)
	if di["ipmi_address"] != "192.168.24.11" || di["ipmi_password"] != "hunter2" {
		t.Errorf("node-0 driver_info: %v", di)
	}
	wantReqs := []string{
		"POST /v1/nodes", "POST /v1/ports",
		"POST /v1/nodes",
		"POST /v1/nodes", "POST /v1/ports", "POST /v1/ports",
	}
	if diff := cmp.Diff(wantReqs, f.requestLines()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestNodeImportBadFileSendsNothing(t *testing.T) {
	f := newFake(t)
	file := filepath.Join(t.TempDir(), "nodes.yaml")
	writeFile(t, file, `nodes:
- name: node-0
  pm_type: ipmi
- name: node-1
  pm_type: warp-drive
  mac: [not-a-mac]
`)
	r := strata(t, f, "node", "import", file)
	if r.code != ExitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"strata: the file has", "nothing was imported", "nodes[0] (node-0): pm_addr", "nodes[1] (node-1): pm_type", "not-a-mac"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if len(f.requests) != 0 {
		t.Errorf("a bad file sent requests: %v", f.requestLines())
	}

	r = cliRun{env: fakeEnv(f), stdin: `[{"name": "n", "pm_type": "fake"}]`}.run(t, "node", "import", "-", "-f", "value", "-c", "node")
	r.mustSucceed(t)
	if r.stdout != "n\n" {
		t.Errorf("import from stdin: %q", r.stdout)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
