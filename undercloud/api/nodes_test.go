package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stratacloud/strata/inventory"
)

func TestNodeShowGolden(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{
		"name":   "node-0",
		"driver": "ipmi",
		"driver_info": map[string]any{
			"ipmi_address":  "10.0.0.5",
			"ipmi_username": "admin",
			"ipmi_password": "s3cret",
		},
		"properties":     map[string]any{"cpus": 8, "memory_mb": 16384, "cpu_arch": "x86_64"},
		"resource_class": "baremetal",
		"extra":          map[string]any{"rack": "r1"},
	})
	for _, v := range []string{"1.1", "1.87"} {
		t.Run(v, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: "/v1/nodes/" + id, version: v})
			r.expect(t, http.StatusOK)
			golden(t, "node-show-"+v+".json", r.body)
			if strings.Contains(string(r.body), "s3cret") {
				t.Error("the BMC password appears in the response")
			}
		})
	}
}

func TestNodeCreate(t *testing.T) {
	ts := newServer(t)
	ts.createNode(t, map[string]any{"name": "taken"})
	big := strings.Repeat("x", 2<<20)

	for _, tc := range []struct {
		name    string
		version string
		body    any
		status  int
		want    []string
	}{
		{name: "malformed JSON", body: `{"driver": "ipmi",`, status: 400, want: []string{"Malformed JSON"}},
		{name: "trailing data", body: `{"driver": "ipmi"} {}`, status: 400, want: []string{"unexpected data"}},
		{name: "array body", body: `["ipmi"]`, status: 400, want: []string{"must be a JSON object"}},
		{name: "empty body", body: ``, status: 400, want: []string{"empty"}},
		{name: "missing driver", body: map[string]any{"name": "a"}, status: 400, want: []string{"Missing mandatory parameter: driver"}},
		{name: "unknown driver", body: map[string]any{"driver": "idrac-magic"}, status: 400, want: []string{`"idrac-magic"`, "ipmi"}},
		{name: "driver of the wrong type", body: map[string]any{"driver": 7}, status: 400, want: []string{"driver", "expected a string"}},
		{name: "unknown field", body: map[string]any{"driver": "ipmi", "colour": "blue", "shape": 1}, status: 400, want: []string{"Unknown attribute(s) for a new node: colour, shape."}},
		{name: "read-only field", body: map[string]any{"driver": "ipmi", "provision_state": "active"}, status: 400, want: []string{"Read-only attribute(s)", "provision_state"}},
		{name: "wrong type", body: map[string]any{"driver": "ipmi", "driver_info": "ipmi://x"}, status: 400, want: []string{"driver_info", "expected an object"}},
		{name: "wrong boolean", body: map[string]any{"driver": "ipmi", "maintenance": "perhaps"}, status: 400, want: []string{"maintenance", "expected a boolean"}},
		{name: "invalid name", body: map[string]any{"driver": "ipmi", "name": "no spaces"}, status: 400, want: []string{`"no spaces"`}},
		{name: "reserved name", body: map[string]any{"driver": "ipmi", "name": "detail"}, status: 400, want: []string{`"detail" is reserved`}},
		{name: "duplicate name", body: map[string]any{"driver": "ipmi", "name": "taken"}, status: 409, want: []string{"A node with name taken already exists."}},
		{name: "invalid uuid", body: map[string]any{"driver": "ipmi", "uuid": "1234"}, status: 400, want: []string{"uuid", `"1234"`}},
		{name: "field newer than the version", version: "1.49", body: map[string]any{"driver": "ipmi", "owner": "p1"}, status: 406, want: []string{"owner", "1.50"}},
		{name: "name before 1.5", version: "1.4", body: map[string]any{"driver": "ipmi", "name": "n"}, status: 406, want: []string{"name", "1.5"}},
		{name: "unsupported interface", body: map[string]any{"driver": "ipmi", "boot_interface": "ipxe"}, status: 400, want: []string{"boot_interface", "not supported"}},
		{name: "description too long", body: map[string]any{"driver": "ipmi", "description": strings.Repeat("d", 4097)}, status: 400, want: []string{"description", "4096"}},
		{name: "body too large", body: `{"driver": "ipmi", "description": "` + big + `"}`, status: 413, want: []string{"limit of 1048576 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "POST", path: "/v1/nodes", body: tc.body, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}

	t.Run("created in enroll", func(t *testing.T) {
		r := ts.do(t, req{method: "POST", path: "/v1/nodes", body: map[string]any{
			"driver": "redfish", "name": "n1", "uuid": "4F6C0E1A-3B6D-4E8F-9A0B-1C2D3E4F5A6B",
			"driver_info":     map[string]any{"redfish_password": "pw", "redfish_address": "https://bmc"},
			"conductor_group": "Rack-A", "maintenance": "true", "automated_clean": false,
			"chassis_uuid": nil, "network_data": map[string]any{}, "boot_interface": nil,
		}})
		r.expect(t, http.StatusCreated)
		n := r.json(t)
		const id = "4f6c0e1a-3b6d-4e8f-9a0b-1c2d3e4f5a6b"
		if got := r.header.Get("Location"); !strings.HasSuffix(got, "/v1/nodes/"+id) || !strings.HasPrefix(got, "http://") {
			t.Errorf("Location = %q", got)
		}
		for k, want := range map[string]any{
			"uuid": id, "provision_state": "enroll", "power_state": nil, "name": "n1",
			"conductor_group": "rack-a", "maintenance": true, "automated_clean": false,
			"description": nil, "instance_uuid": nil, "target_provision_state": nil,
		} {
			if n[k] != want {
				t.Errorf("%s = %#v, want %#v", k, n[k], want)
			}
		}
		di := n["driver_info"].(map[string]any)
		if di["redfish_password"] != "******" || di["redfish_address"] != "https://bmc" {
			t.Errorf("driver_info = %v", di)
		}
		if stored := ts.node(t, id).DriverInfo["redfish_password"]; stored != "pw" {
			t.Errorf("stored password = %v", stored)
		}
	})

	t.Run("created in available before 1.11", func(t *testing.T) {
		r := ts.do(t, req{method: "POST", path: "/v1/nodes", version: "1.10", body: map[string]any{"driver": "ipmi"}})
		r.expect(t, http.StatusCreated)
		n := r.json(t)
		if n["provision_state"] != "available" {
			t.Errorf("provision_state = %v", n["provision_state"])
		}
		if _, ok := n["owner"]; ok {
			t.Error("owner shown at 1.10")
		}
	})

	t.Run("null name before 1.5", func(t *testing.T) {
		r := ts.do(t, req{method: "POST", path: "/v1/nodes", version: "1.4", body: map[string]any{"driver": "ipmi", "name": nil}})
		r.expect(t, http.StatusCreated)
	})
}

func TestNodeGet(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "web-1", "owner": "p1"})
	missing := "9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"

	for _, tc := range []struct {
		name, path, version string
		status              int
		want                []string
		fields              []string // exact set of fields in a 200 answer
	}{
		{name: "by uuid", path: "/v1/nodes/" + id, status: 200},
		{name: "by name", path: "/v1/nodes/web-1", status: 200},
		{name: "bookmark", path: "/nodes/web-1", status: 200},
		{name: "by name before 1.5", path: "/v1/nodes/web-1", version: "1.4", status: 404, want: []string{"Node web-1 could not be found."}},
		{name: "unknown uuid", path: "/v1/nodes/" + missing, status: 404, want: []string{"Node " + missing + " could not be found."}},
		{name: "unknown name", path: "/v1/nodes/nope", status: 404, want: []string{"Node nope could not be found."}},
		{name: "invalid ident", path: "/v1/nodes/a%20b", status: 400, want: []string{"Expected a logical name or UUID but received a b"}},
		{name: "fields", path: "/v1/nodes/web-1?fields=uuid,name,owner", status: 200, fields: []string{"links", "name", "owner", "uuid"}},
		{name: "fields before 1.8", path: "/v1/nodes/" + id + "?fields=uuid", version: "1.7", status: 406, want: []string{"fields parameter", "1.8"}},
		{name: "field newer than the version", path: "/v1/nodes/web-1?fields=uuid,owner", version: "1.49", status: 406, want: []string{"owner", "1.50"}},
		{name: "invalid field", path: "/v1/nodes/web-1?fields=uuid,colour", status: 400, want: []string{"colour", "not valid"}},
		{name: "unknown parameter", path: "/v1/nodes/web-1?colour=blue", status: 400, want: []string{"Unknown argument(s): colour"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: tc.path, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			if tc.status != 200 {
				return
			}
			n := r.json(t)
			if n["uuid"] != id {
				t.Errorf("uuid = %v", n["uuid"])
			}
			if tc.fields != nil {
				var got []string
				for k := range n {
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.fields) {
					t.Errorf("fields = %v, want %v", got, tc.fields)
				}
			}
		})
	}

	t.Run("legacy state names", func(t *testing.T) {
		ts.inState(t, id, inventory.StateAvailable)
		r := ts.do(t, req{method: "GET", path: "/v1/nodes/" + id, version: "1.1"})
		r.expect(t, 200)
		if ps, ok := r.json(t)["provision_state"]; !ok || ps != nil {
			t.Errorf("available at 1.1 shows as %v, want null", ps)
		}
		ts.inState(t, id, inventory.StateInspectWait)
		r = ts.do(t, req{method: "GET", path: "/v1/nodes/" + id + "/states", version: "1.38"})
		r.expect(t, 200)
		if ps := r.json(t)["provision_state"]; ps != "inspecting" {
			t.Errorf("inspect wait at 1.38 shows as %v", ps)
		}
	})
}

func TestNodeList(t *testing.T) {
	ts := newServer(t)
	var ids []string
	for i := range 5 {
		body := map[string]any{"name": fmt.Sprintf("n%d", i), "driver": "fake-hardware", "resource_class": "small"}
		if i%2 == 1 {
			body["driver"] = "ipmi"
			body["resource_class"] = "large"
			body["description"] = "odd machine"
		}
		ids = append(ids, ts.createNode(t, body))
	}
	ts.inState(t, ids[3], inventory.StateManageable)
	ts.setNode(t, ids[4], func(n *inventory.Node) {
		n.Maintenance = true
		n.InstanceUUID = "11111111-2222-3333-4444-555555555555"
		n.Fault = "power failure"
		n.Owner = "tenant-a"
	})

	names := func(t *testing.T, r res) []string {
		t.Helper()
		var out []string
		for _, n := range r.json(t)["nodes"].([]any) {
			out = append(out, n.(map[string]any)["name"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		name, query, version string
		want                 []string
	}{
		{name: "all in creation order", want: []string{"n0", "n1", "n2", "n3", "n4"}},
		{name: "driver", query: "driver=ipmi", want: []string{"n1", "n3"}},
		{name: "resource class", query: "resource_class=small", want: []string{"n0", "n2", "n4"}},
		{name: "provision state", query: "provision_state=manageable", want: []string{"n3"}},
		{name: "maintenance", query: "maintenance=True", want: []string{"n4"}},
		{name: "not in maintenance", query: "maintenance=false", want: []string{"n0", "n1", "n2", "n3"}},
		{name: "associated", query: "associated=true", want: []string{"n4"}},
		{name: "instance uuid", query: "instance_uuid=11111111-2222-3333-4444-555555555555", want: []string{"n4"}},
		{name: "fault", query: "fault=power+failure", want: []string{"n4"}},
		{name: "owner", query: "owner=tenant-a", want: []string{"n4"}},
		{name: "conductor group", query: "conductor_group=", want: []string{"n0", "n1", "n2", "n3", "n4"}},
		{name: "description contains", query: "description_contains=odd", want: []string{"n1", "n3"}},
		{name: "sorted by name descending", query: "sort_key=name&sort_dir=desc", want: []string{"n4", "n3", "n2", "n1", "n0"}},
		{name: "sorted by driver", query: "sort_key=driver", want: []string{"n0", "n2", "n4", "n1", "n3"}},
		{name: "combined", query: "driver=fake-hardware&maintenance=false", want: []string{"n0", "n2"}},
		{name: "detail", query: "detail=True", want: []string{"n0", "n1", "n2", "n3", "n4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: "/v1/nodes?" + tc.query, version: tc.version})
			r.expect(t, 200)
			if got := names(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("nodes = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("default fields", func(t *testing.T) {
		r := ts.do(t, req{method: "GET", path: "/v1/nodes"})
		r.expect(t, 200)
		n := r.json(t)["nodes"].([]any)[0].(map[string]any)
		var got []string
		for k := range n {
			got = append(got, k)
		}
		slices.Sort(got)
		want := []string{"instance_uuid", "links", "maintenance", "name", "power_state", "provision_state", "uuid"}
		if !slices.Equal(got, want) {
			t.Errorf("fields = %v, want %v", got, want)
		}
	})

	t.Run("detail has every field", func(t *testing.T) {
		for _, path := range []string{"/v1/nodes/detail", "/v1/nodes?detail=true"} {
			r := ts.do(t, req{method: "GET", path: path})
			r.expect(t, 200)
			n := r.json(t)["nodes"].([]any)[0].(map[string]any)
			for _, k := range []string{"driver_info", "properties", "ports", "states", "created_at", "traits", "conductor_group"} {
				if _, ok := n[k]; !ok {
					t.Errorf("%s: field %s missing", path, k)
				}
			}
		}
	})

	t.Run("pages", func(t *testing.T) {
		var got []string
		path := "/v1/nodes?limit=2&sort_key=name"
		for range 5 {
			r := ts.do(t, req{method: "GET", path: path})
			r.expect(t, 200)
			body := r.json(t)
			got = append(got, names(t, r)...)
			next, ok := body["next"].(string)
			if !ok {
				break
			}
			if !strings.Contains(next, "limit=2") || !strings.Contains(next, "sort_key=name") || !strings.HasPrefix(next, ts.url+"/v1/nodes?") {
				t.Errorf("next = %q", next)
			}
			path = strings.TrimPrefix(next, ts.url)
		}
		if want := []string{"n0", "n1", "n2", "n3", "n4"}; !slices.Equal(got, want) {
			t.Errorf("paged through %v, want %v", got, want)
		}
	})

	t.Run("fields", func(t *testing.T) {
		r := ts.do(t, req{method: "GET", path: "/v1/nodes?fields=uuid,driver&limit=1"})
		r.expect(t, 200)
		n := r.json(t)["nodes"].([]any)[0].(map[string]any)
		if len(n) != 3 || n["driver"] != "fake-hardware" || n["links"] == nil {
			t.Errorf("node = %v", n)
		}
	})

	for _, tc := range []struct {
		name, query, version string
		status               int
		want                 []string
	}{
		{name: "unknown parameter", query: "colour=red", status: 400, want: []string{"Unknown argument(s): colour"}},
		{name: "limit not a number", query: "limit=ten", status: 400, want: []string{"Expected an integer for limit: ten"}},
		{name: "limit zero", query: "limit=0", status: 400, want: []string{"Limit must be positive"}},
		{name: "marker not a uuid", query: "marker=n1", status: 400, want: []string{"Expected a UUID for marker: n1"}},
		{name: "unknown marker", query: "marker=9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e", status: 404, want: []string{"Node 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found."}},
		{name: "bad sort direction", query: "sort_dir=up", status: 400, want: []string{"Invalid sort direction: up"}},
		{name: "unsortable key", query: "sort_key=driver_info", status: 400, want: []string{`"driver_info" is an invalid field for sorting`}},
		{name: "unknown sort key", query: "sort_key=colour", status: 400, want: []string{`"colour" is an invalid field for sorting`}},
		{name: "sort key newer than the version", query: "sort_key=owner", version: "1.49", status: 406, want: []string{"owner", "1.50"}},
		{name: "invalid state", query: "provision_state=flying", status: 400, want: []string{`Provision state "flying" is not valid`}},
		{name: "state filter before 1.9", query: "provision_state=enroll", version: "1.8", status: 406, want: []string{"provision_state", "1.9"}},
		{name: "driver filter before 1.16", query: "driver=ipmi", version: "1.15", status: 406, want: []string{"driver", "1.16"}},
		{name: "lessee filter before 1.65", query: "lessee=x", version: "1.64", status: 406, want: []string{"lessee", "1.65"}},
		{name: "invalid fault", query: "fault=bored", status: 400, want: []string{`Unrecognized fault "bored"`}},
		{name: "bad boolean", query: "maintenance=maybe", status: 400, want: []string{"maintenance", `"maybe"`}},
		{name: "fields and detail", query: "fields=uuid&detail=true", status: 400, want: []string{"Can not specify ?detail=True and fields"}},
		{name: "detail before 1.43", query: "detail=true", version: "1.42", status: 400, want: []string{"detail", "1.43"}},
		{name: "invalid field", query: "fields=uuid,colour", status: 400, want: []string{"colour"}},
		{name: "fields on /detail", query: "fields=uuid", status: 400, want: []string{"Unknown argument(s): fields"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v1/nodes?" + tc.query
			if tc.name == "fields on /detail" {
				path = "/v1/nodes/detail?" + tc.query
			}
			r := ts.do(t, req{method: "GET", path: path, version: tc.version})
			r.expect(t, tc.status, tc.want...)
		})
	}
}

func TestNodePatch(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{
		"name":        "p0",
		"driver_info": map[string]any{"ipmi_address": "10.0.0.1", "ipmi_password": "old"},
		"properties":  map[string]any{"cpus": 4, "capabilities": "boot_mode:uefi"},
	})
	ts.createNode(t, map[string]any{"name": "p1"})
	path := "/v1/nodes/" + id
	patch := func(ops ...map[string]any) []map[string]any { return ops }
	op := func(o, p string, v ...any) map[string]any {
		m := map[string]any{"op": o, "path": p}
		if len(v) > 0 {
			m["value"] = v[0]
		}
		return m
	}

	t.Run("changes fields", func(t *testing.T) {
		r := ts.do(t, req{method: "PATCH", path: path, body: patch(
			op("replace", "/name", "p0-renamed"),
			op("add", "/driver_info/ipmi_password", "new-secret"),
			op("add", "/driver_info/ipmi_username", "root"),
			op("remove", "/properties/capabilities"),
			op("add", "/properties/memory_mb", 8192),
			op("add", "/extra/tags", []any{"a", "b"}),
			op("add", "/extra/tags/1", "between"),
			op("test", "/properties/cpus", 4),
			op("add", "/owner", "tenant-x"),
		)})
		r.expect(t, 200)
		n := r.json(t)
		if n["name"] != "p0-renamed" || n["owner"] != "tenant-x" {
			t.Errorf("node = %v", n)
		}
		if di := n["driver_info"].(map[string]any); di["ipmi_password"] != "******" || di["ipmi_username"] != "root" {
			t.Errorf("driver_info = %v", di)
		}
		stored := ts.node(t, id)
		if stored.DriverInfo["ipmi_password"] != "new-secret" {
			t.Errorf("stored password = %v", stored.DriverInfo["ipmi_password"])
		}
		if _, ok := stored.Properties["capabilities"]; ok {
			t.Error("capabilities not removed")
		}
		if tags := fmt.Sprint(stored.Extra["tags"]); tags != "[a between b]" {
			t.Errorf("tags = %s", tags)
		}
		if strings.Contains(string(r.body), "new-secret") {
			t.Error("the password appears in the response")
		}
		hist, err := ts.store.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		last := hist[len(hist)-1]
		if last.User != "admin" || !strings.Contains(last.Event, "driver_info") || strings.Contains(last.Event, "new-secret") {
			t.Errorf("history event = %+v", last)
		}
	})

	t.Run("node set and unset as the CLI sends them", func(t *testing.T) {
		r := ts.do(t, req{method: "PATCH", path: path, body: patch(
			op("add", "/description", "web server"), op("add", "/maintenance", "True"))})
		r.expect(t, 200)
		if n := r.json(t); n["description"] != "web server" || n["maintenance"] != true {
			t.Errorf("node = %v", n)
		}
		r = ts.do(t, req{method: "PATCH", path: path, body: patch(op("remove", "/description"), op("remove", "/maintenance"))})
		r.expect(t, 200)
		if n := r.json(t); n["description"] != nil || n["maintenance"] != false {
			t.Errorf("node = %v", n)
		}
	})

	for _, tc := range []struct {
		name    string
		version string
		body    any
		status  int
		want    []string
	}{
		{name: "malformed JSON", body: `[{"op": "add"`, status: 400, want: []string{"Malformed JSON"}},
		{name: "not an array", body: map[string]any{"op": "add", "path": "/name", "value": "x"}, status: 400, want: []string{"array of operations"}},
		{name: "empty patch", body: `[]`, status: 400, want: []string{"empty"}},
		{name: "unsupported op", body: patch(map[string]any{"op": "move", "from": "/name", "path": "/description"}), status: 400, want: []string{"from"}},
		{name: "unknown op", body: patch(op("copy", "/name", "x")), status: 400, want: []string{`op "copy" is not supported`}},
		{name: "missing value", body: patch(op("replace", "/name")), status: 400, want: []string{`"value" is required`}},
		{name: "bad path", body: patch(op("add", "name", "x")), status: 400, want: []string{`path "name"`}},
		{name: "read-only uuid", body: patch(op("replace", "/uuid", "9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e")), status: 400, want: []string{"Cannot patch /uuid"}},
		{name: "read-only provision_state", body: patch(op("replace", "/provision_state", "active")), status: 400, want: []string{"Cannot patch /provision_state"}},
		{name: "read-only power_state", body: patch(op("replace", "/power_state", "power on")), status: 400, want: []string{"Cannot patch /power_state"}},
		{name: "read-only reservation", body: patch(op("add", "/reservation", "me")), status: 400, want: []string{"Cannot patch /reservation"}},
		{name: "read-only created_at", body: patch(op("replace", "/created_at", "2020-01-01T00:00:00+00:00")), status: 400, want: []string{"Cannot patch /created_at"}},
		{name: "read-only last_error", body: patch(op("remove", "/last_error")), status: 400, want: []string{"Cannot patch /last_error"}},
		{name: "read-only driver_internal_info", body: patch(op("add", "/driver_internal_info/x", 1)), status: 400, want: []string{"Cannot patch /driver_internal_info/x"}},
		{name: "traits", body: patch(op("add", "/traits", []any{"CUSTOM_X"})), status: 400, want: []string{"Cannot patch /traits"}},
		{name: "unknown field", body: patch(op("add", "/colour", "red")), status: 400, want: []string{"Cannot patch /colour"}},
		{name: "field newer than the version", version: "1.49", body: patch(op("add", "/owner", "x")), status: 406, want: []string{"owner", "1.50"}},
		{name: "wrong type", body: patch(op("replace", "/driver_info", "x")), status: 400, want: []string{"driver_info", "expected an object"}},
		{name: "unknown driver", body: patch(op("replace", "/driver", "magic")), status: 400, want: []string{`"magic"`}},
		{name: "duplicate name", body: patch(op("replace", "/name", "p1")), status: 409, want: []string{"A node with name p1 already exists."}},
		{name: "invalid name", body: patch(op("replace", "/name", "a b")), status: 400, want: []string{`"a b"`}},
		{name: "remove missing member", body: patch(op("remove", "/properties/gpus")), status: 400, want: []string{"Couldn't apply patch", "gpus"}},
		{name: "failed test", body: patch(op("test", "/properties/cpus", 5), op("add", "/extra/x", 1)), status: 400, want: []string{"test failed"}},
		{name: "test of a secret", body: patch(op("test", "/driver_info/ipmi_password", "guess")), status: 400, want: []string{"Cannot test /driver_info/ipmi_password"}},
		{name: "test of all driver_info", body: patch(op("test", "/driver_info", map[string]any{})), status: 400, want: []string{"Cannot test /driver_info"}},
		{name: "unsupported field", body: patch(op("add", "/deploy_interface", "direct")), status: 400, want: []string{"deploy_interface", "not supported"}},
		{name: "protected outside active", body: patch(op("add", "/protected", true)), status: 409, want: []string{"can only be made protected"}},
		{name: "protected reason without protected", body: patch(op("add", "/protected_reason", "x")), status: 400, want: []string{"protected_reason"}},
		{name: "reset_interfaces without driver", body: patch(op("add", "/extra/a", 1)), status: 400, want: []string{"reset_interfaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.name == "reset_interfaces without driver" {
				p += "?reset_interfaces=true"
			}
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "PATCH", path: p, body: tc.body, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}

	t.Run("unknown node", func(t *testing.T) {
		before := ts.snapshot(t)
		r := ts.do(t, req{method: "PATCH", path: "/v1/nodes/ghost", body: patch(op("add", "/extra/a", 1))})
		r.expect(t, 404, "Node ghost could not be found.")
		ts.unchanged(t, before)
	})

	t.Run("states", func(t *testing.T) {
		other := ts.createNode(t, map[string]any{})
		for _, tc := range []struct {
			state       string
			maintenance bool
			reservation string
			status      int
			want        string
		}{
			{state: inventory.StateDeploying, status: 409, want: "can not be updated while a state transition is in progress"},
			{state: inventory.StateCleanWait, status: 409, want: "state transition is in progress"},
			{state: inventory.StateDeploying, maintenance: true, status: 200},
			{state: inventory.StateInspecting, status: 409, want: `while it is in state "inspecting"`},
			{state: inventory.StateActive, status: 200},
			{state: inventory.StateManageable, reservation: "conductor-2", status: 409, want: "is locked by host conductor-2"},
			{state: inventory.StateCleanFailed, status: 200},
		} {
			t.Run(tc.state, func(t *testing.T) {
				ts.setNode(t, other, func(n *inventory.Node) {
					n.ProvisionState, n.TargetProvisionState = tc.state, inventory.Target(tc.state)
					n.Maintenance, n.Reservation = tc.maintenance, tc.reservation
				})
				before := ts.snapshot(t)
				r := ts.do(t, req{method: "PATCH", path: "/v1/nodes/" + other, body: patch(op("add", "/extra/state", tc.state))})
				r.expect(t, tc.status, tc.want)
				if tc.status != 200 {
					ts.unchanged(t, before)
				}
			})
		}
	})

	t.Run("active rules", func(t *testing.T) {
		n := ts.createNode(t, map[string]any{"resource_class": "small"})
		ts.inState(t, n, inventory.StateActive)
		r := ts.do(t, req{method: "PATCH", path: "/v1/nodes/" + n, body: patch(op("add", "/protected", true), op("add", "/protected_reason", "prod"))})
		r.expect(t, 200)
		if got := r.json(t); got["protected"] != true || got["protected_reason"] != "prod" {
			t.Errorf("node = %v", got)
		}
		r = ts.do(t, req{method: "PATCH", path: "/v1/nodes/" + n, body: patch(op("replace", "/resource_class", "large"))})
		r.expect(t, 409, "can not have resource_class updated")
		r = ts.do(t, req{method: "PATCH", path: "/v1/nodes/" + n, body: patch(op("add", "/protected", false))})
		r.expect(t, 200)
		if got := r.json(t); got["protected_reason"] != nil {
			t.Errorf("protected_reason kept: %v", got["protected_reason"])
		}
	})
}

func TestNodeDelete(t *testing.T) {
	ts := newServer(t)
	for i, tc := range []struct {
		name   string
		set    func(n *inventory.Node)
		status int
		want   []string
	}{
		{name: "enroll", status: 204},
		{name: "manageable", set: func(n *inventory.Node) { n.ProvisionState = inventory.StateManageable }, status: 204},
		{name: "active", set: func(n *inventory.Node) { n.ProvisionState = inventory.StateActive }, status: 409,
			want: []string{`while it is in provision state "active"`, "manageable, enroll, adopt failed, available", "maintenance mode"}},
		{name: "available", set: func(n *inventory.Node) { n.ProvisionState = inventory.StateAvailable }, status: 204},
		{name: "deploying", set: func(n *inventory.Node) { n.ProvisionState = inventory.StateDeploying }, status: 409, want: []string{`"deploying"`}},
		{name: "active in maintenance", set: func(n *inventory.Node) { n.ProvisionState, n.Maintenance = inventory.StateActive, true }, status: 204},
		{name: "protected", set: func(n *inventory.Node) { n.Protected = true }, status: 403, want: []string{"is protected and cannot be undeployed, rebuilt or deleted"}},
		{name: "locked", set: func(n *inventory.Node) { n.Reservation = "conductor-1" }, status: 409, want: []string{"is locked by host conductor-1"}},
		{name: "associated", set: func(n *inventory.Node) { n.InstanceUUID = "11111111-2222-3333-4444-555555555555" }, status: 409, want: []string{"is associated with instance"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ts.createNode(t, map[string]any{"name": "d-" + strings.ReplaceAll(tc.name, " ", "-")})
			port := ts.createPort(t, id, fmt.Sprintf("52:54:00:00:00:%02x", i))
			if tc.set != nil {
				ts.setNode(t, id, tc.set)
			}
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "DELETE", path: "/v1/nodes/" + id})
			r.expect(t, tc.status, tc.want...)
			if tc.status != 204 {
				ts.unchanged(t, before)
				return
			}
			if len(r.body) != 0 {
				t.Errorf("204 with a body: %q", r.body)
			}
			ts.do(t, req{method: "GET", path: "/v1/nodes/" + id}).expect(t, 404)
			ts.do(t, req{method: "GET", path: "/v1/ports/" + port}).expect(t, 404)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		ts.do(t, req{method: "DELETE", path: "/v1/nodes/ghost"}).expect(t, 404, "Node ghost could not be found.")
	})
}
