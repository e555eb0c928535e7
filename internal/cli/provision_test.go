package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProvisionWait(t *testing.T) {
	tests := []struct {
		name      string
		state     string
		fields    map[string]any
		args      []string
		wantState string
		wantErr   string
		wantLines string
	}{
		{
			name: "manage", state: "enroll", args: []string{"manage", "node-0", "--wait"},
			wantState: "manageable",
			wantLines: "node-0: verifying (0s)\nnode-0: manageable (2s)\n",
		},
		{
			name: "provide", state: "manageable", args: []string{"provide", "node-0", "--wait", "600"},
			wantState: "available",
			wantLines: "node-0: cleaning (0s)\nnode-0: clean wait (2s)\nnode-0: available (4s)\n",
		},
		{
			name: "inspect", state: "manageable", args: []string{"inspect", "--wait=60", "node-0"},
			wantState: "manageable",
			wantLines: "node-0: inspecting (0s)\nnode-0: inspect wait (2s)\nnode-0: manageable (4s)\n",
		},
		{
			name: "deploy", state: "available", args: []string{"deploy", "node-0", "--wait"},
			fields:    map[string]any{"instance_info": map[string]any{"image_source": "http://x/img"}},
			wantState: "active",
			wantLines: "node-0: deploying (0s)\nnode-0: wait call-back (2s)\nnode-0: deploying (4s)\nnode-0: active (6s)\n",
		},
		{
			name: "undeploy", state: "active", args: []string{"undeploy", "node-0", "--wait"},
			wantState: "available",
			wantLines: "node-0: deleting (0s)\nnode-0: cleaning (2s)\nnode-0: available (4s)\n",
		},
		{
			name: "clean comes back to manageable", state: "manageable",
			args:      []string{"clean", "node-0", "--wait", "--clean-steps", `[{"interface": "deploy", "step": "erase_devices_metadata"}]`},
			wantState: "manageable",
			wantLines: "node-0: cleaning (0s)\nnode-0: clean wait (2s)\nnode-0: manageable (4s)\n",
		},
		{
			name: "abort lands in the failed state", state: "clean wait", args: []string{"abort", "node-0", "--wait"},
			wantState: "clean failed",
			wantLines: "node-0: clean failed (0s)\n",
		},
		{
			name: "manage from available is at once", state: "available", args: []string{"manage", "node-0", "--wait"},
			wantState: "manageable",
			wantLines: "node-0: manageable (0s)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.AddNode("node-0", tc.state, tc.fields)
			r := strata(t, f, append([]string{"node"}, tc.args...)...).mustSucceed(t)
			if diff := cmp.Diff(tc.wantLines, r.stderr); diff != "" {
				t.Errorf("progress (-want +got):\n%s", diff)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q, want nothing", r.stdout)
			}
			if got := f.State("node-0"); got != tc.wantState {
				t.Errorf("state %q, want %q", got, tc.wantState)
			}
		})
	}
}

func TestProvisionWaitFailure(t *testing.T) {
	tests := []struct {
		verb, state, wantErr string
	}{
		{"manage", "enroll", `strata: node node-0 went to "enroll" instead of "manageable": fake failure of manage` + "\n"},
		{"provide", "manageable", `strata: node node-0 went to "clean failed" instead of "available": fake failure of provide` + "\n"},
		{"inspect", "manageable", `strata: node node-0 went to "inspect failed" instead of "manageable": fake failure of inspect` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.verb, func(t *testing.T) {
			f := newFake(t)
			f.AddNode("node-0", tc.state, nil)
			f.failOn["node-0"] = tc.verb
			r := strata(t, f, "node", tc.verb, "node-0", "--wait")
			if r.code != ExitError {
				t.Errorf("exit %d, want 1", r.code)
			}
			lines := strings.SplitAfter(r.stderr, "\n")
			if got := lines[len(lines)-2]; got != tc.wantErr {
				t.Errorf("last line %q, want %q\nstderr:\n%s", got, tc.wantErr, r.stderr)
			}
		})
	}
}

