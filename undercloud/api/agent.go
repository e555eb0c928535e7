package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/images/blob"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
)

// The deploy ramdisk's agent calls these without a user's credential: it
// proves who it is with the agent token its lookup returned (see package
// conductor for the protocol).
//
//	GET  /v1/lookup?addresses=MAC[,MAC…][&node_uuid=UUID]   the node and a one-time token
//	POST /v1/heartbeat/{node}                               {"agent_token", "agent_version", "agent_status"}
//	POST /v1/continue_inspection?node_uuid=UUID              {"agent_token", "inventory"}
//	POST /v1/continue_cleaning?node_uuid=UUID                {"agent_token", "error"}
//	POST /v1/continue_deploy?node_uuid=UUID                  {"agent_token", "error"}
//	GET  /v1/agent_image?node_uuid=UUID                      X-Agent-Token: the image as a raw disk
//	GET  /v1/agent_configdrive?node_uuid=UUID                X-Agent-Token: the config drive (ISO 9660), 204 for none

// heartbeatTimeout is the heartbeat period the lookup tells the agent to
// keep under, in seconds.
const heartbeatTimeout = 30

// agentNode is the node as the agent sees it.
type agentNode struct {
	UUID           string         `json:"uuid"`
	Name           string         `json:"name,omitempty"`
	ProvisionState string         `json:"provision_state"`
	Properties     map[string]any `json:"properties"`
	InstanceInfo   map[string]any `json:"instance_info"`
	// CleanSteps are the steps to run while the node is cleaning.
	CleanSteps []map[string]any `json:"clean_steps,omitempty"`
}

func toAgentNode(n *inventory.Node) agentNode {
	a := agentNode{UUID: n.UUID, Name: n.Name, ProvisionState: n.ProvisionState, Properties: n.Properties, InstanceInfo: n.InstanceInfo}
	if n.ProvisionState == inventory.StateCleaning || n.ProvisionState == inventory.StateCleanWait {
		a.CleanSteps = conductor.CleanSteps(n)
	}
	return a
}

func (s *server) agentLookup(r *http.Request) (any, error) {
	q := r.URL.Query()
	var macs []string
	for _, v := range q["addresses"] {
		for a := range strings.SplitSeq(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				macs = append(macs, a)
			}
		}
	}
	n, token, err := s.conductor.AgentLookup(r.Context(), macs, q.Get("node_uuid"))
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"node": toAgentNode(n),
		"config": map[string]any{
			"heartbeat_timeout":    heartbeatTimeout,
			"agent_token":          token,
			"agent_token_required": true,
		},
	}, nil
}

func (s *server) agentHeartbeat(r *http.Request) (any, error) {
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if err := body.allow("agent_token", "agent_version", "agent_status", "agent_status_message", "callback_url", "agent_verify_ca"); err != nil {
		return nil, err
	}
	var hb conductor.Heartbeat
	token, err := body.str("agent_token")
	if err != nil {
		return nil, err
	}
	if hb.AgentVersion, err = body.str("agent_version"); err != nil {
		return nil, err
	}
	if hb.Status, err = body.str("agent_status"); err != nil {
		return nil, err
	}
	ident := r.PathValue("node")
	n, err := s.conductor.AgentHeartbeat(r.Context(), ident, token, hb)
	if err != nil {
		return nil, nodeErr(ident, err)
	}
	return &response{status: http.StatusAccepted, body: map[string]any{"node": toAgentNode(n)}}, nil
}

// nodeInventory is GET /v1/nodes/{node}/inventory (API 1.81): the
// inventory the node's agent sent, as it sent it.
func (s *server) nodeInventory(r *http.Request) (any, error) {
	if !versionOf(r).atLeast(v81NodeInventory) {
		return nil, errNotFound
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	inv, err := s.nodes.Inventory(r.Context(), n.UUID)
	if errors.Is(err, inventory.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "Node %s has no inventory: it has not been inspected.", n.UUID)
	}
	if err != nil {
		return nil, err
	}
	plugin := inv.PluginData
	if len(plugin) == 0 {
		plugin = json.RawMessage(`{}`)
	}
	return map[string]any{"inventory": inv.Inventory, "plugin_data": plugin}, nil
}

// continueInspection is POST /v1/continue_inspection?node_uuid=UUID: the
// agent's inventory, with its token. Members of the body beside
// agent_token and inventory are kept as the inspection's plugin data.
func (s *server) continueInspection(r *http.Request) (any, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := decodeJSON(b, &body); err != nil {
		return nil, err
	}
	var token string
	if raw, ok := body["agent_token"]; ok {
		if err := json.Unmarshal(raw, &token); err != nil {
			return nil, badRequest("Invalid value for agent_token: expected a string.")
		}
	}
	raw, ok := body["inventory"]
	if !ok || string(raw) == "null" {
		return nil, badRequest("The inventory is missing from the request body.")
	}
	var hw inventory.Hardware
	if err := decodeJSON(raw, &hw); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, badRequest("Invalid inventory: %s", strings.TrimPrefix(ae.msg, "Malformed JSON in the request body"))
		}
		return nil, err
	}
	if err := hw.Validate(); err != nil {
		return nil, err
	}
	delete(body, "agent_token")
	delete(body, "inventory")
	plugin, _ := json.Marshal(body)
	ident := r.URL.Query().Get("node_uuid")
	if ident == "" {
		return nil, badRequest("node_uuid is required: the node the inventory is for.")
	}
	n, err := s.conductor.ContinueInspection(r.Context(), ident, token, conductor.Inspection{Hardware: hw, Inventory: raw, PluginData: plugin})
	if err != nil {
		return nil, nodeErr(ident, err)
	}
	return &response{status: http.StatusAccepted, body: map[string]any{"uuid": n.UUID}}, nil
}

