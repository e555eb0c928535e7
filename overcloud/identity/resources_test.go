package identity

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestUnknownIDsAre404(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	const id = "0123456789abcdef0123456789abcdef"
	for _, p := range []string{
		"/v3/domains/" + id, "/v3/projects/" + id, "/v3/users/" + id, "/v3/groups/" + id, "/v3/roles/" + id,
		"/v3/services/" + id, "/v3/endpoints/" + id, "/v3/regions/" + id,
		"/v3/users/" + id + "/projects", "/v3/groups/" + id + "/users",
		"/v3/projects/" + id + "/users/" + id + "/roles",
	} {
		r := env.do(t, "GET", p, admin, nil)
		if r.status != 404 || str(r.body, "error", "title") != "Not Found" || !strings.Contains(str(r.body, "error", "message"), "Could not find") {
			t.Errorf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	for _, p := range []string{"/v3/projects/" + id, "/v3/users/" + id, "/v3/roles/" + id, "/v3/domains/" + id} {
		if r := env.do(t, "DELETE", p, admin, nil); r.status != 404 {
			t.Errorf("DELETE %s: %d", p, r.status)
		}
	}
	// Looking a name up as an ID is a 404, so that clients fall back to
	// ?name= (as osc-lib does).
	env.must(t, 404, "GET", "/v3/projects/admin", admin, nil)
	r := env.must(t, 200, "GET", "/v3/projects?name=admin", admin, nil)
	if len(r.body["projects"].([]any)) != 1 {
		t.Errorf("?name=admin = %s", r.raw)
	}
	r = env.must(t, 200, "GET", "/v3/domains?name=Default", admin, nil)
	if str(r.body, "domains", 0, "id") != "default" {
		t.Errorf("?name=Default = %s", r.raw)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	for i := range 5 {
		env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "page-" + string(rune('a'+i))}})
	}
	r := env.must(t, 200, "GET", "/v3/projects", admin, nil)
	all := r.body["projects"].([]any)
	if len(all) != 6 || path(r.body, "links", "next") != nil || str(r.body, "links", "self") != env.url+"/v3/projects" {
		t.Fatalf("unpaged list = %s", r.raw)
	}
	var seen []string
	next := "/v3/projects?limit=4"
	for next != "" {
		r := env.must(t, 200, "GET", next, admin, nil)
		for _, p := range r.body["projects"].([]any) {
			seen = append(seen, str(p, "id"))
		}
		n, _ := path(r.body, "links", "next").(string)
		next = strings.TrimPrefix(n, env.url)
	}
	var want []string
	for _, p := range all {
		want = append(want, str(p, "id"))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paged ids %v, want %v", seen, want)
	}
	env.must(t, 400, "GET", "/v3/projects?marker=nope", admin, nil)
}

