package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

var logicalNameRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

// lookupNode finds the node named by the {node} path value, by uuid or (from
// 1.5 on) by name.
func (s *server) lookupNode(r *http.Request) (*inventory.Node, error) {
	return s.findNode(r, r.PathValue("node"))
}

func (s *server) findNode(r *http.Request, ident string) (*inventory.Node, error) {
	if !inventory.IsUUID(ident) {
		if !versionOf(r).atLeast(v5NodeName) {
			return nil, nodeErr(ident, inventory.ErrNotFound)
		}
		if !logicalNameRE.MatchString(ident) {
			return nil, badRequest("Expected a logical name or UUID but received %s.", ident)
		}
	}
	n, _, err := s.nodes.GetNode(r.Context(), ident)
	if err != nil {
		return nil, nodeErr(ident, err)
	}
	return n, nil
}

// renderNode is a node as the request's version shows it; only, when not
// nil, limits it to those fields (and its links).
func (s *server) renderNode(r *http.Request, n *inventory.Node, only []string) map[string]any {
	v := versionOf(r)
	out := render(nodeFields, n, v, only)
	if ps, ok := out["provision_state"]; ok {
		out["provision_state"] = legacyState(ps, v)
	}
	if ts, ok := out["target_provision_state"]; ok {
		out["target_provision_state"] = legacyState(ts, v)
	}
	out["links"] = s.links(r, "nodes/"+n.UUID)
	if only == nil {
		out["ports"] = s.links(r, "nodes/"+n.UUID+"/ports")
		if v.atLeast(v14StatesLinks) {
			out["states"] = s.links(r, "nodes/"+n.UUID+"/states")
		}
	}
	return out
}

// legacyState shows a provision state with the names of older versions:
// before 1.2 "available" was null (NOSTATE), before 1.39 "inspect wait" was
// shown as "inspecting".
func legacyState(state any, v version) any {
	switch {
	case state == inventory.StateAvailable && !v.atLeast(v2AvailableState):
		return nil
	case state == inventory.StateInspectWait && !v.atLeast(v39InspectWait):
		return inventory.StateInspecting
	}
	return state
}

var validFaults = []string{"power failure", "clean failure", "rescue abort failure", "service failure"}

// nodeFilter is a filter parameter of the node list.
type nodeFilter struct {
	param string
	since int
	// match builds the predicate for the parameter's value.
	match func(value string) (func(*inventory.Node) bool, error)
}

func equalTo(get func(*inventory.Node) string) func(string) (func(*inventory.Node) bool, error) {
	return func(want string) (func(*inventory.Node) bool, error) {
		return func(n *inventory.Node) bool { return get(n) == want }, nil
	}
}

func boolFilter(name string, get func(*inventory.Node) bool) func(string) (func(*inventory.Node) bool, error) {
	return func(s string) (func(*inventory.Node) bool, error) {
		want, ok := parseBool(s)
		if !ok {
			return nil, badRequest("Invalid %s: %q is not a boolean.", name, s)
		}
		return func(n *inventory.Node) bool { return get(n) == want }, nil
	}
}

