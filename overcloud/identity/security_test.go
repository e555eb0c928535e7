package identity

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const genericAuthError = "The request you have made requires authentication."

// TestAuthFailuresLookAlike checks that every way a login can fail gives
// the same 401, so that none tells which users, projects or domains exist.
func TestAuthFailuresLookAlike(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	_, uid := env.fixture(t, admin, "sec", "secuser", "right-pw", "member")
	env.must(t, 201, "POST", "/v3/users", admin, map[string]any{"user": map[string]any{"name": "disabled", "password": "pw-d", "enabled": false}})

	cases := []struct {
		name string
		body map[string]any
	}{
		{"wrong password", passwordAuth("secuser", "wrong-pw", nil)},
		{"unknown user", passwordAuth("nobody", "right-pw", nil)},
		{"disabled user", passwordAuth("disabled", "pw-d", nil)},
		{"project without a role", passwordAuth("secuser", "right-pw", projectScope("admin"))},
		{"unknown project", passwordAuth("secuser", "right-pw", projectScope("nowhere"))},
		{"unknown domain", passwordAuth("secuser", "right-pw", map[string]any{"domain": map[string]any{"name": "Nowhere"}})},
		{"by id, wrong password", map[string]any{"auth": map[string]any{"identity": map[string]any{
			"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"id": uid, "password": "x"}},
		}}}},
		{"forged token", map[string]any{"auth": map[string]any{"identity": map[string]any{
			"methods": []string{"token"}, "token": map[string]any{"id": "AUpkAP0forged"},
		}}}},
	}
	for _, tc := range cases {
		r := env.do(t, "POST", "/v3/auth/tokens", "", tc.body)
		if r.status != http.StatusUnauthorized || str(r.body, "error", "message") != genericAuthError ||
			path(r.body, "error", "code") != float64(401) || str(r.body, "error", "title") != "Unauthorized" {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
		if r.header.Get("X-Subject-Token") != "" {
			t.Errorf("%s: a failed login returned a token", tc.name)
		}
	}
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, func(c *Config) { c.TokenExpiration = 10 * time.Minute; c.KeyRotation = -1 })
	tok := env.adminToken(t)
	env.must(t, 200, "GET", "/v3/auth/catalog", tok, nil)
	env.clock.Advance(10*time.Minute + time.Microsecond)
	// Expired even though the middleware cached it a moment ago.
	r := env.must(t, 401, "GET", "/v3/auth/catalog", tok, nil)
	if str(r.body, "error", "message") != genericAuthError {
		t.Errorf("expired token body = %s", r.raw)
	}
	fresh := env.adminToken(t)
	env.must(t, 404, "GET", "/v3/auth/tokens", fresh, nil, "X-Subject-Token", tok)
}