func TestImpliedRoles(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	a := str(env.must(t, 201, "POST", "/v3/roles", admin, map[string]any{"role": map[string]any{"name": "ra"}}).body, "role", "id")
	b := str(env.must(t, 201, "POST", "/v3/roles", admin, map[string]any{"role": map[string]any{"name": "rb"}}).body, "role", "id")
	r := env.must(t, 201, "PUT", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	if str(r.body, "role_inference", "prior_role", "id") != a || str(r.body, "role_inference", "implies", "id") != b {
		t.Errorf("create inference = %s", r.raw)
	}
	env.must(t, 200, "GET", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	env.must(t, 204, "HEAD", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	env.must(t, 400, "PUT", "/v3/roles/"+b+"/implies/"+a, admin, nil) // a cycle
	r = env.must(t, 200, "GET", "/v3/roles/"+a+"/implies", admin, nil)
	if str(r.body, "role_inference", "implies", 0, "name") != "rb" {
		t.Errorf("list implied = %s", r.raw)
	}
	r = env.must(t, 200, "GET", "/v3/role_inferences", admin, nil)
	var priors []string
	for _, ri := range r.body["role_inferences"].([]any) {
		priors = append(priors, str(ri, "prior_role", "name"))
	}
	sort.Strings(priors)
	if !slices.Equal(priors, []string{"admin", "member", "ra"}) {
		t.Errorf("role_inferences priors = %v", priors)
	}

	// A grant of ra gives rb in tokens and in effective assignments.
	pid, uid := env.fixture(t, admin, "imp", "impuser", "pw-imp", "ra")
	_, tok := env.token(t, "impuser", "pw-imp", projectScope("imp"))
	var names []string
	for _, ro := range tok["roles"].([]any) {
		names = append(names, str(ro, "name"))
	}
	if !slices.Equal(names, []string{"ra", "rb"}) {
		t.Errorf("token roles = %v", names)
	}
	r = env.must(t, 200, "GET", "/v3/role_assignments?effective&user.id="+uid, admin, nil)
	var rows []string
	for _, ra := range r.body["role_assignments"].([]any) {
		rows = append(rows, str(ra, "role", "id")+" "+str(ra, "links", "prior_role"))
	}
	sort.Strings(rows)
	wantRows := []string{a + " ", b + " " + env.url + "/v3/roles/" + a + "/implies/" + b}
	sort.Strings(wantRows)
	if !slices.Equal(rows, wantRows) {
		t.Errorf("effective rows = %v, want %v", rows, wantRows)
	}
	_ = pid
	env.must(t, 204, "DELETE", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	env.must(t, 404, "GET", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	// Deleting a role takes its grants and inferences with it.
	env.must(t, 201, "PUT", "/v3/roles/"+a+"/implies/"+b, admin, nil)
	env.must(t, 204, "DELETE", "/v3/roles/"+b, admin, nil)
	r = env.must(t, 200, "GET", "/v3/roles/"+a+"/implies", admin, nil)
	if n := len(path(r.body, "role_inference", "implies").([]any)); n != 0 {
		t.Errorf("a deleted role is still implied: %s", r.raw)
	}
}

func TestRoleAssignmentListing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	pid, uid := env.fixture(t, admin, "ral", "raluser", "pw-ral", "")
	gid := str(env.must(t, 201, "POST", "/v3/groups", admin, map[string]any{"group": map[string]any{"name": "ralg"}}).body, "group", "id")
	env.must(t, 204, "PUT", "/v3/groups/"+gid+"/users/"+uid, admin, nil)
	member := env.roleID(t, admin, "member")
	env.must(t, 204, "PUT", "/v3/projects/"+pid+"/groups/"+gid+"/roles/"+member, admin, nil)
	env.must(t, 204, "HEAD", "/v3/projects/"+pid+"/groups/"+gid+"/roles/"+member, admin, nil)
	env.must(t, 404, "HEAD", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, admin, nil)
	env.must(t, 204, "PUT", "/v3/domains/default/users/"+uid+"/roles/"+env.roleID(t, admin, "reader"), admin, nil)

	// Direct, by project: the group's grant, with names.
	r := env.must(t, 200, "GET", "/v3/role_assignments?scope.project.id="+pid+"&include_names=True", admin, nil)
	ras := r.body["role_assignments"].([]any)
	if len(ras) != 1 || str(ras, 0, "group", "id") != gid || str(ras, 0, "group", "name") != "ralg" ||
		str(ras, 0, "group", "domain", "name") != "Default" || str(ras, 0, "role", "name") != "member" ||
		str(ras, 0, "scope", "project", "name") != "ral" || str(ras, 0, "scope", "project", "domain", "id") != "default" ||
		str(ras, 0, "links", "assignment") != env.url+"/v3/projects/"+pid+"/groups/"+gid+"/roles/"+member {
		t.Errorf("direct listing = %s", r.raw)
	}
	// Effective: the user through the group, with a membership link, and
	// the implied reader.
	r = env.must(t, 200, "GET", "/v3/role_assignments?effective&scope.project.id="+pid, admin, nil)
	ras = r.body["role_assignments"].([]any)
	if len(ras) != 2 || str(ras, 0, "user", "id") != uid || str(ras, 0, "links", "membership") != env.url+"/v3/groups/"+gid+"/users/"+uid {
		t.Errorf("effective listing = %s", r.raw)
	}
	// Domain scope.
	r = env.must(t, 200, "GET", "/v3/role_assignments?scope.domain.id=default&user.id="+uid, admin, nil)
	if ras := r.body["role_assignments"].([]any); len(ras) != 1 || str(ras, 0, "scope", "domain", "id") != "default" {
		t.Errorf("domain listing = %s", r.raw)
	}
	// System scope: the admin's.
	r = env.must(t, 200, "GET", "/v3/role_assignments?scope.system=all", admin, nil)
	if ras := r.body["role_assignments"].([]any); len(ras) != 1 || path(ras, 0, "scope", "system", "all") != true {
		t.Errorf("system listing = %s", r.raw)
	}
	env.must(t, 400, "GET", "/v3/role_assignments?effective&group.id="+gid, admin, nil)
	// Membership removal takes the role away.
	_, tok := env.token(t, "raluser", "pw-ral", projectScope("ral"))
	if len(tok["roles"].([]any)) != 2 {
		t.Errorf("token through the group: %v", tok["roles"])
	}
	env.must(t, 204, "DELETE", "/v3/groups/"+gid+"/users/"+uid, admin, nil)
	env.must(t, 404, "GET", "/v3/groups/"+gid+"/users/"+uid, admin, nil)
	env.must(t, 401, "POST", "/v3/auth/tokens", "", passwordAuth("raluser", "pw-ral", projectScope("ral")))
}

func TestDomainLifecycle(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	did := str(env.must(t, 201, "POST", "/v3/domains", admin, map[string]any{"domain": map[string]any{"name": "dl"}}).body, "domain", "id")
	pid := str(env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "dlp", "domain_id": did}}).body, "project", "id")
	child := str(env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "dlc", "domain_id": did, "parent_id": pid}}).body, "project", "id")
	uid := str(env.must(t, 201, "POST", "/v3/users", admin, map[string]any{"user": map[string]any{"name": "dlu", "domain_id": did, "password": "pw-dl"}}).body, "user", "id")
	// Same names are fine in another domain.
	env.must(t, 201, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "dlp"}})
	env.must(t, 409, "POST", "/v3/projects", admin, map[string]any{"project": map[string]any{"name": "dlp", "domain_id": did}})
	env.must(t, 403, "DELETE", "/v3/projects/"+pid, admin, nil) // has a child
	env.must(t, 204, "PUT", "/v3/projects/"+child+"/users/"+uid+"/roles/"+env.roleID(t, admin, "member"), admin, nil)
	r := env.must(t, 201, "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "dlu", "domain": map[string]any{"name": "dl"}, "password": "pw-dl"}}},
		"scope": map[string]any{"project": map[string]any{"name": "dlc", "domain": map[string]any{"id": did}}},
	}})
	tok := r.header.Get("X-Subject-Token")
	env.must(t, 403, "DELETE", "/v3/domains/"+did, admin, nil) // enabled
	env.must(t, 403, "DELETE", "/v3/domains/default", admin, nil)
	env.must(t, 200, "PATCH", "/v3/domains/"+did, admin, map[string]any{"domain": map[string]any{"enabled": false}})
	env.must(t, 401, "GET", "/v3/auth/catalog", tok, nil) // the domain's tokens are revoked
	env.must(t, 204, "DELETE", "/v3/domains/"+did, admin, nil)
	for _, p := range []string{"/v3/projects/" + pid, "/v3/projects/" + child, "/v3/users/" + uid, "/v3/domains/" + did} {
		env.must(t, 404, "GET", p, admin, nil)
	}
}

