package identity

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// expiresFormat is the one timestamp shape Tempest parses.
var expiresFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)

	r := env.must(t, http.StatusMultipleChoices, "GET", "/", "", nil, "Accept", "application/json")
	if got, want := r.header.Get("Location"), env.url+"/v3/"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	want := map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links": []any{map[string]any{"rel": "self", "href": env.url + "/v3/"}},
		"media-types": []any{map[string]any{
			"base": "application/json", "type": "application/vnd.openstack.identity-v3+json",
		}},
	}
	if diff := cmp.Diff(map[string]any{"versions": map[string]any{"values": []any{want}}}, r.body); diff != "" {
		t.Errorf("GET / (-want +got):\n%s", diff)
	}
	for _, p := range []string{"/v3", "/v3/"} {
		r := env.must(t, http.StatusOK, "GET", p, "", nil)
		if diff := cmp.Diff(map[string]any{"version": want}, r.body); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", p, diff)
		}
	}
	if id := env.do(t, "GET", "/v3", "", nil).header.Get("X-Openstack-Request-Id"); !regexp.MustCompile(`^req-[0-9a-f-]{36}$`).MatchString(id) {
		t.Errorf("x-openstack-request-id = %q", id)
	}
	r = env.must(t, http.StatusNotFound, "GET", "/v3/nothing-here", "", nil)
	if str(r.body, "error", "title") != "Not Found" || path(r.body, "error", "code") != float64(404) {
		t.Errorf("unknown route body = %s", r.raw)
	}
	r = env.must(t, http.StatusMethodNotAllowed, "PUT", "/v3/projects", "", nil)
	if r.header.Get("Allow") == "" || str(r.body, "error", "message") == "" {
		t.Errorf("405 without Allow or body: %v %s", r.header, r.raw)
	}
}

