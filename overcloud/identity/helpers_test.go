package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/etcdtest"
)

const adminPassword = "s3cret-Admin-pw"

// testEnv is an identity service on a loopback port with its own etcd,
// bootstrapped with adminPassword.
type testEnv struct {
	srv   *Server
	ts    *httptest.Server
	url   string
	etcd  *clientv3.Client
	logs  *syncBuffer
	clock *fakeClock
}

// fakeClock is a settable clock; it starts at the real time and, like a
// real clock, never reads the same twice (each reading is a microsecond
// after the last).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestEnv starts a service; mod adjusts its config. A nil etcd client
// gets a fresh embedded etcd.
func newTestEnv(t *testing.T, cli *clientv3.Client, mod func(*Config)) *testEnv {
	t.Helper()
	if cli == nil {
		cli = etcdtest.Run(t)
	}
	env := &testEnv{etcd: cli, logs: &syncBuffer{}, clock: &fakeClock{t: time.Now().UTC()}}
	cfg := Config{
		Etcd:          cli,
		PasswordCost:  4,
		TokenCacheTTL: time.Minute,
		Logger:        slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           env.clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("new identity: %v", err)
	}
	env.srv = srv
	env.ts = httptest.NewServer(srv.Handler())
	env.url = env.ts.URL
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() {
		env.ts.Close()
		cancel()
		<-done
	})
	if err := srv.Bootstrap(ctx, Bootstrap{Password: adminPassword, PublicURL: env.url + "/v3"}); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return env
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; body is JSON-encoded unless it is a string.
func (e *testEnv) do(t *testing.T, method, path, token string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: %d: body is not a JSON object: %q", method, path, resp.StatusCode, raw)
		}
	}
	return r
}

// must is do that fails the test unless the status is want.
func (e *testEnv) must(t *testing.T, want int, method, path, token string, body any, hdr ...string) response {
	t.Helper()
	r := e.do(t, method, path, token, body, hdr...)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r
}

func passwordAuth(user, password string, scope any) map[string]any {
	auth := map[string]any{"identity": map[string]any{
		"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{
			"name": user, "domain": map[string]any{"id": "default"}, "password": password,
		}},
	}}
	if scope != nil {
		auth["scope"] = scope
	}
	return map[string]any{"auth": auth}
}

func projectScope(name string) map[string]any {
	return map[string]any{"project": map[string]any{"name": name, "domain": map[string]any{"name": "Default"}}}
}

// token issues a token and returns it with its body.
func (e *testEnv) token(t *testing.T, user, password string, scope any) (string, map[string]any) {
	t.Helper()
	r := e.must(t, http.StatusCreated, "POST", "/v3/auth/tokens", "", passwordAuth(user, password, scope))
	tok := r.header.Get("X-Subject-Token")
	if tok == "" {
		t.Fatal("no X-Subject-Token in the reply")
	}
	return tok, r.body["token"].(map[string]any)
}

func (e *testEnv) adminToken(t *testing.T) string {
	t.Helper()
	tok, _ := e.token(t, "admin", adminPassword, projectScope("admin"))
	return tok
}

// path walks a decoded JSON value: keys for objects, indexes for arrays.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := path(v, keys...).(string)
	return s
}

// fixture makes a project, a user with a password and a role on it, and
// returns their IDs.
func (e *testEnv) fixture(t *testing.T, admin, project, userName, password, roleName string) (projectID, userID string) {
	t.Helper()
	p := e.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": project, "domain_id": "default"}})
	projectID = str(p.body, "project", "id")
	u := e.must(t, 201, "POST", "/v3/users", admin, map[string]any{"user": map[string]any{"name": userName, "domain_id": "default", "password": password}})
	userID = str(u.body, "user", "id")
	if roleName != "" {
		e.must(t, 204, "PUT", "/v3/projects/"+projectID+"/users/"+userID+"/roles/"+e.roleID(t, admin, roleName), admin, nil)
	}
	return projectID, userID
}

func (e *testEnv) roleID(t *testing.T, admin, name string) string {
	t.Helper()
	r := e.must(t, 200, "GET", "/v3/roles?name="+name, admin, nil)
	id := str(r.body, "roles", 0, "id")
	if id == "" {
		t.Fatalf("no role %q", name)
	}
	return id
}

// newTestEnvNoBootstrap returns a service on a fresh etcd that has not
// been bootstrapped.
func newTestEnvNoBootstrap(t *testing.T) *Server {
	t.Helper()
	srv, err := New(context.Background(), Config{Etcd: etcdtest.Run(t), PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
