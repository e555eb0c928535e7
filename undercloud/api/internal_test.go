package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := decodeJSON([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApplyPatch(t *testing.T) {
	doc := `{"a": {"b": 1, "c/d": 2, "e~f": 3}, "l": [1, 2, 3], "s": "x", "n": null}`
	for _, tc := range []struct {
		name, ops, want, err string
	}{
		{name: "add member", ops: `[{"op": "add", "path": "/a/z", "value": {"deep": [true]}}]`,
			want: `{"a": {"b": 1, "c/d": 2, "e~f": 3, "z": {"deep": [true]}}, "l": [1, 2, 3], "s": "x", "n": null}`},
		{name: "add replaces", ops: `[{"op": "add", "path": "/s", "value": "y"}]`,
			want: `{"a": {"b": 1, "c/d": 2, "e~f": 3}, "l": [1, 2, 3], "s": "y", "n": null}`},
		{name: "escaped keys", ops: `[{"op": "remove", "path": "/a/c~1d"}, {"op": "replace", "path": "/a/e~0f", "value": 4}]`,
			want: `{"a": {"b": 1, "e~f": 4}, "l": [1, 2, 3], "s": "x", "n": null}`},
		{name: "array insert and append", ops: `[{"op": "add", "path": "/l/0", "value": 0}, {"op": "add", "path": "/l/-", "value": 4}]`,
			want: `{"a": {"b": 1, "c/d": 2, "e~f": 3}, "l": [0, 1, 2, 3, 4], "s": "x", "n": null}`},
		{name: "array remove and replace", ops: `[{"op": "remove", "path": "/l/1"}, {"op": "replace", "path": "/l/0", "value": "one"}]`,
			want: `{"a": {"b": 1, "c/d": 2, "e~f": 3}, "l": ["one", 3], "s": "x", "n": null}`},
		{name: "test numbers by value", ops: `[{"op": "test", "path": "/a/b", "value": 1.0}, {"op": "test", "path": "/n", "value": null}]`,
			want: doc},
		{name: "failed test", ops: `[{"op": "test", "path": "/l", "value": [1, 2]}]`, err: "test failed"},
		{name: "replace missing", ops: `[{"op": "replace", "path": "/a/q", "value": 1}]`, err: `can't replace a non-existent member "q"`},
		{name: "remove missing", ops: `[{"op": "remove", "path": "/a/q"}]`, err: `can't remove a non-existent member "q"`},
		{name: "below a missing member", ops: `[{"op": "add", "path": "/q/r", "value": 1}]`, err: `member "q" does not exist`},
		{name: "index out of range", ops: `[{"op": "replace", "path": "/l/3", "value": 1}]`, err: "out of range"},
		{name: "leading zero", ops: `[{"op": "remove", "path": "/l/01"}]`, err: "not an array index"},
		{name: "into a string", ops: `[{"op": "add", "path": "/s/x", "value": 1}]`, err: "can not be looked up in a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ops []patchOp
			for i, raw := range decode(t, tc.ops).([]any) {
				op, err := parseOp(i+1, raw.(map[string]any))
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, op)
			}
			orig := decode(t, doc).(map[string]any)
			got, err := applyPatch(orig, ops)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(got, decode(t, tc.want)) {
				b, _ := json.Marshal(got)
				t.Errorf("got %s, want %s", b, tc.want)
			}
			if !jsonEqual(orig, decode(t, doc)) {
				t.Error("the original document changed")
			}
		})
	}
}

func TestParseOp(t *testing.T) {
	for _, tc := range []struct{ op, want string }{
		{`{"op": "move", "path": "/a", "from": "/b"}`, `unknown member "from"`},
		{`{"op": "copy", "path": "/a"}`, `op "copy" is not supported`},
		{`{"path": "/a"}`, `"op" is required`},
		{`{"op": "add", "value": 1}`, `"path" is required`},
		{`{"op": "add", "path": "/a"}`, `"value" is required`},
		{`{"op": "add", "path": "a", "value": 1}`, `must name a field`},
		{`{"op": "add", "path": "/", "value": 1}`, `must name a field`},
		{`{"op": "add", "path": "/a~2", "value": 1}`, `invalid ~ escape`},
	} {
		_, err := parseOp(1, decode(t, tc.op).(map[string]any))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.op, err, tc.want)
		}
	}
}

