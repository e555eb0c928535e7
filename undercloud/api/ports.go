package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

func portErr(ident string, err error) error { return about("Port", ident, err) }

// lookupPort finds the port named by the {port} path value, by uuid or MAC.
func (s *server) lookupPort(r *http.Request) (*inventory.Port, error) {
	id := r.PathValue("port")
	p, _, err := s.nodes.GetPort(r.Context(), id)
	if err != nil {
		return nil, portErr(id, err)
	}
	return p, nil
}

// renderPort is a port as the request's version shows it.
func (s *server) renderPort(r *http.Request, p *inventory.Port, only []string) map[string]any {
	out := render(portFields, p, versionOf(r), only)
	out["links"] = s.links(r, "ports/"+p.UUID)
	return out
}

// listPorts is GET /v1/ports.
func (s *server) listPorts(r *http.Request) (any, error) { return s.portList(r, "ports", "") }

// listPortsDetail is GET /v1/ports/detail.
func (s *server) listPortsDetail(r *http.Request) (any, error) {
	return s.portList(r, "ports/detail", "")
}

// listNodePorts is GET /v1/nodes/{node}/ports.
func (s *server) listNodePorts(r *http.Request) (any, error) {
	return s.portList(r, "nodes/"+r.PathValue("node")+"/ports", r.PathValue("node"))
}

// listNodePortsDetail is GET /v1/nodes/{node}/ports/detail.
func (s *server) listNodePortsDetail(r *http.Request) (any, error) {
	return s.portList(r, "nodes/"+r.PathValue("node")+"/ports/detail", r.PathValue("node"))
}

func (s *server) portList(r *http.Request, path, node string) (any, error) {
	v := versionOf(r)
	isDetailPath := strings.HasSuffix(path, "/detail")
	params := []string{"limit", "marker", "sort_key", "sort_dir", "address"}
	if node == "" {
		params = append(params, "node", "node_uuid")
	}
	if !isDetailPath {
		params = append(params, "fields", "detail")
	}
	q, err := parseQuery(r, params...)
	if err != nil {
		return nil, err
	}
	only, err := listSelection(q, portFields, defaultPortFields, v)
	if err != nil {
		return nil, err
	}
	if isDetailPath {
		only = nil
	}
	sortKey, _ := q.get("sort_key")
	if err := checkSortKey(portFields, sortKey, v); err != nil {
		return nil, err
	}
	desc, err := q.sortDir()
	if err != nil {
		return nil, err
	}
	marker, err := q.marker()
	if err != nil {
		return nil, err
	}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	var address string
	if a, ok := q.get("address"); ok {
		if address, err = inventory.ParseMAC(a); err != nil {
			return nil, badRequest("Expected valid MAC address for address: %s.", a)
		}
	}
	if id, ok := q.get("node_uuid"); ok {
		if !inventory.IsUUID(id) {
			return nil, badRequest("Expected a UUID for node_uuid: %s.", id)
		}
		node = id
	} else if id, ok := q.get("node"); ok {
		node = id
	}
	var ports []*inventory.Port
	if node != "" {
		n, err := s.findNode(r, node)
		if err != nil {
			return nil, err
		}
		if ports, err = s.nodes.ListPorts(r.Context(), n.UUID); err != nil {
			return nil, nodeErr(node, err)
		}
		slices.SortStableFunc(ports, func(a, b *inventory.Port) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.UUID, b.UUID)
		})
	} else if ports, err = s.nodes.ListPorts(r.Context(), ""); err != nil {
		return nil, err
	}
	page, ok := pageOf(ports, portFields, func(p *inventory.Port) string { return p.UUID },
		func(p *inventory.Port) bool { return address == "" || p.Address == address },
		sortKey, desc, marker, limit)
	if !ok {
		return nil, portErr(marker, inventory.ErrNotFound)
	}
	items := make([]map[string]any, 0, len(page.items))
	for _, p := range page.items {
		items = append(items, s.renderPort(r, p, only))
	}
	out := map[string]any{"ports": items}
	if page.more {
		out["next"] = s.nextLink(r, path, q, limit, page.items[len(page.items)-1].UUID)
	}
	return out, nil
}

// getPort is GET /v1/ports/{port}.
func (s *server) getPort(r *http.Request) (any, error) {
	q, err := parseQuery(r, "fields")
	if err != nil {
		return nil, err
	}
	v := versionOf(r)
	only, err := q.fields(v)
	if err != nil {
		return nil, err
	}
	if err := checkFieldNames(portFields, only, v); err != nil {
		return nil, err
	}
	p, err := s.lookupPort(r)
	if err != nil {
		return nil, err
	}
	return s.renderPort(r, p, only), nil
}

