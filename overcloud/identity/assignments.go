package identity

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// GET /v3/role_assignments.

// listedAssignment is one row of the listing, with where it came from
// when it is effective rather than direct.
type listedAssignment struct {
	assignmentKeyParts
	viaGroup  string // the group the user holds it through
	priorRole string // the role that implies it
}

// queryFlag reads a Keystone boolean query flag: present with no value,
// or a true value, is true.
func queryFlag(r *http.Request, name string) (bool, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return false, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, api.BadRequest("Invalid input for query parameter '%s': %q is not a boolean.", name, v)
	}
	return b, nil
}

func (s *Server) listRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	userID, groupID, roleID := q.Get("user.id"), q.Get("group.id"), q.Get("role.id")
	projectID, domainID, system := q.Get("scope.project.id"), q.Get("scope.domain.id"), q.Get("scope.system")
	if err := s.enforce(r, "identity:list_role_assignments", policy.Target{"target.domain_id": domainID}); err != nil {
		return err
	}
	effective, err := queryFlag(r, "effective")
	if err != nil {
		return err
	}
	names, err := queryFlag(r, "include_names")
	if err != nil {
		return err
	}
	if effective && groupID != "" {
		return api.BadRequest("Combining effective and group filter will always result in an empty list.")
	}
	n := 0
	for _, set := range []bool{projectID != "", domainID != "", system != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return api.BadRequest("Specify at most one of scope.project.id, scope.domain.id and scope.system.")
	}
	if system != "" && system != systemAll {
		return api.BadRequest("Invalid input for query parameter 'scope.system': only 'all' is supported.")
	}
	if userID != "" && groupID != "" {
		return api.BadRequest("Specify at most one of user.id and group.id.")
	}
	ctx := r.Context()
	if q.Get("scope.OS-INHERIT:inherited_to") != "" {
		// No grant here is inherited.
		return s.writeAssignments(ctx, w, r, nil, names)
	}
	all, err := s.listAssignments(ctx, assignmentsPrefix)
	if err != nil {
		return err
	}
	inScope := func(a assignmentKeyParts) bool {
		switch {
		case projectID != "":
			return a.scopeType == scopeProj && a.scopeID == projectID
		case domainID != "":
			return a.scopeType == scopeDomain && a.scopeID == domainID
		case system != "":
			return a.scopeType == scopeSystem
		}
		return true
	}
	var rows []listedAssignment
	for _, a := range all {
		if !inScope(a) {
			continue
		}
		if a.actorType == actorGroup && effective {
			members, err := listKeys(ctx, s.st, membersPrefix+seg(a.actorID)+"/")
			if err != nil {
				return err
			}
			for _, u := range members {
				ua := a
				ua.actorType, ua.actorID = actorUser, u
				rows = append(rows, listedAssignment{assignmentKeyParts: ua, viaGroup: a.actorID})
			}
			continue
		}
		rows = append(rows, listedAssignment{assignmentKeyParts: a})
	}
	if effective {
		if rows, err = s.addImplied(ctx, rows); err != nil {
			return err
		}
		// Domain-specific roles are not effective themselves: only the
		// global roles they imply are (a token never carries them).
		roles, err := s.allRoles(ctx)
		if err != nil {
			return err
		}
		rows = slices.DeleteFunc(rows, func(row listedAssignment) bool { return roles[row.roleID].DomainID != "" })
	}
	out := rows[:0]
	seen := map[assignmentKeyParts]bool{}
	for _, row := range rows {
		switch {
		case userID != "" && (row.actorType != actorUser || row.actorID != userID),
			groupID != "" && (row.actorType != actorGroup || row.actorID != groupID),
			roleID != "" && row.roleID != roleID,
			effective && seen[row.assignmentKeyParts]:
			continue
		}
		seen[row.assignmentKeyParts] = true
		out = append(out, row)
	}
	return s.writeAssignments(ctx, w, r, out, names)
}

// addImplied adds, after each row, a row for every role its role implies.
func (s *Server) addImplied(ctx context.Context, rows []listedAssignment) ([]listedAssignment, error) {
	roles, err := s.allRoles(ctx)
	if err != nil {
		return nil, err
	}
	var out []listedAssignment
	for _, row := range rows {
		out = append(out, row)
		seen := map[string]bool{row.roleID: true}
		queue := []string{row.roleID}
		for len(queue) > 0 {
			prior := queue[0]
			queue = queue[1:]
			for _, im := range roles[prior].Implies {
				if seen[im] {
					continue
				}
				seen[im] = true
				queue = append(queue, im)
				ir := row
				ir.roleID, ir.priorRole = im, prior
				out = append(out, ir)
			}
		}
	}
	return out, nil
}

