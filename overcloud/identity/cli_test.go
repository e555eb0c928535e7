package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The real `openstack` client (python3-openstackclient 6.0.0) against the
// service on a loopback port. Each command is its own process, with a
// clean environment: only PATH, HOME and the OS_* variables set here.

const openstackBin = "/usr/bin/openstack"

type cli struct {
	t    *testing.T
	home string
	env  map[string]string
}

func newCLI(t *testing.T, env *testEnv) *cli {
	t.Helper()
	if _, err := os.Stat(openstackBin); err != nil {
		t.Fatalf("the openstack client is missing (make deps installs python3-openstackclient): %v", err)
	}
	return &cli{t: t, home: t.TempDir(), env: map[string]string{
		// The unversioned root: the client runs version discovery.
		"OS_AUTH_URL":             env.url,
		"OS_IDENTITY_API_VERSION": "3",
		"OS_USERNAME":             "admin",
		"OS_PASSWORD":             adminPassword,
		"OS_PROJECT_NAME":         "admin",
		"OS_USER_DOMAIN_NAME":     "Default",
		"OS_PROJECT_DOMAIN_NAME":  "Default",
		"OS_INTERFACE":            "public",
	}}
}

// as returns a client with other OS_* variables; an empty value unsets.
func (c *cli) as(t *testing.T, vars map[string]string) *cli {
	n := &cli{t: t, home: c.home, env: map[string]string{}}
	for k, v := range c.env {
		n.env[k] = v
	}
	for k, v := range vars {
		if v == "" {
			delete(n.env, k)
		} else {
			n.env[k] = v
		}
	}
	return n
}

func (c *cli) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, openstackBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + c.home, "LC_ALL=C.UTF-8"}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// ok runs a command that must succeed and returns its output.
func (c *cli) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs a command that must fail, with want in its error output.
func (c *cli) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, err := c.run(t, args...)
	if err == nil {
		t.Fatalf("openstack %s succeeded: %s", strings.Join(args, " "), out)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("openstack %s: error %q does not mention %q", strings.Join(args, " "), errOut, want)
	}
}

// obj runs a command with -f json that prints an object.
func (c *cli) obj(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var v map[string]any
	out := c.ok(t, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("openstack %s: not a JSON object: %q", strings.Join(args, " "), out)
	}
	return v
}

// list runs a command with -f json that prints a list.
func (c *cli) list(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var v []map[string]any
	out := c.ok(t, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("openstack %s: not a JSON list: %q", strings.Join(args, " "), out)
	}
	return v
}

func column(rows []map[string]any, name string) []string {
	var out []string
	for _, r := range rows {
		s, _ := r[name].(string)
		out = append(out, s)
	}
	return out
}

