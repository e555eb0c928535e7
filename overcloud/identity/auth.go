package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// SubjectTokenHeader carries the token being issued or checked.
const SubjectTokenHeader = "X-Subject-Token"

// The body of POST /v3/auth/tokens.
type authRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *userRef `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			AppCred *struct {
				ID     string   `json:"id"`
				Name   string   `json:"name"`
				Secret string   `json:"secret"`
				User   *userRef `json:"user"`
			} `json:"application_credential"`
		} `json:"identity"`
		// Scope is "unscoped" or an object.
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type userRef struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Domain   *domainRef `json:"domain"`
	Password string     `json:"password"`
}

type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scopeRequest struct {
	Project *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"project"`
	Domain *domainRef `json:"domain"`
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
	Trust json.RawMessage `json:"OS-TRUST:trust"`
}

// issueToken is POST /v3/auth/tokens.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) error {
	var req authRequest
	if err := api.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Auth == nil {
		return api.BadRequest("'auth' is a required property.")
	}
	id := req.Auth.Identity
	if id == nil {
		return api.BadRequest("'identity' is a required property.")
	}
	if len(id.Methods) == 0 {
		return api.BadRequest("'methods' must list at least one authentication method.")
	}
	sc, unscoped, err := parseScope(req.Auth.Scope)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.now().UTC().Truncate(time.Microsecond)
	p := payload{IssuedAt: now.UnixMicro(), ExpiresAt: now.Add(s.cfg.TokenExpiration).UnixMicro()}
	var parent *payload // set when a token is exchanged for another
	for _, m := range id.Methods {
		var userID string
		var err error
		switch {
		case m == "password" && id.Password != nil && id.Password.User != nil:
			userID, err = s.authPassword(ctx, id.Password.User)
		case m == "token" && id.Token != nil:
			var old payload
			old, err = s.authToken(ctx, id.Token.ID)
			if err == nil {
				parent, userID = &old, old.UserID
			}
		case m == "application_credential" && id.AppCred != nil:
			var ac *appCred
			ac, err = s.authAppCred(ctx, id.AppCred.ID, id.AppCred.Name, id.AppCred.User, id.AppCred.Secret)
			if err == nil {
				userID, p.AppCredID, p.ProjectID = ac.UserID, ac.ID, ac.ProjectID
				if ac.ExpiresAt != nil && ac.ExpiresAt.UnixMicro() < p.ExpiresAt {
					p.ExpiresAt = ac.ExpiresAt.UnixMicro()
				}
			}
		case m == "password" || m == "token" || m == "application_credential":
			return api.BadRequest("'%s' is a required property for the %s method.", methodBlock(m), m)
		default:
			return api.Unauthorized("Attempted to authenticate with an unsupported method.")
		}
		if err != nil {
			return err
		}
		if p.UserID != "" && p.UserID != userID {
			return errInvalidToken
		}
		p.UserID = userID
	}
	p.Methods = dedupe(id.Methods)
	p.AuditIDs = []string{newAuditID()}
	if parent != nil {
		// A token exchanged for another keeps its expiry and joins its
		// audit chain; a token from an application credential cannot be
		// rescoped.
		if parent.AppCredID != "" {
			return errInvalidToken
		}
		p.ExpiresAt = min(p.ExpiresAt, parent.ExpiresAt)
		p.Methods = dedupe(append(p.Methods, parent.Methods...))
		p.AuditIDs = append(p.AuditIDs, parent.AuditIDs[len(parent.AuditIDs)-1])
	}
	if err := s.scope(ctx, &p, sc, unscoped); err != nil {
		return err
	}
	t, err := s.resolve(ctx, p)
	if err != nil {
		return err
	}
	token, err := s.seal(p)
	if err != nil {
		return err
	}
	body, err := s.tokenBody(ctx, t, !r.URL.Query().Has("nocatalog"))
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "token issued", "user_id", p.UserID, "methods", p.Methods,
		"project_id", p.ProjectID, "domain_id", p.DomainID, "system", p.System,
		"audit_id", p.AuditIDs[0], "request_id", api.RequestIDFrom(ctx))
	w.Header().Set(SubjectTokenHeader, token)
	api.WriteJSON(w, http.StatusCreated, body)
	return nil
}

func methodBlock(m string) string {
	if m == "password" {
		return "password.user"
	}
	return m
}

