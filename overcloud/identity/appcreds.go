package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// Application credentials: a secret a user makes for a program, bound to
// one project and a subset of the user's roles there.

type appCredInput struct {
	Name         *string          `json:"name"`
	Description  *string          `json:"description"`
	Secret       *string          `json:"secret"`
	ExpiresAt    *string          `json:"expires_at"`
	Roles        []roleSelector   `json:"roles"`
	Unrestricted *bool            `json:"unrestricted"`
	AccessRules  *json.RawMessage `json:"access_rules"`
}

// appCredTimeFormat is how Keystone writes an application credential's
// expires_at: UTC, microseconds, no zone (oslo's PERFECT_TIME_FORMAT), the
// form gophercloud (JSONRFC3339MilliNoZ) and Tempest read back.
const appCredTimeFormat = "2006-01-02T15:04:05.000000"

type roleSelector struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) appCredView(r *http.Request, ac *appCred, roles map[string]role) map[string]any {
	rs := []map[string]any{}
	for _, id := range ac.RoleIDs {
		ro, ok := roles[id]
		if !ok {
			continue
		}
		var dom any
		if ro.DomainID != "" {
			dom = ro.DomainID
		}
		rs = append(rs, map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": dom})
	}
	var exp any
	if ac.ExpiresAt != nil {
		exp = ac.ExpiresAt.UTC().Format(appCredTimeFormat)
	}
	return map[string]any{
		"id": ac.ID, "name": ac.Name, "description": ac.Description,
		"user_id": ac.UserID, "project_id": ac.ProjectID, "roles": rs,
		"expires_at": exp, "unrestricted": ac.Unrestricted, "access_rules": []any{},
		"links": links(s.base(r) + "/v3/users/" + ac.UserID + "/application_credentials/" + ac.ID),
	}
}

func appCredTarget(userID string) policy.Target {
	return policy.Target{"user_id": userID, "target.user.id": userID}
}

// restrictedAppCred refuses a token made from a restricted application
// credential, which may not manage application credentials.
func restrictedAppCred(r *http.Request) error {
	if c := caller(r); c.AppCredID != "" && !c.AppCredUnrestricted {
		return api.Forbidden("Using method 'application_credential' is not allowed for managing additional application credentials.")
	}
	return nil
}

func (s *Server) createAppCred(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("user_id")
	var body struct {
		AppCred *appCredInput `json:"application_credential"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.AppCred
	if in == nil || in.Name == nil {
		return api.BadRequest("'application_credential.name' is a required property.")
	}
	if err := validName("application_credential.name", *in.Name, 255); err != nil {
		return err
	}
	if err := s.enforce(r, "identity:create_application_credential", appCredTarget(uid)); err != nil {
		return err
	}
	if err := restrictedAppCred(r); err != nil {
		return err
	}
	c := caller(r)
	if c.ProjectID == "" {
		return api.BadRequest("Application credentials are made with a project-scoped token.")
	}
	if in.AccessRules != nil && string(*in.AccessRules) != "null" && string(*in.AccessRules) != "[]" {
		return api.BadRequest("Invalid input for field 'application_credential.access_rules': access rules are not supported.")
	}
	now := s.now().UTC()
	ac := appCred{ID: newID(), Name: *in.Name, UserID: uid, ProjectID: c.ProjectID, CreatedAt: now}
	if in.Description != nil {
		ac.Description = *in.Description
	}
	if in.Unrestricted != nil {
		ac.Unrestricted = *in.Unrestricted
	}
	if in.ExpiresAt != nil && *in.ExpiresAt != "" {
		t, err := api.ParseTime(*in.ExpiresAt)
		if err != nil {
			return api.BadRequest("Invalid input for field 'application_credential.expires_at': %q is not an ISO 8601 date and time.", *in.ExpiresAt)
		}
		if !t.After(now) {
			return api.BadRequest("Invalid input for field 'application_credential.expires_at': it is in the past.")
		}
		ac.ExpiresAt = &t
	}
	// The roles: those asked for, each of which the token must carry, or
	// else all the token's roles.
	if len(in.Roles) == 0 {
		ac.RoleIDs = slices.Clone(c.RoleIDs)
	}
	for _, sel := range in.Roles {
		i := slices.IndexFunc(c.RoleIDs, func(id string) bool { return id == sel.ID })
		if sel.ID == "" {
			i = slices.IndexFunc(c.Roles, func(n string) bool { return n == sel.Name })
		}
		if i < 0 || (sel.ID == "" && sel.Name == "") {
			return api.BadRequest("Invalid input for field 'application_credential.roles': the token does not carry role %s%s.", sel.ID, sel.Name)
		}
		if !slices.Contains(ac.RoleIDs, c.RoleIDs[i]) {
			ac.RoleIDs = append(ac.RoleIDs, c.RoleIDs[i])
		}
	}
	secret := ""
	if in.Secret != nil && *in.Secret != "" {
		if len(*in.Secret) > maxPasswordLen {
			return api.BadRequest("Invalid input for field 'application_credential.secret': it is longer than %d characters.", maxPasswordLen)
		}
		secret = *in.Secret
	} else {
		var b [64]byte
		_, _ = rand.Read(b[:])
		secret = base64.RawURLEncoding.EncodeToString(b[:])
	}
	ctx := r.Context()
	h, err := s.hasher.hash(ctx, secret)
	if err != nil {
		return err
	}
	ac.SecretHash = h
	if err := createRecord(ctx, s.st, "application_credential", ac.Name, appCredsPrefix+ac.ID, ac, appCredNameKey(uid, ac.Name), ac.ID); err != nil {
		return err
	}
	roles, err := s.allRoles(ctx)
	if err != nil {
		return err
	}
	v := s.appCredView(r, &ac, roles)
	v["secret"] = secret // shown this once, never stored or logged
	s.log.InfoContext(ctx, "application credential created", "id", ac.ID, "user_id", uid, "project_id", ac.ProjectID)
	api.WriteJSON(w, http.StatusCreated, map[string]any{"application_credential": v})
	return nil
}

func (s *Server) listAppCreds(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("user_id")
	if err := s.enforce(r, "identity:list_application_credentials", appCredTarget(uid)); err != nil {
		return err
	}
	ctx := r.Context()
	names, err := listKeys(ctx, s.st, appCredNameKey(uid, ""))
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("name")
	var acs []appCred
	for _, n := range names {
		if want != "" && n != want {
			continue
		}
		id, ok, err := idByName(ctx, s.st, appCredNameKey(uid, n))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		ac, err := lookup[appCred](ctx, s.st, appCredsPrefix+id)
		if err != nil {
			return err
		}
		if ac != nil {
			acs = append(acs, *ac)
		}
	}
	slices.SortFunc(acs, func(a, b appCred) int { return strings.Compare(a.ID, b.ID) })
	roles, err := s.allRoles(ctx)
	if err != nil {
		return err
	}
	return writeList(w, r, s, "application_credentials", acs, func(ac *appCred) string { return ac.ID },
		func(ac *appCred) map[string]any { return s.appCredView(r, ac, roles) })
}

// userAppCred reads one of a user's application credentials; one of
// another user is a 404.
func (s *Server) userAppCred(r *http.Request, action string) (appCred, error) {
	uid, id := r.PathValue("user_id"), r.PathValue("application_credential_id")
	if err := s.enforce(r, action, appCredTarget(uid)); err != nil {
		return appCred{}, err
	}
	ac, _, err := getRecord[appCred](r.Context(), s.st, appCredsPrefix+id, "application credential", id)
	if err != nil {
		return appCred{}, err
	}
	if ac.UserID != uid {
		return appCred{}, notFound("application credential", id)
	}
	return ac, nil
}

func (s *Server) getAppCred(w http.ResponseWriter, r *http.Request) error {
	ac, err := s.userAppCred(r, "identity:get_application_credential")
	if err != nil {
		return err
	}
	roles, err := s.allRoles(r.Context())
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"application_credential": s.appCredView(r, &ac, roles)})
	return nil
}

func (s *Server) deleteAppCred(w http.ResponseWriter, r *http.Request) error {
	ac, err := s.userAppCred(r, "identity:delete_application_credential")
	if err != nil {
		return err
	}
	if err := restrictedAppCred(r); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := deleteRecord(ctx, s.st, "application credential", ac.ID, appCredsPrefix+ac.ID,
		func(a *appCred) string { return appCredNameKey(a.UserID, a.Name) }, nil); err != nil {
		return err
	}
	if err := s.revoked.revoke(ctx, revocation{AppCredID: ac.ID}); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
