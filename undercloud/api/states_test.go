package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stratacloud/strata/inventory"
)

func TestProvision(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "prov"})
	path := "/v1/nodes/" + id + "/states/provision"

	// The happy path, verb by verb; the fake conductor settles each one.
	for _, step := range []struct {
		target, want string
	}{
		{"manage", inventory.StateManageable},
		{"inspect", inventory.StateManageable},
		{"provide", inventory.StateAvailable},
		{"active", inventory.StateActive},
		{"deleted", inventory.StateAvailable},
		{"deploy", inventory.StateActive},
		{"undeploy", inventory.StateAvailable},
	} {
		t.Run(step.target, func(t *testing.T) {
			r := ts.do(t, req{method: "PUT", path: path, body: map[string]any{"target": step.target}})
			r.expect(t, http.StatusAccepted)
			if len(r.body) != 0 {
				t.Errorf("202 with a body: %q", r.body)
			}
			if got, want := r.header.Get("Location"), ts.url+"/v1/nodes/"+id+"/states"; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			if got := ts.node(t, id).ProvisionState; got != step.want {
				t.Errorf("provision_state = %q, want %q", got, step.want)
			}
			if rq := ts.cond.lastRequest(); rq.Verb != step.target || rq.User != "admin" {
				t.Errorf("conductor got %+v", rq)
			}
		})
	}

	t.Run("by name, with a config drive and deploy steps", func(t *testing.T) {
		r := ts.do(t, req{method: "PUT", path: "/v1/nodes/prov/states/provision", body: map[string]any{
			"target":       "active",
			"configdrive":  map[string]any{"meta_data": map[string]any{"hostname": "web"}, "user_data": "#!/bin/sh"},
			"deploy_steps": []any{map[string]any{"interface": "deploy", "step": "write_image", "args": map[string]any{}, "priority": 80}},
		}})
		r.expect(t, http.StatusAccepted)
		rq := ts.cond.lastRequest()
		if cd, ok := rq.ConfigDrive.(map[string]any); !ok || cd["user_data"] != "#!/bin/sh" {
			t.Errorf("config drive = %#v", rq.ConfigDrive)
		}
		if len(rq.DeploySteps) != 1 || rq.DeploySteps[0]["step"] != "write_image" {
			t.Errorf("deploy steps = %v", rq.DeploySteps)
		}
		if got, want := r.header.Get("Location"), ts.url+"/v1/nodes/prov/states"; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
	})

	cleanSteps := []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}}}
	for _, tc := range []struct {
		name    string
		state   string // the node's state first
		set     func(n *inventory.Node)
		version string
		body    any
		status  int
		want    []string
	}{
		{name: "malformed JSON", body: `{"target": `, status: 400, want: []string{"Malformed JSON"}},
		{name: "missing target", body: map[string]any{}, status: 400, want: []string{"Missing mandatory parameter: target"}},
		{name: "target of the wrong type", body: map[string]any{"target": 1}, status: 400, want: []string{"target", "expected a string"}},
		{name: "unknown verb", body: map[string]any{"target": "explode"}, status: 400, want: []string{`"explode" could not be understood`, "manage"}},
		{name: "unknown member", body: map[string]any{"target": "manage", "force": true}, status: 400, want: []string{"force"}},
		{name: "verb newer than the version", version: "1.72", state: inventory.StateAvailable, body: map[string]any{"target": "deploy"}, status: 406, want: []string{`"deploy"`, "1.73", "1.72"}},
		{name: "service before 1.87", version: "1.86", state: inventory.StateActive, body: map[string]any{"target": "service"}, status: 406, want: []string{`"service"`, "1.87"}},
		{name: "manage before 1.4", version: "1.3", body: map[string]any{"target": "manage"}, status: 406, want: []string{`"manage"`, "1.4"}},
		{name: "runbook", body: map[string]any{"target": "clean", "runbook": "r"}, status: 406, want: []string{"runbook", "1.92"}},
		{name: "wrong state", state: inventory.StateEnroll, body: map[string]any{"target": "provide"}, status: 400,
			want: []string{`The requested action "provide" can not be performed on node`, `while it is in state "enroll"`}},
		{name: "wrong state while locked", state: inventory.StateDeploying, set: func(n *inventory.Node) { n.Reservation = "c1" },
			body: map[string]any{"target": "manage"}, status: 409, want: []string{"is locked by host c1"}},
		{name: "deploy in maintenance", state: inventory.StateAvailable, set: func(n *inventory.Node) { n.Maintenance = true },
			body: map[string]any{"target": "active"}, status: 400, want: []string{"because it's in maintenance mode"}},
		{name: "clean without steps", state: inventory.StateManageable, body: map[string]any{"target": "clean"}, status: 400, want: []string{`"clean_steps" is required`}},
		{name: "clean steps not a list", state: inventory.StateManageable, body: map[string]any{"target": "clean", "clean_steps": "erase"}, status: 400, want: []string{"clean_steps", "expected an array"}},
		{name: "clean step without interface", state: inventory.StateManageable,
			body: map[string]any{"target": "clean", "clean_steps": []any{map[string]any{"step": "erase"}}}, status: 400, want: []string{"clean_steps", "interface"}},
		{name: "clean step with unknown member", state: inventory.StateManageable,
			body: map[string]any{"target": "clean", "clean_steps": []any{map[string]any{"interface": "deploy", "step": "erase", "when": "now"}}}, status: 400, want: []string{`"when"`}},
		{name: "clean steps with manage", state: inventory.StateAvailable, body: map[string]any{"target": "manage", "clean_steps": cleanSteps}, status: 400,
			want: []string{`"clean_steps" is only valid`}},
		{name: "deploy step without priority", state: inventory.StateAvailable,
			body: map[string]any{"target": "active", "deploy_steps": []any{map[string]any{"interface": "deploy", "step": "x", "args": map[string]any{}}}}, status: 400,
			want: []string{"deploy_steps", "priority"}},
		{name: "deploy steps before 1.69", version: "1.68", state: inventory.StateAvailable,
			body: map[string]any{"target": "active", "deploy_steps": []any{map[string]any{"interface": "deploy", "step": "x", "args": map[string]any{}, "priority": 1}}}, status: 406,
			want: []string{"deploy_steps", "1.69"}},
		{name: "rescue without password", state: inventory.StateActive, body: map[string]any{"target": "rescue"}, status: 400, want: []string{`"rescue_password" is required`}},
		{name: "rescue password with manage", state: inventory.StateAvailable, body: map[string]any{"target": "manage", "rescue_password": "x"}, status: 400,
			want: []string{`"rescue_password" is only valid`}},
		{name: "config drive with provide", state: inventory.StateManageable, body: map[string]any{"target": "provide", "configdrive": "http://x/cd"}, status: 400,
			want: []string{"config drive is only supported"}},
		{name: "config drive not base64", state: inventory.StateAvailable, body: map[string]any{"target": "active", "configdrive": "{not base64!}"}, status: 400,
			want: []string{"Invalid configdrive format"}},
		{name: "config drive object before 1.56", version: "1.55", state: inventory.StateAvailable,
			body: map[string]any{"target": "active", "configdrive": map[string]any{"meta_data": map[string]any{}}}, status: 406, want: []string{"configdrive", "1.56"}},
		{name: "config drive with unknown member", state: inventory.StateAvailable,
			body: map[string]any{"target": "active", "configdrive": map[string]any{"metadata": map[string]any{}}}, status: 400, want: []string{`"metadata"`}},
		{name: "disable_ramdisk with deploy", state: inventory.StateAvailable, body: map[string]any{"target": "active", "disable_ramdisk": true}, status: 400,
			want: []string{"disable_ramdisk is supported only with manual cleaning"}},
		{name: "disable_ramdisk before 1.70", version: "1.69", state: inventory.StateManageable,
			body: map[string]any{"target": "clean", "clean_steps": cleanSteps, "disable_ramdisk": true}, status: 406, want: []string{"disable_ramdisk", "1.70"}},
		{name: "undeploy a protected node", state: inventory.StateActive, set: func(n *inventory.Node) { n.Protected = true },
			body: map[string]any{"target": "deleted"}, status: 403, want: []string{"is protected"}},
		{name: "abort deploy wait", state: inventory.StateWaitCallback, body: map[string]any{"target": "abort"}, status: 406, want: []string{"1.110"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state
			if state == "" {
				state = inventory.StateEnroll
			}
			ts.setNode(t, id, func(n *inventory.Node) {
				n.ProvisionState, n.TargetProvisionState = state, inventory.Target(state)
				n.Maintenance, n.Reservation, n.Protected = false, "", false
				if tc.set != nil {
					tc.set(n)
				}
			})
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "PUT", path: path, body: tc.body, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}

	t.Run("unknown node", func(t *testing.T) {
		r := ts.do(t, req{method: "PUT", path: "/v1/nodes/ghost/states/provision", body: map[string]any{"target": "manage"}})
		r.expect(t, 404, "Node ghost could not be found.")
	})

	t.Run("clean with steps", func(t *testing.T) {
		ts.inState(t, id, inventory.StateManageable)
		r := ts.do(t, req{method: "PUT", path: path, body: map[string]any{"target": "clean", "clean_steps": cleanSteps, "disable_ramdisk": false}})
		r.expect(t, 202)
		if rq := ts.cond.lastRequest(); len(rq.CleanSteps) != 1 || rq.CleanSteps[0]["step"] != "erase_devices_metadata" {
			t.Errorf("clean steps = %v", rq.CleanSteps)
		}
	})

	// The conductor's errors, through the one error table.
	for _, tc := range []struct {
		err    error
		status int
		want   string
	}{
		{inventory.ErrNoWorkers, 503, "lack of free conductor workers"},
		{fmt.Errorf("node %s is locked by conductor-7: %w", id, inventory.ErrLocked), 409, "Node " + id + " is locked by conductor-7."},
		{&inventory.TransitionError{State: "manageable", Event: inventory.EventDeploy}, 400, `The requested action "deploy" can not be performed on node "` + id + `" while it is in state "manageable".`},
		{fmt.Errorf("node %s could not be found: %w", id, inventory.ErrNotFound), 404, "Node " + id + " could not be found."},
		{inventory.Invalid("clean_steps", "step %q is unknown", "zap"), 400, `Invalid clean_steps: step "zap" is unknown.`},
		{errBoom, 500, "internal error"},
	} {
		t.Run("conductor error "+tc.err.Error(), func(t *testing.T) {
			ts.inState(t, id, inventory.StateManageable)
			ts.cond.fail(tc.err)
			defer ts.cond.fail(nil)
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "PUT", path: path, body: map[string]any{"target": "provide"}})
			r.expect(t, tc.status, tc.want)
			ts.unchanged(t, before)
			if tc.status == 500 && strings.Contains(string(r.body), "boom") {
				t.Error("an internal error leaks to the client")
			}
		})
	}
}