func TestRegions(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	env.must(t, 201, "PUT", "/v3/regions/Parent", admin, map[string]any{"region": map[string]any{"description": "p"}})
	env.must(t, 201, "POST", "/v3/regions", admin, map[string]any{"region": map[string]any{"id": "Child", "parent_region_id": "Parent"}})
	env.must(t, 409, "POST", "/v3/regions", admin, map[string]any{"region": map[string]any{"id": "Child"}})
	env.must(t, 400, "PATCH", "/v3/regions/Parent", admin, map[string]any{"region": map[string]any{"parent_region_id": "Child"}})
	env.must(t, 400, "POST", "/v3/regions", admin, map[string]any{"region": map[string]any{"id": "Orphan", "parent_region_id": "Nowhere"}})
	env.must(t, 409, "DELETE", "/v3/regions/Parent", admin, nil)
	r := env.must(t, 200, "GET", "/v3/regions?parent_region_id=Parent", admin, nil)
	if ids := r.body["regions"].([]any); len(ids) != 1 || str(ids, 0, "id") != "Child" {
		t.Errorf("children of Parent = %s", r.raw)
	}
	// Any authenticated user may read regions.
	env.fixture(t, admin, "regp", "reguser", "pw-reg", "reader")
	tok, _ := env.token(t, "reguser", "pw-reg", projectScope("regp"))
	env.must(t, 200, "GET", "/v3/regions/"+url.PathEscape("Child"), tok, nil)
	env.must(t, 204, "DELETE", "/v3/regions/Child", admin, nil)
	env.must(t, 204, "DELETE", "/v3/regions/Parent", admin, nil)
}

