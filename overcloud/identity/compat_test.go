package identity

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Keystone behaviours that Tempest's identity tests rely on, each found
// as a failure of TestTempest: here one by one, so that a regression says
// what broke without a Tempest run.

// TestExtraAttributes: attributes a client sets that identity does not
// know are kept and returned (Tempest sets a user's "project_id").
func TestExtraAttributes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	u := env.must(t, 201, "POST", "/v3/users", admin, map[string]any{"user": map[string]any{
		"name": "extra", "project_id": "p1", "id": "mine", "links": "x", "password": "pw",
	}})
	id := str(u.body, "user", "id")
	if id == "mine" || str(u.body, "user", "project_id") != "p1" || str(u.body, "user", "links", "self") == "" {
		t.Fatalf("create: %s", u.raw)
	}
	env.must(t, 200, "PATCH", "/v3/users/"+id, admin, map[string]any{"user": map[string]any{"project_id": "p2", "color": "blue"}})
	got := env.must(t, 200, "GET", "/v3/users/"+id, admin, nil)
	if str(got.body, "user", "project_id") != "p2" || str(got.body, "user", "color") != "blue" || got.body["user"].(map[string]any)["password"] != nil {
		t.Errorf("after update: %s", got.raw)
	}
	p := env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "extra", "owner": "team-a"}})
	if str(p.body, "project", "owner") != "team-a" {
		t.Errorf("project create: %s", p.raw)
	}
	// Bounded, so that a record stays far below etcd's value size.
	env.must(t, 400, "PATCH", "/v3/users/"+id, admin, map[string]any{"user": map[string]any{"big": strings.Repeat("x", 70<<10)}})
}

// TestEndpointLegacyRegion: an endpoint's legacy "region" key creates the
// region when it is missing; "region_id" must name an existing one.
func TestEndpointLegacyRegion(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	svc := str(env.must(t, 201, "POST", "/v3/services", admin, map[string]any{"service": map[string]any{"type": "compute"}}).body, "service", "id")
	ep := map[string]any{"service_id": svc, "interface": "public", "url": "http://192.0.2.1:8774/v2.1"}

	ep["region_id"] = "RegionNine"
	env.must(t, 400, "POST", "/v3/endpoints", admin, map[string]any{"endpoint": ep})
	delete(ep, "region_id")
	ep["region"] = "RegionNine"
	r := env.must(t, 201, "POST", "/v3/endpoints", admin, map[string]any{"endpoint": ep})
	if str(r.body, "endpoint", "region_id") != "RegionNine" {
		t.Errorf("endpoint: %s", r.raw)
	}
	env.must(t, 200, "GET", "/v3/regions/RegionNine", admin, nil)
	// Again, with the region there now.
	env.must(t, 201, "POST", "/v3/endpoints", admin, map[string]any{"endpoint": ep})
	env.must(t, 200, "PATCH", "/v3/endpoints/"+str(r.body, "endpoint", "id"), admin, map[string]any{"endpoint": map[string]any{"region": "RegionTen"}})
	env.must(t, 200, "GET", "/v3/regions/RegionTen", admin, nil)
}

func TestUnknownDomainIs404(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	for _, kind := range []string{"user", "group"} {
		r := env.must(t, 404, "POST", "/v3/"+kind+"s", admin, map[string]any{kind: map[string]any{"name": "x", "domain_id": "0123456789abcdef0123456789abcdef"}})
		if !strings.Contains(str(r.body, "error", "message"), "Could not find domain") {
			t.Errorf("%s: %s", kind, r.raw)
		}
	}
}

