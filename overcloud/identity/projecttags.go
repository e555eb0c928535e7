package identity

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stratacloud/strata/overcloud/api"
)

// Project tags: /v3/projects/{project_id}/tags[/{value}], the API working
// group's tags guideline as Keystone implements it. The tags are the
// project's own "tags" attribute, so a project's PATCH and these calls
// see the same list.

// maxTags is Keystone's limit of tags on one project.
const maxTags = 80

// tagTarget reads the project of a tag request and checks action on it.
func (s *Server) tagTarget(r *http.Request, action string) (project, error) {
	id := r.PathValue("project_id")
	return fetch(s, r, action, projectsPrefix+id, "project", id, projectTarget)
}

// setTags rewrites a project's tags with fn, which gets the current ones.
func (s *Server) setTags(r *http.Request, id string, fn func([]string) ([]string, error)) (project, error) {
	return updateRecord(r.Context(), s.st, "project", id, projectsPrefix+id, nil, func(p *project) error {
		tags, err := fn(slices.Clone(p.Tags))
		if err != nil {
			return err
		}
		if err := validTags(tags); err != nil {
			return err
		}
		p.Tags = tags
		return nil
	})
}

func writeTags(w http.ResponseWriter, status int, tags []string) {
	api.WriteJSON(w, status, map[string]any{"tags": nonNil(tags)})
}

// listProjectTags is GET /v3/projects/{project_id}/tags.
func (s *Server) listProjectTags(w http.ResponseWriter, r *http.Request) error {
	p, err := s.tagTarget(r, "identity:list_project_tags")
	if err != nil {
		return err
	}
	writeTags(w, http.StatusOK, p.Tags)
	return nil
}

// replaceProjectTags is PUT /v3/projects/{project_id}/tags with
// {"tags":[...]}: the project's tags become exactly these.
func (s *Server) replaceProjectTags(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Tags *[]string `json:"tags"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Tags == nil {
		return api.BadRequest("'tags' is a required property.")
	}
	if err := validTags(*body.Tags); err != nil {
		return err
	}
	old, err := s.tagTarget(r, "identity:update_project_tags")
	if err != nil {
		return err
	}
	p, err := s.setTags(r, old.ID, func([]string) ([]string, error) { return *body.Tags, nil })
	if err != nil {
		return err
	}
	writeTags(w, http.StatusOK, p.Tags)
	return nil
}

// deleteProjectTags is DELETE /v3/projects/{project_id}/tags.
func (s *Server) deleteProjectTags(w http.ResponseWriter, r *http.Request) error {
	old, err := s.tagTarget(r, "identity:delete_project_tags")
	if err != nil {
		return err
	}
	if _, err := s.setTags(r, old.ID, func([]string) ([]string, error) { return nil, nil }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkProjectTag is GET (and HEAD) /v3/projects/{project_id}/tags/{value}:
// 204 when the project has the tag, 404 when not.
func (s *Server) checkProjectTag(w http.ResponseWriter, r *http.Request) error {
	p, err := s.tagTarget(r, "identity:get_project_tag")
	if err != nil {
		return err
	}
	tag := r.PathValue("value")
	if !slices.Contains(p.Tags, tag) {
		return api.NotFound("Could not find tag %s on project %s.", tag, p.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addProjectTag is PUT /v3/projects/{project_id}/tags/{value}: 201 with
// the tag's URL in Location and no body; adding a tag the project has is
// not an error.
func (s *Server) addProjectTag(w http.ResponseWriter, r *http.Request) error {
	tag := strings.TrimSpace(r.PathValue("value"))
	if err := validTags([]string{tag}); err != nil {
		return err
	}
	old, err := s.tagTarget(r, "identity:create_project_tag")
	if err != nil {
		return err
	}
	if _, err := s.setTags(r, old.ID, func(tags []string) ([]string, error) {
		if slices.Contains(tags, tag) {
			return tags, nil
		}
		if len(tags) >= maxTags {
			return nil, api.BadRequest("Invalid input for field 'tags': at most %d tags are allowed.", maxTags)
		}
		return append(tags, tag), nil
	}); err != nil {
		return err
	}
	w.Header().Set("Location", s.base(r)+"/v3/projects/"+old.ID+"/tags/"+url.PathEscape(tag))
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteProjectTag is DELETE /v3/projects/{project_id}/tags/{value}.
func (s *Server) deleteProjectTag(w http.ResponseWriter, r *http.Request) error {
	old, err := s.tagTarget(r, "identity:delete_project_tag")
	if err != nil {
		return err
	}
	tag := r.PathValue("value")
	if _, err := s.setTags(r, old.ID, func(tags []string) ([]string, error) {
		i := slices.Index(tags, tag)
		if i < 0 {
			return nil, api.NotFound("Could not find tag %s on project %s.", tag, old.ID)
		}
		return slices.Delete(tags, i, i+1), nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tagFilter is the project listing's tag filters: tags (all of these),
// tags-any (one of these), not-tags (not all of these) and not-tags-any
// (none of these), each a comma-separated list.
type tagFilter struct {
	all, anyOf, notAll, notAny []string
}

func parseTagFilter(q url.Values) tagFilter {
	split := func(k string) []string {
		v := q.Get(k)
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	return tagFilter{all: split("tags"), anyOf: split("tags-any"), notAll: split("not-tags"), notAny: split("not-tags-any")}
}

func (f tagFilter) match(tags []string) bool {
	has := func(t string) bool { return slices.Contains(tags, t) }
	hasAll := func(ts []string) bool {
		for _, t := range ts {
			if !has(t) {
				return false
			}
		}
		return true
	}
	switch {
	case len(f.all) > 0 && !hasAll(f.all):
		return false
	case len(f.anyOf) > 0 && !slices.ContainsFunc(f.anyOf, has):
		return false
	case len(f.notAll) > 0 && hasAll(f.notAll):
		return false
	case len(f.notAny) > 0 && slices.ContainsFunc(f.notAny, has):
		return false
	}
	return true
}