// continueCleaning is POST /v1/continue_cleaning?node_uuid=UUID: the end
// of the agent's clean steps, with an error when one failed.
func (s *server) continueCleaning(r *http.Request) (any, error) {
	return s.agentResult(r, s.conductor.ContinueCleaning)
}

// continueDeploy is POST /v1/continue_deploy?node_uuid=UUID: the end of
// the agent's image write, with an error when it failed.
func (s *server) continueDeploy(r *http.Request) (any, error) {
	return s.agentResult(r, s.conductor.ContinueDeploy)
}

// agentResult reads {"agent_token", "error"} and hands it to record.
func (s *server) agentResult(r *http.Request, record func(ctx context.Context, node, token, failure string) (*inventory.Node, error)) (any, error) {
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if err := body.allow("agent_token", "error"); err != nil {
		return nil, err
	}
	token, err := body.str("agent_token")
	if err != nil {
		return nil, err
	}
	failure, err := body.str("error")
	if err != nil {
		return nil, err
	}
	ident := r.URL.Query().Get("node_uuid")
	if ident == "" {
		return nil, badRequest("node_uuid is required: the node the result is for.")
	}
	n, err := record(r.Context(), ident, token, failure)
	if err != nil {
		return nil, nodeErr(ident, err)
	}
	return &response{status: http.StatusAccepted, body: map[string]any{"uuid": n.UUID, "provision_state": n.ProvisionState}}, nil
}

// agentImage is GET /v1/agent_image?node_uuid=UUID with the agent token in
// X-Agent-Token: the node's image as a raw disk, from the undercloud's
// cache (fetched from image_source and checked against its SHA-256 once,
// converted from qcow2 once). X-Image-SHA256 is the raw disk's SHA-256,
// which the agent checks as it writes.
func (s *server) agentImage(w http.ResponseWriter, r *http.Request) {
	ident := r.URL.Query().Get("node_uuid")
	if ident == "" {
		s.fail(w, r, badRequest("node_uuid is required: the node being deployed."))
		return
	}
	source, sum, err := s.conductor.AgentImage(r.Context(), ident, r.Header.Get("X-Agent-Token"))
	if err != nil {
		s.fail(w, r, nodeErr(ident, err))
		return
	}
	if s.images == nil {
		s.fail(w, r, errorf(http.StatusServiceUnavailable, "This undercloud has no image cache."))
		return
	}
	b, err := s.images.Raw(r.Context(), source, sum)
	var mismatch *blob.MismatchError
	switch {
	case errors.As(err, &mismatch):
		s.fail(w, r, errorf(http.StatusConflict, "The image at %s has SHA-256 %s, not %s as instance_info says: it is not the one asked for.",
			source, strings.TrimPrefix(mismatch.Got, blob.Algorithm), sum))
		return
	case errors.Is(err, images.ErrUnsafeImage), errors.Is(err, images.ErrInvalidImage):
		s.fail(w, r, errorf(http.StatusConflict, "The image at %s can not be deployed: %v.", source, err))
		return
	case err != nil:
		s.fail(w, r, errorf(http.StatusBadGateway, "The image at %s could not be prepared: %v.", source, err))
		return
	}
	f, err := s.images.Open(b.Digest)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("X-Image-SHA256", b.Hex())
	w.Header().Set("ETag", `"`+b.Digest+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// agentConfigDrive is GET /v1/agent_configdrive?node_uuid=UUID with the
// agent token in X-Agent-Token: the config drive the node's deploy asked
// for, as the ISO 9660 image the agent writes into a partition at the end
// of the root disk; 204 when it asked for none.
func (s *server) agentConfigDrive(w http.ResponseWriter, r *http.Request) {
	ident := r.URL.Query().Get("node_uuid")
	if ident == "" {
		s.fail(w, r, badRequest("node_uuid is required: the node being deployed."))
		return
	}
	iso, err := s.conductor.AgentConfigDrive(r.Context(), ident, r.Header.Get("X-Agent-Token"))
	switch {
	case errors.Is(err, conductor.ErrConfigDrive):
		s.fail(w, r, errorf(http.StatusConflict, "%v.", err))
		return
	case err != nil:
		s.fail(w, r, nodeErr(ident, err))
		return
	case iso == nil:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(iso)))
	w.Write(iso)
}
