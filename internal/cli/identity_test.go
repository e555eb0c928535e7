package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/overcloud/identity"
)

// The identity commands against Strata's real identity service, in this
// process on a loopback port with an embedded etcd of its own.

const identityTestPassword = "Adm1n-pw-for-tests"

// identityServer is a bootstrapped identity service: admin/admin in the
// Default domain, with identityTestPassword.
type identityServer struct {
	URL string
}

func startIdentity(t *testing.T) *identityServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := identity.New(ctx, identity.Config{Etcd: etcdtest.Run(t), PasswordCost: 4})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		<-done
	})
	if err := srv.Bootstrap(ctx, identity.Bootstrap{Password: identityTestPassword, PublicURL: ts.URL + "/v3"}); err != nil {
		t.Fatal(err)
	}
	return &identityServer{URL: ts.URL}
}

// env is an operator's environment for the admin, as the openstack CLI
// reads it: the unversioned auth URL, so that discovery runs.
func (s *identityServer) env(extra ...string) map[string]string {
	env := map[string]string{
		"OS_AUTH_URL":            s.URL,
		"OS_USERNAME":            "admin",
		"OS_PASSWORD":            identityTestPassword,
		"OS_PROJECT_NAME":        "admin",
		"OS_USER_DOMAIN_NAME":    "Default",
		"OS_PROJECT_DOMAIN_NAME": "Default",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(env, extra[i])
		} else {
			env[extra[i]] = extra[i+1]
		}
	}
	return env
}

// strata runs the CLI as the admin.
func (s *identityServer) strata(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliRun{env: s.env()}.run(t, args...)
}