func dedupe(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// parseScope checks the shape of the requested scope, before any
// authentication: nil means none was asked for, and unscoped says it was
// explicitly "unscoped".
func parseScope(raw json.RawMessage) (sc *scopeRequest, unscoped bool, err error) {
	trimmed := strings.TrimSpace(string(raw))
	switch trimmed {
	case "", "null":
		return nil, false, nil
	case `"unscoped"`:
		return nil, true, nil
	}
	sc = &scopeRequest{}
	if err := json.Unmarshal([]byte(trimmed), sc); err != nil {
		return nil, false, api.BadRequest("Invalid input for field 'scope': expected \"unscoped\" or an object.")
	}
	n := 0
	for _, set := range []bool{sc.Project != nil, sc.Domain != nil, sc.System != nil, len(sc.Trust) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return nil, false, api.BadRequest("Invalid input for field 'scope': give exactly one of project, domain and system.")
	case sc.System != nil && !sc.System.All:
		return nil, false, api.BadRequest("Invalid input for field 'scope.system': 'all' must be true.")
	case sc.Domain != nil && sc.Domain.ID == "" && sc.Domain.Name == "":
		return nil, false, api.BadRequest("Invalid input for field 'scope.domain': give its id or its name.")
	case sc.Project != nil && sc.Project.ID == "" && (sc.Project.Name == "" || sc.Project.Domain == nil):
		return nil, false, api.BadRequest("Invalid input for field 'scope.project': give its id, or its name and domain.")
	case sc.Project != nil && sc.Project.Domain != nil && sc.Project.Domain.ID == "" && sc.Project.Domain.Name == "":
		return nil, false, api.BadRequest("Invalid input for field 'scope.project.domain': give its id or its name.")
	}
	return sc, false, nil
}

// scope applies the requested scope to p. With no scope, a user with a
// default project gets a token on it if it holds a role there (as in
// Keystone); otherwise the token is unscoped.
func (s *Server) scope(ctx context.Context, p *payload, sc *scopeRequest, unscoped bool) error {
	if p.AppCredID != "" {
		// An application credential's token is always on its project.
		if sc != nil || unscoped {
			return errInvalidToken
		}
		return nil
	}
	if unscoped {
		return nil
	}
	if sc == nil {
		u, err := lookup[user](ctx, s.st, usersPrefix+p.UserID)
		if err != nil {
			return err
		}
		if u != nil && u.DefaultProjectID != "" {
			ids, err := s.userRoleIDs(ctx, u.ID, scopeProj, u.DefaultProjectID)
			if err != nil {
				return err
			}
			if pr, _ := lookup[project](ctx, s.st, projectsPrefix+u.DefaultProjectID); len(ids) > 0 && pr != nil && pr.Enabled {
				p.ProjectID = u.DefaultProjectID
			}
		}
		return nil
	}
	switch {
	case len(sc.Trust) > 0:
		return api.Forbidden("Trusts are not supported.")
	case sc.System != nil:
		p.System = true
	case sc.Domain != nil:
		d, err := s.findDomain(ctx, sc.Domain, "scope.domain")
		if err != nil {
			return err
		}
		p.DomainID = d
	case sc.Project != nil:
		if sc.Project.ID != "" {
			p.ProjectID = sc.Project.ID
			break
		}
		d, err := s.findDomain(ctx, sc.Project.Domain, "scope.project.domain")
		if err != nil {
			return err
		}
		id, ok, err := idByName(ctx, s.st, projectNameKey(d, sc.Project.Name))
		if err != nil {
			return err
		}
		if !ok {
			return errInvalidToken
		}
		p.ProjectID = id
	}
	return nil
}

// findDomain resolves a domain reference to an ID. An unknown domain is a
// failed authentication, not a 404, so that scopes cannot be probed.
func (s *Server) findDomain(ctx context.Context, ref *domainRef, field string) (string, error) {
	switch {
	case ref.ID != "":
		return ref.ID, nil
	case ref.Name != "":
		id, ok, err := idByName(ctx, s.st, domainNameKey(ref.Name))
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errInvalidToken
		}
		return id, nil
	}
	return "", api.BadRequest("Invalid input for field '%s': give its id or its name.", field)
}