func TestPasswordTokenProjectScope(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	r := env.must(t, http.StatusCreated, "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "admin", "domain": map[string]any{"name": "Default"}, "password": adminPassword,
		}}},
		"scope": projectScope("admin"),
	}})
	tok := r.body["token"].(map[string]any)
	if r.header.Get("X-Subject-Token") == "" {
		t.Fatal("no X-Subject-Token")
	}
	for _, f := range []string{"expires_at", "issued_at"} {
		if !expiresFormat.MatchString(str(tok, f)) {
			t.Errorf("%s = %q, want 2006-01-02T15:04:05.000000Z", f, str(tok, f))
		}
	}
	exp, _ := time.Parse("2006-01-02T15:04:05.000000Z", str(tok, "expires_at"))
	iss, _ := time.Parse("2006-01-02T15:04:05.000000Z", str(tok, "issued_at"))
	if d := exp.Sub(iss); d != time.Hour {
		t.Errorf("token lifetime %s, want the default 1h", d)
	}
	if diff := cmp.Diff([]any{"password"}, tok["methods"]); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
	if str(tok, "user", "name") != "admin" || str(tok, "user", "domain", "id") != "default" || str(tok, "user", "domain", "name") != "Default" {
		t.Errorf("user = %v", tok["user"])
	}
	if _, ok := path(tok, "user").(map[string]any)["password_expires_at"]; !ok {
		t.Error("user.password_expires_at is missing")
	}
	if str(tok, "project", "name") != "admin" || str(tok, "project", "domain", "id") != "default" || tok["is_domain"] != false {
		t.Errorf("project = %v, is_domain = %v", tok["project"], tok["is_domain"])
	}
	var roles []string
	for _, ro := range tok["roles"].([]any) {
		roles = append(roles, str(ro, "name"))
	}
	sort.Strings(roles)
	if diff := cmp.Diff([]string{"admin", "member", "reader"}, roles); diff != "" {
		t.Errorf("roles, with the implied ones (-want +got):\n%s", diff)
	}
	if ids, _ := tok["audit_ids"].([]any); len(ids) != 1 || len(ids[0].(string)) != 22 {
		t.Errorf("audit_ids = %v", tok["audit_ids"])
	}
	cat, _ := tok["catalog"].([]any)
	if len(cat) != 1 || str(cat, 0, "type") != "identity" {
		t.Fatalf("catalog = %v", tok["catalog"])
	}
	var ifaces []string
	for _, ep := range path(cat, 0, "endpoints").([]any) {
		ifaces = append(ifaces, str(ep, "interface"))
		if str(ep, "region") != "RegionOne" || str(ep, "region_id") != "RegionOne" || str(ep, "url") != env.url+"/v3" || str(ep, "id") == "" {
			t.Errorf("endpoint = %v", ep)
		}
	}
	sort.Strings(ifaces)
	if diff := cmp.Diff([]string{"admin", "internal", "public"}, ifaces); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}

	// ?nocatalog leaves the catalog out.
	r = env.must(t, http.StatusCreated, "POST", "/v3/auth/tokens?nocatalog", "", passwordAuth("admin", adminPassword, projectScope("admin")))
	if _, ok := r.body["token"].(map[string]any)["catalog"]; ok {
		t.Error("?nocatalog still has a catalog")
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pid, uid := env.fixture(t, admin, "scopes", "scoper", "pw-scoper", "member")
	reader := env.roleID(t, admin, "reader")
	env.must(t, 204, "PUT", "/v3/domains/default/users/"+uid+"/roles/"+reader, admin, nil)
	env.must(t, 204, "PUT", "/v3/system/users/"+uid+"/roles/"+reader, admin, nil)

	tests := []struct {
		name      string
		scope     any
		check     func(tok map[string]any) bool
		wantRoles []string
	}{
		{"project by id", map[string]any{"project": map[string]any{"id": pid}},
			func(tok map[string]any) bool { return str(tok, "project", "id") == pid }, []string{"member", "reader"}},
		{"project by name", projectScope("scopes"),
			func(tok map[string]any) bool { return str(tok, "project", "id") == pid }, []string{"member", "reader"}},
		{"domain by id", map[string]any{"domain": map[string]any{"id": "default"}},
			func(tok map[string]any) bool { return str(tok, "domain", "id") == "default" && tok["project"] == nil }, []string{"reader"}},
		{"domain by name", map[string]any{"domain": map[string]any{"name": "Default"}},
			func(tok map[string]any) bool { return str(tok, "domain", "name") == "Default" }, []string{"reader"}},
		{"system", map[string]any{"system": map[string]any{"all": true}},
			func(tok map[string]any) bool { return path(tok, "system", "all") == true }, []string{"reader"}},
		{"unscoped", "unscoped",
			func(tok map[string]any) bool {
				return tok["project"] == nil && tok["domain"] == nil && tok["catalog"] == nil && tok["roles"] == nil
			}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, tok := env.token(t, "scoper", "pw-scoper", tc.scope)
			if !tc.check(tok) {
				t.Errorf("token = %v", tok)
			}
			var roles []string
			list, _ := path(tok, "roles").([]any)
			for _, ro := range list {
				roles = append(roles, str(ro, "name"))
			}
			if diff := cmp.Diff(tc.wantRoles, roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("no role on the scope", func(t *testing.T) {
		r := env.must(t, 401, "POST", "/v3/auth/tokens", "", passwordAuth("scoper", "pw-scoper", projectScope("admin")))
		if str(r.body, "error", "message") != "The request you have made requires authentication." {
			t.Errorf("body = %s", r.raw)
		}
	})
	t.Run("default project", func(t *testing.T) {
		env.must(t, 200, "PATCH", "/v3/users/"+uid, admin, map[string]any{"user": map[string]any{"default_project_id": pid}})
		_, tok := env.token(t, "scoper", "pw-scoper", nil)
		if str(tok, "project", "id") != pid {
			t.Errorf("no scope with a default project gave %v", tok["project"])
		}
	})
}

func TestTokenMethodRescope(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	unscoped, first := env.token(t, "admin", adminPassword, "unscoped")
	env.clock.Advance(time.Minute)
	r := env.must(t, 201, "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": unscoped}},
		"scope":    projectScope("admin"),
	}})
	tok := r.body["token"].(map[string]any)
	if str(tok, "project", "name") != "admin" {
		t.Errorf("rescoped token project = %v", tok["project"])
	}
	if str(tok, "expires_at") != str(first, "expires_at") {
		t.Errorf("rescoping moved the expiry from %s to %s", str(first, "expires_at"), str(tok, "expires_at"))
	}
	ids, _ := tok["audit_ids"].([]any)
	if len(ids) != 2 || ids[1] != path(first, "audit_ids", 0) {
		t.Errorf("audit_ids = %v, want [new, %v]", ids, path(first, "audit_ids", 0))
	}
	if !slices.Contains(tok["methods"].([]any), any("token")) {
		t.Errorf("methods = %v", tok["methods"])
	}

	// Revoking the parent revokes the child too: they share an audit ID.
	admin := env.adminToken(t)
	child := r.header.Get("X-Subject-Token")
	env.must(t, 204, "DELETE", "/v3/auth/tokens", admin, nil, "X-Subject-Token", unscoped)
	env.must(t, 404, "GET", "/v3/auth/tokens", admin, nil, "X-Subject-Token", child)
}