// nodeFilters are the node list's filters, with the version that introduced
// each (Ironic's check_allow_filter_* in utils.py).
var nodeFilters = []nodeFilter{
	{"associated", 1, boolFilter("associated", func(n *inventory.Node) bool { return n.InstanceUUID != "" })},
	{"maintenance", 1, boolFilter("maintenance", func(n *inventory.Node) bool { return n.Maintenance })},
	{"instance_uuid", 1, func(s string) (func(*inventory.Node) bool, error) {
		if !inventory.IsUUID(s) {
			return nil, badRequest("Expected a UUID for instance_uuid: %s.", s)
		}
		s = strings.ToLower(s)
		return func(n *inventory.Node) bool { return n.InstanceUUID == s }, nil
	}},
	{"description_contains", 1, func(s string) (func(*inventory.Node) bool, error) {
		return func(n *inventory.Node) bool { return strings.Contains(n.Description, s) }, nil
	}},
	{"provision_state", v9ProvisionFilter, func(s string) (func(*inventory.Node) bool, error) {
		if !slices.Contains(inventory.AllStates(), s) {
			return nil, badRequest("Provision state %q is not valid.", s)
		}
		return func(n *inventory.Node) bool { return n.ProvisionState == s }, nil
	}},
	{"driver", v16DriverFilter, equalTo(func(n *inventory.Node) string { return n.Driver })},
	{"resource_class", v21ResourceClass, equalTo(func(n *inventory.Node) string { return n.ResourceClass })},
	{"fault", v42Fault, func(s string) (func(*inventory.Node) bool, error) {
		if !slices.Contains(validFaults, s) {
			return nil, badRequest("Unrecognized fault %q is specified, allowed faults are %s.", s, strings.Join(validFaults, ", "))
		}
		return func(n *inventory.Node) bool { return n.Fault == s }, nil
	}},
	{"conductor_group", v46ConductorGroup, func(s string) (func(*inventory.Node) bool, error) {
		s = strings.ToLower(s)
		return func(n *inventory.Node) bool { return n.ConductorGroup == s }, nil
	}},
	{"conductor", v49Conductors, equalTo(func(n *inventory.Node) string { return n.Conductor })},
	{"owner", v50Owner, equalTo(func(n *inventory.Node) string { return n.Owner })},
	{"retired", v61Retired, boolFilter("retired", func(n *inventory.Node) bool { return n.Retired })},
	{"lessee", v65Lessee, equalTo(func(n *inventory.Node) string { return n.Lessee })},
}

// listNodes is GET /v1/nodes.
func (s *server) listNodes(r *http.Request) (any, error) { return s.nodeList(r, "nodes") }

// listNodesDetail is GET /v1/nodes/detail.
func (s *server) listNodesDetail(r *http.Request) (any, error) { return s.nodeList(r, "nodes/detail") }