// ok runs a command as the admin that must succeed, and returns its
// standard output.
func (s *identityServer) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := s.strata(t, args...)
	if r.code != 0 {
		t.Fatalf("strata %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// lines is the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// showJSON runs a show command with -f json and decodes the record.
func (s *identityServer) showJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal([]byte(s.ok(t, append(args, "-f", "json")...)), &rec); err != nil {
		t.Fatalf("strata %s -f json: %v", strings.Join(args, " "), err)
	}
	return rec
}

func TestIdentityTokenIssue(t *testing.T) {
	s := startIdentity(t)
	tok := s.showJSON(t, "token", "issue")
	for _, k := range []string{"id", "expires", "project_id", "user_id"} {
		if v, _ := tok[k].(string); v == "" {
			t.Errorf("token issue: %s is empty in %v", k, tok)
		}
	}
	admin := s.showJSON(t, "user", "show", "admin")
	if tok["user_id"] != admin["id"] {
		t.Errorf("token issue: user_id %v, want admin's %v", tok["user_id"], admin["id"])
	}

	// The token is a credential of its own: OS_AUTH_TYPE=token.
	asToken := cliRun{env: s.env("OS_AUTH_TYPE", "token", "OS_TOKEN", tok["id"].(string),
		"OS_USERNAME", "", "OS_PASSWORD", "", "OS_PROJECT_NAME", "", "OS_PROJECT_DOMAIN_NAME", "", "OS_USER_DOMAIN_NAME", "")}
	r := asToken.run(t, "token", "issue", "-f", "value", "-c", "user_id").mustSucceed(t)
	if got := strings.TrimSpace(r.stdout); got != admin["id"] {
		t.Errorf("token issue with OS_TOKEN: user_id %q, want %v", got, admin["id"])
	}
	// Revoked, it is refused.
	s.ok(t, "token", "revoke", tok["id"].(string))
	r = asToken.run(t, "token", "issue")
	if r.code != ExitError || !strings.Contains(r.stderr, "requires authentication") {
		t.Errorf("revoked token: exit %d, stderr %q; want 1 and an authentication error", r.code, r.stderr)
	}
}

func TestIdentityCatalog(t *testing.T) {
	s := startIdentity(t)
	got := s.ok(t, "catalog", "list")
	u := s.URL + "/v3"
	w := len("RegionOne internal: " + u)
	rule := "+----------+----------+" + strings.Repeat("-", w+2) + "+\n"
	row := func(name, typ, ep string) string {
		return fmt.Sprintf("| %-8s | %-8s | %-*s |\n", name, typ, w, ep)
	}
	// Endpoints are sorted by region, then public, internal, admin.
	want := rule + row("Name", "Type", "Endpoints") + rule +
		row("keystone", "identity", "RegionOne public: "+u) +
		row("", "", "RegionOne internal: "+u) +
		row("", "", "RegionOne admin: "+u) + rule
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("catalog list (-want +got):\n%s", diff)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(s.ok(t, "catalog", "list", "-f", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || len(entries[0]["endpoints"].([]any)) != 3 {
		t.Errorf("catalog list -f json: %v, want the identity service with 3 endpoints", entries)
	}
	url := strings.TrimSpace(s.ok(t, "endpoint", "list", "--service", "identity", "--interface", "public", "-f", "value", "-c", "URL"))
	if url != s.URL+"/v3" {
		t.Errorf("public identity endpoint %q, want %q", url, s.URL+"/v3")
	}
	if r := s.strata(t, "catalog", "show", "compute"); r.code != ExitError || !strings.Contains(r.stderr, `no service of type or name "compute"`) {
		t.Errorf("catalog show compute: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestIdentityLifecycle creates, finds, changes and deletes one resource of
// each kind, by name and by ID, as an operator would.
func TestIdentityLifecycle(t *testing.T) {
	s := startIdentity(t)
	s.ok(t, "service", "create", "compute", "--name", "nova")
	tests := []struct {
		kind   string
		create []string
		name   string // how show, set and delete name it ("" means by ID)
		set    []string
		// field and value set changes
		field, want string
	}{
		{"domain", []string{"engineering", "--description", "eng"}, "engineering", []string{"--description", "Engineering"}, "description", "Engineering"},
		{"project", []string{"demo", "--description", "d", "--tag", "a"}, "demo", []string{"--tag", "b", "--tag", "c"}, "tags", `["b","c"]`},
		{"user", []string{"alice", "--email", "a@example.com", "--project", "admin"}, "alice", []string{"--email", "alice@example.org"}, "email", "alice@example.org"},
		{"group", []string{"ops", "--description", "Operators"}, "ops", []string{"--name", "operators"}, "name", "operators"},
		{"role", []string{"auditor"}, "auditor", []string{"--description", "reads"}, "description", "reads"},
		{"service", []string{"image", "--name", "glance"}, "glance", []string{"--description", "Images"}, "description", "Images"},
		{"region", []string{"RegionTwo", "--description", "second"}, "RegionTwo", []string{"--description", "Lyon"}, "description", "Lyon"},
		{"endpoint", []string{"nova", "public", "http://192.0.2.10:8774/v2.1", "--region", "RegionOne"}, "", []string{"--url", "http://192.0.2.11:8774/v2.1"}, "url", "http://192.0.2.11:8774/v2.1"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			created := s.showJSON(t, append([]string{tc.kind, "create"}, tc.create...)...)
			id, _ := created["id"].(string)
			if id == "" {
				t.Fatalf("%s create: no id in %v", tc.kind, created)
			}
			ident := tc.name
			if ident == "" {
				ident = id
			}
			// Found by name and by ID alike.
			for _, n := range slices.Compact([]string{ident, id}) {
				if got := s.showJSON(t, tc.kind, "show", n)["id"]; got != id {
					t.Errorf("%s show %s: id %v, want %s", tc.kind, n, got, id)
				}
			}
			listed := lines(s.ok(t, tc.kind, "list", "-f", "value", "-c", idColumn(tc.kind)))
			if !slices.Contains(listed, id) {
				t.Errorf("%s list: %v does not have %s", tc.kind, listed, id)
			}

			s.ok(t, append([]string{tc.kind, "set", ident}, tc.set...)...)
			if tc.field == "name" {
				ident = tc.want
			}
			shown := s.showJSON(t, tc.kind, "show", ident)
			got, _ := json.Marshal(shown[tc.field])
			if g := strings.Trim(string(got), `"`); g != tc.want {
				t.Errorf("%s set: %s is %s, want %s", tc.kind, tc.field, g, tc.want)
			}

			if tc.kind == "domain" {
				// A domain is disabled before it is deleted.
				if r := s.strata(t, "domain", "delete", ident); r.code != ExitError || !strings.Contains(r.stderr, "disable it first") {
					t.Errorf("domain delete while enabled: exit %d, stderr %q", r.code, r.stderr)
				}
				s.ok(t, "domain", "set", ident, "--disable")
			}
			if out := s.ok(t, tc.kind, "delete", ident); !strings.Contains(out, "Deleted "+tc.kind+" "+ident) {
				t.Errorf("%s delete: %q", tc.kind, out)
			}
			r := s.strata(t, tc.kind, "show", ident)
			if wantErr := tc.kind + ` "` + ident + `" not found`; r.code != ExitError || !strings.Contains(r.stderr, wantErr) {
				t.Errorf("%s show after delete: exit %d, stderr %q; want 1 and %q", tc.kind, r.code, r.stderr, wantErr)
			}
		})
	}
}

func idColumn(kind string) string {
	if kind == "region" {
		return "Region"
	}
	return "ID"
}

func TestIdentityNameLookup(t *testing.T) {
	s := startIdentity(t)
	s.ok(t, "domain", "create", "engineering")
	a := s.showJSON(t, "user", "create", "sam")
	b := s.showJSON(t, "user", "create", "sam", "--domain", "engineering")
	s.ok(t, "project", "create", "team one", "--domain", "engineering")

	tests := []struct {
		name     string
		args     []string
		wantID   any    // the id shown
		wantErr  string // or the error
		wantCode int
	}{
		{"name in two domains", []string{"user", "show", "sam"}, nil, `more than one user is named "sam"; name its domain with --domain, or give the ID`, ExitError},
		{"domain by name", []string{"user", "show", "sam", "--domain", "engineering"}, b["id"], "", 0},
		{"domain by ID", []string{"user", "show", "sam", "--domain", "default"}, a["id"], "", 0},
		{"ID needs no domain", []string{"user", "show", b["id"].(string)}, b["id"], "", 0},
		{"unknown domain", []string{"user", "show", "sam", "--domain", "nope"}, nil, `domain "nope" not found`, ExitError},
		{"name with a space", []string{"project", "show", "team one", "--domain", "engineering"}, nil, "", 0},
		{"name in another domain", []string{"project", "show", "team one", "--domain", "Default"}, nil, `project "team one" not found`, ExitError},
		{"service by type", []string{"service", "show", "identity"}, nil, "", 0},
		{"service by name", []string{"service", "show", "keystone"}, nil, "", 0},
		{"endpoint by ID only", []string{"endpoint", "show", "keystone"}, nil, `endpoint "keystone" not found`, ExitError},
		{"empty name", []string{"project", "show", ""}, nil, "project name or ID must not be empty", ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.strata(t, append(tc.args, "-f", "json")...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			if tc.wantErr != "" {
				if !strings.Contains(r.stderr, tc.wantErr) {
					t.Errorf("stderr %q, want %q", r.stderr, tc.wantErr)
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
				t.Fatal(err)
			}
			if tc.wantID != nil && rec["id"] != tc.wantID {
				t.Errorf("id %v, want %v", rec["id"], tc.wantID)
			}
		})
	}
}

func TestIdentityRoleAssignments(t *testing.T) {
	s := startIdentity(t)
	s.ok(t, "project", "create", "demo")
	s.ok(t, "user", "create", "demo", "--password", "demo-pw")
	s.ok(t, "user", "create", "bob")
	s.ok(t, "group", "create", "ops")
	s.ok(t, "group", "add", "user", "ops", "bob")
	s.ok(t, "role", "add", "member", "--user", "demo", "--project", "demo")
	s.ok(t, "role", "add", "member", "--user", "demo", "--project", "demo") // again: not an error
	s.ok(t, "role", "add", "reader", "--group", "ops", "--domain", "Default")
	s.ok(t, "role", "add", "admin", "--user", "bob", "--system", "all")

	// row is one assignment as -f json shows it.
	row := func(role, user, group, project, domain, system string) map[string]any {
		return map[string]any{"role": role, "user": user, "group": group, "project": project,
			"domain": domain, "system": system, "inherited": false}
	}
	tests := []struct {
		name string
		args []string
		want []map[string]any
	}{
		{"direct, by name", []string{"--names", "--user", "demo"}, []map[string]any{
			row("member", "demo@Default", "", "demo@Default", "", ""),
		}},
		{"a group's", []string{"--names", "--group", "ops"}, []map[string]any{
			row("reader", "", "ops@Default", "", "Default", ""),
		}},
		{"effective: groups and implied roles", []string{"--names", "--effective", "--user", "bob"}, []map[string]any{
			row("admin", "bob@Default", "", "", "", "all"),
			row("member", "bob@Default", "", "", "", "all"),
			row("reader", "bob@Default", "", "", "", "all"),
			row("reader", "bob@Default", "", "", "Default", ""),
		}},
		{"on a project", []string{"--names", "--project", "demo"}, []map[string]any{
			row("member", "demo@Default", "", "demo@Default", "", ""),
		}},
		{"of a role on the system", []string{"--names", "--system", "all", "--role", "admin"}, []map[string]any{
			row("admin", "admin@Default", "", "", "", "all"),
			row("admin", "bob@Default", "", "", "", "all"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := s.ok(t, append([]string{"role", "assignment", "list", "-f", "json"}, tc.args...)...)
			var got []map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			// The server's order is its own: compare sorted.
			key := func(m map[string]any) string {
				return fmt.Sprintln(m["role"], m["user"], m["group"], m["project"], m["domain"], m["system"])
			}
			slices.SortFunc(got, func(a, b map[string]any) int { return strings.Compare(key(a), key(b)) })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("role assignment list %v (-want +got):\n%s", tc.args, diff)
			}
		})
	}

	// The current token's own assignments.
	r := s.strata(t, "role", "assignment", "list", "--auth-user", "--auth-project", "--names", "-f", "value", "-c", "Role")
	if got := lines(r.mustSucceed(t).stdout); !slices.Equal(got, []string{"admin"}) {
		t.Errorf("admin's own assignments on admin: %q", got)
	}
	// As in Keystone, a project member may not list assignments.
	asDemo := cliRun{env: s.env("OS_USERNAME", "demo", "OS_PASSWORD", "demo-pw", "OS_PROJECT_NAME", "demo")}
	r = asDemo.run(t, "role", "assignment", "list", "--auth-user", "--auth-project")
	if r.code != ExitError || !strings.Contains(r.stderr, "not authorized to perform the requested action: identity:list_role_assignments") {
		t.Errorf("demo listing assignments: exit %d, stderr %q", r.code, r.stderr)
	}

	s.ok(t, "role", "remove", "member", "--user", "demo", "--project", "demo")
	if got := s.ok(t, "role", "assignment", "list", "--user", "demo", "-f", "value"); got != "" {
		t.Errorf("after role remove: %q", got)
	}
	r = s.strata(t, "role", "remove", "member", "--user", "demo", "--project", "demo")
	if r.code != ExitError || !strings.Contains(r.stderr, `user "demo" does not hold role member there`) {
		t.Errorf("removing a role not held: exit %d, stderr %q", r.code, r.stderr)
	}
	// With no role left on demo, demo cannot get a token scoped to it.
	r = asDemo.run(t, "token", "issue")
	if r.code != ExitError || !strings.Contains(r.stderr, "authenticating to") {
		t.Errorf("token without a role: exit %d, stderr %q", r.code, r.stderr)
	}
	s.ok(t, "group", "remove", "user", "ops", "bob")
	if got := s.ok(t, "user", "list", "--group", "ops", "-f", "value"); got != "" {
		t.Errorf("ops after removing bob: %q", got)
	}
}

func TestIdentityApplicationCredentials(t *testing.T) {
	s := startIdentity(t)
	expires := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	ac := s.showJSON(t, "application", "credential", "create", "ci", "--role", "member",
		"--expiration", expires.Format("2006-01-02T15:04:05"), "--description", "CI")
	secret, _ := ac["secret"].(string)
	if secret == "" {
		t.Fatalf("create shows no secret: %v", ac)
	}
	if got, want := ac["expires_at"], expires.Format("2006-01-02T15:04:05.000000"); got != want {
		t.Errorf("expires_at %v, want %v", got, want)
	}
	roleNames := s.ok(t, "application", "credential", "show", "ci", "-f", "value", "-c", "roles")
	if roleNames != "member\n" {
		t.Errorf("roles %q, want member", roleNames)
	}
	if shown := s.showJSON(t, "application", "credential", "show", ac["id"].(string)); shown["secret"] != nil {
		t.Error("show shows the secret")
	}
	if got := lines(s.ok(t, "application", "credential", "list", "-f", "value", "-c", "Name")); !slices.Equal(got, []string{"ci"}) {
		t.Errorf("list: %q", got)
	}

	// A program authenticates with it: its token has the credential's
	// roles only.
	asCI := cliRun{env: map[string]string{
		"OS_AUTH_URL": s.URL, "OS_AUTH_TYPE": "v3applicationcredential",
		"OS_APPLICATION_CREDENTIAL_ID": ac["id"].(string), "OS_APPLICATION_CREDENTIAL_SECRET": secret,
	}}
	r := asCI.run(t, "token", "issue", "-f", "value", "-c", "project_id").mustSucceed(t)
	if got := strings.TrimSpace(r.stdout); got != ac["project_id"] {
		t.Errorf("token from the credential is on %q, want %v", got, ac["project_id"])
	}
	// A restricted credential cannot make more.
	r = asCI.run(t, "application", "credential", "create", "more")
	if r.code != ExitError || !strings.Contains(r.stderr, "not allowed") {
		t.Errorf("restricted credential making another: exit %d, stderr %q", r.code, r.stderr)
	}

	if r := s.strata(t, "application", "credential", "create", "x", "--role", "nope"); r.code != ExitError ||
		!strings.Contains(r.stderr, `the current token does not carry role "nope" (its roles: admin, member, reader)`) {
		t.Errorf("unknown role: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := s.strata(t, "application", "credential", "create", "ci"); r.code != ExitError || !strings.Contains(r.stderr, `named "ci" already`) {
		t.Errorf("duplicate: exit %d, stderr %q", r.code, r.stderr)
	}

	s.ok(t, "application", "credential", "delete", "ci")
	if r := asCI.run(t, "token", "issue"); r.code != ExitError {
		t.Errorf("deleted credential still authenticates: %s", r.stdout)
	}
}

// TestIdentityErrors: bad input is refused before anything is sent (exit
// 2), and the API's refusals are told plainly (exit 1).
func TestIdentityErrors(t *testing.T) {
	s := startIdentity(t)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"no cloud", map[string]string{}, []string{"project", "list"}, ExitError, "no identity service configured"},
		{"bare metal only", map[string]string{"OS_AUTH_TYPE": "none", "OS_ENDPOINT": "http://127.0.0.1:1"}, []string{"user", "list"}, ExitError, "no identity service configured"},
		{"wrong password", s.env("OS_PASSWORD", "wrong"), []string{"project", "list"}, ExitError, "authenticating to " + s.URL + ": The request you have made requires authentication."},
		{"unreachable", s.env("OS_AUTH_URL", "http://127.0.0.1:1"), []string{"project", "list"}, ExitError, "cannot reach http://127.0.0.1:1"},
		{"bad format", s.env(), []string{"project", "list", "-f", "xml"}, ExitUsage, `--format: "xml" is not one of table, json, yaml, value`},
		{"bad column", s.env(), []string{"project", "list", "-c", "nope"}, ExitUsage, `--column: unknown column "nope"`},
		{"enable and disable", s.env(), []string{"project", "create", "p", "--enable", "--disable"}, ExitUsage, "--enable and --disable cannot be used together"},
		{"set nothing", s.env(), []string{"project", "set", "admin"}, ExitUsage, "nothing to change: give at least one of --name"},
		{"role add without actor", s.env(), []string{"role", "add", "member", "--project", "admin"}, ExitUsage, "give one of --user and --group"},
		{"role add two scopes", s.env(), []string{"role", "add", "member", "--user", "admin", "--project", "admin", "--system", "all"}, ExitUsage, "give one of --project, --domain and --system"},
		{"bad system scope", s.env(), []string{"role", "add", "member", "--user", "admin", "--system", "everything"}, ExitUsage, `--system: "everything" is not a system scope`},
		{"bad interface", s.env(), []string{"endpoint", "create", "identity", "outside", "http://x"}, ExitUsage, `INTERFACE: "outside" is not public, internal or admin`},
		{"bad URL", s.env(), []string{"endpoint", "create", "identity", "public", "ftp://x"}, ExitUsage, `URL: "ftp://x" is not an http or https URL`},
		{"missing argument", s.env(), []string{"user", "create"}, ExitUsage, "expected 1 argument(s), got 0"},
		{"unknown subcommand", s.env(), []string{"project", "lsit"}, ExitUsage, `unknown command "lsit" for "strata project" (did you mean list`},
		{"bad expiration", s.env(), []string{"application", "credential", "create", "x", "--expiration", "tomorrow"}, ExitUsage, `--expiration: "tomorrow" is not a date and time`},
		{"password twice", s.env(), []string{"user", "create", "x", "--password", "a", "--password-stdin"}, ExitUsage, "--password and --password-stdin cannot be used together"},
		{"duplicate", s.env(), []string{"project", "create", "admin"}, ExitError, "Duplicate entry found with name admin"},
		{"not found", s.env(), []string{"role", "add", "nope", "--user", "admin", "--project", "admin"}, ExitError, `role "nope" not found`},
		{"forbidden delete", s.env(), []string{"domain", "delete", "default"}, ExitError, `cannot delete domain "default"`},
		{"partial delete", s.env(), []string{"project", "delete", "admin-x", "nope"}, ExitError, "2 of 2 projects failed to delete"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cliRun{env: tc.env}.run(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tc.code, tc.wantErr)
			}
			if !strings.HasPrefix(r.stderr, "strata: ") {
				t.Errorf("stderr does not start with \"strata: \": %q", r.stderr)
			}
		})
	}
}

func TestIdentityOutputFormats(t *testing.T) {
	s := startIdentity(t)
	s.ok(t, "project", "create", "demo", "--description", "Demo tenant", "--tag", "x")
	tests := []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{"value", func(t *testing.T, out string) {
			if !slices.Equal(lines(out), []string{"admin True", "demo True"}) {
				t.Errorf("%q", out)
			}
		}},
		{"json", func(t *testing.T, out string) {
			var got []map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			want := []map[string]any{{"name": "admin", "enabled": true}, {"name": "demo", "enabled": true}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"yaml", func(t *testing.T, out string) {
			var got []map[string]any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			want := []map[string]any{{"name": "admin", "enabled": true}, {"name": "demo", "enabled": true}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			out := s.ok(t, "project", "list", "-f", tc.format, "-c", "Name", "-c", "enabled")
			// Listing order is the server's (by ID): sort for the check.
			if tc.format == "value" {
				l := lines(out)
				slices.Sort(l)
				out = strings.Join(l, "\n")
			} else if strings.Index(out, "demo") < strings.Index(out, "admin") {
				out = swapProjects(t, tc.format, out)
			}
			tc.check(t, out)
		})
	}
	if got := s.ok(t, "project", "show", "demo", "-f", "value", "-c", "description", "-c", "tags"); got != "Demo tenant\n[\"x\"]\n" {
		t.Errorf("show -f value: %q", got)
	}
}

// swapProjects reorders a two-item json or yaml listing.
func swapProjects(t *testing.T, format, out string) string {
	t.Helper()
	var items []map[string]any
	var err error
	if format == "json" {
		err = json.Unmarshal([]byte(out), &items)
	} else {
		err = yaml.Unmarshal([]byte(out), &items)
	}
	if err != nil || len(items) != 2 {
		t.Fatalf("%s listing %q: %v", format, out, err)
	}
	items[0], items[1] = items[1], items[0]
	b, _ := json.Marshal(items)
	return string(b)
}

// TestIdentityCloudsYAML: the same commands through a clouds.yaml entry,
// its password in secure.yaml beside it.
func TestIdentityCloudsYAML(t *testing.T) {
	s := startIdentity(t)
	dir := t.TempDir()
	clouds := `clouds:
  strata:
    auth:
      auth_url: ` + s.URL + `/v3
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
`
	secure := "clouds:\n  strata:\n    auth:\n      password: " + identityTestPassword + "\n"
	if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(secure), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OS_CLIENT_CONFIG_FILE": filepath.Join(dir, "clouds.yaml")}
	r := cliRun{env: env}.run(t, "--os-cloud", "strata", "user", "list", "-f", "value", "-c", "Name").mustSucceed(t)
	if r.stdout != "admin\n" {
		t.Errorf("user list through clouds.yaml: %q", r.stdout)
	}
	env["OS_CLOUD"] = "nope"
	if r := (cliRun{env: env}).run(t, "user", "list"); r.code != ExitError || !strings.Contains(r.stderr, `cloud "nope" is not in`) {
		t.Errorf("unknown cloud: exit %d, stderr %q", r.code, r.stderr)
	}
}