// TestProjectIsolation checks that a token for one project gets nothing of
// another project, and that a reader cannot write.
func TestProjectIsolation(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pa, ua := env.fixture(t, admin, "proj-a", "user-a", "pw-a", "member")
	pb, ub := env.fixture(t, admin, "proj-b", "user-b", "pw-b", "reader")
	tokA, _ := env.token(t, "user-a", "pw-a", projectScope("proj-a"))
	tokB, _ := env.token(t, "user-b", "pw-b", projectScope("proj-b"))

	// Its own project it sees; another's it does not, whether it exists
	// or not.
	env.must(t, 200, "GET", "/v3/projects/"+pa, tokA, nil)
	for _, p := range []string{
		"/v3/projects/" + pb, "/v3/projects/0123456789abcdef0123456789abcdef",
		"/v3/users/" + ub, "/v3/users/0123456789abcdef0123456789abcdef",
		"/v3/projects", "/v3/users", "/v3/role_assignments", "/v3/role_assignments?scope.project.id=" + pb,
		"/v3/users/" + ub + "/projects", "/v3/users/" + ub + "/application_credentials",
		"/v3/projects/" + pb + "/users/" + ub + "/roles",
	} {
		r := env.do(t, "GET", p, tokA, nil)
		if r.status != http.StatusForbidden {
			t.Errorf("GET %s as another project's member: %d %s", p, r.status, r.raw)
		}
		if strings.Contains(r.raw, "proj-b") || strings.Contains(r.raw, "user-b") {
			t.Errorf("GET %s leaked a name: %s", p, r.raw)
		}
	}
	// Its own user and projects it sees.
	env.must(t, 200, "GET", "/v3/users/"+ua, tokA, nil)
	r := env.must(t, 200, "GET", "/v3/users/"+ua+"/projects", tokA, nil)
	if ps := r.body["projects"].([]any); len(ps) != 1 || str(ps, 0, "id") != pa {
		t.Errorf("own projects = %s", r.raw)
	}

	// A reader (and a member) cannot write.
	writes := []struct{ method, path string }{
		{"POST", "/v3/projects"}, {"PATCH", "/v3/projects/" + pb}, {"DELETE", "/v3/projects/" + pb},
		{"POST", "/v3/users"}, {"PATCH", "/v3/users/" + ub}, {"DELETE", "/v3/users/" + ua},
		{"POST", "/v3/roles"}, {"POST", "/v3/domains"}, {"POST", "/v3/services"}, {"POST", "/v3/regions"},
		{"PUT", "/v3/projects/" + pb + "/users/" + ub + "/roles/" + env.roleID(t, admin, "admin")},
	}
	body := map[string]any{
		"project": map[string]any{"name": "x"}, "user": map[string]any{"name": "x"}, "role": map[string]any{"name": "x"},
		"domain": map[string]any{"name": "x"}, "service": map[string]any{"type": "x"}, "region": map[string]any{"id": "x"},
	}
	for _, tok := range []string{tokA, tokB} {
		for _, w := range writes {
			r := env.do(t, w.method, w.path, tok, body)
			if r.status != http.StatusForbidden || !strings.HasPrefix(str(r.body, "error", "message"), "You are not authorized to perform the requested action: identity:") {
				t.Errorf("%s %s as a reader/member: %d %s", w.method, w.path, r.status, r.raw)
			}
		}
	}
	// A system reader reads everything and writes nothing.
	env.must(t, 204, "PUT", "/v3/system/users/"+ub+"/roles/"+env.roleID(t, admin, "reader"), admin, nil)
	sysTok, _ := env.token(t, "user-b", "pw-b", map[string]any{"system": map[string]any{"all": true}})
	env.must(t, 200, "GET", "/v3/projects", sysTok, nil)
	env.must(t, 200, "GET", "/v3/role_assignments", sysTok, nil)
	env.must(t, 403, "POST", "/v3/projects", sysTok, map[string]any{"project": map[string]any{"name": "nope"}})
	env.must(t, 403, "DELETE", "/v3/projects/"+pa, sysTok, nil)
	// Admin sees a missing project as missing.
	env.must(t, 404, "GET", "/v3/projects/0123456789abcdef0123456789abcdef", admin, nil)
	// No token, no entry.
	env.must(t, 401, "GET", "/v3/projects", "", nil)
	env.must(t, 401, "GET", "/v3/projects", "not-a-token", nil)
}