func TestErrorRules(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{errorf(418, "Short and stout."), 418, "Short and stout."},
		{nodeErr("n1", fmt.Errorf("node n1 could not be found: %w", inventory.ErrNotFound)), 404, "Node n1 could not be found."},
		{fmt.Errorf("port 52:54:00:00:00:01 could not be found: %w", inventory.ErrNotFound), 404, "Port 52:54:00:00:00:01 could not be found."},
		{fmt.Errorf("a node with name x already exists: %w", inventory.ErrDuplicate), 409, "A node with name x already exists."},
		{nodeErr("n1", &inventory.TransitionError{State: "enroll", Event: "provide"}), 400, `The requested action "provide" can not be performed on node "n1" while it is in state "enroll".`},
		{inventory.Invalid("address", "%q is not a valid MAC address", "x"), 400, `Invalid address: "x" is not a valid MAC address.`},
		{fmt.Errorf("wrapped: %w", inventory.ErrLocked), 409, "Wrapped."},
		{inventory.ErrNoWorkers, 503, "Requested action cannot be performed due to lack of free conductor workers."},
		{fmt.Errorf("x: %w", nodestore.ErrFenced), 409, "reservation changed"},
		{&store.CondError{Err: store.ErrConflict}, 409, "changed concurrently"},
		{&http.MaxBytesError{Limit: 10}, 413, "limit of 10 bytes"},
		{fmt.Errorf("incorrect username or password: %w", ErrUnauthorized), 401, "Incorrect username or password."},
		{errors.New("etcd: connection refused"), 500, "internal error"},
	} {
		status, msg := httpStatus(tc.err)
		if status != tc.status || msg != tc.msg && !strings.Contains(msg, tc.msg) {
			t.Errorf("%v: got %d %q, want %d %q", tc.err, status, msg, tc.status, tc.msg)
		}
	}
}

func TestIsoTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 18, 1, 2, 123456789, time.UTC), "2026-11-23T18:01:02.123456+00:00"},
		{time.Date(2026, 11, 23, 18, 1, 2, 0, time.UTC), "2026-11-23T18:01:02+00:00"},
		{time.Date(2026, 11, 23, 19, 1, 2, 5000, time.FixedZone("CET", 3600)), "2026-11-23T18:01:02.000005+00:00"},
	} {
		if got := isoTime(tc.t); got != tc.want {
			t.Errorf("isoTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestFieldTables(t *testing.T) {
	// Every field Ironic's VERSIONED_FIELDS gates is in the node table with
	// Ironic's version (utils.py at openstack/ironic@7bc6aba7d).
	ironic := map[string]int{
		"driver_internal_info": 3, "name": 5, "inspection_finished_at": 6, "inspection_started_at": 6,
		"clean_step": 7, "raid_config": 12, "target_raid_config": 12, "network_interface": 20,
		"resource_class": 21, "storage_interface": 33, "traits": 37, "rescue_interface": 38,
		"bios_interface": 40, "fault": 42, "deploy_step": 44, "conductor_group": 46,
		"automated_clean": 47, "protected": 48, "protected_reason": 48, "conductor": 49,
		"owner": 50, "description": 51, "allocation_uuid": 52, "retired": 61, "retired_reason": 61,
		"lessee": 65, "network_data": 66, "boot_mode": 75, "secure_boot": 75, "shard": 82,
		"parent_node": 83, "firmware_interface": 86, "service_step": 87, "disable_power_off": 95,
		"instance_name": 104, "health": 109,
		"boot_interface": 31, "console_interface": 31, "deploy_interface": 31, "inspect_interface": 31,
		"management_interface": 31, "power_interface": 31, "raid_interface": 31, "vendor_interface": 31,
	}
	got := map[string]int{}
	seen := map[string]bool{}
	for _, f := range nodeFields {
		if seen[f.name] {
			t.Errorf("node field %s twice", f.name)
		}
		seen[f.name] = true
		if f.since > 1 {
			got[f.name] = f.since
		}
		if f.set == nil && (f.create || f.patch) && !f.unsupported {
			t.Errorf("node field %s is writable without a setter", f.name)
		}
	}
	if diff := cmp.Diff(ironic, got); diff != "" {
		t.Errorf("node field versions differ from Ironic's (-ironic +ours):\n%s", diff)
	}
	ironicPort := map[string]int{
		"internal_info": 18, "pxe_enabled": 19, "local_link_connection": 19, "portgroup_uuid": 24,
		"physical_network": 34, "is_smartnic": 53, "name": 88, "description": 97, "vendor": 100,
		"category": 101, "available_for_dynamic_portgroup": 111,
	}
	gotPort := map[string]int{}
	for _, f := range portFields {
		if f.since > 1 {
			gotPort[f.name] = f.since
		}
	}
	if diff := cmp.Diff(ironicPort, gotPort); diff != "" {
		t.Errorf("port field versions differ from Ironic's (-ironic +ours):\n%s", diff)
	}
}
