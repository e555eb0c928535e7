package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestContinueInspection(t *testing.T) {
	ts := newServer(t)
	n, err := ts.store.CreateNode(t.Context(), &inventory.Node{Driver: "fake-hardware", Name: "n0",
		Properties: map[string]any{"root_device": map[string]any{"serial": "big"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := n.UUID
	if _, err := ts.store.CreatePort(t.Context(), &inventory.Port{NodeUUID: id, Address: "52:54:00:aa:00:01"}); err != nil {
		t.Fatal(err)
	}
	ts.inState(t, id, inventory.StateInspectWait)
	r := ts.do(t, req{method: "GET", path: "/v1/lookup?addresses=52:54:00:aa:00:01"})
	r.expect(t, http.StatusOK)
	token := r.json(t)["config"].(map[string]any)["agent_token"].(string)

	inv := map[string]any{
		"cpu":    map[string]any{"count": 2, "architecture": "x86_64", "model_name": "QEMU TCG CPU", "frequency": "2400", "flags": []string{"lm"}},
		"memory": map[string]any{"total": 1500 << 20, "physical_mb": 1536},
		"disks": []map[string]any{
			{"name": "/dev/vda", "size": 4 << 30, "serial": "small", "rotational": true},
			{"name": "/dev/vdb", "size": 8 << 30, "serial": "big", "rotational": true},
		},
		"interfaces": []map[string]any{
			{"name": "eth0", "mac_address": "52:54:00:aa:00:01", "has_carrier": true},
			{"name": "eth1", "mac_address": "52:54:00:aa:00:02"},
		},
		"system_vendor": map[string]any{"manufacturer": "QEMU", "product_name": "Strata lab VM", "serial_number": "n0"},
		"boot":          map[string]any{"current_boot_mode": "uefi", "pxe_interface": "52:54:00:aa:00:01"},
		"hostname":      "localhost",
	}
	path := "/v1/continue_inspection?node_uuid=" + id
	before := ts.snapshot(t)
	for _, tc := range []struct {
		body   any
		status int
		want   string
	}{
		{map[string]any{"agent_token": "nope", "inventory": inv}, 401, "invalid agent token"},
		{map[string]any{"inventory": inv}, 401, "invalid agent token"},
		{map[string]any{"agent_token": token}, 400, "inventory is missing"},
		{map[string]any{"agent_token": 7, "inventory": inv}, 400, "agent_token"},
		{map[string]any{"agent_token": token, "inventory": map[string]any{"cpu": map[string]any{"count": 0}}}, 400, "cpu.count"},
		{map[string]any{"agent_token": token, "inventory": map[string]any{"cpu": "many"}}, 400, "Invalid inventory"},
		{`{"agent_token": "` + token + `", "inventory": {`, 400, "Malformed JSON"},
	} {
		ts.do(t, req{method: "POST", path: path, body: tc.body}).expect(t, tc.status, tc.want)
	}
	ts.do(t, req{method: "POST", path: "/v1/continue_inspection", body: map[string]any{"agent_token": token, "inventory": inv}}).expect(t, 400, "node_uuid")
	ts.unchanged(t, before)
	ts.do(t, req{method: "GET", path: "/v1/nodes/" + id + "/inventory"}).expect(t, 404, "has no inventory")

	ts.do(t, req{method: "POST", path: path, body: map[string]any{"agent_token": token, "inventory": inv, "root_disk": map[string]any{"name": "/dev/vdb"}}}).expect(t, http.StatusAccepted)
	got := ts.node(t, id)
	if got.ProvisionState != "manageable" || got.Properties["cpus"] != float64(2) || got.Properties["memory_mb"] != float64(1536) ||
		got.Properties["local_gb"] != float64(8) || got.Properties["cpu_arch"] != "x86_64" || got.Properties["capabilities"] != "boot_mode:uefi" {
		t.Errorf("after inspection: %s, %+v", got.ProvisionState, got.Properties)
	}
	ts.do(t, req{method: "GET", path: "/v1/nodes/" + id + "/inventory", version: "1.80"}).expect(t, 404)
	r = ts.do(t, req{method: "GET", path: "/v1/nodes/n0/inventory"})
	r.expect(t, http.StatusOK)
	var stored struct {
		Inventory  map[string]any `json:"inventory"`
		PluginData map[string]any `json:"plugin_data"`
	}
	if err := json.Unmarshal(r.body, &stored); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(inv)
	have, _ := json.Marshal(stored.Inventory)
	if string(want) != string(have) {
		t.Errorf("stored inventory:\n%s\nwant what was sent:\n%s", have, want)
	}
	if stored.PluginData["root_disk"] == nil {
		t.Errorf("plugin_data: %v, want the other members of the report", stored.PluginData)
	}
}

func TestAgentImageRefuses(t *testing.T) {
	ts := newServer(t)
	n, err := ts.store.CreateNode(t.Context(), &inventory.Node{Driver: "fake-hardware",
		InstanceInfo: map[string]any{"image_source": "http://192.0.2.1/img.raw", "image_checksum": strings.Repeat("ab", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	ts.inState(t, n.UUID, inventory.StateWaitCallback)
	r := ts.do(t, req{method: "GET", path: "/v1/lookup?node_uuid=" + n.UUID})
	r.expect(t, http.StatusOK)
	token := r.json(t)["config"].(map[string]any)["agent_token"].(string)
	path := "/v1/agent_image?node_uuid=" + n.UUID
	ts.do(t, req{method: "GET", path: path}).expect(t, http.StatusUnauthorized, "invalid agent token")
	ts.do(t, req{method: "GET", path: path, header: http.Header{"X-Agent-Token": {"nope"}}}).expect(t, http.StatusUnauthorized, "invalid agent token")
	ts.do(t, req{method: "GET", path: "/v1/agent_image", header: http.Header{"X-Agent-Token": {token}}}).expect(t, http.StatusBadRequest, "node_uuid")
	// This server has no image cache; the right token gets that far.
	ts.do(t, req{method: "GET", path: path, header: http.Header{"X-Agent-Token": {token}}}).expect(t, http.StatusServiceUnavailable, "no image cache")
	ts.inState(t, n.UUID, inventory.StateCleanWait)
	ts.do(t, req{method: "GET", path: path, header: http.Header{"X-Agent-Token": {token}}}).expect(t, http.StatusConflict, "not being deployed")
}

func TestAgentConfigDrive(t *testing.T) {
	auth, err := api.LoadHTPasswd(htpasswd(t, map[string]string{"operator": "secret"}, "$2y$"))
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, func(c *api.Config) { c.Auth = auth }) // the agent has the token, not a user's credential
	deploying := func(t *testing.T, configdrive any) (uuid, token string) {
		info := map[string]any{"image_source": "http://192.0.2.1/img.raw", "image_checksum": strings.Repeat("ab", 32)}
		if configdrive != nil {
			info["configdrive"] = configdrive
		}
		n, err := ts.store.CreateNode(t.Context(), &inventory.Node{Driver: "fake-hardware", Name: "web-" + strings.ReplaceAll(t.Name(), "/", "-"), InstanceInfo: info})
		if err != nil {
			t.Fatal(err)
		}
		ts.inState(t, n.UUID, inventory.StateWaitCallback)
		r := ts.do(t, req{method: "GET", path: "/v1/lookup?node_uuid=" + n.UUID})
		r.expect(t, http.StatusOK)
		return n.UUID, r.json(t)["config"].(map[string]any)["agent_token"].(string)
	}
	get := func(uuid, token string) *http.Response {
		hreq, _ := http.NewRequest("GET", ts.url+"/v1/agent_configdrive?node_uuid="+uuid, nil)
		hreq.Header.Set("X-Agent-Token", token)
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	t.Run("built from its parts", func(t *testing.T) {
		uuid, token := deploying(t, map[string]any{"meta_data": map[string]any{"public_keys": map[string]any{"k": "ssh-ed25519 AAAA"}}, "user_data": "#!/bin/sh\necho hi\n"})
		resp := get(uuid, token)
		defer resp.Body.Close()
		iso, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || len(iso) < 32774 || string(iso[32769:32774]) != "CD001" {
			t.Fatalf("status %d, %d bytes: not an ISO 9660 image", resp.StatusCode, len(iso))
		}
		for _, want := range []string{`"uuid":"` + uuid + `"`, `"hostname":"web-`, "ssh-ed25519 AAAA", "#!/bin/sh\necho hi\n", "config-2"} {
			if !bytes.Contains(iso, []byte(want)) {
				t.Errorf("the drive holds no %q", want)
			}
		}
	})
	t.Run("none asked for", func(t *testing.T) {
		uuid, token := deploying(t, nil)
		resp := get(uuid, token)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d, want 204", resp.StatusCode)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		uuid, _ := deploying(t, map[string]any{})
		ts.do(t, req{method: "GET", path: "/v1/agent_configdrive?node_uuid=" + uuid, header: http.Header{"X-Agent-Token": {"nope"}}}).expect(t, http.StatusUnauthorized, "invalid agent token")
		ts.do(t, req{method: "GET", path: "/v1/agent_configdrive"}).expect(t, http.StatusBadRequest, "node_uuid")
	})
	t.Run("a URL that gives no image", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not an iso") }))
		defer srv.Close()
		uuid, token := deploying(t, srv.URL+"/cd.iso")
		ts.do(t, req{method: "GET", path: "/v1/agent_configdrive?node_uuid=" + uuid, header: http.Header{"X-Agent-Token": {token}}}).expect(t, http.StatusConflict, "not an ISO 9660 image")
	})
}
