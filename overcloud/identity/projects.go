package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// Domains and projects.

type domainInput struct {
	ID          *string        `json:"explicit_domain_id"`
	Name        *string        `json:"name"`
	Description *string        `json:"description"`
	Enabled     *bool          `json:"enabled"`
	Tags        []string       `json:"tags"`
	Options     map[string]any `json:"options"`
}

func (s *Server) domainView(r *http.Request, d *domain) map[string]any {
	return map[string]any{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": nonNil(d.Tags), "options": map[string]any{},
		"links": links(s.base(r) + "/v3/domains/" + d.ID),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func domainTarget(d *domain) policy.Target { return policy.Target{"target.domain.id": d.ID} }

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_domains", nil); err != nil {
		return err
	}
	enabled, err := filterBool(r, "enabled")
	if err != nil {
		return err
	}
	all, err := listRecords[domain](r.Context(), s.st, domainsPrefix)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	all = slices.DeleteFunc(all, func(d domain) bool {
		return (name != "" && d.Name != name) || (enabled != nil && d.Enabled != *enabled)
	})
	return writeList(w, r, s, "domains", all, func(d *domain) string { return d.ID }, func(d *domain) map[string]any { return s.domainView(r, d) })
}

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("domain_id")
	d, err := fetch(s, r, "identity:get_domain", domainsPrefix+id, "domain", id, domainTarget)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"domain": s.domainView(r, &d)})
	return nil
}

func (s *Server) createDomain(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Domain *domainInput `json:"domain"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Domain
	if in == nil || in.Name == nil {
		return api.BadRequest("'domain.name' is a required property.")
	}
	d := domain{ID: newID(), Name: *in.Name, Enabled: true, Tags: in.Tags, CreatedAt: s.now().UTC()}
	if in.ID != nil {
		d.ID = *in.ID
	}
	if err := validName("domain.name", d.Name, 64); err != nil {
		return err
	}
	if err := validName("domain.explicit_domain_id", d.ID, 64); err != nil {
		return err
	}
	if in.Description != nil {
		d.Description = *in.Description
	}
	if in.Enabled != nil {
		d.Enabled = *in.Enabled
	}
	if err := validTags(d.Tags); err != nil {
		return err
	}
	if err := s.enforce(r, "identity:create_domain", domainTarget(&d)); err != nil {
		return err
	}
	if err := createRecord(r.Context(), s.st, "domain", d.Name, domainsPrefix+d.ID, d, domainNameKey(d.Name), d.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"domain": s.domainView(r, &d)})
	return nil
}

func (s *Server) updateDomain(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("domain_id")
	var body struct {
		Domain *domainInput `json:"domain"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Domain
	if in == nil {
		return api.BadRequest("'domain' is a required property.")
	}
	if in.ID != nil {
		return api.BadRequest("Invalid input for field 'domain.explicit_domain_id': the ID cannot change.")
	}
	if in.Name != nil {
		if err := validName("domain.name", *in.Name, 64); err != nil {
			return err
		}
	}
	if err := validTags(in.Tags); err != nil {
		return err
	}
	if _, err := fetch(s, r, "identity:update_domain", domainsPrefix+id, "domain", id, domainTarget); err != nil {
		return err
	}
	disabled := false
	d, err := updateRecord(r.Context(), s.st, "domain", id, domainsPrefix+id,
		func(d *domain) string { return domainNameKey(d.Name) },
		func(d *domain) error {
			if in.Name != nil {
				d.Name = *in.Name
			}
			if in.Description != nil {
				d.Description = *in.Description
			}
			disabled = in.Enabled != nil && d.Enabled && !*in.Enabled
			if in.Enabled != nil {
				d.Enabled = *in.Enabled
			}
			if in.Tags != nil {
				d.Tags = in.Tags
			}
			return nil
		})
	if err != nil {
		return err
	}
	if disabled {
		if err := s.revoked.revoke(r.Context(), revocation{DomainID: id}); err != nil {
			return err
		}
	}
	s.changed()
	api.WriteJSON(w, http.StatusOK, map[string]any{"domain": s.domainView(r, &d)})
	return nil
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("domain_id")
	if _, err := fetch(s, r, "identity:delete_domain", domainsPrefix+id, "domain", id, domainTarget); err != nil {
		return err
	}
	ctx := r.Context()
	_, err := deleteRecord(ctx, s.st, "domain", id, domainsPrefix+id,
		func(d *domain) string { return domainNameKey(d.Name) },
		func(d *domain) error {
			if d.ID == DefaultDomainID {
				return api.Forbidden("The default domain cannot be deleted.")
			}
			if d.Enabled {
				return api.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
			}
			return nil
		})
	if err != nil {
		return err
	}
	// Then what the domain held.
	projects, err := listRecords[project](ctx, s.st, projectsPrefix)
	if err != nil {
		return err
	}
	for _, p := range projects {
		if p.DomainID == id {
			if err := s.removeProject(ctx, p.ID); err != nil {
				return err
			}
		}
	}
	users, err := listRecords[user](ctx, s.st, usersPrefix)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.DomainID == id {
			if err := s.removeUser(ctx, u.ID); err != nil {
				return err
			}
		}
	}
	groups, err := listRecords[group](ctx, s.st, groupsPrefix)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.DomainID == id {
			if err := s.removeGroup(ctx, g.ID); err != nil {
				return err
			}
		}
	}
	if err := s.deleteAssignments(ctx, func(a assignmentKeyParts) bool { return a.scopeType == scopeDomain && a.scopeID == id }); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type projectInput struct {
	Name        *string        `json:"name"`
	DomainID    *string        `json:"domain_id"`
	ParentID    *string        `json:"parent_id"`
	Description *string        `json:"description"`
	Enabled     *bool          `json:"enabled"`
	IsDomain    *bool          `json:"is_domain"`
	Tags        []string       `json:"tags"`
	Options     map[string]any `json:"options"`
	// Extra is every other attribute of the request.
	Extra map[string]json.RawMessage `json:"-"`
}

