package identity

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/identity/keyring"
)

// payload is what a token carries, sealed: who, how, which scope, when.
// Everything else (names, roles, the catalog) is looked up when the token
// is used, so that a change to a user or a grant applies to the tokens
// already out.
type payload struct {
	UserID    string   `json:"u"`
	Methods   []string `json:"m"`
	ProjectID string   `json:"p,omitempty"`
	DomainID  string   `json:"d,omitempty"`
	System    bool     `json:"s,omitempty"`
	AppCredID string   `json:"ac,omitempty"`
	IssuedAt  int64    `json:"i"` // Unix microseconds
	ExpiresAt int64    `json:"e"` // Unix microseconds
	AuditIDs  []string `json:"a"`
}

// errInvalidToken is every reason a token is refused; which one is never
// told to the client.
var errInvalidToken = &api.Error{Kind: api.ErrUnauthorized, Message: "The request you have made requires authentication."}

// tokenInfo is a payload resolved against the current state.
type tokenInfo struct {
	p             payload
	user          user
	userDomain    domain
	project       *project
	projectDomain *domain
	domain        *domain
	roles         []role
	appCred       *appCred
}

func (t *tokenInfo) issuedAt() time.Time  { return time.UnixMicro(t.p.IssuedAt).UTC() }
func (t *tokenInfo) expiresAt() time.Time { return time.UnixMicro(t.p.ExpiresAt).UTC() }

func (s *Server) seal(p payload) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return s.keys.Seal(b)
}

