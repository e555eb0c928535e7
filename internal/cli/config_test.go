package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAuthHTTPBasic(t *testing.T) {
	f := newFake(t)
	f.basicAuth = "admin:s3cret"
	f.AddNode("node-0", "enroll", nil)
	env := map[string]string{"OS_AUTH_TYPE": "http_basic", "OS_ENDPOINT": f.URL, "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret"}
	r := cliRun{env: env}.run(t, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if r.stdout != "node-0\n" {
		t.Errorf("stdout %q", r.stdout)
	}

	env["OS_PASSWORD"] = "wrong-password"
	r = cliRun{env: env}.run(t, "node", "list")
	if r.code != ExitError || r.stderr != "strata: Incorrect username or password\n" {
		t.Errorf("bad password: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "wrong-password") {
		t.Errorf("a password was printed")
	}

	delete(env, "OS_PASSWORD")
	r = cliRun{env: env}.run(t, "node", "list")
	if r.code != ExitError || !strings.Contains(r.stderr, "auth type http_basic needs a username and a password") {
		t.Errorf("no password: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCloudsYAML(t *testing.T) {
	f := newFake(t)
	f.basicAuth = "admin:s3cret"
	f.AddNode("node-0", "enroll", nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "clouds.yaml"), `clouds:
  undercloud:
    auth_type: http_basic
    auth:
      username: admin
    baremetal_endpoint_override: `+f.URL+`
    baremetal_api_version: "1.80"
  standalone:
    auth_type: none
    auth:
      endpoint: `+f.URL+`/v1
`)
	writeFile(t, filepath.Join(dir, "secure.yaml"), `clouds:
  undercloud:
    auth:
      password: s3cret
`)
	env := map[string]string{"OS_CLIENT_CONFIG_FILE": filepath.Join(dir, "clouds.yaml"), "OS_CLOUD": "undercloud"}
	r := cliRun{env: env}.run(t, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if r.stdout != "node-0\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if v := f.Requests()[0].Version; v != "1.80" {
		t.Errorf("baremetal_api_version from clouds.yaml: sent %q", v)
	}

	f.basicAuth = ""
	r = cliRun{env: env}.run(t, "--os-cloud", "standalone", "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if r.stdout != "node-0\n" {
		t.Errorf("--os-cloud standalone: stdout %q", r.stdout)
	}

	r = cliRun{env: env}.run(t, "--os-cloud", "nope", "node", "list")
	if r.code != ExitError || !strings.Contains(r.stderr, `strata: cloud "nope" is not in `) {
		t.Errorf("unknown cloud: exit %d, stderr %q", r.code, r.stderr)
	}

	// ~/.config/openstack/clouds.yaml is found through HOME.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "openstack"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, ".config", "openstack", "clouds.yaml"), "clouds:\n  mine:\n    auth_type: none\n    auth:\n      endpoint: "+f.URL+"\n")
	r = cliRun{env: map[string]string{"OS_CLOUD": "mine", "HOME": home}}.run(t, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if r.stdout != "node-0\n" {
		t.Errorf("clouds.yaml in HOME: stdout %q", r.stdout)
	}

	missing := filepath.Join(home, "missing.yaml")
	r = cliRun{env: map[string]string{"OS_CLOUD": "x", "OS_CLIENT_CONFIG_FILE": missing}}.run(t, "node", "list")
	if r.code != ExitError || r.stderr != "strata: cloud \"x\": no clouds.yaml found (looked in "+missing+")\n" {
		t.Errorf("no clouds.yaml: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNoConfiguration(t *testing.T) {
	r := cliRun{}.run(t, "node", "list")
	want := "strata: no bare metal API configured: set OS_CLOUD to a clouds.yaml entry, or OS_AUTH_TYPE=none and OS_ENDPOINT (or --os-endpoint), or OS_AUTH_URL with credentials\n"
	if r.code != ExitError || r.stderr != want {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = cliRun{env: map[string]string{"OS_AUTH_TYPE": "kerberos", "OS_ENDPOINT": "http://127.0.0.1:1"}}.run(t, "node", "list")
	if r.code != ExitError || !strings.Contains(r.stderr, `auth type "kerberos" is not supported`) {
		t.Errorf("bad auth type: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	r := cliRun{env: map[string]string{"OS_ENDPOINT": url}}.run(t, "node", "list")
	if r.code != ExitError || !strings.HasPrefix(r.stderr, "strata: cannot reach "+url+": ") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestVersionNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		max      microversion
		noRoot   bool
		env      map[string]string
		args     []string
		want     string
		discover bool
	}{
		{name: "server max above ours", max: microversion{1, 99}, want: "1.87", discover: true},
		{name: "server max below ours", max: microversion{1, 80}, want: "1.80", discover: true},
		{name: "no root document", max: microversion{1, 81}, noRoot: true, want: "1.81", discover: true},
		{name: "environment", max: microversion{1, 87}, env: map[string]string{"OS_BAREMETAL_API_VERSION": "1.50"}, want: "1.50"},
		{name: "flag beats environment", max: microversion{1, 87}, env: map[string]string{"OS_BAREMETAL_API_VERSION": "1.50"},
			args: []string{"--os-baremetal-api-version", "1.60"}, want: "1.60"},
		{name: "latest", max: microversion{1, 85}, env: map[string]string{"OS_BAREMETAL_API_VERSION": "latest"}, want: "1.85", discover: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.max, f.noRoot = tc.max, tc.noRoot
			env := fakeEnv(f)
			for k, v := range tc.env {
				env[k] = v
			}
			cliRun{env: env}.run(t, append(tc.args, "node", "list")...).mustSucceed(t)
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].Version != tc.want {
				t.Errorf("requests %v with version %q, want %s", f.requestLines(), reqs[0].Version, tc.want)
			}
			discovered := len(f.requests) > len(reqs)
			if discovered != tc.discover {
				t.Errorf("discovery requests made: %v, want %v", discovered, tc.discover)
			}
		})
	}
}

func TestEndpointForms(t *testing.T) {
	for _, suffix := range []string{"", "/", "/v1", "/v1/"} {
		f := newFake(t)
		f.AddNode("node-0", "enroll", nil)
		r := cliRun{env: map[string]string{"OS_ENDPOINT": f.URL + suffix}}.run(t, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
		if r.stdout != "node-0\n" {
			t.Errorf("OS_ENDPOINT=...%s: %q", suffix, r.stdout)
		}
	}
}

// fakeKeystone answers password authentication with a token and a
// catalog holding the bare metal endpoint.
type fakeKeystone struct {
	*httptest.Server
	mu   sync.Mutex
	auth map[string]any
}

func newFakeKeystone(t *testing.T, baremetal string) *fakeKeystone {
	ks := &fakeKeystone{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/auth/tokens" {
			http.NotFound(w, r)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		ks.mu.Lock()
		ks.auth = body
		ks.mu.Unlock()
		w.Header().Set("X-Subject-Token", "tok-123")
		writeJSONResponse(w, http.StatusCreated, map[string]any{"token": map[string]any{
			"expires_at": "2099-01-01T00:00:00.000000Z",
			"catalog": []any{map[string]any{
				"type": "baremetal", "name": "ironic", "id": "1",
				"endpoints": []any{map[string]any{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": baremetal, "id": "2"}},
			}},
		}})
	}))
	t.Cleanup(ks.Close)
	return ks
}

func TestAuthPassword(t *testing.T) {
	f := newFake(t)
	f.AddNode("node-0", "enroll", nil)
	ks := newFakeKeystone(t, f.URL)
	env := map[string]string{
		"OS_AUTH_URL": ks.URL + "/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_REGION_NAME": "RegionOne",
	}
	r := cliRun{env: env}.run(t, "node", "list", "-f", "value", "-c", "name").mustSucceed(t)
	if r.stdout != "node-0\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if tok := f.Requests()[0].Token; tok != "tok-123" {
		t.Errorf("bare metal request carried token %q", tok)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	want := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []any{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "admin", "password": "s3cret", "domain": map[string]any{"name": "Default"},
		}}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}},
	}}
	if diff := cmp.Diff(want, ks.auth); diff != "" {
		t.Errorf("keystone request (-want +got):\n%s", diff)
	}
}