// findUser resolves a user reference (an ID, or a name and domain) to a
// user; nil when there is no such user.
func (s *Server) findUser(ctx context.Context, ref *userRef) (*user, error) {
	id := ref.ID
	if id == "" {
		if ref.Name == "" {
			return nil, api.BadRequest("Invalid input for field 'user': give its id, or its name and domain.")
		}
		if ref.Domain == nil {
			return nil, api.BadRequest("Invalid input for field 'user': a user name needs its domain.")
		}
		d, err := s.findDomain(ctx, ref.Domain, "user.domain")
		if err != nil {
			return nil, nil
		}
		var ok bool
		id, ok, err = idByName(ctx, s.st, userNameKey(d, ref.Name))
		if err != nil || !ok {
			return nil, err
		}
	}
	return lookup[user](ctx, s.st, usersPrefix+id)
}

// throttleKey names the identity an attempt claims, whether or not it
// exists, so that throttling says nothing about which users exist.
func throttleKey(kind string, ref *userRef) string {
	if ref == nil {
		return kind
	}
	if ref.ID != "" {
		return kind + ":id:" + ref.ID
	}
	d := ""
	if ref.Domain != nil {
		d = ref.Domain.ID + "|" + strings.ToLower(ref.Domain.Name)
	}
	return kind + ":name:" + d + "/" + ref.Name
}

// authPassword checks a user's password and returns the user's ID. Every
// failure looks the same to the client.
func (s *Server) authPassword(ctx context.Context, ref *userRef) (string, error) {
	if len(ref.Password) > maxPasswordLen {
		return "", errInvalidToken
	}
	done, admitted := s.throttle.begin(ctx, throttleKey("password", ref))
	if !admitted {
		s.log.WarnContext(ctx, "authentication throttled", "method", "password", "user", throttleSubject(ref))
		return "", errInvalidToken
	}
	failed := true
	defer func() { done(failed) }()
	u, err := s.findUser(ctx, ref)
	if err != nil {
		return "", err
	}
	stored := ""
	if u != nil && u.Enabled {
		stored = u.PasswordHash
	}
	ok, err := s.hasher.verify(ctx, stored, ref.Password)
	if err != nil {
		return "", err
	}
	if !ok {
		s.log.InfoContext(ctx, "authentication failed", "method", "password", "user", throttleSubject(ref))
		return "", errInvalidToken
	}
	failed = false
	return u.ID, nil
}

// throttleSubject is what a log line may say about who tried: the ID or
// the name, never the password.
func throttleSubject(ref *userRef) string {
	if ref.ID != "" {
		return ref.ID
	}
	return ref.Name
}

// authToken accepts a valid token for the token method.
func (s *Server) authToken(ctx context.Context, token string) (payload, error) {
	t, err := s.validate(ctx, token)
	if err != nil {
		return payload{}, err
	}
	return t.p, nil
}

// authAppCred checks an application credential's secret.
func (s *Server) authAppCred(ctx context.Context, id, name string, ref *userRef, secret string) (*appCred, error) {
	key := "appcred:" + id
	if id == "" {
		key = throttleKey("appcred", ref) + "/" + name
	}
	if len(secret) > maxPasswordLen {
		return nil, errInvalidToken
	}
	done, admitted := s.throttle.begin(ctx, key)
	if !admitted {
		s.log.WarnContext(ctx, "authentication throttled", "method", "application_credential")
		return nil, errInvalidToken
	}
	failed := true
	defer func() { done(failed) }()
	var ac *appCred
	var err error
	switch {
	case id != "":
		ac, err = lookup[appCred](ctx, s.st, appCredsPrefix+id)
	case name != "" && ref != nil:
		var u *user
		if u, err = s.findUser(ctx, ref); err == nil && u != nil {
			var acID string
			var ok bool
			if acID, ok, err = idByName(ctx, s.st, appCredNameKey(u.ID, name)); err == nil && ok {
				ac, err = lookup[appCred](ctx, s.st, appCredsPrefix+acID)
			}
		}
	default:
		return nil, api.BadRequest("Invalid input for field 'application_credential': give its id, or its name and user.")
	}
	if err != nil {
		return nil, err
	}
	stored := ""
	if ac != nil && (ac.ExpiresAt == nil || s.now().Before(*ac.ExpiresAt)) {
		stored = ac.SecretHash
	}
	ok, err := s.hasher.verify(ctx, stored, secret)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.log.InfoContext(ctx, "authentication failed", "method", "application_credential")
		return nil, errInvalidToken
	}
	failed = false
	return ac, nil
}