// open unseals a token and checks its expiry; it does not resolve it.
func (s *Server) open(ctx context.Context, token string) (payload, error) {
	var p payload
	b, err := s.keys.Unseal(ctx, token)
	if errors.Is(err, keyring.ErrInvalid) {
		return p, errInvalidToken
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil || p.UserID == "" {
		return p, errInvalidToken
	}
	if !s.now().Before(time.UnixMicro(p.ExpiresAt)) {
		return p, errInvalidToken
	}
	return p, nil
}

// resolve checks a payload against the current state: the user, its
// domain, the scope and the application credential must exist and be
// enabled, and the user must still hold a role on the scope. Any failure
// is errInvalidToken; only store failures are other errors.
func (s *Server) resolve(ctx context.Context, p payload) (*tokenInfo, error) {
	t := &tokenInfo{p: p}
	u, err := lookup[user](ctx, s.st, usersPrefix+p.UserID)
	if err != nil {
		return nil, err
	}
	if u == nil || !u.Enabled {
		return nil, errInvalidToken
	}
	t.user = *u
	ud, err := lookup[domain](ctx, s.st, domainsPrefix+u.DomainID)
	if err != nil {
		return nil, err
	}
	if ud == nil || !ud.Enabled {
		return nil, errInvalidToken
	}
	t.userDomain = *ud

	var roleIDs []string
	switch {
	case p.ProjectID != "":
		pr, err := lookup[project](ctx, s.st, projectsPrefix+p.ProjectID)
		if err != nil {
			return nil, err
		}
		if pr == nil || !pr.Enabled {
			return nil, errInvalidToken
		}
		pd, err := lookup[domain](ctx, s.st, domainsPrefix+pr.DomainID)
		if err != nil {
			return nil, err
		}
		if pd == nil || !pd.Enabled {
			return nil, errInvalidToken
		}
		t.project, t.projectDomain = pr, pd
		roleIDs, err = s.userRoleIDs(ctx, p.UserID, scopeProj, p.ProjectID)
		if err != nil {
			return nil, err
		}
	case p.DomainID != "":
		d, err := lookup[domain](ctx, s.st, domainsPrefix+p.DomainID)
		if err != nil {
			return nil, err
		}
		if d == nil || !d.Enabled {
			return nil, errInvalidToken
		}
		t.domain = d
		roleIDs, err = s.userRoleIDs(ctx, p.UserID, scopeDomain, p.DomainID)
		if err != nil {
			return nil, err
		}
	case p.System:
		roleIDs, err = s.userRoleIDs(ctx, p.UserID, scopeSystem, systemAll)
		if err != nil {
			return nil, err
		}
	}
	if p.ProjectID != "" || p.DomainID != "" || p.System {
		roles, err := s.effectiveRoles(ctx, roleIDs)
		if err != nil {
			return nil, err
		}
		if p.AppCredID != "" {
			ac, err := lookup[appCred](ctx, s.st, appCredsPrefix+p.AppCredID)
			if err != nil {
				return nil, err
			}
			if ac == nil || ac.UserID != p.UserID || ac.ProjectID != p.ProjectID {
				return nil, errInvalidToken
			}
			if ac.ExpiresAt != nil && !s.now().Before(*ac.ExpiresAt) {
				return nil, errInvalidToken
			}
			// The credential's roles, as far as the user still holds them.
			roles = slices.DeleteFunc(roles, func(r role) bool { return !slices.Contains(ac.RoleIDs, r.ID) })
			t.appCred = ac
		}
		if len(roles) == 0 {
			return nil, errInvalidToken
		}
		t.roles = roles
	}
	return t, nil
}

// userRoleIDs returns the IDs of the roles the user holds on a scope,
// directly or through its groups (implied roles not yet added).
func (s *Server) userRoleIDs(ctx context.Context, userID, scopeType, scopeID string) ([]string, error) {
	ids, err := listKeys(ctx, s.st, assignmentScopePrefix(actorUser, userID, scopeType, scopeID))
	if err != nil {
		return nil, err
	}
	groups, err := listKeys(ctx, s.st, userGroupsPrefix+seg(userID)+"/")
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		more, err := listKeys(ctx, s.st, assignmentScopePrefix(actorGroup, g, scopeType, scopeID))
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// effectiveRoles is what a token carries for the roles with these IDs:
// every role they imply, transitively, except domain-specific roles, which
// only stand for the global roles they imply (as in Keystone).
func (s *Server) effectiveRoles(ctx context.Context, ids []string) ([]role, error) {
	roles, err := s.expandRoles(ctx, ids)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(roles, func(r role) bool { return r.DomainID != "" }), nil
}

// expandRoles returns the roles with these IDs and every role they imply,
// transitively, sorted by name; IDs of deleted roles are dropped.
func (s *Server) expandRoles(ctx context.Context, ids []string) ([]role, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	all, err := s.allRoles(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []role
	var walk func(id string)
	walk = func(id string) {
		r, ok := all[id]
		if !ok || seen[id] {
			return
		}
		seen[id] = true
		out = append(out, r)
		for _, im := range r.Implies {
			walk(im)
		}
	}
	for _, id := range ids {
		walk(id)
	}
	slices.SortFunc(out, func(a, b role) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *Server) allRoles(ctx context.Context) (map[string]role, error) {
	list, err := listRecords[role](ctx, s.st, rolesPrefix)
	if err != nil {
		return nil, err
	}
	m := make(map[string]role, len(list))
	for _, r := range list {
		m[r.ID] = r
	}
	return m, nil
}

// ValidateToken implements api.TokenValidator: it opens the token,
// refuses it if expired or revoked, and resolves what it grants now.
func (s *Server) ValidateToken(ctx context.Context, token string) (*api.Credentials, error) {
	t, err := s.validate(ctx, token)
	if err != nil {
		return nil, err
	}
	return t.credentials(), nil
}

func (s *Server) validate(ctx context.Context, token string) (*tokenInfo, error) {
	p, err := s.open(ctx, token)
	if err != nil {
		return nil, err
	}
	t, err := s.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if s.revoked.IsRevoked(t.credentials()) {
		return nil, errInvalidToken
	}
	return t, nil
}

func (t *tokenInfo) credentials() *api.Credentials {
	c := &api.Credentials{
		UserID:         t.user.ID,
		UserName:       t.user.Name,
		UserDomainID:   t.userDomain.ID,
		UserDomainName: t.userDomain.Name,
		System:         t.p.System,
		Methods:        t.p.Methods,
		AuditIDs:       t.p.AuditIDs,
		IssuedAt:       t.issuedAt(),
		ExpiresAt:      t.expiresAt(),
	}
	if t.project != nil {
		c.ProjectID, c.ProjectName = t.project.ID, t.project.Name
		c.ProjectDomainID, c.ProjectDomainName = t.projectDomain.ID, t.projectDomain.Name
	}
	if t.domain != nil {
		c.DomainID, c.DomainName = t.domain.ID, t.domain.Name
	}
	for _, r := range t.roles {
		c.Roles = append(c.Roles, r.Name)
		c.RoleIDs = append(c.RoleIDs, r.ID)
	}
	if t.appCred != nil {
		c.AppCredID = t.appCred.ID
		c.AppCredUnrestricted = t.appCred.Unrestricted
	}
	return c
}

// The token body, as Keystone returns it from POST and GET
// /v3/auth/tokens.

type tokenBody struct {
	Methods   []string        `json:"methods"`
	ExpiresAt string          `json:"expires_at"`
	IssuedAt  string          `json:"issued_at"`
	AuditIDs  []string        `json:"audit_ids"`
	User      tokenUser       `json:"user"`
	Project   *tokenProject   `json:"project,omitempty"`
	IsDomain  *bool           `json:"is_domain,omitempty"`
	Domain    *nameRef        `json:"domain,omitempty"`
	System    map[string]bool `json:"system,omitempty"`
	Roles     []roleRef       `json:"roles,omitempty"`
	Catalog   *[]catalogEntry `json:"catalog,omitempty"`
	AppCred   *tokenAppCred   `json:"application_credential,omitempty"`
}

type nameRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tokenUser struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	Domain            nameRef `json:"domain"`
	PasswordExpiresAt *string `json:"password_expires_at"`
}

type tokenProject struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Domain nameRef `json:"domain"`
}

type roleRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tokenAppCred struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Restricted bool   `json:"restricted"`
}

type catalogEntry struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Endpoints []catalogEndpoint `json:"endpoints"`
}