// TestPasswordsNeverShown checks responses and logs for the passwords and
// secrets the test used.
func TestPasswordsNeverShown(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	const pw, pw2 = "Very-Secret-Pw-1", "Very-Secret-Pw-2"
	r := env.must(t, 201, "POST", "/v3/users", admin, map[string]any{"user": map[string]any{"name": "pwuser", "password": pw}})
	uid := str(r.body, "user", "id")
	for _, resp := range []response{
		r,
		env.must(t, 200, "GET", "/v3/users/"+uid, admin, nil),
		env.must(t, 200, "GET", "/v3/users", admin, nil),
		env.must(t, 200, "PATCH", "/v3/users/"+uid, admin, map[string]any{"user": map[string]any{"password": pw2}}),
	} {
		if strings.Contains(resp.raw, pw) || strings.Contains(resp.raw, pw2) || strings.Contains(resp.raw, "password_hash") || strings.Contains(resp.raw, "$2a$") {
			t.Errorf("a response shows the password or its hash: %s", resp.raw)
		}
	}
	env.do(t, "POST", "/v3/auth/tokens", "", passwordAuth("pwuser", pw, nil)) // the old one now fails
	env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("pwuser", pw2, nil))
	// Change it with the original, without a token.
	env.must(t, 401, "POST", "/v3/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"password": "Very-Secret-Pw-3", "original_password": "wrong"}})
	env.must(t, 204, "POST", "/v3/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"password": "Very-Secret-Pw-3", "original_password": pw2}})
	env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("pwuser", "Very-Secret-Pw-3", nil))

	logs := env.logs.String()
	for _, secret := range []string{pw, pw2, "Very-Secret-Pw-3", adminPassword} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain a password")
		}
	}
	if !strings.Contains(logs, `"msg":"authentication failed"`) {
		t.Error("failed logins are not logged")
	}
}