func TestProjectTags(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	p := str(env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "tagged", "tags": []string{"a"}}}).body, "project", "id")
	base := "/v3/projects/" + p + "/tags"

	r := env.must(t, 201, "PUT", base+"/b", admin, "{}")
	if r.raw != "" || r.header.Get("Location") != env.url+base+"/b" {
		t.Errorf("PUT tag: body %q, Location %q", r.raw, r.header.Get("Location"))
	}
	env.must(t, 201, "PUT", base+"/b", admin, "{}") // again: no error, no duplicate
	env.must(t, 204, "GET", base+"/b", admin, nil)
	env.must(t, 404, "GET", base+"/c", admin, nil)
	if got := env.must(t, 200, "GET", base, admin, nil).body["tags"]; !slices.Equal(toStrings(got), []string{"a", "b"}) {
		t.Errorf("tags = %v", got)
	}
	r = env.must(t, 200, "PUT", base, admin, map[string]any{"tags": []string{"x", "y"}})
	if !slices.Equal(toStrings(r.body["tags"]), []string{"x", "y"}) {
		t.Errorf("PUT tags: %s", r.raw)
	}
	env.must(t, 400, "PUT", base, admin, map[string]any{"tags": []string{"x", "x"}})
	env.must(t, 400, "PUT", base, admin, map[string]any{"tags": []string{"a/b"}})
	if got := env.must(t, 200, "GET", "/v3/projects?tags=x,y", admin, nil).body["projects"].([]any); len(got) != 1 {
		t.Errorf("?tags=x,y: %v", got)
	}
	if got := env.must(t, 200, "GET", "/v3/projects?not-tags-any=x", admin, nil).body["projects"].([]any); len(got) != 1 {
		t.Errorf("?not-tags-any=x: %v (want admin only)", got)
	}
	env.must(t, 204, "DELETE", base+"/x", admin, nil)
	env.must(t, 404, "DELETE", base+"/x", admin, nil)
	env.must(t, 204, "DELETE", base, admin, nil)
	if got := env.must(t, 200, "GET", "/v3/projects/"+p, admin, nil).body; len(toStrings(path(got, "project", "tags"))) != 0 {
		t.Errorf("after DELETE tags: %v", got)
	}
	// A member of another project may not read them.
	_, _ = env.fixture(t, admin, "other", "tagreader", "pw-tagreader", "member")
	tok, _ := env.token(t, "tagreader", "pw-tagreader", projectScope("other"))
	env.must(t, http.StatusForbidden, "GET", base, tok, nil)
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestDomainSpecificRoles: a global role cannot imply a domain-specific
// one, and domain-specific roles are never effective (not in tokens, not
// in effective assignments), only the global roles they imply are.
func TestDomainSpecificRoles(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	dr := str(env.must(t, 201, "POST", "/v3/roles", admin, map[string]any{"role": map[string]any{"name": "dr", "domain_id": "default"}}).body, "role", "id")
	member := env.roleID(t, admin, "member")
	env.must(t, 403, "PUT", "/v3/roles/"+member+"/implies/"+dr, admin, nil)

	pid, uid := env.fixture(t, admin, "dom-roles", "domrole-user", "pw-domrole", "")
	env.must(t, 204, "PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+dr, admin, nil)
	// Only a domain-specific role: no role a token can carry.
	if r := env.do(t, "POST", "/v3/auth/tokens", "", passwordAuth("domrole-user", "pw-domrole", projectScope("dom-roles"))); r.status != 401 {
		t.Errorf("token with only a domain-specific role: %d %s", r.status, r.raw)
	}
	q := "/v3/role_assignments?effective&user.id=" + uid
	if got := env.must(t, 200, "GET", q, admin, nil).body["role_assignments"].([]any); len(got) != 0 {
		t.Errorf("effective assignments of a domain-specific role: %v", got)
	}
	// Once it implies member, the user has member (and reader) there.
	env.must(t, 201, "PUT", "/v3/roles/"+dr+"/implies/"+member, admin, nil)
	_, tok := env.token(t, "domrole-user", "pw-domrole", projectScope("dom-roles"))
	var names []string
	for _, ro := range tok["roles"].([]any) {
		names = append(names, str(ro, "name"))
	}
	if !slices.Equal(names, []string{"member", "reader"}) {
		t.Errorf("token roles %v, want member and reader", names)
	}
	if got := env.must(t, 200, "GET", q, admin, nil).body["role_assignments"].([]any); len(got) != 2 {
		t.Errorf("effective assignments: %v, want member and reader", got)
	}
}

// TestAppCredExpiresAtFormat: an application credential's expires_at is
// written as Keystone writes it, without a zone, which is the form
// gophercloud parses and Tempest compares with what it sent.
func TestAppCredExpiresAtFormat(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	uid := str(env.must(t, 200, "GET", "/v3/users?name=admin", admin, nil).body, "users", 0, "id")
	exp := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
	sent := exp.Format("2006-01-02T15:04:05.000000")
	r := env.must(t, 201, "POST", "/v3/users/"+uid+"/application_credentials", admin, map[string]any{
		"application_credential": map[string]any{"name": "fmt", "expires_at": sent},
	})
	if got := str(r.body, "application_credential", "expires_at"); got != sent {
		t.Errorf("expires_at %q, want %q", got, sent)
	}
}