func TestValidateAndRevoke(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	_, _ = env.fixture(t, admin, "vr", "vruser", "pw-vr", "member")
	userTok, issued := env.token(t, "vruser", "pw-vr", projectScope("vr"))
	other, _ := env.token(t, "admin", adminPassword, projectScope("admin"))

	r := env.must(t, 200, "GET", "/v3/auth/tokens", admin, nil, "X-Subject-Token", userTok)
	if r.header.Get("X-Subject-Token") != userTok {
		t.Error("validation does not echo X-Subject-Token")
	}
	if diff := cmp.Diff(issued, r.body["token"]); diff != "" {
		t.Errorf("validated body differs from issued body (-issued +validated):\n%s", diff)
	}
	env.must(t, 200, "HEAD", "/v3/auth/tokens", admin, nil, "X-Subject-Token", userTok)
	// A user may validate its own token, not another user's.
	env.must(t, 200, "GET", "/v3/auth/tokens", userTok, nil, "X-Subject-Token", userTok)
	env.must(t, 403, "GET", "/v3/auth/tokens", userTok, nil, "X-Subject-Token", other)
	env.must(t, 403, "DELETE", "/v3/auth/tokens", userTok, nil, "X-Subject-Token", other)
	env.must(t, 404, "GET", "/v3/auth/tokens", admin, nil, "X-Subject-Token", "garbage")
	env.must(t, 400, "GET", "/v3/auth/tokens", admin, nil)

	// The caller's own token is cached by now; revocation must still bite.
	env.must(t, 200, "GET", "/v3/auth/catalog", userTok, nil)
	env.must(t, 204, "DELETE", "/v3/auth/tokens", userTok, nil, "X-Subject-Token", userTok)
	env.must(t, 404, "GET", "/v3/auth/tokens", admin, nil, "X-Subject-Token", userTok)
	r = env.must(t, 401, "GET", "/v3/auth/catalog", userTok, nil)
	if str(r.body, "error", "message") != "The request you have made requires authentication." {
		t.Errorf("revoked token body = %s", r.raw)
	}
	if r.header.Get("WWW-Authenticate") != "" {
		t.Log("WWW-Authenticate:", r.header.Get("WWW-Authenticate"))
	}
	// Other tokens of the user are unaffected.
	again, _ := env.token(t, "vruser", "pw-vr", projectScope("vr"))
	env.must(t, 200, "GET", "/v3/auth/catalog", again, nil)
}

func TestAuthCatalogAndProjects(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pid, _ := env.fixture(t, admin, "mine", "cataloguser", "pw-cat", "reader")
	tok, _ := env.token(t, "cataloguser", "pw-cat", projectScope("mine"))

	r := env.must(t, 200, "GET", "/v3/auth/catalog", tok, nil)
	if str(r.body, "catalog", 0, "type") != "identity" || str(r.body, "links", "self") == "" {
		t.Errorf("catalog = %s", r.raw)
	}
	r = env.must(t, 200, "GET", "/v3/auth/projects", tok, nil)
	if ps := r.body["projects"].([]any); len(ps) != 1 || str(ps, 0, "id") != pid {
		t.Errorf("auth/projects = %s", r.raw)
	}
	r = env.must(t, 200, "GET", "/v3/auth/system", admin, nil)
	if path(r.body, "system", 0, "all") != true {
		t.Errorf("auth/system for admin = %s", r.raw)
	}
	unscoped, _ := env.token(t, "cataloguser", "pw-cat", "unscoped")
	env.must(t, 403, "GET", "/v3/auth/catalog", unscoped, nil)
}