// subjectToken resolves the X-Subject-Token of a validate, check or
// revoke request; an invalid one is a 404, as in Keystone.
func (s *Server) subjectToken(r *http.Request) (*tokenInfo, error) {
	tok := r.Header.Get(SubjectTokenHeader)
	if tok == "" {
		return nil, api.BadRequest("The X-Subject-Token header is required.")
	}
	t, err := s.validate(r.Context(), tok)
	if err != nil {
		if err == errInvalidToken {
			return nil, api.NotFound("Could not find token.")
		}
		return nil, err
	}
	return t, nil
}

// validateToken is GET (and HEAD) /v3/auth/tokens.
func (s *Server) validateToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.subjectToken(r)
	if err != nil {
		return err
	}
	if err := s.enforce(r, "identity:validate_token", policy.Target{"target.token.user_id": t.user.ID}); err != nil {
		return err
	}
	body, err := s.tokenBody(r.Context(), t, !r.URL.Query().Has("nocatalog"))
	if err != nil {
		return err
	}
	w.Header().Set(SubjectTokenHeader, r.Header.Get(SubjectTokenHeader))
	api.WriteJSON(w, http.StatusOK, body)
	return nil
}

// revokeToken is DELETE /v3/auth/tokens.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.subjectToken(r)
	if err != nil {
		return err
	}
	if err := s.enforce(r, "identity:revoke_token", policy.Target{"target.token.user_id": t.user.ID}); err != nil {
		return err
	}
	if err := s.revoked.revoke(r.Context(), revocation{AuditID: t.p.AuditIDs[0]}); err != nil {
		return err
	}
	s.auth.Forget(r.Header.Get(SubjectTokenHeader))
	s.log.InfoContext(r.Context(), "token revoked", "audit_id", t.p.AuditIDs[0], "user_id", t.user.ID,
		"by", caller(r).UserID, "request_id", api.RequestIDFrom(r.Context()))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authCatalog is GET /v3/auth/catalog.
func (s *Server) authCatalog(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:get_auth_catalog", nil); err != nil {
		return err
	}
	c := caller(r)
	if c.ProjectID == "" && c.DomainID == "" && !c.System {
		return api.Forbidden("The service catalog needs a scoped token.")
	}
	cat, err := s.catalog(r.Context(), c.ProjectID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"catalog": cat,
		"links":   map[string]any{"self": s.base(r) + "/v3/auth/catalog", "previous": nil, "next": nil},
	})
	return nil
}

// authProjects is GET /v3/auth/projects: the projects the caller may scope
// a token to.
func (s *Server) authProjects(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:get_auth_projects", nil); err != nil {
		return err
	}
	projects, err := s.projectsOfUser(r.Context(), caller(r).UserID)
	if err != nil {
		return err
	}
	return s.writeProjects(w, r, projects)
}

// authDomains is GET /v3/auth/domains.
func (s *Server) authDomains(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:get_auth_domains", nil); err != nil {
		return err
	}
	ctx := r.Context()
	all, err := listRecords[domain](ctx, s.st, domainsPrefix)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, d := range all {
		ids, err := s.userRoleIDs(ctx, caller(r).UserID, scopeDomain, d.ID)
		if err != nil {
			return err
		}
		if len(ids) > 0 && d.Enabled {
			out = append(out, s.domainView(r, &d))
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"domains": out, "links": api.NewCollectionLinks(s.base(r), r, 0, "")})
	return nil
}

// authSystem is GET /v3/auth/system.
func (s *Server) authSystem(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:get_auth_system", nil); err != nil {
		return err
	}
	ids, err := s.userRoleIDs(r.Context(), caller(r).UserID, scopeSystem, systemAll)
	if err != nil {
		return err
	}
	sys := []map[string]bool{}
	if len(ids) > 0 {
		sys = append(sys, map[string]bool{"all": true})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"system": sys, "links": api.NewCollectionLinks(s.base(r), r, 0, "")})
	return nil
}

// base is the URL root that links in responses start with.
func (s *Server) base(r *http.Request) string { return api.BaseURL(r) }
