package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// Helpers shared by the resource handlers.

// fetch reads a record for a handler that is guarded by action: a record
// the caller may not see is a 403 whether or not it exists, so that IDs
// cannot be probed; a record it could see but which is missing is a 404.
func fetch[T any](s *Server, r *http.Request, action, key, kind, id string, target func(*T) policy.Target) (T, error) {
	v, _, err := getRecord[T](r.Context(), s.st, key, kind, id)
	if errors.Is(err, api.ErrNotFound) {
		if s.policy.Allowed(action, caller(r), policy.Target{}) {
			return v, err
		}
		return v, api.Forbidden("You are not authorized to perform the requested action: %s.", action)
	}
	if err != nil {
		return v, err
	}
	if err := s.enforce(r, action, target(&v)); err != nil {
		return v, err
	}
	return v, nil
}

// writeList sends a Keystone collection, {"<key>":[...],"links":{...}},
// paginated when the client gave a limit or a marker.
func writeList[T any](w http.ResponseWriter, r *http.Request, s *Server, key string, items []T, id func(*T) string, view func(*T) map[string]any) error {
	p, err := api.ParsePage(r, 0)
	if err != nil {
		return err
	}
	page, next, err := api.Paginate(items, func(v T) string { return id(&v) }, p)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(page))
	for i := range page {
		out = append(out, view(&page[i]))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{key: out, "links": api.NewCollectionLinks(s.base(r), r, p.Limit, next)})
	return nil
}

// filterBool reads a boolean query filter; absent is nil.
func filterBool(r *http.Request, name string) (*bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, api.BadRequest("Invalid input for query parameter '%s': %q is not a boolean.", name, v)
	}
	return &b, nil
}

// validName checks a name: present, not blank, not too long, no control
// characters.
func validName(field, name string, max int) error {
	if strings.TrimSpace(name) == "" {
		return api.BadRequest("Invalid input for field '%s': it must not be empty.", field)
	}
	if len(name) > max {
		return api.BadRequest("Invalid input for field '%s': it is longer than %d characters.", field, max)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return api.BadRequest("Invalid input for field '%s': it contains control characters.", field)
	}
	return nil
}

func validText(field, s string, max int) error {
	if len(s) > max {
		return api.BadRequest("Invalid input for field '%s': it is longer than %d characters.", field, max)
	}
	return nil
}

func validTags(tags []string) error {
	if len(tags) > maxTags {
		return api.BadRequest("Invalid input for field 'tags': at most %d tags are allowed.", maxTags)
	}
	for i, t := range tags {
		if t == "" || len(t) > 255 || strings.ContainsAny(t, ",/") {
			return api.BadRequest("Invalid input for field 'tags': %q is not a valid tag.", t)
		}
		if slices.Contains(tags[:i], t) {
			return api.BadRequest("Invalid input for field 'tags': %q is there twice.", t)
		}
	}
	return nil
}

// callerDomain is the domain a new resource goes to when the request does
// not name one: the domain of the caller's scope, else the default domain.
func callerDomain(r *http.Request) string {
	c := caller(r)
	switch {
	case c.DomainID != "":
		return c.DomainID
	case c.ProjectDomainID != "":
		return c.ProjectDomainID
	}
	return DefaultDomainID
}

// listDomainFilter returns the domain_id filter of a listing. A caller
// that may list only within its own domain gets that domain as the filter
// when it gave none.
func (s *Server) listDomainFilter(r *http.Request, action string) (string, error) {
	d := r.URL.Query().Get("domain_id")
	c := caller(r)
	if d == "" && c.DomainID != "" && !s.policy.Allowed(action, c, policy.Target{}) {
		d = c.DomainID
	}
	if err := s.enforce(r, action, policy.Target{"target.domain_id": d}); err != nil {
		return "", err
	}
	return d, nil
}

func (s *Server) domainExists(ctx context.Context, id string) (bool, error) {
	d, err := lookup[domain](ctx, s.st, domainsPrefix+id)
	return d != nil, err
}

func links(self string) map[string]string { return map[string]string{"self": self} }