func (s *server) nodeList(r *http.Request, path string) (any, error) {
	v := versionOf(r)
	isDetailPath := path == "nodes/detail"
	params := []string{"limit", "marker", "sort_key", "sort_dir"}
	for _, f := range nodeFilters {
		params = append(params, f.param)
	}
	if !isDetailPath {
		params = append(params, "fields", "detail")
	}
	q, err := parseQuery(r, params...)
	if err != nil {
		return nil, err
	}
	keep := []func(*inventory.Node) bool{}
	for _, f := range nodeFilters {
		val, ok := q.get(f.param)
		if !ok {
			continue
		}
		if err := q.since(f.param, f.since, v); err != nil {
			return nil, err
		}
		pred, err := f.match(val)
		if err != nil {
			return nil, err
		}
		keep = append(keep, pred)
	}
	only, err := listSelection(q, nodeFields, defaultNodeFields, v)
	if err != nil {
		return nil, err
	}
	if isDetailPath {
		only = nil
	}
	sortKey, _ := q.get("sort_key")
	if err := checkSortKey(nodeFields, sortKey, v); err != nil {
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

	all, err := s.nodes.ListNodes(r.Context())
	if err != nil {
		return nil, err
	}
	page, ok := pageOf(all, nodeFields, func(n *inventory.Node) string { return n.UUID },
		func(n *inventory.Node) bool {
			for _, k := range keep {
				if !k(n) {
					return false
				}
			}
			return true
		}, sortKey, desc, marker, limit)
	if !ok {
		return nil, nodeErr(marker, inventory.ErrNotFound)
	}
	items := make([]map[string]any, 0, len(page.items))
	for _, n := range page.items {
		items = append(items, s.renderNode(r, n, only))
	}
	out := map[string]any{"nodes": items}
	if page.more {
		out["next"] = s.nextLink(r, path, q, limit, page.items[len(page.items)-1].UUID)
	}
	return out, nil
}

// listSelection reads fields= and detail= of a list: the fields to show,
// nil for all of them.
func listSelection[T any](q query, fields []field[T], defaults []string, v version) ([]string, error) {
	only, err := q.fields(v)
	if err != nil {
		return nil, err
	}
	detail, err := q.boolean("detail")
	if err != nil {
		return nil, err
	}
	if detail != nil && !v.atLeast(v43Detail) {
		return nil, badRequest("Invalid query parameter ?detail=%t received: it requires API version 1.%d or later, and version %s was requested.", *detail, v43Detail, v)
	}
	if only != nil && detail != nil && *detail {
		return nil, badRequest("Can not specify ?detail=True and fields in the same request.")
	}
	if err := checkFieldNames(fields, only, v); err != nil {
		return nil, err
	}
	switch {
	case only != nil:
		return only, nil
	case detail != nil && *detail:
		return nil, nil
	}
	return defaults, nil
}

// getNode is GET /v1/nodes/{node}.
func (s *server) getNode(r *http.Request) (any, error) {
	q, err := parseQuery(r, "fields")
	if err != nil {
		return nil, err
	}
	v := versionOf(r)
	only, err := q.fields(v)
	if err != nil {
		return nil, err
	}
	if err := checkFieldNames(nodeFields, only, v); err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	return s.renderNode(r, n, only), nil
}

// createNode is POST /v1/nodes.
func (s *server) createNode(r *http.Request) (any, error) {
	v := versionOf(r)
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	switch d := body["driver"].(type) {
	case string:
		if d == "" {
			return nil, badRequest("Missing mandatory parameter: driver. The available drivers are: %s.", strings.Join(inventory.Drivers, ", "))
		}
	case nil:
		return nil, badRequest("Missing mandatory parameter: driver. The available drivers are: %s.", strings.Join(inventory.Drivers, ", "))
	default:
		return nil, badRequest("Invalid value for driver: expected a string, got %s.", describe(d))
	}
	n := &inventory.Node{}
	if err := createFields(nodeFields, n, body, "node", v); err != nil {
		return nil, err
	}
	// New nodes start in enroll from 1.11 on, and were available before.
	n.ProvisionState = inventory.StateEnroll
	if !v.atLeast(v11EnrollState) {
		n.ProvisionState = inventory.StateAvailable
	}
	stored, err := s.nodes.CreateNode(nodestore.WithUser(r.Context(), userOf(r)), n)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return created(s.renderNode(r, stored, nil), s.base(r)+"/v1/nodes/"+stored.UUID), nil
}

// patchNode is PATCH /v1/nodes/{node}.
func (s *server) patchNode(r *http.Request) (any, error) {
	v := versionOf(r)
	q, err := parseQuery(r, "reset_interfaces")
	if err != nil {
		return nil, err
	}
	if err := q.since("reset_interfaces", v45ResetInterfaces, v); err != nil {
		return nil, err
	}
	reset, err := q.boolean("reset_interfaces")
	if err != nil {
		return nil, err
	}
	ops, err := readPatch(r)
	if err != nil {
		return nil, err
	}
	if err := checkPatch(nodeFields, ops, v); err != nil {
		return nil, err
	}
	if reset != nil && !slices.ContainsFunc(ops, func(o patchOp) bool { return o.field() == "driver" && o.Op != "test" }) {
		return nil, badRequest("The reset_interfaces parameter can only be used when changing the node's driver.")
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	user := userOf(r)
	updated, _, err := s.nodes.UpdateNode(r.Context(), n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		if err := checkUpdatable(n, ops, v); err != nil {
			return err
		}
		before := *n
		ch, err := patchFields(nodeFields, n, ops, v)
		if err != nil {
			return err
		}
		if len(ch) == 0 {
			return store.ErrNoChange
		}
		if err := checkNodeUpdate(&before, n); err != nil {
			return err
		}
		ev := s.nodes.NewHistory("update", "INFO", "node updated: "+strings.Join(ch, ", "))
		ev.User = user
		tx.Record(ev)
		return nil
	})
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return s.renderNode(r, updated, nil), nil
}

// checkUpdatable refuses a PATCH while the node is being worked on, as
// Ironic does: not during a state transition (unless the state allows it,
// or the node is in maintenance), not while it is inspecting, and not
// while a conductor holds it.
func checkUpdatable(n *inventory.Node, ops []patchOp, v version) error {
	removeInstance := len(ops) == 1 && ops[0].Op == "remove" && ops[0].Path == "/instance_uuid"
	if n.Maintenance && removeInstance {
		return nil
	}
	transitioning := n.TargetProvisionState != "" || inventory.Target(n.ProvisionState) != ""
	if transitioning && !n.Maintenance && !slices.Contains(inventory.UpdateAllowedStates, n.ProvisionState) {
		return errorf(http.StatusConflict, "Node %s can not be updated while a state transition is in progress (it is in state %q).", n.UUID, n.ProvisionState)
	}
	if n.ProvisionState == inventory.StateInspecting && v.atLeast(v39InspectWait) {
		return errorf(http.StatusConflict, "Cannot update node %q while it is in state %q.", n.UUID, inventory.StateInspecting)
	}
	return lockedErr(n)
}

// lockedErr is Ironic's NodeLocked for a node that a conductor holds.
func lockedErr(n *inventory.Node) error {
	if n.Reservation == "" {
		return nil
	}
	return errorf(http.StatusConflict, "Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, n.Reservation)
}

// updateAllowedStates are where resource_class may change on a node that
// already has one (Ironic's conductor update_node).
var resourceClassStates = []string{
	inventory.StateEnroll, inventory.StateInspecting, inventory.StateInspectWait,
	inventory.StateManageable, inventory.StateAvailable,
}

// checkNodeUpdate checks the rules that tie fields together, from Ironic's
// conductor: what was before and what the patch made of it.
func checkNodeUpdate(before, n *inventory.Node) error {
	if n.Protected != before.Protected {
		if !n.Protected {
			n.ProtectedReason = ""
		} else if n.ProvisionState != inventory.StateActive && n.ProvisionState != inventory.StateRescue {
			return errorf(http.StatusConflict, "Node %s can only be made protected in provision states 'active' or 'rescue', the current state is '%s'.", n.UUID, n.ProvisionState)
		}
	}
	if n.ProtectedReason != "" && !n.Protected {
		return badRequest("The protected_reason field can only be set when protected is True.")
	}
	if n.Retired != before.Retired {
		if !n.Retired {
			n.RetiredReason = ""
		} else if n.ProvisionState == inventory.StateAvailable {
			return errorf(http.StatusConflict, "Node %s can not have 'retired' set in provision state 'available', the current state is '%s'.", n.UUID, n.ProvisionState)
		}
	}
	if n.RetiredReason != "" && !n.Retired {
		return badRequest("The retired_reason field can only be set when retired is True.")
	}
	if n.ResourceClass != before.ResourceClass && before.ResourceClass != "" && !slices.Contains(resourceClassStates, n.ProvisionState) {
		return errorf(http.StatusConflict, "Node %s can not have resource_class updated unless it is in one of allowed (%s) states. Current state is '%s'.",
			n.UUID, strings.Join(resourceClassStates, ", "), n.ProvisionState)
	}
	if n.InstanceUUID != before.InstanceUUID && n.InstanceUUID != "" && before.InstanceUUID != "" {
		return errorf(http.StatusConflict, "Node %s is associated with instance %s.", n.UUID, before.InstanceUUID)
	}
	if before.Maintenance && !n.Maintenance {
		n.MaintenanceReason = ""
		n.Fault = ""
	}
	return nil
}

// deleteNode is DELETE /v1/nodes/{node}.
func (s *server) deleteNode(r *http.Request) (any, error) {
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	err = s.nodes.DeleteNode(r.Context(), n.UUID, func(n *inventory.Node) error {
		if err := lockedErr(n); err != nil {
			return err
		}
		if !n.Maintenance && n.InstanceUUID != "" {
			return errorf(http.StatusConflict, "Node %s is associated with instance %s.", n.UUID, n.InstanceUUID)
		}
		if n.Protected {
			return errorf(http.StatusForbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted.", n.UUID)
		}
		if !n.Maintenance && !slices.Contains(inventory.DeleteAllowedStates, n.ProvisionState) {
			return errorf(http.StatusConflict, "Can not delete node %q while it is in provision state %q. Valid provision states to perform deletion are: %q, or set the node into maintenance mode.",
				n.UUID, n.ProvisionState, strings.Join(inventory.DeleteAllowedStates, ", "))
		}
		return nil
	})
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return noContent(), nil
}