func TestApplicationCredentials(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pid, uid := env.fixture(t, admin, "acp", "acuser", "pw-ac", "member")
	tok, _ := env.token(t, "acuser", "pw-ac", projectScope("acp"))

	base := "/v3/users/" + uid + "/application_credentials"
	r := env.must(t, 201, "POST", base, tok, map[string]any{"application_credential": map[string]any{
		"name": "ci", "roles": []any{map[string]any{"name": "reader"}},
	}})
	ac := r.body["application_credential"].(map[string]any)
	secret, id := str(ac, "secret"), str(ac, "id")
	if len(secret) < 64 || str(ac, "project_id") != pid || ac["unrestricted"] != false || ac["expires_at"] != nil {
		t.Fatalf("created = %s", r.raw)
	}
	env.must(t, 409, "POST", base, tok, map[string]any{"application_credential": map[string]any{"name": "ci"}})
	env.must(t, 400, "POST", base, tok, map[string]any{"application_credential": map[string]any{
		"name": "toomuch", "roles": []any{map[string]any{"name": "admin"}},
	}})
	r = env.must(t, 200, "GET", base+"/"+id, tok, nil)
	if _, ok := r.body["application_credential"].(map[string]any)["secret"]; ok {
		t.Error("the secret is shown again after creation")
	}
	r = env.must(t, 200, "GET", base+"?name=ci", tok, nil)
	if len(r.body["application_credentials"].([]any)) != 1 {
		t.Errorf("list ?name=ci = %s", r.raw)
	}

	login := func(body map[string]any) response {
		return env.do(t, "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{
			"methods": []string{"application_credential"}, "application_credential": body,
		}}})
	}
	r = login(map[string]any{"id": id, "secret": secret})
	if r.status != 201 {
		t.Fatalf("login by id: %d %s", r.status, r.raw)
	}
	atok := r.body["token"].(map[string]any)
	if str(atok, "project", "id") != pid || str(atok, "application_credential", "id") != id || path(atok, "application_credential", "restricted") != true {
		t.Errorf("app cred token = %v", atok)
	}
	if roles := atok["roles"].([]any); len(roles) != 1 || str(roles, 0, "name") != "reader" {
		t.Errorf("app cred token roles = %v, want only reader", atok["roles"])
	}
	acTok := r.header.Get("X-Subject-Token")
	if r := login(map[string]any{"name": "ci", "secret": secret, "user": map[string]any{"name": "acuser", "domain": map[string]any{"id": "default"}}}); r.status != 201 {
		t.Errorf("login by name: %d %s", r.status, r.raw)
	}
	if r := login(map[string]any{"id": id, "secret": "wrong"}); r.status != 401 {
		t.Errorf("wrong secret: %d", r.status)
	}
	// A restricted credential cannot make more credentials.
	env.must(t, 403, "POST", base, acTok, map[string]any{"application_credential": map[string]any{"name": "more"}})
	// Another user cannot see it.
	_, _ = env.fixture(t, admin, "acp2", "acother", "pw-other", "member")
	otherTok, _ := env.token(t, "acother", "pw-other", projectScope("acp2"))
	env.must(t, 403, "GET", base, otherTok, nil)
	env.must(t, 403, "GET", base+"/"+id, otherTok, nil)

	// Deleting it revokes its tokens.
	env.must(t, 204, "DELETE", base+"/"+id, tok, nil)
	env.must(t, 401, "GET", "/v3/auth/catalog", acTok, nil)
	if r := login(map[string]any{"id": id, "secret": secret}); r.status != 401 {
		t.Errorf("login with a deleted credential: %d", r.status)
	}
	env.must(t, 404, "GET", base+"/"+id, tok, nil)
}

func TestExpiringApplicationCredential(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	_, uid := env.fixture(t, admin, "exp", "expuser", "pw-exp", "member")
	tok, _ := env.token(t, "expuser", "pw-exp", projectScope("exp"))
	expires := env.clock.Now().Add(10 * time.Minute).Format("2006-01-02T15:04:05.000000")
	r := env.must(t, 201, "POST", "/v3/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": map[string]any{
		"name": "short", "expires_at": expires,
	}})
	id, secret := str(r.body, "application_credential", "id"), str(r.body, "application_credential", "secret")
	r = env.must(t, 201, "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{
		"methods": []string{"application_credential"}, "application_credential": map[string]any{"id": id, "secret": secret},
	}}})
	if got := str(r.body, "token", "expires_at"); got != expires+"Z" {
		t.Errorf("token expires_at = %s, want the credential's %sZ", got, expires)
	}
	acTok := r.header.Get("X-Subject-Token")
	env.clock.Advance(11 * time.Minute)
	env.srv.auth.Purge()
	env.must(t, 401, "GET", "/v3/auth/catalog", acTok, nil)
}
