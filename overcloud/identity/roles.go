package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// Roles, grants and role assignments.

type roleInput struct {
	Name        *string        `json:"name"`
	DomainID    *string        `json:"domain_id"`
	Description *string        `json:"description"`
	Options     map[string]any `json:"options"`
}

func (s *Server) roleView(r *http.Request, ro *role) map[string]any {
	var dom any
	if ro.DomainID != "" {
		dom = ro.DomainID
	}
	return map[string]any{
		"id": ro.ID, "name": ro.Name, "domain_id": dom, "description": ro.Description,
		"options": map[string]any{}, "links": links(s.base(r) + "/v3/roles/" + ro.ID),
	}
}

func roleTarget(ro *role) policy.Target {
	return policy.Target{"target.role.id": ro.ID, "target.role.domain_id": ro.DomainID}
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_roles", nil); err != nil {
		return err
	}
	all, err := listRecords[role](r.Context(), s.st, rolesPrefix)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name, dom := q.Get("name"), q.Get("domain_id")
	all = slices.DeleteFunc(all, func(ro role) bool {
		return (name != "" && ro.Name != name) || ro.DomainID != dom
	})
	return s.writeRoles(w, r, all)
}

func (s *Server) writeRoles(w http.ResponseWriter, r *http.Request, rs []role) error {
	return writeList(w, r, s, "roles", rs, func(ro *role) string { return ro.ID }, func(ro *role) map[string]any { return s.roleView(r, ro) })
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("role_id")
	ro, err := fetch(s, r, "identity:get_role", rolesPrefix+id, "role", id, roleTarget)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"role": s.roleView(r, &ro)})
	return nil
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Role *roleInput `json:"role"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Role
	if in == nil || in.Name == nil {
		return api.BadRequest("'role.name' is a required property.")
	}
	ro := role{ID: newID(), Name: *in.Name, CreatedAt: s.now().UTC()}
	if in.DomainID != nil {
		ro.DomainID = *in.DomainID
	}
	if in.Description != nil {
		ro.Description = *in.Description
	}
	if err := validName("role.name", ro.Name, 255); err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.enforce(r, "identity:create_role", roleTarget(&ro)); err != nil {
		return err
	}
	if ro.DomainID != "" {
		if ok, err := s.domainExists(ctx, ro.DomainID); err != nil {
			return err
		} else if !ok {
			return api.BadRequest("Invalid input for field 'role.domain_id': could not find domain %s.", ro.DomainID)
		}
	}
	if err := createRecord(ctx, s.st, "role", ro.Name, rolesPrefix+ro.ID, ro, roleNameKey(ro.DomainID, ro.Name), ro.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"role": s.roleView(r, &ro)})
	return nil
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("role_id")
	var body struct {
		Role *roleInput `json:"role"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Role
	if in == nil {
		return api.BadRequest("'role' is a required property.")
	}
	if in.Name != nil {
		if err := validName("role.name", *in.Name, 255); err != nil {
			return err
		}
	}
	old, err := fetch(s, r, "identity:update_role", rolesPrefix+id, "role", id, roleTarget)
	if err != nil {
		return err
	}
	if in.DomainID != nil && *in.DomainID != old.DomainID {
		return api.BadRequest("Invalid input for field 'role.domain_id': a role cannot move to another domain.")
	}
	ro, err := updateRecord(r.Context(), s.st, "role", id, rolesPrefix+id,
		func(ro *role) string { return roleNameKey(ro.DomainID, ro.Name) },
		func(ro *role) error {
			if in.Name != nil {
				ro.Name = *in.Name
			}
			if in.Description != nil {
				ro.Description = *in.Description
			}
			return nil
		})
	if err != nil {
		return err
	}
	s.changed()
	api.WriteJSON(w, http.StatusOK, map[string]any{"role": s.roleView(r, &ro)})
	return nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("role_id")
	if _, err := fetch(s, r, "identity:delete_role", rolesPrefix+id, "role", id, roleTarget); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := deleteRecord(ctx, s.st, "role", id, rolesPrefix+id,
		func(ro *role) string { return roleNameKey(ro.DomainID, ro.Name) }, nil); err != nil {
		return err
	}
	defer s.changed()
	if err := s.deleteAssignments(ctx, func(a assignmentKeyParts) bool { return a.roleID == id }); err != nil {
		return err
	}
	// No role implies a deleted one any more.
	all, err := listRecords[role](ctx, s.st, rolesPrefix)
	if err != nil {
		return err
	}
	for _, other := range all {
		if slices.Contains(other.Implies, id) {
			if _, err := updateRecord(ctx, s.st, "role", other.ID, rolesPrefix+other.ID, nil, func(ro *role) error {
				ro.Implies = slices.DeleteFunc(ro.Implies, func(x string) bool { return x == id })
				return nil
			}); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Implied roles: /v3/roles/{prior_role_id}/implies/{implied_role_id}.

func (s *Server) inferenceRef(r *http.Request, ro *role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": links(s.base(r) + "/v3/roles/" + ro.ID)}
}

func (s *Server) impliedPair(r *http.Request, action string) (role, role, error) {
	if err := s.enforce(r, action, nil); err != nil {
		return role{}, role{}, err
	}
	ctx := r.Context()
	pid, iid := r.PathValue("prior_role_id"), r.PathValue("implied_role_id")
	prior, _, err := getRecord[role](ctx, s.st, rolesPrefix+pid, "role", pid)
	if err != nil {
		return role{}, role{}, err
	}
	implied, _, err := getRecord[role](ctx, s.st, rolesPrefix+iid, "role", iid)
	if err != nil {
		return role{}, role{}, err
	}
	return prior, implied, nil
}

func (s *Server) createImpliedRole(w http.ResponseWriter, r *http.Request) error {
	prior, implied, err := s.impliedPair(r, "identity:create_implied_role")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if prior.ID == implied.ID {
		return api.BadRequest("A role cannot imply itself.")
	}
	if prior.DomainID == "" && implied.DomainID != "" {
		// A domain-specific role means nothing outside its domain, and a
		// global role applies everywhere: Keystone forbids this inference.
		return api.Forbidden("%s cannot be an implied role: a global role cannot imply a domain-specific role.", implied.ID)
	}
	// Refuse a cycle: the implied role must not already imply the prior.
	closure, err := s.expandRoles(ctx, []string{implied.ID})
	if err != nil {
		return err
	}
	if slices.ContainsFunc(closure, func(x role) bool { return x.ID == prior.ID }) {
		return api.BadRequest("Role %s already implies role %s: this inference would make a cycle.", implied.ID, prior.ID)
	}
	if _, err := updateRecord(ctx, s.st, "role", prior.ID, rolesPrefix+prior.ID, nil, func(ro *role) error {
		if !slices.Contains(ro.Implies, implied.ID) {
			ro.Implies = append(ro.Implies, implied.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	s.changed()
	api.WriteJSON(w, http.StatusCreated, map[string]any{"role_inference": map[string]any{
		"prior_role": s.inferenceRef(r, &prior), "implies": s.inferenceRef(r, &implied),
	}, "links": links(s.base(r) + "/v3/roles/" + prior.ID + "/implies/" + implied.ID)})
	return nil
}

func (s *Server) getImpliedRole(w http.ResponseWriter, r *http.Request) error {
	prior, implied, err := s.impliedPair(r, "identity:get_implied_role")
	if err != nil {
		return err
	}
	if !slices.Contains(prior.Implies, implied.ID) {
		return api.NotFound("Could not find implied role: %s implies %s.", prior.ID, implied.ID)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"role_inference": map[string]any{
		"prior_role": s.inferenceRef(r, &prior), "implies": s.inferenceRef(r, &implied),
	}, "links": links(s.base(r) + "/v3/roles/" + prior.ID + "/implies/" + implied.ID)})
	return nil
}

func (s *Server) deleteImpliedRole(w http.ResponseWriter, r *http.Request) error {
	prior, implied, err := s.impliedPair(r, "identity:delete_implied_role")
	if err != nil {
		return err
	}
	if !slices.Contains(prior.Implies, implied.ID) {
		return api.NotFound("Could not find implied role: %s implies %s.", prior.ID, implied.ID)
	}
	if _, err := updateRecord(r.Context(), s.st, "role", prior.ID, rolesPrefix+prior.ID, nil, func(ro *role) error {
		ro.Implies = slices.DeleteFunc(ro.Implies, func(x string) bool { return x == implied.ID })
		return nil
	}); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listImpliedRoles(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_implied_roles", nil); err != nil {
		return err
	}
	ctx := r.Context()
	pid := r.PathValue("prior_role_id")
	prior, _, err := getRecord[role](ctx, s.st, rolesPrefix+pid, "role", pid)
	if err != nil {
		return err
	}
	all, err := s.allRoles(ctx)
	if err != nil {
		return err
	}
	implies := []map[string]any{}
	for _, id := range prior.Implies {
		if ro, ok := all[id]; ok {
			implies = append(implies, s.inferenceRef(r, &ro))
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"role_inference": map[string]any{
		"prior_role": s.inferenceRef(r, &prior), "implies": implies,
	}, "links": links(s.base(r) + "/v3/roles/" + prior.ID + "/implies")})
	return nil
}

func (s *Server) listRoleInferences(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_role_inference_rules", nil); err != nil {
		return err
	}
	all, err := listRecords[role](r.Context(), s.st, rolesPrefix)
	if err != nil {
		return err
	}
	byID := map[string]role{}
	for _, ro := range all {
		byID[ro.ID] = ro
	}
	out := []map[string]any{}
	for _, ro := range all {
		if len(ro.Implies) == 0 {
			continue
		}
		implies := []map[string]any{}
		for _, id := range ro.Implies {
			if im, ok := byID[id]; ok {
				implies = append(implies, s.inferenceRef(r, &im))
			}
		}
		out = append(out, map[string]any{"prior_role": s.inferenceRef(r, &ro), "implies": implies})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"role_inferences": out, "links": links(s.base(r) + "/v3/role_inferences")})
	return nil
}

// assignmentKeyParts is an assignment key taken apart.
type assignmentKeyParts struct {
	actorType, actorID, scopeType, scopeID, roleID string
}

func parseAssignmentKey(key string) (assignmentKeyParts, bool) {
	rest, ok := strings.CutPrefix(key, assignmentsPrefix)
	if !ok {
		return assignmentKeyParts{}, false
	}
	p := strings.Split(rest, "/")
	if len(p) != 5 {
		return assignmentKeyParts{}, false
	}
	return assignmentKeyParts{p[0], unseg(p[1]), p[2], unseg(p[3]), unseg(p[4])}, true
}

func (a assignmentKeyParts) key() string {
	return assignmentKey(a.actorType, a.actorID, a.scopeType, a.scopeID, a.roleID)
}

// listAssignments returns the assignments whose keys start with prefix.
func (s *Server) listAssignments(ctx context.Context, prefix string) ([]assignmentKeyParts, error) {
	recs, _, err := s.st.ListAll(ctx, prefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([]assignmentKeyParts, 0, len(recs))
	for _, rec := range recs {
		if a, ok := parseAssignmentKey(rec.Key); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// deleteAssignments deletes every assignment that match selects.
func (s *Server) deleteAssignments(ctx context.Context, match func(assignmentKeyParts) bool) error {
	all, err := s.listAssignments(ctx, assignmentsPrefix)
	if err != nil {
		return err
	}
	var ops []store.Op
	for _, a := range all {
		if match(a) {
			ops = append(ops, store.Del(a.key()))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := s.st.Commit(ctx, nil, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// grantRequest is a resolved grant path: /v3/{projects|domains}/{id}/
// {users|groups}/{id}/roles[/{role_id}] or /v3/system/{users|groups}/{id}/roles[/{role_id}].
type grantRequest struct {
	a      assignmentKeyParts
	target policy.Target
	system bool
}

// grant resolves and checks a grant request. Missing scope, actor or role
// are 404s (for callers allowed to see them).
func (s *Server) grant(r *http.Request, scopeType, actorType, action string, withRole bool) (grantRequest, error) {
	ctx := r.Context()
	g := grantRequest{a: assignmentKeyParts{actorType: actorType, scopeType: scopeType}, system: scopeType == scopeSystem}
	g.target = policy.Target{}
	switch scopeType {
	case scopeProj:
		id := r.PathValue("project_id")
		p, _, err := getRecord[project](ctx, s.st, projectsPrefix+id, "project", id)
		if err != nil {
			return g, s.denyOr(r, action, err)
		}
		g.a.scopeID = p.ID
		g.target["target.project.id"] = p.ID
		g.target["target.domain_id"] = p.DomainID
	case scopeDomain:
		id := r.PathValue("domain_id")
		d, _, err := getRecord[domain](ctx, s.st, domainsPrefix+id, "domain", id)
		if err != nil {
			return g, s.denyOr(r, action, err)
		}
		g.a.scopeID = d.ID
		g.target["target.domain.id"] = d.ID
		g.target["target.domain_id"] = d.ID
	default:
		g.a.scopeID = systemAll
	}
	switch actorType {
	case actorUser:
		id := r.PathValue("user_id")
		u, _, err := getRecord[user](ctx, s.st, usersPrefix+id, "user", id)
		if err != nil {
			return g, s.denyOr(r, action, err)
		}
		g.a.actorID = u.ID
		g.target["target.user.id"] = u.ID
		g.target["target.actor.domain_id"] = u.DomainID
	default:
		id := r.PathValue("group_id")
		gr, _, err := getRecord[group](ctx, s.st, groupsPrefix+id, "group", id)
		if err != nil {
			return g, s.denyOr(r, action, err)
		}
		g.a.actorID = gr.ID
		g.target["target.group.id"] = gr.ID
		g.target["target.actor.domain_id"] = gr.DomainID
	}
	if withRole {
		id := r.PathValue("role_id")
		ro, _, err := getRecord[role](ctx, s.st, rolesPrefix+id, "role", id)
		if err != nil {
			return g, s.denyOr(r, action, err)
		}
		g.a.roleID = ro.ID
		g.target["target.role.id"] = ro.ID
	}
	return g, s.enforce(r, action, g.target)
}

// denyOr returns a 403 for a caller that could not act on any target, so
// that a missing ID tells it nothing, and err otherwise.
func (s *Server) denyOr(r *http.Request, action string, err error) error {
	if isNotFound(err) && !s.policy.Allowed(action, caller(r), policy.Target{}) {
		return api.Forbidden("You are not authorized to perform the requested action: %s.", action)
	}
	return err
}

func grantAction(scopeType, verb string) string {
	noun := "_grant"
	if scopeType == scopeSystem {
		noun = "_system_grant"
	}
	if verb == "list" {
		noun += "s"
	}
	return "identity:" + verb + noun
}

func (s *Server) putGrant(scopeType, actorType string) api.Func {
	return func(w http.ResponseWriter, r *http.Request) error {
		g, err := s.grant(r, scopeType, actorType, grantAction(scopeType, "create"), true)
		if err != nil {
			return err
		}
		if _, err := s.st.Commit(r.Context(), nil, []store.Op{store.PutJSON(g.a.key(), assignment{CreatedAt: s.now().UTC()})}); err != nil {
			return err
		}
		s.changed()
		s.log.InfoContext(r.Context(), "role granted", "actor", actorType, "actor_id", g.a.actorID,
			"scope", scopeType, "scope_id", g.a.scopeID, "role_id", g.a.roleID, "by", caller(r).UserID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) checkGrant(scopeType, actorType string) api.Func {
	return func(w http.ResponseWriter, r *http.Request) error {
		g, err := s.grant(r, scopeType, actorType, grantAction(scopeType, "check"), true)
		if err != nil {
			return err
		}
		if _, err := s.st.Get(r.Context(), g.a.key()); err != nil {
			if isNotFound(err) {
				return api.NotFound("Could not find role assignment.")
			}
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) deleteGrant(scopeType, actorType string) api.Func {
	return func(w http.ResponseWriter, r *http.Request) error {
		g, err := s.grant(r, scopeType, actorType, grantAction(scopeType, "revoke"), true)
		if err != nil {
			return err
		}
		ctx := r.Context()
		rec, err := s.st.Get(ctx, g.a.key())
		if err != nil {
			if isNotFound(err) {
				return api.NotFound("Could not find role assignment.")
			}
			return err
		}
		if err := s.st.Delete(ctx, g.a.key(), rec.ModRevision); err != nil && !isNotFound(err) {
			return err
		}
		s.changed()
		s.log.InfoContext(ctx, "role revoked", "actor", actorType, "actor_id", g.a.actorID,
			"scope", scopeType, "scope_id", g.a.scopeID, "role_id", g.a.roleID, "by", caller(r).UserID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) listGrants(scopeType, actorType string) api.Func {
	return func(w http.ResponseWriter, r *http.Request) error {
		g, err := s.grant(r, scopeType, actorType, grantAction(scopeType, "list"), false)
		if err != nil {
			return err
		}
		ctx := r.Context()
		as, err := s.listAssignments(ctx, assignmentScopePrefix(actorType, g.a.actorID, scopeType, g.a.scopeID))
		if err != nil {
			return err
		}
		all, err := s.allRoles(ctx)
		if err != nil {
			return err
		}
		var rs []role
		for _, a := range as {
			if ro, ok := all[a.roleID]; ok {
				rs = append(rs, ro)
			}
		}
		return s.writeRoles(w, r, rs)
	}
}

func isNotFound(err error) bool {
	return errors.Is(err, api.ErrNotFound) || errors.Is(err, store.ErrNotFound)
}