// TestPasswordChangeRevokesTokens checks that the tokens a user had
// before a password change or being disabled stop working, even where
// they are cached.
func TestPasswordChangeRevokesTokens(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	_, uid := env.fixture(t, admin, "rv", "rvuser", "pw-1", "member")
	tok, _ := env.token(t, "rvuser", "pw-1", projectScope("rv"))
	env.must(t, 200, "GET", "/v3/auth/catalog", tok, nil)
	env.clock.Advance(time.Millisecond)
	env.must(t, 204, "POST", "/v3/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"password": "pw-2", "original_password": "pw-1"}})
	env.must(t, 401, "GET", "/v3/auth/catalog", tok, nil)
	env.clock.Advance(time.Millisecond)

	tok, _ = env.token(t, "rvuser", "pw-2", projectScope("rv"))
	env.must(t, 200, "GET", "/v3/auth/catalog", tok, nil)
	env.must(t, 200, "PATCH", "/v3/users/"+uid, admin, map[string]any{"user": map[string]any{"enabled": false}})
	env.must(t, 401, "GET", "/v3/auth/catalog", tok, nil)
	env.must(t, 401, "POST", "/v3/auth/tokens", "", passwordAuth("rvuser", "pw-2", nil))
}

// TestRoleRemovalApplies checks that removing a grant takes the role out
// of the tokens already issued.
func TestRoleRemovalApplies(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pid, uid := env.fixture(t, admin, "rr", "rruser", "pw-rr", "admin")
	tok, _ := env.token(t, "rruser", "pw-rr", projectScope("rr"))
	env.must(t, 200, "GET", "/v3/projects", tok, nil)
	env.must(t, 204, "PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+env.roleID(t, admin, "reader"), admin, nil)
	env.must(t, 204, "DELETE", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+env.roleID(t, admin, "admin"), admin, nil)
	env.must(t, 403, "GET", "/v3/projects", tok, nil)
	env.must(t, 200, "GET", "/v3/projects/"+pid, tok, nil)
	// With no role left, the token is void.
	env.must(t, 204, "DELETE", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+env.roleID(t, admin, "reader"), admin, nil)
	env.must(t, 401, "GET", "/v3/projects/"+pid, tok, nil)
}

// TestLoginFlood floods one user with wrong passwords, concurrently, and
// checks that another user still logs in at once, and that the flooded
// user is throttled until its allowance refills.
func TestLoginFlood(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, func(c *Config) { c.LoginBurst = 5; c.LoginRefill = time.Second; c.PasswordCost = 6 })
	admin := env.adminToken(t)
	env.fixture(t, admin, "flood", "victim", "victim-pw", "member")
	env.fixture(t, admin, "calm", "bystander", "bystander-pw", "member")

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	start := make(chan struct{})
	for i := range 40 {
		wg.Go(func() {
			<-start
			r := env.do(t, "POST", "/v3/auth/tokens", "", passwordAuth("victim", fmt.Sprintf("guess-%d", i), nil))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	close(start)
	// While the flood runs, the bystander logs in.
	for range 3 {
		env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("bystander", "bystander-pw", projectScope("calm")))
	}
	wg.Wait()
	if statuses[401] != 40 {
		t.Errorf("flood statuses = %v, want 40 × 401", statuses)
	}
	// The flooded user is throttled now, even with the right password...
	env.must(t, 401, "POST", "/v3/auth/tokens", "", passwordAuth("victim", "victim-pw", nil))
	// ... until its allowance refills.
	env.clock.Advance(2 * time.Second)
	env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("victim", "victim-pw", nil))
	if !strings.Contains(env.logs.String(), `"msg":"authentication throttled"`) {
		t.Error("throttling is not logged")
	}

	// Many right logins of one user at once wait their turn: none fails.
	var ok sync.WaitGroup
	fails := 0
	for range 20 {
		ok.Go(func() {
			if r := env.do(t, "POST", "/v3/auth/tokens", "", passwordAuth("bystander", "bystander-pw", nil)); r.status != 201 {
				mu.Lock()
				fails++
				mu.Unlock()
			}
		})
	}
	ok.Wait()
	if fails != 0 {
		t.Errorf("%d of 20 concurrent right logins failed", fails)
	}
}

// TestBadInput checks that malformed requests are refused with a 400 that
// says why, and change nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	cases := []struct {
		name, method, path, body, want string
		status                         int
	}{
		{"not JSON", "POST", "/v3/projects", `{"project":`, "truncated", 400},
		{"syntax", "POST", "/v3/projects", `{"project": {name: 1}}`, "not valid JSON", 400},
		{"wrong type", "POST", "/v3/projects", `{"project": {"name": "p", "enabled": "yes"}}`, "'project.enabled': expected boolean, got string", 400},
		{"trailing data", "POST", "/v3/projects", `{"project": {"name": "p"}} {}`, "after the JSON value", 400},
		{"missing key", "POST", "/v3/projects", `{"name": "p"}`, "'project.name' is a required property", 400},
		{"empty name", "POST", "/v3/projects", `{"project": {"name": "  "}}`, "'project.name': it must not be empty", 400},
		{"empty body", "POST", "/v3/users", ``, "A JSON request body is required", 400},
		{"bad interface", "POST", "/v3/endpoints", `{"endpoint": {"service_id": "x", "interface": "private", "url": "http://x/"}}`, "'endpoint.interface'", 400},
		{"bad url", "POST", "/v3/endpoints", `{"endpoint": {"service_id": "x", "interface": "public", "url": "not a url"}}`, "'endpoint.url'", 400},
		{"unknown domain", "POST", "/v3/projects", `{"project": {"name": "p", "domain_id": "nope"}}`, "could not find domain nope", 400},
		{"bad limit", "GET", "/v3/projects?limit=-1", ``, "'limit'", 400},
		{"bad flag", "GET", "/v3/projects?enabled=maybe", ``, "'enabled'", 400},
		{"no methods", "POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": []}}}`, "'methods'", 400},
		{"method without body", "POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"]}}}`, "'password.user'", 400},
		{"two scopes", "POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x", "password": "y"}}}, "scope": {"project": {"id": "a"}, "domain": {"id": "b"}}}}`, "exactly one", 400},
	}
	for _, tc := range cases {
		r := env.do(t, tc.method, tc.path, admin, tc.body)
		if r.status != tc.status || !strings.Contains(str(r.body, "error", "message"), tc.want) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, r.status, r.raw, tc.status, tc.want)
		}
	}
	r := env.do(t, "POST", "/v3/projects", admin, strings.Repeat(" ", 2<<20))
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d", r.status)
	}
	req, _ := http.NewRequest("POST", env.url+"/v3/projects", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Auth-Token", admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d", resp.StatusCode)
	}
	r = env.must(t, 200, "GET", "/v3/projects", admin, nil)
	if n := len(r.body["projects"].([]any)); n != 1 {
		t.Errorf("bad requests changed state: %d projects", n)
	}
}