func TestProvisionWaitTimeout(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	f.stall["node-0"] = true
	r := strata(t, f, "node", "provide", "node-0", "--wait", "5")
	if r.code != ExitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	want := "node-0: cleaning (0s)\nstrata: node node-0 did not reach \"available\" within 5s; it is in \"cleaning\"\n"
	if diff := cmp.Diff(want, r.stderr); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	// The pre-action GET, the request, then polls at 0, 2, 4 and 5 s.
	gets := 0
	for _, l := range f.requestLines() {
		if strings.HasPrefix(l, "GET ") {
			gets++
		}
	}
	if gets != 5 {
		t.Errorf("%d GETs, want 5: %v", gets, f.requestLines())
	}
}

func TestProvisionRequests(t *testing.T) {
	tests := []struct {
		name     string
		state    string
		args     []string
		wantBody map[string]any
	}{
		{"deploy sends active", "available", []string{"deploy", "node-0"}, map[string]any{"target": "active"}},
		{"undeploy sends deleted", "active", []string{"undeploy", "node-0"}, map[string]any{"target": "deleted"}},
		{"config drive object", "available", []string{"deploy", "node-0", "--config-drive", `{"meta_data": {"hostname": "c0"}}`},
			map[string]any{"target": "active", "configdrive": map[string]any{"meta_data": map[string]any{"hostname": "c0"}}}},
		{"config drive URL", "available", []string{"deploy", "node-0", "--config-drive", "http://10.0.0.1/cd.iso.gz"},
			map[string]any{"target": "active", "configdrive": "http://10.0.0.1/cd.iso.gz"}},
		{"clean steps", "manageable", []string{"clean", "node-0", "--clean-steps", `[{"interface": "deploy", "step": "erase_devices_metadata", "args": {"x": 1}}]`},
			map[string]any{"target": "clean", "clean_steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{"x": float64(1)}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.AddNode("node-0", tc.state, map[string]any{"instance_info": map[string]any{"image_source": "http://x/img"}})
			r := strata(t, f, append([]string{"node"}, tc.args...)...).mustSucceed(t)
			if r.stdout != "" || r.stderr != "" {
				t.Errorf("without --wait: stdout %q, stderr %q; want nothing", r.stdout, r.stderr)
			}
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].Method != "PUT" || reqs[0].Path != "/v1/nodes/node-0/states/provision" {
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
}

func TestProvisionRefused(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	r := strata(t, f, "node", "provide", "node-0", "--wait")
	want := "strata: The requested action \"provide\" can not be performed on node \"00000000-0000-4000-8000-000000000001\" while it is in state \"enroll\".\n"
	if r.code != ExitError || r.stderr != want {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	f.AddNode("node-1", "available", nil)
	r = strata(t, f, "node", "deploy", "node-1")
	if r.code != ExitError || !strings.Contains(r.stderr, "Missing are: ['image_source']") {
		t.Errorf("deploy without an image: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBulkManageAll(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	f.AddNode("node-1", "enroll", nil)
	f.AddNode("node-2", "enroll", map[string]any{"maintenance": true})
	f.AddNode("node-3", "active", nil)
	f.AddNode("node-4", "enroll", nil)
	f.failOn["node-1"] = "manage"

	r := strata(t, f, "node", "manage", "--all", "--wait", "--concurrency", "2", "-f", "json", "-c", "node", "-c", "provision_state", "-c", "error")
	if r.code != ExitError {
		t.Errorf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := []map[string]any{
		{"node": "node-0", "provision_state": "manageable", "error": nil},
		{"node": "node-1", "provision_state": "enroll", "error": "fake failure of manage"},
		{"node": "node-4", "provision_state": "manageable", "error": nil},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(r.stderr, "strata: 1 of 3 nodes failed\n") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if got := f.requestLines()[0]; got != "GET /v1/nodes?fields=uuid%2Cname%2Cprovision_state%2Ctarget_provision_state%2Cmaintenance%2Cprovision_updated_at%2Clast_error&maintenance=false" {
		t.Errorf("selection request: %s", got)
	}
	if f.State("node-2") != "enroll" || f.State("node-3") != "active" {
		t.Errorf("nodes not selected were touched: node-2 %q, node-3 %q", f.State("node-2"), f.State("node-3"))
	}
}

func TestBulkByProvisionState(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "manageable", nil)
	f.AddNode("node-1", "manageable", nil)
	f.AddNode("node-2", "enroll", nil)

	r := strata(t, f, "node", "provide", "--provision-state", "manageable", "--wait").mustSucceed(t)
	for _, want := range []string{"| node-0 ", "| node-1 ", "| available "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "node-2") {
		t.Errorf("summary has a node in another state:\n%s", r.stdout)
	}
	if f.State("node-0") != "available" || f.State("node-1") != "available" || f.State("node-2") != "enroll" {
		t.Errorf("states: %q %q %q", f.State("node-0"), f.State("node-1"), f.State("node-2"))
	}

	r = strata(t, f, "node", "inspect", "--provision-state", "manageable").mustSucceed(t)
	if r.stderr != "no nodes in state \"manageable\" (nodes in maintenance are left out)\n" {
		t.Errorf("empty selection: %q", r.stderr)
	}
}

func TestBulkWithoutWait(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	f.AddNode("node-1", "enroll", nil)
	r := strata(t, f, "node", "manage", "node-0", "node-1", "nope", "-f", "value", "-c", "node", "-c", "error")
	if r.code != ExitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	if diff := cmp.Diff("node-0 None\nnode-1 None\nnope node \"nope\" not found\n", r.stdout); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stderr, "manage requested for 2 node(s); use --wait to follow them") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestProgressOnTerminal(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	r := cliRun{env: fakeEnv(f), tty: true}.run(t, "node", "manage", "node-0", "--wait").mustSucceed(t)
	if !strings.Contains(r.stderr, "\r⠋ node-0: verifying 0s\x1b[K") {
		t.Errorf("no live line:\n%q", r.stderr)
	}
	if !strings.HasSuffix(r.stderr, "node-0: manageable (2s)\n\r\x1b[K") {
		t.Errorf("no final line:\n%q", r.stderr)
	}
}

func TestRetriesWhileBusy(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	f.locked["node-0"] = 2
	f.busy = 1
	r := strata(t, f, "node", "manage", "node-0", "--wait").mustSucceed(t)
	if f.State("node-0") != "manageable" {
		t.Errorf("state %q\n%s", f.State("node-0"), r.stderr)
	}
	want := []string{
		"GET /v1/nodes/node-0", // 503
		"GET /v1/nodes/node-0",
		"PUT /v1/nodes/00000000-0000-4000-8000-000000000001/states/provision", // 409
		"PUT /v1/nodes/00000000-0000-4000-8000-000000000001/states/provision", // 409
		"PUT /v1/nodes/00000000-0000-4000-8000-000000000001/states/provision",
		"GET /v1/nodes/00000000-0000-4000-8000-000000000001",
		"GET /v1/nodes/00000000-0000-4000-8000-000000000001",
	}
	if diff := cmp.Diff(want, f.requestLines()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	f.locked["node-0"] = maxBusyRetries + 1
	r = strata(t, f, "node", "provide", "node-0")
	if r.code != ExitError || !strings.Contains(r.stderr, "is locked by host undercloud") {
		t.Errorf("locked for good: exit %d, stderr %q", r.code, r.stderr)
	}

	before := len(f.Requests())
	r = strata(t, f, "node", "create", "--driver", "fake-hardware", "--name", "node-0")
	if r.code != ExitError || len(f.Requests()) != before+1 {
		t.Errorf("a duplicate name was retried: exit %d, %d requests", r.code, len(f.Requests())-before)
	}
}

func TestBulkProgressOnTerminal(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	f.AddNode("node-1", "enroll", nil)
	f.failOn["node-1"] = "manage"
	r := cliRun{env: fakeEnv(f), tty: true}.run(t, "node", "manage", "--all", "--wait", "--concurrency", "1")
	if r.code != ExitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"\r⠋ 0/2 done · enroll: 1", "1/2 done", "\r\x1b[Knode-1: enroll (", "2/2 done, 1 failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("live progress lacks %q:\n%q", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "| node-1 ") {
		t.Errorf("no summary:\n%s", r.stdout)
	}
}