var projectAttributes = setOf("name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options")

func (in *projectInput) UnmarshalJSON(b []byte) error {
	type plain projectInput
	if err := json.Unmarshal(b, (*plain)(in)); err != nil {
		return err
	}
	var err error
	in.Extra, err = extraAttributes(b, projectAttributes)
	return err
}

func (s *Server) projectView(r *http.Request, p *project) map[string]any {
	return withExtra(map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": p.ParentID,
		"description": p.Description, "enabled": p.Enabled, "is_domain": false,
		"tags": nonNil(p.Tags), "options": map[string]any{},
		"links": links(s.base(r) + "/v3/projects/" + p.ID),
	}, p.Extra)
}

func projectTarget(p *project) policy.Target {
	return policy.Target{"target.project.id": p.ID, "target.project.domain_id": p.DomainID}
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) error {
	dom, err := s.listDomainFilter(r, "identity:list_projects")
	if err != nil {
		return err
	}
	enabled, err := filterBool(r, "enabled")
	if err != nil {
		return err
	}
	all, err := listRecords[project](r.Context(), s.st, projectsPrefix)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name, parent := q.Get("name"), q.Get("parent_id")
	tags := parseTagFilter(q)
	all = slices.DeleteFunc(all, func(p project) bool {
		return (name != "" && p.Name != name) || (dom != "" && p.DomainID != dom) ||
			(parent != "" && p.ParentID != parent) || (enabled != nil && p.Enabled != *enabled) ||
			!tags.match(p.Tags)
	})
	return s.writeProjects(w, r, all)
}

