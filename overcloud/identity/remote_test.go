package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/overcloud/api"
)

// TestRemoteValidation is what another overcloud service does: validate
// callers' tokens through identity's API with a service user, behind the
// caching middleware.
func TestRemoteValidation(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	env.fixture(t, admin, "service", "compute", "svc-pw", "service")
	pid, _ := env.fixture(t, admin, "tenant", "alice", "alice-pw", "member")
	alice, _ := env.token(t, "alice", "alice-pw", projectScope("tenant"))

	v := &api.RemoteValidator{AuthURL: env.url + "/v3", Username: "compute", UserDomain: "Default", Password: "svc-pw", Project: "service", ProjectDomain: "Default"}
	c, err := v.ValidateToken(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if c.UserName != "alice" || c.ProjectID != pid || !c.HasRole("member") || !c.HasRole("reader") || c.HasRole("admin") || c.ExpiresAt.IsZero() {
		t.Errorf("credentials = %+v", c)
	}
	if _, err := v.ValidateToken(context.Background(), "forged"); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("forged token: %v", err)
	}

	// Behind the middleware, with a clock the test moves.
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	auth := api.NewAuthenticator(api.AuthConfig{Validator: v, CacheTTL: 5 * time.Second, Now: clock})
	h := auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := api.CredentialsFrom(r.Context())
		if !c.CanAccessProject(r.URL.Query().Get("project")) {
			(&api.Errors{Format: api.NovaFormat}).Write(w, r, api.NotFound("not yours"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	call := func(tok, project string) int {
		r := httptest.NewRequest("GET", "/things?project="+project, nil)
		r.Header.Set("X-Auth-Token", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if got := call(alice, pid); got != 204 {
		t.Errorf("alice on her project: %d", got)
	}
	if got := call(alice, "someone-elses"); got != 404 {
		t.Errorf("alice on another project: %d", got)
	}
	env.must(t, 204, "DELETE", "/v3/auth/tokens", admin, nil, "X-Subject-Token", alice)
	// Within the cache TTL the service may still accept it; after, never.
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if got := call(alice, pid); got != 401 {
		t.Errorf("a revoked token after the cache TTL: %d", got)
	}
}
