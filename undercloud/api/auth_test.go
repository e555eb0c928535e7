package api_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/stratacloud/strata/undercloud/api"
)

// htpasswd writes an htpasswd file with bcrypt entries (cheap cost, for
// tests) and returns its path.
func htpasswd(t *testing.T, users map[string]string, prefix string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# operators\n\n")
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + prefix + strings.TrimPrefix(string(h), "$2a$") + "\n")
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseHTPasswd(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"MD5", "alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", `user "alice" is not a bcrypt hash`},
		{"SHA1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", `user "bob" is not a bcrypt hash`},
		{"crypt", "carol:rqXexS6ZhobKA\n", `user "carol" is not a bcrypt hash`},
		{"no colon", "dave\n", "line 1: expected user:hash"},
		{"broken bcrypt", "erin:$2y$10$short\n", `bcrypt hash of user "erin" is malformed`},
		{"empty", "# nobody\n", "no users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.ParseHTPasswd(strings.NewReader(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := api.LoadHTPasswd(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file loads")
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		if _, err := api.LoadHTPasswd(htpasswd(t, map[string]string{"u": "p"}, prefix)); err != nil {
			t.Errorf("%s: %v", prefix, err)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	const password = "correct horse battery staple"
	auth, err := api.LoadHTPasswd(htpasswd(t, map[string]string{"operator": password, "viewer": "other"}, "$2y$"))
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, func(c *api.Config) { c.Auth = auth })

	for _, tc := range []struct {
		name   string
		user   string
		header http.Header
		path   string
		status int
		want   string
	}{
		{name: "no credential", path: "/v1/nodes", status: 401, want: "Authorization required"},
		{name: "wrong password", user: "operator:wrong", path: "/v1/nodes", status: 401, want: "Incorrect username or password"},
		{name: "unknown user", user: "mallory:" + password, path: "/v1/nodes", status: 401, want: "Incorrect username or password"},
		{name: "not basic", header: http.Header{"Authorization": {"Bearer abc"}}, path: "/v1/nodes", status: 401, want: "Authorization required"},
		{name: "right password", user: "operator:" + password, path: "/v1/nodes", status: 200},
		{name: "discovery needs none", path: "/", status: 200},
		{name: "v1 discovery needs none", path: "/v1", status: 200},
		{name: "unknown paths need one", path: "/v1/colours", status: 401, want: "Authorization required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.snapshot(t)
			r := ts.do(t, req{method: "GET", path: tc.path, user: tc.user, header: tc.header})
			r.expect(t, tc.status, tc.want)
			if tc.status == 401 {
				if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="Baremetal API"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			}
			ts.unchanged(t, before)
		})
	}

	t.Run("refused writes change nothing", func(t *testing.T) {
		before := ts.snapshot(t)
		r := ts.do(t, req{method: "POST", path: "/v1/nodes", user: "operator:nope", body: map[string]any{"driver": "ipmi"}})
		r.expect(t, 401)
		ts.unchanged(t, before)
	})

	t.Run("the user is recorded", func(t *testing.T) {
		r := ts.do(t, req{method: "POST", path: "/v1/nodes", user: "operator:" + password, body: map[string]any{"driver": "ipmi", "name": "a1"}})
		r.expect(t, 201)
		id := r.json(t)["uuid"].(string)
		ts.do(t, req{method: "PUT", path: "/v1/nodes/a1/maintenance", user: "operator:" + password, body: map[string]any{"reason": "x"}}).expect(t, 202)
		ts.do(t, req{method: "PUT", path: "/v1/nodes/a1/states/provision", user: "viewer:other", body: map[string]any{"target": "manage"}}).expect(t, 202)
		hist, err := ts.store.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, ev := range hist {
			users = append(users, ev.User)
		}
		if got := strings.Join(users, ","); !strings.Contains(got, "operator") {
			t.Errorf("history users = %q", got)
		}
		if rq := ts.cond.lastRequest(); rq.User != "viewer" {
			t.Errorf("conductor request user = %q", rq.User)
		}
		logs := ts.logs.String()
		if !strings.Contains(logs, `"user":"operator"`) {
			t.Errorf("the request log does not name the user")
		}
		if strings.Contains(logs, password) || strings.Contains(logs, "wrong") {
			t.Error("a password appears in the log")
		}
	})
}
