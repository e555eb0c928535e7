package api_test

import (
	"net/http"
	"testing"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/api"
	"github.com/stratacloud/strata/undercloud/conductor"
)

// The agent's calls need no user credential even when the API has one;
// they carry the agent token instead.
func TestAgentLookupAndHeartbeat(t *testing.T) {
	auth, err := api.LoadHTPasswd(htpasswd(t, map[string]string{"operator": "secret"}, "$2y$"))
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, func(c *api.Config) { c.Auth = auth })
	n, err := ts.store.CreateNode(t.Context(), &inventory.Node{Driver: "fake-hardware", Name: "n0"})
	if err != nil {
		t.Fatal(err)
	}
	id := n.UUID
	if _, err := ts.store.CreatePort(t.Context(), &inventory.Port{NodeUUID: id, Address: "52:54:00:aa:00:01"}); err != nil {
		t.Fatal(err)
	}

	// Not waiting for an agent: a lookup finds nothing to hand out.
	before := ts.snapshot(t)
	ts.do(t, req{method: "GET", path: "/v1/lookup?addresses=52:54:00:aa:00:01"}).expect(t, http.StatusConflict, "enroll, not waiting for an agent")
	ts.do(t, req{method: "GET", path: "/v1/lookup?addresses=52:54:00:ff:ff:ff"}).expect(t, http.StatusNotFound, "No node has a port with the addresses 52:54:00:ff:ff:ff")
	ts.do(t, req{method: "GET", path: "/v1/lookup?addresses=bogus"}).expect(t, http.StatusBadRequest, `"bogus" is not a MAC address`)
	ts.do(t, req{method: "GET", path: "/v1/lookup"}).expect(t, http.StatusBadRequest, "MAC addresses")
	ts.unchanged(t, before)

	ts.inState(t, id, inventory.StateInspectWait)
	r := ts.do(t, req{method: "GET", path: "/v1/lookup?addresses=52:54:00:00:00:09,52:54:00:AA:00:01"})
	r.expect(t, http.StatusOK)
	body := r.json(t)
	node, _ := body["node"].(map[string]any)
	cfg, _ := body["config"].(map[string]any)
	token, _ := cfg["agent_token"].(string)
	if node["uuid"] != id || node["provision_state"] != "inspect wait" || len(token) != 64 || cfg["agent_token_required"] != true {
		t.Fatalf("lookup: %s", r.body)
	}
	if n := ts.node(t, id); n.DriverInternalInfo[conductor.AgentTokenHashKey] == token || n.DriverInternalInfo[conductor.AgentTokenHashKey] == nil {
		t.Errorf("the node keeps %v, want the token's hash, not the token", n.DriverInternalInfo[conductor.AgentTokenHashKey])
	}
	// One token per boot.
	before = ts.snapshot(t)
	ts.do(t, req{method: "GET", path: "/v1/lookup?node_uuid=" + id}).expect(t, http.StatusConflict, "already issued")

	hb := "/v1/heartbeat/" + id
	wrong := "0" + token[1:]
	if token[0] == '0' {
		wrong = "1" + token[1:]
	}
	ts.do(t, req{method: "POST", path: hb, body: map[string]any{"agent_token": wrong}}).expect(t, http.StatusUnauthorized, "invalid agent token")
	ts.do(t, req{method: "POST", path: hb, body: map[string]any{}}).expect(t, http.StatusUnauthorized, "invalid agent token")
	ts.do(t, req{method: "POST", path: hb, body: map[string]any{"agent_token": token, "colour": "blue"}}).expect(t, http.StatusBadRequest, "colour")
	ts.do(t, req{method: "POST", path: hb, body: "{"}).expect(t, http.StatusBadRequest, "Malformed JSON")
	ts.do(t, req{method: "POST", path: "/v1/heartbeat/nope", body: map[string]any{"agent_token": token}}).expect(t, http.StatusNotFound, "nope")
	ts.unchanged(t, before)

	r = ts.do(t, req{method: "POST", path: hb, body: map[string]any{"agent_token": token, "agent_version": "strata-agent 1"}})
	r.expect(t, http.StatusAccepted)
	if n, _ := r.json(t)["node"].(map[string]any); n["provision_state"] != "inspect wait" {
		t.Errorf("heartbeat: %s", r.body)
	}
	// The rest of the API still wants the user's credential.
	ts.do(t, req{method: "GET", path: "/v1/nodes"}).expect(t, http.StatusUnauthorized)

	// The node moves on: the agent of that boot has no business with it.
	ts.inState(t, id, inventory.StateManageable)
	ts.do(t, req{method: "POST", path: hb, body: map[string]any{"agent_token": token}}).expect(t, http.StatusConflict, "not waiting for an agent")
}
