package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/stratacloud/strata/roles"
	"github.com/stratacloud/strata/undercloud/stack"
)

// Stacks lays overclouds down on the undercloud's nodes (stack.Manager).
type Stacks interface {
	Apply(ctx context.Context, spec stack.Spec, confirm bool) (*stack.Result, error)
	Get(ctx context.Context, name string) (*stack.Stack, error)
	List(ctx context.Context) ([]*stack.Stack, error)
	Delete(ctx context.Context, name string) ([]string, error)
	Report(ctx context.Context, name, host, credential string, r stack.NodeReport) error
	Clouds(ctx context.Context, name string) (map[string]any, error)
	Replace(ctx context.Context, name, host string) (string, error)
}

var _ Stacks = (*stack.Manager)(nil)

// overcloudRoutes are the overcloud deployment's endpoints, Strata's own
// (Ironic has none): /v1/overcloud/stacks/{name}.
func (s *server) overcloudRoutes(handle func(string, handlerFunc)) {
	handle("GET /v1/overcloud/stacks", s.listStacks)
	handle("GET /v1/overcloud/stacks/{name}", s.getStack)
	handle("PUT /v1/overcloud/stacks/{name}", s.applyStack)
	handle("DELETE /v1/overcloud/stacks/{name}", s.deleteStack)
	handle("GET /v1/overcloud/stacks/{name}/clouds", s.stackClouds)
	handle("POST /v1/overcloud/stacks/{name}/nodes/{host}/report", s.reportNode)
	handle("POST /v1/overcloud/stacks/{name}/nodes/{host}/replace", s.replaceNode)
}

// stackView is a stack as the API shows it: its record without the
// nodes' credentials, and each node's provisioning state beside its role.
type stackView struct {
	Name      string            `json:"name"`
	Spec      stack.Spec        `json:"spec"`
	Nodes     []stackNodeView   `json:"nodes"`
	VIPs      roles.VIPs        `json:"vips,omitempty"`
	Images    map[string]string `json:"images"`
	Created   time.Time         `json:"created_at"`
	Updated   time.Time         `json:"updated_at"`
	Deploying []string          `json:"deploying,omitempty"`
	Undeploy  []string          `json:"undeploying,omitempty"`
	Failed    map[string]string `json:"failed,omitempty"`
}

type stackNodeView struct {
	Hostname       string                   `json:"hostname"`
	Role           string                   `json:"role"`
	Index          int                      `json:"index"`
	Node           string                   `json:"node_uuid"`
	NodeName       string                   `json:"node_name,omitempty"`
	ProvisionState string                   `json:"provision_state"`
	LastError      string                   `json:"last_error,omitempty"`
	Addresses      map[string]roles.Address `json:"addresses,omitempty"`
	Report         *stack.NodeReport        `json:"report,omitempty"`
	// Status sums the node up: deploying, deployed (waiting for its
	// runner's report), running (every service healthy), degraded,
	// failed.
	Status string `json:"status"`
}

func (s *server) view(ctx context.Context, st *stack.Stack) stackView {
	v := stackView{Name: st.Spec.Name, Spec: st.Spec, VIPs: st.VIPs, Images: st.Images, Created: st.Created, Updated: st.Updated, Nodes: []stackNodeView{}}
	for _, a := range st.Assignments {
		nv := stackNodeView{Hostname: a.Hostname, Role: a.Role, Index: a.Index, Node: a.Node, NodeName: a.NodeName,
			Addresses: st.Addresses[a.Hostname], Report: st.Nodes[a.Hostname]}
		if n, _, err := s.nodes.GetNode(ctx, a.Node); err == nil {
			nv.ProvisionState, nv.LastError = n.ProvisionState, n.LastError
		}
		nv.Status = nodeStatus(nv)
		v.Nodes = append(v.Nodes, nv)
	}
	return v
}

func nodeStatus(n stackNodeView) string {
	switch {
	case strings.HasSuffix(n.ProvisionState, "failed"), n.ProvisionState == "error":
		return "failed"
	case n.ProvisionState != "active":
		return "deploying"
	case n.Report == nil:
		return "deployed"
	case n.Report.Healthy():
		return "running"
	}
	return "degraded"
}

func (s *server) listStacks(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	all, err := s.stacks.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := []stackView{}
	for _, st := range all {
		out = append(out, s.view(r.Context(), st))
	}
	return map[string]any{"stacks": out}, nil
}

func (s *server) getStack(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	st, err := s.stacks.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return s.view(r.Context(), st), nil
}

// applyRequest is the body of PUT /v1/overcloud/stacks/{name}: the spec,
// and confirm, needed when the change removes nodes.
type applyRequest struct {
	stack.Spec
	Confirm bool `json:"confirm,omitempty"`
}

func (s *server) applyStack(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var req applyRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("The overcloud in the request body is not valid: %v.", err)
	}
	name := r.PathValue("name")
	if req.Name == "" {
		req.Name = name
	}
	if req.Name != name {
		return nil, badRequest("The body names overcloud %q, the URL %q.", req.Name, name)
	}
	res, err := s.stacks.Apply(r.Context(), req.Spec, req.Confirm)
	if err != nil {
		return nil, err
	}
	v := s.view(r.Context(), res.Stack)
	v.Deploying, v.Undeploy, v.Failed = res.Deploying, res.Undeploying, res.Failed
	return &response{status: http.StatusAccepted, body: v, location: s.base(r) + "/v1/overcloud/stacks/" + name}, nil
}

func (s *server) deleteStack(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	undeploying, err := s.stacks.Delete(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusAccepted, body: map[string]any{"undeploying": undeploying}}, nil
}

// stackClouds is the overcloud's clouds.yaml, with its admin's password:
// for the undercloud's admins only (every non-public request is).
func (s *server) stackClouds(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	return s.stacks.Clouds(r.Context(), r.PathValue("name"))
}

// replaceNode gives an overcloud node a new machine.
func (s *server) replaceNode(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	if _, err := readObject(r, true); err != nil {
		return nil, err
	}
	node, err := s.stacks.Replace(r.Context(), r.PathValue("name"), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusAccepted, body: map[string]any{"hostname": r.PathValue("host"), "node_name": node}}, nil
}

// reportNode takes a node runner's report. It is public (no user token):
// the runner proves who it is with its own credential, as a bearer token.
func (s *server) reportNode(r *http.Request) (any, error) {
	if s.stacks == nil {
		return nil, errNoStacks
	}
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || cred == "" {
		return nil, errorf(http.StatusUnauthorized, "A node report needs the node's credential (Authorization: Bearer CREDENTIAL).")
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var rep stack.NodeReport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, badRequest("The report in the request body is not valid: %v.", err)
	}
	if err := s.stacks.Report(r.Context(), r.PathValue("name"), r.PathValue("host"), cred, rep); err != nil {
		return nil, err
	}
	return noContent(), nil
}

var errNoStacks = errorf(http.StatusServiceUnavailable, "This undercloud deploys no overclouds: it has no registry (registry.listen) to serve their images.")