func (s *Server) writeAssignments(ctx context.Context, w http.ResponseWriter, r *http.Request, rows []listedAssignment, names bool) error {
	base := s.base(r) + "/v3"
	nm := &nameCache{s: s, ctx: ctx}
	out := make([]map[string]any, 0, len(rows))
	for _, row := range rows {
		var scopePath string
		scope := map[string]any{}
		switch row.scopeType {
		case scopeProj:
			scopePath = "/projects/" + row.scopeID
			p := map[string]any{"id": row.scopeID}
			if names {
				if pr := nm.project(row.scopeID); pr != nil {
					p["name"] = pr.Name
					p["domain"] = nm.domainRef(pr.DomainID)
				}
			}
			scope["project"] = p
		case scopeDomain:
			scopePath = "/domains/" + row.scopeID
			d := map[string]any{"id": row.scopeID}
			if names {
				if dm := nm.domain(row.scopeID); dm != nil {
					d["name"] = dm.Name
				}
			}
			scope["domain"] = d
		default:
			scopePath = "/system"
			scope["system"] = map[string]bool{"all": true}
		}
		actorPath := "/users/" + row.actorID
		actor := map[string]any{"id": row.actorID}
		actorKey := "user"
		if row.actorType == actorGroup {
			actorPath, actorKey = "/groups/"+row.actorID, "group"
			if names {
				if g := nm.group(row.actorID); g != nil {
					actor["name"] = g.Name
					actor["domain"] = nm.domainRef(g.DomainID)
				}
			}
		} else if names {
			if u := nm.user(row.actorID); u != nil {
				actor["name"] = u.Name
				actor["domain"] = nm.domainRef(u.DomainID)
			}
		}
		ro := map[string]any{"id": row.roleID}
		if names {
			if rr := nm.role(row.roleID); rr != nil {
				ro["name"] = rr.Name
				if rr.DomainID != "" {
					ro["domain"] = nm.domainRef(rr.DomainID)
				}
			}
		}
		links := map[string]string{}
		switch {
		case row.viaGroup != "":
			links["assignment"] = base + scopePath + "/groups/" + row.viaGroup + "/roles/" + row.roleID
			links["membership"] = base + "/groups/" + row.viaGroup + "/users/" + row.actorID
		default:
			links["assignment"] = base + scopePath + actorPath + "/roles/" + row.roleID
		}
		if row.priorRole != "" {
			links["prior_role"] = base + "/roles/" + row.priorRole + "/implies/" + row.roleID
		}
		out = append(out, map[string]any{"role": ro, actorKey: actor, "scope": scope, "links": links})
	}
	if nm.err != nil {
		return nm.err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"role_assignments": out,
		"links":            api.NewCollectionLinks(s.base(r), r, 0, ""),
	})
	return nil
}

// nameCache looks names up once per listing.
type nameCache struct {
	s        *Server
	ctx      context.Context
	err      error
	projects map[string]*project
	domains  map[string]*domain
	users    map[string]*user
	groups   map[string]*group
	roles    map[string]role
}

func cached[T any](c *nameCache, m *map[string]*T, prefix, id string) *T {
	if *m == nil {
		*m = map[string]*T{}
	}
	if v, ok := (*m)[id]; ok {
		return v
	}
	v, err := lookup[T](c.ctx, c.s.st, prefix+id)
	if err != nil && c.err == nil {
		c.err = err
	}
	(*m)[id] = v
	return v
}

func (c *nameCache) project(id string) *project { return cached(c, &c.projects, projectsPrefix, id) }
func (c *nameCache) domain(id string) *domain   { return cached(c, &c.domains, domainsPrefix, id) }
func (c *nameCache) user(id string) *user       { return cached(c, &c.users, usersPrefix, id) }
func (c *nameCache) group(id string) *group     { return cached(c, &c.groups, groupsPrefix, id) }

func (c *nameCache) role(id string) *role {
	if c.roles == nil {
		var err error
		if c.roles, err = c.s.allRoles(c.ctx); err != nil && c.err == nil {
			c.err = err
		}
	}
	if r, ok := c.roles[id]; ok {
		return &r
	}
	return nil
}

func (c *nameCache) domainRef(id string) map[string]string {
	ref := map[string]string{"id": id}
	if d := c.domain(id); d != nil {
		ref["name"] = d.Name
	}
	return ref
}