func TestOpenStackCLI(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	osc := newCLI(t, env)

	t.Run("token and catalog", func(t *testing.T) {
		t.Parallel()
		tok := osc.obj(t, "token", "issue")
		if tok["user_id"] == "" || tok["project_id"] == "" || !strings.HasPrefix(tok["expires"].(string), "20") {
			t.Errorf("token issue = %v", tok)
		}
		// The services subtest adds to the catalog meanwhile: find
		// identity's entry rather than count them.
		cat := osc.list(t, "catalog", "list")
		i := slices.IndexFunc(cat, func(e map[string]any) bool { return e["Type"] == "identity" })
		if i < 0 || cat[i]["Name"] != "keystone" {
			t.Fatalf("catalog list = %v", cat)
		}
		eps := cat[i]["Endpoints"]
		for _, iface := range []string{"public", "internal", "admin"} {
			if !strings.Contains(jsonString(eps), iface) {
				t.Errorf("catalog has no %s endpoint: %v", iface, eps)
			}
		}
		// Revoke a token of our own, then it no longer validates.
		id := strings.TrimSpace(osc.ok(t, "token", "issue", "-f", "value", "-c", "id"))
		osc.ok(t, "token", "revoke", id)
		osc.as(t, map[string]string{
			"OS_AUTH_TYPE": "v3token", "OS_TOKEN": id, "OS_USERNAME": "", "OS_PASSWORD": "", "OS_USER_DOMAIN_NAME": "",
		}).fails(t, "401", "project", "list")
	})

	t.Run("projects", func(t *testing.T) {
		t.Parallel()
		p := osc.obj(t, "project", "create", "--domain", "default", "--description", "first", "cli-p1")
		if p["name"] != "cli-p1" || p["description"] != "first" || p["enabled"] != true || p["domain_id"] != "default" {
			t.Errorf("project create = %v", p)
		}
		osc.fails(t, "409", "project", "create", "cli-p1")
		if names := column(osc.list(t, "project", "list"), "Name"); !slices.Contains(names, "cli-p1") {
			t.Errorf("project list = %v", names)
		}
		osc.ok(t, "project", "set", "--name", "cli-p1b", "--description", "second", "--disable", "cli-p1")
		p = osc.obj(t, "project", "show", "cli-p1b")
		if p["description"] != "second" || p["enabled"] != false || p["id"] != p["id"] {
			t.Errorf("project show after set = %v", p)
		}
		osc.ok(t, "project", "delete", "cli-p1b")
		osc.fails(t, "No project with a name or ID of 'cli-p1b' exists", "project", "show", "cli-p1b")
	})

	t.Run("users and roles", func(t *testing.T) {
		t.Parallel()
		osc.ok(t, "project", "create", "cli-up")
		u := osc.obj(t, "user", "create", "--domain", "default", "--password", "cli-pw-1", "--project", "cli-up", "--email", "u@example.org", "cli-u1")
		if u["name"] != "cli-u1" || u["email"] != "u@example.org" || u["default_project_id"] == "" {
			t.Errorf("user create = %v", u)
		}
		if _, ok := u["password"]; ok {
			t.Error("user create shows the password")
		}
		if names := column(osc.list(t, "user", "list"), "Name"); !slices.Contains(names, "cli-u1") {
			t.Errorf("user list = %v", names)
		}
		osc.ok(t, "user", "set", "--password", "cli-pw-2", "--email", "v@example.org", "cli-u1")
		if u := osc.obj(t, "user", "show", "cli-u1"); u["email"] != "v@example.org" {
			t.Errorf("user show after set = %v", u)
		}

		r := osc.obj(t, "role", "create", "cli-r1")
		if r["name"] != "cli-r1" {
			t.Errorf("role create = %v", r)
		}
		osc.fails(t, "409", "role", "create", "cli-r1")
		osc.ok(t, "role", "set", "--name", "cli-r2", "cli-r1")
		if r := osc.obj(t, "role", "show", "cli-r2"); r["id"] == "" {
			t.Errorf("role show = %v", r)
		}
		if names := column(osc.list(t, "role", "list"), "Name"); !slices.Contains(names, "cli-r2") || !slices.Contains(names, "reader") {
			t.Errorf("role list = %v", names)
		}
		osc.ok(t, "role", "add", "--project", "cli-up", "--user", "cli-u1", "cli-r2")
		osc.ok(t, "role", "add", "--project", "cli-up", "--user", "cli-u1", "member")
		rows := osc.list(t, "role", "assignment", "list", "--user", "cli-u1", "--project", "cli-up", "--names")
		got := column(rows, "Role")
		slices.Sort(got)
		if !slices.Equal(got, []string{"cli-r2", "member"}) || rows[0]["User"] != "cli-u1@Default" || rows[0]["Project"] != "cli-up@Default" {
			t.Errorf("role assignment list --names = %v", rows)
		}
		eff := column(osc.list(t, "role", "assignment", "list", "--user", "cli-u1", "--project", "cli-up", "--names", "--effective"), "Role")
		slices.Sort(eff)
		if !slices.Equal(eff, []string{"cli-r2", "member", "reader"}) {
			t.Errorf("role assignment list --effective = %v, want the implied reader too", eff)
		}

		// The user logs in with its new password, to its default project.
		user := osc.as(t, map[string]string{"OS_USERNAME": "cli-u1", "OS_PASSWORD": "cli-pw-2", "OS_PROJECT_NAME": "cli-up"})
		tok := user.obj(t, "token", "issue")
		if tok["user_id"] != u["id"] {
			t.Errorf("token issue as cli-u1 = %v", tok)
		}
		// A member cannot administer.
		user.fails(t, "403", "project", "create", "cli-not-allowed")
		osc.as(t, map[string]string{"OS_USERNAME": "cli-u1", "OS_PASSWORD": "cli-pw-1", "OS_PROJECT_NAME": "cli-up"}).
			fails(t, "401", "token", "issue")

		osc.ok(t, "role", "remove", "--project", "cli-up", "--user", "cli-u1", "cli-r2")
		if got := column(osc.list(t, "role", "assignment", "list", "--user", "cli-u1", "--names"), "Role"); !slices.Equal(got, []string{"member"}) {
			t.Errorf("after role remove: %v", got)
		}
		osc.ok(t, "role", "delete", "cli-r2")
		osc.ok(t, "user", "delete", "cli-u1")
		osc.fails(t, "No user with a name or ID of 'cli-u1' exists", "user", "show", "cli-u1")
	})

	t.Run("groups", func(t *testing.T) {
		t.Parallel()
		osc.ok(t, "project", "create", "cli-gp")
		osc.ok(t, "user", "create", "--password", "cli-gpw", "cli-gu")
		g := osc.obj(t, "group", "create", "--description", "team", "cli-g1")
		if g["name"] != "cli-g1" {
			t.Errorf("group create = %v", g)
		}
		osc.ok(t, "group", "add", "user", "cli-g1", "cli-gu")
		osc.ok(t, "group", "contains", "user", "cli-g1", "cli-gu")
		osc.ok(t, "role", "add", "--project", "cli-gp", "--group", "cli-g1", "reader")
		rows := osc.list(t, "role", "assignment", "list", "--project", "cli-gp", "--effective", "--names")
		if len(rows) != 1 || rows[0]["User"] != "cli-gu@Default" || rows[0]["Role"] != "reader" {
			t.Errorf("effective assignments through a group = %v", rows)
		}
		osc.as(t, map[string]string{"OS_USERNAME": "cli-gu", "OS_PASSWORD": "cli-gpw", "OS_PROJECT_NAME": "cli-gp"}).ok(t, "token", "issue")
		osc.ok(t, "group", "remove", "user", "cli-g1", "cli-gu")
		osc.ok(t, "group", "delete", "cli-g1")
	})

	t.Run("domains", func(t *testing.T) {
		t.Parallel()
		d := osc.obj(t, "domain", "create", "--description", "dd", "cli-d1")
		if d["name"] != "cli-d1" || d["enabled"] != true {
			t.Errorf("domain create = %v", d)
		}
		if names := column(osc.list(t, "domain", "list"), "Name"); !slices.Contains(names, "cli-d1") || !slices.Contains(names, "Default") {
			t.Errorf("domain list = %v", names)
		}
		osc.ok(t, "domain", "set", "--description", "changed", "cli-d1")
		if d := osc.obj(t, "domain", "show", "cli-d1"); d["description"] != "changed" {
			t.Errorf("domain show = %v", d)
		}
		osc.fails(t, "403", "domain", "delete", "cli-d1") // still enabled
		osc.ok(t, "domain", "set", "--disable", "cli-d1")
		osc.ok(t, "domain", "delete", "cli-d1")
		if d := osc.obj(t, "domain", "show", "default"); d["name"] != "Default" {
			t.Errorf("domain show default = %v", d)
		}
	})

	t.Run("services endpoints regions", func(t *testing.T) {
		t.Parallel()
		rg := osc.obj(t, "region", "create", "--description", "second", "cli-R2")
		if rg["region"] != "cli-R2" {
			t.Errorf("region create = %v", rg)
		}
		osc.ok(t, "region", "set", "--description", "two", "cli-R2")
		if rg := osc.obj(t, "region", "show", "cli-R2"); rg["description"] != "two" {
			t.Errorf("region show = %v", rg)
		}
		if ids := column(osc.list(t, "region", "list"), "Region"); !slices.Contains(ids, "RegionOne") || !slices.Contains(ids, "cli-R2") {
			t.Errorf("region list = %v", ids)
		}
		sv := osc.obj(t, "service", "create", "--name", "cli-nova", "--description", "compute", "compute")
		if sv["type"] != "compute" || sv["name"] != "cli-nova" {
			t.Errorf("service create = %v", sv)
		}
		osc.ok(t, "service", "set", "--description", "Compute", "cli-nova")
		if sv := osc.obj(t, "service", "show", "cli-nova"); sv["description"] != "Compute" {
			t.Errorf("service show = %v", sv)
		}
		ep := osc.obj(t, "endpoint", "create", "--region", "cli-R2", "cli-nova", "public", "http://compute.example:8774/v2.1")
		if ep["region"] != "cli-R2" || ep["interface"] != "public" || ep["service_name"] != "cli-nova" {
			t.Errorf("endpoint create = %v", ep)
		}
		id := ep["id"].(string)
		osc.ok(t, "endpoint", "set", "--url", "http://compute.example:8774/v2.1/", id)
		if ep := osc.obj(t, "endpoint", "show", id); ep["url"] != "http://compute.example:8774/v2.1/" {
			t.Errorf("endpoint show = %v", ep)
		}
		rows := osc.list(t, "endpoint", "list", "--service", "compute")
		if len(rows) != 1 || rows[0]["Service Name"] != "cli-nova" {
			t.Errorf("endpoint list --service compute = %v", rows)
		}
		if names := column(osc.list(t, "service", "list"), "Name"); !slices.Contains(names, "cli-nova") || !slices.Contains(names, "keystone") {
			t.Errorf("service list = %v", names)
		}
		osc.fails(t, "409", "region", "delete", "cli-R2") // an endpoint is in it
		osc.ok(t, "endpoint", "delete", id)
		osc.ok(t, "service", "delete", "cli-nova")
		osc.ok(t, "region", "delete", "cli-R2")
	})

	t.Run("application credentials", func(t *testing.T) {
		t.Parallel()
		ac := osc.obj(t, "application", "credential", "create", "--description", "ci", "cli-ac1")
		id, secret := ac["id"].(string), ac["secret"].(string)
		if id == "" || secret == "" || ac["name"] != "cli-ac1" {
			t.Fatalf("application credential create = %v", ac)
		}
		if names := column(osc.list(t, "application", "credential", "list"), "Name"); !slices.Contains(names, "cli-ac1") {
			t.Errorf("application credential list = %v", names)
		}
		if got := osc.obj(t, "application", "credential", "show", "cli-ac1"); got["id"] != id || got["secret"] != nil {
			t.Errorf("application credential show = %v", got)
		}
		appcred := osc.as(t, map[string]string{
			"OS_AUTH_TYPE":                     "v3applicationcredential",
			"OS_APPLICATION_CREDENTIAL_ID":     id,
			"OS_APPLICATION_CREDENTIAL_SECRET": secret,
			"OS_USERNAME":                      "", "OS_PASSWORD": "", "OS_PROJECT_NAME": "",
			"OS_USER_DOMAIN_NAME": "", "OS_PROJECT_DOMAIN_NAME": "",
		})
		tok := appcred.obj(t, "token", "issue")
		if tok["project_id"] == "" || tok["user_id"] == "" {
			t.Errorf("token issue with an application credential = %v", tok)
		}
		osc.ok(t, "application", "credential", "delete", "cli-ac1")
		appcred.fails(t, "401", "token", "issue")
	})
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