// createPort is POST /v1/ports.
func (s *server) createPort(r *http.Request) (any, error) {
	v := versionOf(r)
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if body.has("node_ident") {
		return nil, tooNew("the field node_ident", v94PortNodeIdent, v)
	}
	for _, required := range []string{"address", "node_uuid"} {
		if val, ok := body[required]; !ok || val == nil || val == "" {
			return nil, badRequest("Missing mandatory parameter: %s.", required)
		}
	}
	p := &inventory.Port{PXEEnabled: true}
	if err := createFields(portFields, p, body, "port", v); err != nil {
		return nil, err
	}
	if err := checkSmartNIC(p); err != nil {
		return nil, err
	}
	n, _, err := s.nodes.GetNode(r.Context(), p.NodeUUID)
	switch {
	case errors.Is(err, inventory.ErrNotFound):
		// A port's node that does not exist is bad input, not a missing page.
		return nil, badRequest("Node %s could not be found.", p.NodeUUID)
	case err != nil:
		return nil, err
	}
	if err := lockedErr(n); err != nil {
		return nil, err
	}
	stored, err := s.nodes.CreatePort(r.Context(), p)
	if err != nil {
		return nil, portErr(p.UUID, err)
	}
	return created(s.renderPort(r, stored, nil), s.base(r)+"/v1/ports/"+stored.UUID), nil
}

func checkSmartNIC(p *inventory.Port) error {
	if !p.IsSmartNIC {
		return nil
	}
	if p.LocalLinkConnection["port_id"] == "" || p.LocalLinkConnection["hostname"] == "" {
		return badRequest("Smart NIC port must have port_id and hostname in local_link_connection.")
	}
	return nil
}

// portConnectivityStates are the node states in which a port's connectivity
// may change (Ironic's conductor update_port).
var portConnectivityStates = []string{
	inventory.StateEnroll, inventory.StateInspecting, inventory.StateInspectWait, inventory.StateManageable,
}

// patchPort is PATCH /v1/ports/{port}.
func (s *server) patchPort(r *http.Request) (any, error) {
	v := versionOf(r)
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	ops, err := readPatch(r)
	if err != nil {
		return nil, err
	}
	if err := checkPatch(portFields, ops, v); err != nil {
		return nil, err
	}
	p, err := s.lookupPort(r)
	if err != nil {
		return nil, err
	}
	n, _, err := s.nodes.GetNode(r.Context(), p.NodeUUID)
	if err != nil {
		return nil, nodeErr(p.NodeUUID, err)
	}
	if err := lockedErr(n); err != nil {
		return nil, err
	}
	updated, err := s.nodes.UpdatePort(r.Context(), p.UUID, func(p *inventory.Port) error {
		changed, err := patchFields(portFields, p, ops, v)
		if err != nil {
			return err
		}
		if slices.Contains(changed, "address") && (n.ProvisionState == inventory.StateActive || n.InstanceUUID != "") && !n.Maintenance {
			return errorf(http.StatusConflict, "Cannot update hardware address for port %s as node %s is active or has instance UUID assigned.", p.UUID, n.UUID)
		}
		connectivity := slices.ContainsFunc(changed, func(f string) bool {
			return f == "pxe_enabled" || f == "local_link_connection" || f == "physical_network"
		})
		if connectivity && !n.Maintenance && !slices.Contains(portConnectivityStates, n.ProvisionState) {
			return errorf(http.StatusConflict, "Port %s can not have any connectivity attributes (pxe_enabled, local_link_connection, physical_network) updated unless node %s is in a %s state or in maintenance mode. The current state is %s.",
				p.UUID, n.UUID, strings.Join(portConnectivityStates, ", "), n.ProvisionState)
		}
		if slices.Contains(changed, "node_uuid") {
			return badRequest("Cannot move port %s to another node: delete it and create it on the other node.", p.UUID)
		}
		return checkSmartNIC(p)
	})
	if err != nil {
		return nil, portErr(p.UUID, err)
	}
	return s.renderPort(r, updated, nil), nil
}

// deletePort is DELETE /v1/ports/{port}.
func (s *server) deletePort(r *http.Request) (any, error) {
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	id := r.PathValue("port")
	if !inventory.IsUUID(id) {
		return nil, badRequest("Expected a UUID for port_uuid: %s.", id)
	}
	err := s.nodes.DeletePort(r.Context(), strings.ToLower(id), lockedErr)
	if err != nil {
		return nil, portErr(id, err)
	}
	return noContent(), nil
}
