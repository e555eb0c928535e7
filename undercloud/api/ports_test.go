package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stratacloud/strata/inventory"
)

func TestPorts(t *testing.T) {
	ts := newServer(t)
	node := ts.createNode(t, map[string]any{"name": "pn"})
	other := ts.createNode(t, map[string]any{"name": "po"})

	var portID string
	t.Run("create", func(t *testing.T) {
		r := ts.do(t, req{method: "POST", path: "/v1/ports", body: map[string]any{
			"node_uuid":             node,
			"address":               "52:54:00:AB:CD:01",
			"local_link_connection": map[string]any{"switch_id": "AA:BB:CC:DD:EE:FF", "port_id": "Eth1/1", "switch_info": "tor-1"},
			"physical_network":      "provisioning",
			"extra":                 map[string]any{"slot": 1},
		}})
		r.expect(t, http.StatusCreated)
		p := r.json(t)
		portID = p["uuid"].(string)
		if got := r.header.Get("Location"); got != ts.url+"/v1/ports/"+portID {
			t.Errorf("Location = %q", got)
		}
		for k, want := range map[string]any{
			"address": "52:54:00:ab:cd:01", "node_uuid": node, "pxe_enabled": true,
			"physical_network": "provisioning", "portgroup_uuid": nil, "is_smartnic": false,
		} {
			if p[k] != want {
				t.Errorf("%s = %#v, want %#v", k, p[k], want)
			}
		}
		if llc := p["local_link_connection"].(map[string]any); llc["switch_id"] != "aa:bb:cc:dd:ee:ff" {
			t.Errorf("local_link_connection = %v", llc)
		}
		if _, ok := p["name"]; ok {
			t.Error("name (1.88) shown at 1.87")
		}
	})
	ts.createPort(t, other, "52:54:00:ab:cd:02")

	for _, tc := range []struct {
		name    string
		version string
		body    any
		status  int
		want    []string
	}{
		{name: "malformed JSON", body: `{"address": `, status: 400, want: []string{"Malformed JSON"}},
		{name: "invalid MAC", body: map[string]any{"node_uuid": node, "address": "52:54:00:zz"}, status: 400, want: []string{"Expected valid MAC address for address: 52:54:00:zz."}},
		{name: "duplicate MAC", body: map[string]any{"node_uuid": other, "address": "52:54:00:AB:CD:01"}, status: 409, want: []string{"A port with MAC address 52:54:00:ab:cd:01 already exists."}},
		{name: "missing address", body: map[string]any{"node_uuid": node}, status: 400, want: []string{"Missing mandatory parameter: address"}},
		{name: "missing node", body: map[string]any{"address": "52:54:00:00:00:09"}, status: 400, want: []string{"Missing mandatory parameter: node_uuid"}},
		{name: "node_uuid not a uuid", body: map[string]any{"node_uuid": "pn", "address": "52:54:00:00:00:09"}, status: 400, want: []string{"Expected a UUID for node_uuid", `"pn"`}},
		{name: "unknown node", body: map[string]any{"node_uuid": "9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e", "address": "52:54:00:00:00:09"}, status: 400,
			want: []string{"Node 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found."}},
		{name: "unknown field", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "speed": 10}, status: 400, want: []string{"Unknown attribute(s) for a new port: speed."}},
		{name: "node_ident is newer", body: map[string]any{"node_ident": "pn", "address": "52:54:00:00:00:09"}, status: 406, want: []string{"node_ident", "1.94"}},
		{name: "name is newer", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "name": "eth0"}, status: 406, want: []string{"name", "1.88"}},
		{name: "physical network before 1.34", version: "1.33", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "physical_network": "x"}, status: 406,
			want: []string{"physical_network", "1.34"}},
		{name: "pxe_enabled before 1.19", version: "1.18", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "pxe_enabled": false}, status: 406,
			want: []string{"pxe_enabled", "1.19"}},
		{name: "empty physical network", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "physical_network": ""}, status: 400,
			want: []string{"non-empty value is required"}},
		{name: "local link without switch", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "local_link_connection": map[string]any{"port_id": "1"}}, status: 400,
			want: []string{"local_link_connection", "switch_id"}},
		{name: "local link with unknown key", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "local_link_connection": map[string]any{"vlan": "1"}}, status: 400,
			want: []string{`"vlan"`}},
		{name: "bad switch id", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "local_link_connection": map[string]any{"port_id": "1", "switch_id": "tor"}}, status: 400,
			want: []string{"Expected a MAC address or OpenFlow datapath ID but received tor"}},
		{name: "smart NIC without hostname", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "is_smartnic": true,
			"local_link_connection": map[string]any{"port_id": "1", "switch_id": "aa:bb:cc:dd:ee:ff"}}, status: 400, want: []string{"Smart NIC"}},
		{name: "port groups", body: map[string]any{"node_uuid": node, "address": "52:54:00:00:00:09", "portgroup_uuid": "9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"}, status: 400,
			want: []string{"portgroup_uuid", "not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "POST", path: "/v1/ports", body: tc.body, version: tc.version})
			r.expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}

	t.Run("create on a locked node", func(t *testing.T) {
		ts.setNode(t, other, func(n *inventory.Node) { n.Reservation = "c1" })
		defer ts.setNode(t, other, func(n *inventory.Node) { n.Reservation = "" })
		before := ts.snapshot(t)
		ts.do(t, req{method: "POST", path: "/v1/ports", body: map[string]any{"node_uuid": other, "address": "52:54:00:00:00:0a"}}).expect(t, 409, "locked by host c1")
		ts.unchanged(t, before)
	})

	addresses := func(t *testing.T, r res) []string {
		t.Helper()
		var out []string
		for _, p := range r.json(t)["ports"].([]any) {
			out = append(out, p.(map[string]any)["address"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"all", "/v1/ports", []string{"52:54:00:ab:cd:01", "52:54:00:ab:cd:02"}},
		{"by node name", "/v1/ports?node=po", []string{"52:54:00:ab:cd:02"}},
		{"by node uuid", "/v1/ports?node_uuid=" + node, []string{"52:54:00:ab:cd:01"}},
		{"by address", "/v1/ports?address=52:54:00:AB:CD:02", []string{"52:54:00:ab:cd:02"}},
		{"unknown address", "/v1/ports?address=52:54:00:00:00:00", nil},
		{"detail", "/v1/ports/detail", []string{"52:54:00:ab:cd:01", "52:54:00:ab:cd:02"}},
		{"of a node", "/v1/nodes/pn/ports", []string{"52:54:00:ab:cd:01"}},
		{"of a node, detailed", "/v1/nodes/" + other + "/ports/detail", []string{"52:54:00:ab:cd:02"}},
		{"sorted", "/v1/ports?sort_key=address&sort_dir=desc", []string{"52:54:00:ab:cd:02", "52:54:00:ab:cd:01"}},
		{"first page", "/v1/ports?limit=1", []string{"52:54:00:ab:cd:01"}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: tc.path})
			r.expect(t, 200)
			if got := addresses(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("ports = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("list fields", func(t *testing.T) {
		r := ts.do(t, req{method: "GET", path: "/v1/ports"})
		r.expect(t, 200)
		p := r.json(t)["ports"].([]any)[0].(map[string]any)
		if len(p) != 3 || p["uuid"] == nil || p["links"] == nil {
			t.Errorf("default port fields = %v", p)
		}
		r = ts.do(t, req{method: "GET", path: "/v1/ports?fields=address,pxe_enabled"})
		r.expect(t, 200)
		if p := r.json(t)["ports"].([]any)[0].(map[string]any); len(p) != 3 || p["pxe_enabled"] != true {
			t.Errorf("port = %v", p)
		}
	})

	for _, tc := range []struct {
		name, path, version string
		status              int
		want                []string
	}{
		{"unknown node", "/v1/ports?node=ghost", "", 404, []string{"Node ghost could not be found."}},
		{"unknown node of a node's ports", "/v1/nodes/ghost/ports", "", 404, []string{"Node ghost could not be found."}},
		{"invalid address", "/v1/ports?address=nope", "", 400, []string{"Expected valid MAC address for address: nope."}},
		{"node_uuid not a uuid", "/v1/ports?node_uuid=pn", "", 400, []string{"Expected a UUID for node_uuid: pn."}},
		{"unknown parameter", "/v1/ports?portgroup=x", "", 400, []string{"Unknown argument(s): portgroup"}},
		{"node filter under a node", "/v1/nodes/pn/ports?node=po", "", 400, []string{"Unknown argument(s): node"}},
		{"unsortable key", "/v1/ports?sort_key=extra", "", 400, []string{`"extra" is an invalid field for sorting`}},
		{"field newer than the version", "/v1/ports?fields=uuid,physical_network", "1.33", 406, []string{"physical_network", "1.34"}},
		{"unknown marker", "/v1/ports?marker=9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e", "", 404, []string{"Port 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found."}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			ts.do(t, req{method: "GET", path: tc.path, version: tc.version}).expect(t, tc.status, tc.want...)
		})
	}

	t.Run("show", func(t *testing.T) {
		for _, path := range []string{"/v1/ports/" + portID, "/v1/ports/52:54:00:ab:cd:01", "/ports/" + portID} {
			r := ts.do(t, req{method: "GET", path: path})
			r.expect(t, 200)
			if got := r.json(t); got["uuid"] != portID {
				t.Errorf("%s: %v", path, got)
			}
		}
		r := ts.do(t, req{method: "GET", path: "/v1/ports/" + portID, version: "1.18"})
		r.expect(t, 200)
		if p := r.json(t); p["pxe_enabled"] != nil || p["internal_info"] == nil {
			t.Errorf("port at 1.18 = %v", p)
		}
		ts.do(t, req{method: "GET", path: "/v1/ports/9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"}).expect(t, 404, "Port 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found.")
		ts.do(t, req{method: "GET", path: "/v1/ports/" + portID + "?fields=colour"}).expect(t, 400, "colour")
	})

	t.Run("patch", func(t *testing.T) {
		r := ts.do(t, req{method: "PATCH", path: "/v1/ports/" + portID, body: []map[string]any{
			{"op": "replace", "path": "/address", "value": "52:54:00:AB:CD:11"},
			{"op": "replace", "path": "/pxe_enabled", "value": false},
			{"op": "add", "path": "/extra/cable", "value": "blue"},
			{"op": "remove", "path": "/physical_network"},
		}})
		r.expect(t, 200)
		p := r.json(t)
		if p["address"] != "52:54:00:ab:cd:11" || p["pxe_enabled"] != false || p["physical_network"] != nil {
			t.Errorf("port = %v", p)
		}
		if extra := p["extra"].(map[string]any); extra["cable"] != "blue" {
			t.Errorf("extra = %v", extra)
		}
		if p["updated_at"] == nil {
			t.Error("updated_at not set")
		}
	})

	for _, tc := range []struct {
		name   string
		state  string
		body   any
		status int
		want   []string
	}{
		{name: "invalid MAC", body: []map[string]any{{"op": "replace", "path": "/address", "value": "nope"}}, status: 400, want: []string{"Expected valid MAC address for address: nope."}},
		{name: "duplicate MAC", body: []map[string]any{{"op": "replace", "path": "/address", "value": "52:54:00:ab:cd:02"}}, status: 409, want: []string{"A port with MAC address 52:54:00:ab:cd:02 already exists."}},
		{name: "read-only uuid", body: []map[string]any{{"op": "replace", "path": "/uuid", "value": "9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"}}, status: 400, want: []string{"Cannot patch /uuid"}},
		{name: "read-only internal_info", body: []map[string]any{{"op": "add", "path": "/internal_info/x", "value": 1}}, status: 400, want: []string{"Cannot patch /internal_info/x"}},
		{name: "move to another node", body: []map[string]any{{"op": "replace", "path": "/node_uuid", "value": other}}, status: 400, want: []string{"Cannot move port"}},
		{name: "address of an active node", state: inventory.StateActive, body: []map[string]any{{"op": "replace", "path": "/address", "value": "52:54:00:00:00:31"}}, status: 409,
			want: []string{"Cannot update hardware address"}},
		{name: "connectivity of an available node", state: inventory.StateAvailable, body: []map[string]any{{"op": "replace", "path": "/pxe_enabled", "value": true}}, status: 409,
			want: []string{"can not have any connectivity attributes", "available"}},
	} {
		t.Run("patch "+tc.name, func(t *testing.T) {
			state := tc.state
			if state == "" {
				state = inventory.StateEnroll
			}
			ts.inState(t, node, state)
			before := ts.snapshot(t)
			ts.do(t, req{method: "PATCH", path: "/v1/ports/" + portID, body: tc.body}).expect(t, tc.status, tc.want...)
			ts.unchanged(t, before)
		})
	}
	ts.inState(t, node, inventory.StateEnroll)

	t.Run("delete", func(t *testing.T) {
		before := ts.snapshot(t)
		ts.do(t, req{method: "DELETE", path: "/v1/ports/52:54:00:ab:cd:11"}).expect(t, 400, "Expected a UUID for port_uuid")
		ts.do(t, req{method: "DELETE", path: "/v1/ports/9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e"}).expect(t, 404, "Port 9a6b9f5c-0c4f-4bd6-9d5e-7f2b1a3c4d5e could not be found.")
		ts.unchanged(t, before)
		r := ts.do(t, req{method: "DELETE", path: "/v1/ports/" + strings.ToUpper(portID)})
		r.expect(t, 204)
		ts.do(t, req{method: "GET", path: "/v1/ports/" + portID}).expect(t, 404)
	})
}
