package redfish

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const loginBody = `{"UserName":"` + testUser + `","Password":"` + testPassword + `"}`

// login opens a session through h and returns its token and URI.
func login(t *testing.T, h http.Handler) (string, string) {
	t.Helper()
	w := do(h, "POST", sessionsPath, loginBody)
	wantStatus(t, w, http.StatusCreated)
	tok, loc := w.Header().Get("X-Auth-Token"), w.Header().Get("Location")
	if tok == "" || !strings.HasPrefix(loc, sessionsPath+"/") {
		t.Fatalf("X-Auth-Token %q, Location %q", tok, loc)
	}
	return tok, loc
}

func TestSessionLifecycle(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	h := ts.Handler()

	w := do(h, "POST", sessionsPath, loginBody)
	wantStatus(t, w, http.StatusCreated)
	tok, loc := w.Header().Get("X-Auth-Token"), w.Header().Get("Location")
	body := decode(t, w)
	if body["@odata.id"] != loc || body["UserName"] != testUser || body["Id"] == "" {
		t.Errorf("session %v at %q", body, loc)
	}
	if strings.Contains(w.Body.String(), testPassword) || strings.Contains(w.Body.String(), tok) {
		t.Errorf("the session shows a secret: %s", w.Body.String())
	}

	// The token opens every resource, without Basic credentials.
	wantStatus(t, do(h, "GET", "/redfish/v1/Systems/node-0", "", token(tok)), http.StatusOK)
	wantStatus(t, do(h, "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, token(tok)), http.StatusNoContent)
	if on, _ := ts.sims["node-0"].PoweredOn(t.Context()); !on {
		t.Errorf("not powered on")
	}
	wantStatus(t, do(h, "GET", loc, "", token(tok)), http.StatusOK)
	members := decode(t, do(h, "GET", sessionsPath, "", token(tok)))["Members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["@odata.id"] != loc {
		t.Errorf("sessions %v", members)
	}

	// Logging out ends the session.
	wantStatus(t, do(h, "DELETE", loc, "", token(tok)), http.StatusNoContent)
	wantError(t, do(h, "GET", "/redfish/v1/Systems", "", token(tok)), http.StatusUnauthorized, "NoValidSession")
	wantError(t, do(h, "GET", loc, "", admin), http.StatusNotFound, "ResourceNotFound")

	// An administrator (Basic) can end another's session.
	tok2, loc2 := login(t, h)
	wantStatus(t, do(h, "DELETE", loc2+"/", "", admin), http.StatusNoContent)
	wantError(t, do(h, "GET", "/redfish/v1/Systems", "", token(tok2)), http.StatusUnauthorized, "NoValidSession")
}

func TestSessionLoginErrors(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	tests := []struct {
		name, body string
		status     int
		key        string
		words      []string
	}{
		{"wrong password", `{"UserName":"admin","Password":"nope"}`, 401, "ResourceAtUriUnauthorized", []string{"invalid username or password"}},
		{"wrong user", `{"UserName":"root","Password":"` + testPassword + `"}`, 401, "ResourceAtUriUnauthorized", nil},
		{"no password", `{"UserName":"admin"}`, 400, "PropertyMissing", []string{"Password"}},
		{"no user", `{"Password":"x"}`, 400, "PropertyMissing", []string{"UserName"}},
		{"empty", ``, 400, "PropertyMissing", []string{"UserName"}},
		{"password not a string", `{"UserName":"admin","Password":12345}`, 400, "PropertyValueTypeError", []string{"Password"}},
		{"malformed", `{"UserName":"admin",`, 400, "MalformedJSON", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(ts.Handler(), "POST", sessionsPath, tt.body)
			wantError(t, w, tt.status, tt.key, tt.words...)
			if w.Header().Get("X-Auth-Token") != "" {
				t.Errorf("a token for a failed login")
			}
			if strings.Contains(w.Body.String(), "12345") {
				t.Errorf("the error shows the password: %s", w.Body.String())
			}
		})
	}
	if ids := ts.sessions.list(""); len(ids) != 0 {
		t.Errorf("sessions after failed logins: %v", ids)
	}
}

func TestSessionExpiry(t *testing.T) {
	ts := newTestServer(t, 1, func(c *Config) { c.SessionTimeout = 10 * time.Minute })
	h := ts.Handler()
	if got := decode(t, do(h, "GET", "/redfish/v1/SessionService", "", admin))["SessionTimeout"]; got != float64(600) {
		t.Errorf("SessionTimeout %v", got)
	}
	tok, loc := login(t, h)
	// Use keeps the session alive.
	for range 3 {
		ts.clock.Advance(9 * time.Minute)
		wantStatus(t, do(h, "GET", "/redfish/v1/Systems", "", token(tok)), http.StatusOK)
	}
	ts.clock.Advance(10 * time.Minute)
	wantError(t, do(h, "GET", "/redfish/v1/Systems", "", token(tok)), http.StatusUnauthorized, "NoValidSession")
	wantError(t, do(h, "GET", loc, "", admin), http.StatusNotFound, "ResourceNotFound")

	// An idle session is gone from the collection too.
	login(t, h)
	ts.clock.Advance(11 * time.Minute)
	if m := decode(t, do(h, "GET", sessionsPath, "", admin))["Members"].([]any); len(m) != 0 {
		t.Errorf("expired sessions listed: %v", m)
	}
}

func TestSessionLimit(t *testing.T) {
	ts := newTestServer(t, 1, func(c *Config) { c.MaxSessions = 3 })
	h := ts.Handler()
	for range 3 {
		login(t, h)
	}
	wantError(t, do(h, "POST", sessionsPath, loginBody), http.StatusServiceUnavailable, "SessionLimitExceeded")
	// Each BMC has its own limit.
	login(t, ts.SystemHandler("node-0"))
	// Expired sessions make room.
	ts.clock.Advance(time.Hour)
	login(t, h)
}

// TestSessionScope: a session belongs to the BMC it was opened on.
func TestSessionScope(t *testing.T) {
	ts := newTestServer(t, 2, nil)
	one := ts.SystemHandler("node-0")
	tok, loc := login(t, one)
	wantStatus(t, do(one, "GET", "/redfish/v1/Systems/node-0", "", token(tok)), http.StatusOK)
	wantError(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/node-0", "", token(tok)), http.StatusUnauthorized, "NoValidSession")
	wantError(t, do(ts.SystemHandler("node-1"), "GET", "/redfish/v1/Systems", "", token(tok)), http.StatusUnauthorized, "NoValidSession")
	wantError(t, do(ts.Handler(), "GET", loc, "", admin), http.StatusNotFound, "ResourceNotFound")
	wantError(t, do(ts.Handler(), "DELETE", loc, "", admin), http.StatusNotFound, "ResourceNotFound")
	wantStatus(t, do(one, "GET", loc, "", admin), http.StatusOK)
}

// TestNoSecretsLogged runs logins, token and Basic requests, and failures,
// with the log at debug level, and looks for the secrets in it.
func TestNoSecretsLogged(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	h := ts.Handler()
	tok, loc := login(t, h)
	do(h, "GET", "/redfish/v1/Systems/node-0", "", token(tok))
	do(h, "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, admin)
	do(h, "PATCH", "/redfish/v1/Systems/node-0", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`, token(tok))
	do(h, "GET", "/redfish/v1/Systems", "", basic(testUser, "guess-"+testPassword))
	do(h, "POST", sessionsPath, `{"UserName":"admin","Password":"wrong-`+testPassword+`"}`)
	do(h, "GET", "/redfish/v1/Systems", "", token(tok+"x"))
	do(h, "DELETE", loc, "", token(tok))
	log := ts.log.String()
	if !strings.Contains(log, "session created") || !strings.Contains(log, "system reset") {
		t.Fatalf("the log is missing events:\n%s", log)
	}
	for _, secret := range []string{testPassword, tok} {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows a secret %q:\n%s", secret, log)
		}
	}
}