func TestStatesAndPower(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "pw"})

	t.Run("states", func(t *testing.T) {
		for v, want := range map[string][]string{
			"1.1":  {"console_enabled", "last_error", "power_state", "provision_state", "provision_updated_at", "target_power_state", "target_provision_state"},
			"1.12": {"console_enabled", "last_error", "power_state", "provision_state", "provision_updated_at", "raid_config", "target_power_state", "target_provision_state", "target_raid_config"},
			"1.87": {"boot_mode", "console_enabled", "last_error", "power_state", "provision_state", "provision_updated_at", "raid_config", "secure_boot", "target_power_state", "target_provision_state", "target_raid_config"},
		} {
			r := ts.do(t, req{method: "GET", path: "/v1/nodes/" + id + "/states", version: v})
			r.expect(t, 200)
			var got []string
			for k := range r.json(t) {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("at %s: %v, want %v", v, got, want)
			}
		}
	})

	path := "/v1/nodes/" + id + "/states/power"
	t.Run("power on", func(t *testing.T) {
		r := ts.do(t, req{method: "PUT", path: path, body: map[string]any{"target": "power on", "timeout": 30}})
		r.expect(t, 202)
		if !strings.HasSuffix(r.header.Get("Location"), "/v1/nodes/"+id+"/states") {
			t.Errorf("Location = %q", r.header.Get("Location"))
		}
		if got := ts.node(t, id).PowerState; got != inventory.PowerOn {
			t.Errorf("power_state = %q", got)
		}
		if got := ts.cond.lastPower(); got != "power on 30s" {
			t.Errorf("conductor got %q", got)
		}
	})

	for _, tc := range []struct {
		name    string
		version string
		state   string
		body    any
		status  int
		want    []string
	}{
		{name: "missing target", body: map[string]any{}, status: 400, want: []string{"Missing mandatory parameter: target"}},
		{name: "invalid target", body: map[string]any{"target": "explode"}, status: 400, want: []string{`"explode" can not be performed`, "power off"}},
		{name: "soft power off before 1.27", version: "1.26", body: map[string]any{"target": "soft power off"}, status: 406, want: []string{"soft power off", "1.27"}},
		{name: "timeout before 1.27", version: "1.26", body: map[string]any{"target": "power off", "timeout": 10}, status: 406, want: []string{"timeout", "1.27"}},
		{name: "zero timeout", body: map[string]any{"target": "power off", "timeout": 0}, status: 400, want: []string{"timeout has to be positive integer"}},
		{name: "timeout not a number", body: map[string]any{"target": "power off", "timeout": "soon"}, status: 400, want: []string{"timeout", "integer"}},
		{name: "fractional timeout", body: map[string]any{"target": "power off", "timeout": 1.5}, status: 400, want: []string{"timeout", "integer"}},
		{name: "while cleaning", state: inventory.StateCleaning, body: map[string]any{"target": "power off"}, status: 400, want: []string{`while it is in state "cleaning"`}},
		{name: "unknown member", body: map[string]any{"target": "power off", "force": true}, status: 400, want: []string{"force"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state
			if state == "" {
				state = inventory.StateManageable
			}
			ts.inState(t, id, state)
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "PUT", path: path, body: tc.body, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}
}

func TestBootDeviceMaintenanceValidate(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "bd"})
	bd := "/v1/nodes/bd/management/boot_device"

	r := ts.do(t, req{method: "GET", path: bd})
	r.expect(t, 200)
	if got := r.json(t); got["boot_device"] != nil || got["persistent"] != nil {
		t.Errorf("boot device before any set = %v", got)
	}
	r = ts.do(t, req{method: "PUT", path: bd, body: map[string]any{"boot_device": "pxe", "persistent": true}})
	r.expect(t, 204)
	r = ts.do(t, req{method: "GET", path: bd})
	r.expect(t, 200)
	if got := r.json(t); got["boot_device"] != "pxe" || got["persistent"] != true {
		t.Errorf("boot device = %v", got)
	}
	r = ts.do(t, req{method: "GET", path: bd + "/supported"})
	r.expect(t, 200)
	if got := fmt.Sprint(r.json(t)["supported_boot_devices"]); got != "[pxe disk cdrom bios safe]" {
		t.Errorf("supported = %s", got)
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		want   []string
	}{
		{"unsupported device", map[string]any{"boot_device": "floppy"}, 400, []string{"Invalid boot device floppy", "pxe"}},
		{"missing device", map[string]any{"persistent": true}, 400, []string{"Missing mandatory parameter: boot_device"}},
		{"persistent not a boolean", map[string]any{"boot_device": "disk", "persistent": "often"}, 400, []string{"persistent", "boolean"}},
		{"unknown member", map[string]any{"boot_device": "disk", "when": "now"}, 400, []string{"when"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.snapshot(t)
			ts.do(t, req{method: "PUT", path: bd, body: tc.body}).expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}

	t.Run("maintenance", func(t *testing.T) {
		m := "/v1/nodes/" + id + "/maintenance"
		r := ts.do(t, req{method: "PUT", path: m, body: map[string]any{"reason": "disk swap"}})
		r.expect(t, 202)
		if n := ts.node(t, id); !n.Maintenance || n.MaintenanceReason != "disk swap" {
			t.Errorf("node maintenance = %v %q", n.Maintenance, n.MaintenanceReason)
		}
		before := ts.snapshot(t)
		ts.do(t, req{method: "PUT", path: m, body: map[string]any{"reason": 5}}).expect(t, 400, "reason", "expected a string")
		ts.do(t, req{method: "PUT", path: m, body: map[string]any{"why": "x"}}).expect(t, 400, "why")
		ts.unchanged(t, before)

		ts.setNode(t, id, func(n *inventory.Node) { n.Fault = "power failure" })
		r = ts.do(t, req{method: "DELETE", path: m})
		r.expect(t, 202)
		if n := ts.node(t, id); n.Maintenance || n.MaintenanceReason != "" || n.Fault != "" {
			t.Errorf("node after unset = %v %q %q", n.Maintenance, n.MaintenanceReason, n.Fault)
		}
		r = ts.do(t, req{method: "PUT", path: m, body: map[string]any{"reason": nil}})
		r.expect(t, 202)
		ts.setNode(t, id, func(n *inventory.Node) { n.Reservation = "c9" })
		before = ts.snapshot(t)
		ts.do(t, req{method: "DELETE", path: m}).expect(t, 409, "locked by host c9")
		ts.unchanged(t, before)
		ts.setNode(t, id, func(n *inventory.Node) { n.Reservation = "" })
	})

	t.Run("validate", func(t *testing.T) {
		for _, path := range []string{"/v1/nodes/bd/validate", "/v1/nodes/validate?node=bd", "/v1/nodes/validate?node_uuid=" + id} {
			r := ts.do(t, req{method: "GET", path: path})
			r.expect(t, 200)
			got := r.json(t)
			if p, ok := got["power"].(map[string]any); !ok || p["result"] != true {
				t.Errorf("%s: %v", path, got)
			}
			if c := got["console"].(map[string]any); c["result"] != nil || c["reason"] != "not supported" {
				t.Errorf("%s: console = %v", path, c)
			}
		}
		ts.do(t, req{method: "GET", path: "/v1/nodes/ghost/validate"}).expect(t, 404, "Node ghost could not be found.")
		ts.do(t, req{method: "GET", path: "/v1/nodes/validate"}).expect(t, 400, "Missing mandatory parameter: node")
	})
}

func TestHistory(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "h"})
	ts.do(t, req{method: "PUT", path: "/v1/nodes/h/maintenance", body: map[string]any{"reason": strings.Repeat("r", 300)}}).expect(t, 202)

	ts.do(t, req{method: "GET", path: "/v1/nodes/h/history", version: "1.77"}).expect(t, 404)

	r := ts.do(t, req{method: "GET", path: "/v1/nodes/h/history", version: "1.78"})
	r.expect(t, 200)
	events := r.json(t)["history"].([]any)
	if len(events) != 2 {
		t.Fatalf("history = %v", events)
	}
	first := events[0].(map[string]any)
	var keys []string
	for k := range first {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"created_at", "event", "links", "severity", "uuid"}; !slices.Equal(keys, want) {
		t.Errorf("fields = %v, want %v", keys, want)
	}
	if ev := events[1].(map[string]any)["event"].(string); len(ev) != 254 || !strings.HasSuffix(ev, "...") {
		t.Errorf("long event not cut: %d characters", len(ev))
	}

	for _, path := range []string{"/v1/nodes/h/history?detail=true", "/v1/nodes/" + id + "/history/detail"} {
		r := ts.do(t, req{method: "GET", path: path})
		r.expect(t, 200)
		last := r.json(t)["history"].([]any)[1].(map[string]any)
		if last["event_type"] != "maintenance" || last["user"] != "admin" || last["conductor"] != nil {
			t.Errorf("%s: %v", path, last)
		}
	}

	evID := first["uuid"].(string)
	r = ts.do(t, req{method: "GET", path: "/v1/nodes/h/history/" + evID})
	r.expect(t, 200)
	if got := r.json(t); got["uuid"] != evID || got["event_type"] != "provisioning" {
		t.Errorf("event = %v", got)
	}
	ts.do(t, req{method: "GET", path: "/v1/nodes/h/history/9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"}).expect(t, 404, "Node history record 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found.")
	ts.do(t, req{method: "GET", path: "/v1/nodes/h/history?limit=1&sort_dir=desc"}).expect(t, 200)
	ts.do(t, req{method: "GET", path: "/v1/nodes/h/history?sort_key=colour"}).expect(t, 400, "colour")
	ts.do(t, req{method: "GET", path: "/v1/nodes/ghost/history"}).expect(t, 404, "Node ghost could not be found.")

	r = ts.do(t, req{method: "GET", path: "/v1/nodes/h/history?limit=1"})
	r.expect(t, 200)
	if next, _ := r.json(t)["next"].(string); !strings.Contains(next, "marker="+evID) {
		t.Errorf("next = %q", next)
	}
}