func TestEndpointPlaceholders(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	admin := env.adminToken(t)
	sid := str(env.must(t, 201, "POST", "/v3/services", admin, map[string]any{"service": map[string]any{"type": "volumev3", "name": "cinder"}}).body, "service", "id")
	env.must(t, 201, "POST", "/v3/endpoints", admin, map[string]any{"endpoint": map[string]any{
		"service_id": sid, "interface": "public", "region": "RegionOne", "url": "http://vol:8776/v3/$(project_id)s",
	}})
	r := env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("admin", adminPassword, projectScope("admin")))
	pid := str(r.body, "token", "project", "id")
	found := false
	for _, svc := range path(r.body, "token", "catalog").([]any) {
		if str(svc, "type") == "volumev3" {
			found = str(svc, "endpoints", 0, "url") == "http://vol:8776/v3/"+pid
		}
	}
	if !found {
		t.Errorf("the volume endpoint does not carry the project ID: %s", r.raw)
	}
	// A system token has no project: the endpoint is left out.
	r = env.must(t, 201, "POST", "/v3/auth/tokens", "", passwordAuth("admin", adminPassword, map[string]any{"system": map[string]any{"all": true}}))
	for _, svc := range path(r.body, "token", "catalog").([]any) {
		if str(svc, "type") == "volumev3" && len(svc.(map[string]any)["endpoints"].([]any)) != 0 {
			t.Errorf("a project endpoint in a system token: %v", svc)
		}
	}
}

func TestBootstrapOnce(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	ctx := context.Background()
	if done, err := env.srv.Bootstrapped(ctx); err != nil || !done {
		t.Fatalf("Bootstrapped = %v, %v", done, err)
	}
	// A restart needs no password and changes nothing.
	if err := env.srv.Bootstrap(ctx, Bootstrap{PublicURL: "http://elsewhere:5000/v3"}); err != nil {
		t.Fatal(err)
	}
	admin := env.adminToken(t)
	r := env.must(t, 200, "GET", "/v3/endpoints", admin, nil)
	if eps := r.body["endpoints"].([]any); len(eps) != 3 || str(eps, 0, "url") != env.url+"/v3" {
		t.Errorf("endpoints after a second bootstrap = %s", r.raw)
	}
	// A fresh store without a password refuses to start half-made.
	other := newTestEnvNoBootstrap(t)
	if err := other.Bootstrap(ctx, Bootstrap{PublicURL: "http://x:5000/v3"}); !errors.Is(err, ErrNoBootstrapPassword) {
		t.Errorf("bootstrap without a password = %v", err)
	}
	if err := other.Bootstrap(ctx, Bootstrap{Password: "pw"}); err == nil {
		t.Error("bootstrap without a URL succeeded")
	}
}