type catalogEndpoint struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	Region    string `json:"region"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
}

func (s *Server) tokenBody(ctx context.Context, t *tokenInfo, withCatalog bool) (map[string]any, error) {
	b := tokenBody{
		Methods:   t.p.Methods,
		ExpiresAt: api.FormatTime(t.expiresAt()),
		IssuedAt:  api.FormatTime(t.issuedAt()),
		AuditIDs:  t.p.AuditIDs,
		User: tokenUser{
			ID: t.user.ID, Name: t.user.Name,
			Domain: nameRef{ID: t.userDomain.ID, Name: t.userDomain.Name},
		},
	}
	scoped := true
	switch {
	case t.project != nil:
		b.Project = &tokenProject{ID: t.project.ID, Name: t.project.Name,
			Domain: nameRef{ID: t.projectDomain.ID, Name: t.projectDomain.Name}}
		b.IsDomain = new(bool)
	case t.domain != nil:
		b.Domain = &nameRef{ID: t.domain.ID, Name: t.domain.Name}
	case t.p.System:
		b.System = map[string]bool{"all": true}
	default:
		scoped = false
	}
	for _, r := range t.roles {
		b.Roles = append(b.Roles, roleRef{ID: r.ID, Name: r.Name})
	}
	if scoped && withCatalog {
		cat, err := s.catalog(ctx, t.p.ProjectID)
		if err != nil {
			return nil, err
		}
		b.Catalog = &cat
	}
	if t.appCred != nil {
		b.AppCred = &tokenAppCred{ID: t.appCred.ID, Name: t.appCred.Name, Restricted: !t.appCred.Unrestricted}
	}
	return map[string]any{"token": b}, nil
}

// catalog is the service catalog: every enabled service with its enabled
// endpoints, project placeholders in URLs filled in. Endpoints that need a
// project are left out of tokens without one, as Keystone does.
func (s *Server) catalog(ctx context.Context, projectID string) ([]catalogEntry, error) {
	services, err := listRecords[catalogService](ctx, s.st, servicesPrefix)
	if err != nil {
		return nil, err
	}
	endpoints, err := listRecords[endpoint](ctx, s.st, endpointsPrefix)
	if err != nil {
		return nil, err
	}
	out := []catalogEntry{}
	for _, svc := range services {
		if !svc.Enabled {
			continue
		}
		e := catalogEntry{ID: svc.ID, Type: svc.Type, Name: svc.Name, Endpoints: []catalogEndpoint{}}
		for _, ep := range endpoints {
			if ep.ServiceID != svc.ID || !ep.Enabled {
				continue
			}
			u, ok := substituteURL(ep.URL, projectID)
			if !ok {
				continue
			}
			e.Endpoints = append(e.Endpoints, catalogEndpoint{
				ID: ep.ID, Interface: ep.Interface, Region: ep.RegionID, RegionID: ep.RegionID, URL: u,
			})
		}
		out = append(out, e)
	}
	return out, nil
}

// substituteURL fills the project ID into an endpoint URL's placeholders
// ($(project_id)s, %(tenant_id)s, ...); it reports false when the URL
// needs a project and there is none.
func substituteURL(u, projectID string) (string, bool) {
	for _, ph := range []string{"$(project_id)s", "%(project_id)s", "$(tenant_id)s", "%(tenant_id)s"} {
		if strings.Contains(u, ph) {
			if projectID == "" {
				return "", false
			}
			u = strings.ReplaceAll(u, ph, projectID)
		}
	}
	return u, true
}

// revokeUser revokes every token of a user issued until now.
func (s *Server) revokeUser(ctx context.Context, userID string) error {
	defer s.changed()
	return s.revoked.revoke(ctx, revocation{UserID: userID})
}