func (s *Server) writeProjects(w http.ResponseWriter, r *http.Request, ps []project) error {
	return writeList(w, r, s, "projects", ps, func(p *project) string { return p.ID }, func(p *project) map[string]any { return s.projectView(r, p) })
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("project_id")
	p, err := fetch(s, r, "identity:get_project", projectsPrefix+id, "project", id, projectTarget)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"project": s.projectView(r, &p)})
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Project *projectInput `json:"project"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Project
	if in == nil || in.Name == nil {
		return api.BadRequest("'project.name' is a required property.")
	}
	if in.IsDomain != nil && *in.IsDomain {
		return api.BadRequest("Invalid input for field 'project.is_domain': projects acting as domains are not supported.")
	}
	p := project{ID: newID(), Name: *in.Name, DomainID: callerDomain(r), Enabled: true, Tags: in.Tags, CreatedAt: s.now().UTC()}
	if in.DomainID != nil {
		p.DomainID = *in.DomainID
	}
	if err := validName("project.name", p.Name, 64); err != nil {
		return err
	}
	if in.Description != nil {
		if err := validText("project.description", *in.Description, 65535); err != nil {
			return err
		}
		p.Description = *in.Description
	}
	if in.Enabled != nil {
		p.Enabled = *in.Enabled
	}
	if err := validTags(p.Tags); err != nil {
		return err
	}
	if err := validExtra("project", in.Extra); err != nil {
		return err
	}
	p.Extra = in.Extra
	ctx := r.Context()
	if err := s.enforce(r, "identity:create_project", projectTarget(&p)); err != nil {
		return err
	}
	if ok, err := s.domainExists(ctx, p.DomainID); err != nil {
		return err
	} else if !ok {
		return api.BadRequest("Invalid input for field 'project.domain_id': could not find domain %s.", p.DomainID)
	}
	p.ParentID = p.DomainID
	if in.ParentID != nil && *in.ParentID != "" && *in.ParentID != p.DomainID {
		parent, err := lookup[project](ctx, s.st, projectsPrefix+*in.ParentID)
		if err != nil {
			return err
		}
		if parent == nil || parent.DomainID != p.DomainID {
			return api.BadRequest("Invalid input for field 'project.parent_id': could not find project %s in domain %s.", *in.ParentID, p.DomainID)
		}
		p.ParentID = parent.ID
	}
	if err := createRecord(ctx, s.st, "project", p.Name, projectsPrefix+p.ID, p, projectNameKey(p.DomainID, p.Name), p.ID); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "project created", "project_id", p.ID, "name", p.Name, "by", caller(r).UserID)
	api.WriteJSON(w, http.StatusCreated, map[string]any{"project": s.projectView(r, &p)})
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("project_id")
	var body struct {
		Project *projectInput `json:"project"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Project
	if in == nil {
		return api.BadRequest("'project' is a required property.")
	}
	if in.Name != nil {
		if err := validName("project.name", *in.Name, 64); err != nil {
			return err
		}
	}
	if err := validTags(in.Tags); err != nil {
		return err
	}
	old, err := fetch(s, r, "identity:update_project", projectsPrefix+id, "project", id, projectTarget)
	if err != nil {
		return err
	}
	if in.DomainID != nil && *in.DomainID != old.DomainID {
		return api.BadRequest("Invalid input for field 'project.domain_id': a project cannot move to another domain.")
	}
	if in.ParentID != nil && *in.ParentID != old.ParentID {
		return api.BadRequest("Invalid input for field 'project.parent_id': a project cannot move to another parent.")
	}
	disabled := false
	p, err := updateRecord(r.Context(), s.st, "project", id, projectsPrefix+id,
		func(p *project) string { return projectNameKey(p.DomainID, p.Name) },
		func(p *project) error {
			if in.Name != nil {
				p.Name = *in.Name
			}
			if in.Description != nil {
				p.Description = *in.Description
			}
			disabled = in.Enabled != nil && p.Enabled && !*in.Enabled
			if in.Enabled != nil {
				p.Enabled = *in.Enabled
			}
			if in.Tags != nil {
				p.Tags = in.Tags
			}
			p.Extra = mergeExtra(p.Extra, in.Extra)
			return validExtra("project", p.Extra)
		})
	if err != nil {
		return err
	}
	if disabled {
		if err := s.revoked.revoke(r.Context(), revocation{ProjectID: id}); err != nil {
			return err
		}
	}
	s.changed()
	api.WriteJSON(w, http.StatusOK, map[string]any{"project": s.projectView(r, &p)})
	return nil
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("project_id")
	if _, err := fetch(s, r, "identity:delete_project", projectsPrefix+id, "project", id, projectTarget); err != nil {
		return err
	}
	ctx := r.Context()
	all, err := listRecords[project](ctx, s.st, projectsPrefix)
	if err != nil {
		return err
	}
	for _, p := range all {
		if p.ParentID == id {
			return api.Forbidden("Cannot delete the project %s, since it has children.", id)
		}
	}
	if err := s.removeProject(ctx, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "project deleted", "project_id", id, "by", caller(r).UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeProject deletes a project, then the grants on it and the
// application credentials for it, and revokes its tokens.
func (s *Server) removeProject(ctx context.Context, id string) error {
	_, err := deleteRecord(ctx, s.st, "project", id, projectsPrefix+id,
		func(p *project) string { return projectNameKey(p.DomainID, p.Name) }, nil)
	if err != nil {
		return err
	}
	defer s.changed()
	if err := s.revoked.revoke(ctx, revocation{ProjectID: id}); err != nil {
		return err
	}
	if err := s.deleteAssignments(ctx, func(a assignmentKeyParts) bool { return a.scopeType == scopeProj && a.scopeID == id }); err != nil {
		return err
	}
	creds, err := listRecords[appCred](ctx, s.st, appCredsPrefix)
	if err != nil {
		return err
	}
	for _, ac := range creds {
		if ac.ProjectID == id {
			if _, err := s.st.Commit(ctx, nil, []store.Op{store.Del(appCredsPrefix + ac.ID), store.Del(appCredNameKey(ac.UserID, ac.Name))}); err != nil {
				return err
			}
		}
	}
	return nil
}

// projectsOfUser returns the enabled projects on which the user holds a
// role, directly or through a group.
func (s *Server) projectsOfUser(ctx context.Context, userID string) ([]project, error) {
	groups, err := listKeys(ctx, s.st, userGroupsPrefix+seg(userID)+"/")
	if err != nil {
		return nil, err
	}
	actors := [][2]string{{actorUser, userID}}
	for _, g := range groups {
		actors = append(actors, [2]string{actorGroup, g})
	}
	seen := map[string]bool{}
	var out []project
	for _, a := range actors {
		as, err := s.listAssignments(ctx, assignmentsPrefix+a[0]+"/"+seg(a[1])+"/"+scopeProj+"/")
		if err != nil {
			return nil, err
		}
		for _, as := range as {
			if seen[as.scopeID] {
				continue
			}
			seen[as.scopeID] = true
			p, err := lookup[project](ctx, s.st, projectsPrefix+as.scopeID)
			if err != nil {
				return nil, err
			}
			if p != nil && p.Enabled {
				out = append(out, *p)
			}
		}
	}
	slices.SortFunc(out, func(a, b project) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *Server) listUserProjects(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	u, err := fetch(s, r, "identity:list_user_projects", usersPrefix+id, "user", id, userTarget)
	if err != nil {
		return err
	}
	ps, err := s.projectsOfUser(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return s.writeProjects(w, r, ps)
}
