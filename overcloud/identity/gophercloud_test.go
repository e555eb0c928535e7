package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// gopherAdmin logs in as admin the way a Go program would: version
// discovery on the unversioned root, then a password login.
func gopherAdmin(t *testing.T, env *testEnv) *gophercloud.ServiceClient {
	t.Helper()
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: env.url + "/",
		Username:         "admin",
		Password:         adminPassword,
		DomainName:       "Default",
		TenantName:       "admin",
	})
	if err != nil {
		t.Fatalf("gophercloud login: %v", err)
	}
	client, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("identity client from the catalog: %v", err)
	}
	return client
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if !gophercloud.ResponseCodeIs(err, status) {
		t.Errorf("error %v, want HTTP %d", err, status)
	}
}

func TestGophercloud(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	ctx := context.Background()
	c := gopherAdmin(t, env)

	// Tokens.
	tok, err := tokens.Create(ctx, c, &tokens.AuthOptions{
		Username: "admin", Password: adminPassword, DomainID: "default",
		Scope: tokens.Scope{ProjectName: "admin", DomainID: "default"},
	}).Extract()
	if err != nil {
		t.Fatalf("tokens.Create: %v", err)
	}
	if time.Until(tok.ExpiresAt) < 50*time.Minute || tok.ID == "" {
		t.Errorf("token = %+v", tok)
	}
	got := tokens.Get(ctx, c, tok.ID)
	if u, err := got.ExtractUser(); err != nil || u.Name != "admin" || u.Domain.ID != "default" {
		t.Errorf("tokens.Get user = %+v, %v", u, err)
	}
	if p, err := got.ExtractProject(); err != nil || p.Name != "admin" {
		t.Errorf("tokens.Get project = %+v, %v", p, err)
	}
	if cat, err := got.ExtractServiceCatalog(); err != nil || len(cat.Entries) != 1 || len(cat.Entries[0].Endpoints) != 3 {
		t.Errorf("tokens.Get catalog = %+v, %v", cat, err)
	}
	if ok, err := tokens.Validate(ctx, c, tok.ID); err != nil || !ok {
		t.Errorf("tokens.Validate = %v, %v", ok, err)
	}
	if err := tokens.Revoke(ctx, c, tok.ID).Err; err != nil {
		t.Errorf("tokens.Revoke: %v", err)
	}
	if ok, _ := tokens.Validate(ctx, c, tok.ID); ok {
		t.Error("a revoked token still validates")
	}
	pages, err := catalog.List(c).AllPages(ctx)
	if err != nil {
		t.Fatalf("catalog.List: %v", err)
	}
	if entries, _ := catalog.ExtractServiceCatalog(pages); len(entries) != 1 || entries[0].Type != "identity" {
		t.Errorf("catalog = %+v", entries)
	}

	// Domains.
	d, err := domains.Create(ctx, c, domains.CreateOpts{Name: "gc-d", Description: "gc"}).Extract()
	if err != nil {
		t.Fatalf("domains.Create: %v", err)
	}
	_, err = domains.Create(ctx, c, domains.CreateOpts{Name: "gc-d"}).Extract()
	wantStatus(t, err, http.StatusConflict)
	disabled := false
	if d, err = domains.Update(ctx, c, d.ID, domains.UpdateOpts{Enabled: &disabled}).Extract(); err != nil || d.Enabled {
		t.Errorf("domains.Update = %+v, %v", d, err)
	}
	if got, err := domains.Get(ctx, c, d.ID).Extract(); err != nil || got.Name != "gc-d" {
		t.Errorf("domains.Get = %+v, %v", got, err)
	}

	// Projects.
	p, err := projects.Create(ctx, c, projects.CreateOpts{Name: "gc-p", DomainID: "default", Description: "gc project"}).Extract()
	if err != nil {
		t.Fatalf("projects.Create: %v", err)
	}
	_, err = projects.Create(ctx, c, projects.CreateOpts{Name: "gc-p", DomainID: "default"}).Extract()
	wantStatus(t, err, http.StatusConflict)
	_, err = projects.Get(ctx, c, "0123456789abcdef0123456789abcdef").Extract()
	wantStatus(t, err, http.StatusNotFound)
	desc := "changed"
	if p2, err := projects.Update(ctx, c, p.ID, projects.UpdateOpts{Description: &desc}).Extract(); err != nil || p2.Description != desc {
		t.Errorf("projects.Update = %+v, %v", p2, err)
	}
	pages, err = projects.List(c, projects.ListOpts{Name: "gc-p"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("projects.List: %v", err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != p.ID {
		t.Errorf("projects.List(name=gc-p) = %+v", ps)
	}

	// Users and groups.
	u, err := users.Create(ctx, c, users.CreateOpts{Name: "gc-u", DomainID: "default", Password: "gc-pw", DefaultProjectID: p.ID}).Extract()
	if err != nil {
		t.Fatalf("users.Create: %v", err)
	}
	if u.DefaultProjectID != p.ID || !u.Enabled {
		t.Errorf("users.Create = %+v", u)
	}
	g, err := groups.Create(ctx, c, groups.CreateOpts{Name: "gc-g", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("groups.Create: %v", err)
	}
	if err := users.AddToGroup(ctx, c, g.ID, u.ID).ExtractErr(); err != nil {
		t.Errorf("users.AddToGroup: %v", err)
	}
	if ok, err := users.IsMemberOfGroup(ctx, c, g.ID, u.ID).Extract(); err != nil || !ok {
		t.Errorf("users.IsMemberOfGroup = %v, %v", ok, err)
	}
	pages, err = users.ListInGroup(c, g.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if us, _ := users.ExtractUsers(pages); len(us) != 1 || us[0].ID != u.ID {
		t.Errorf("users.ListInGroup = %+v", us)
	}

	// Roles and assignments.
	r, err := roles.Create(ctx, c, roles.CreateOpts{Name: "gc-role"}).Extract()
	if err != nil {
		t.Fatalf("roles.Create: %v", err)
	}
	_, err = roles.Create(ctx, c, roles.CreateOpts{Name: "gc-role"}).Extract()
	wantStatus(t, err, http.StatusConflict)
	pages, err = roles.List(c, roles.ListOpts{Name: "member"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	memberRoles, _ := roles.ExtractRoles(pages)
	if len(memberRoles) != 1 {
		t.Fatalf("roles.List(name=member) = %+v", memberRoles)
	}
	if err := roles.Assign(ctx, c, memberRoles[0].ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Errorf("roles.Assign: %v", err)
	}
	if err := roles.Assign(ctx, c, r.ID, roles.AssignOpts{GroupID: g.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Errorf("roles.Assign to a group: %v", err)
	}
	effective, names := true, true
	pages, err = roles.ListAssignments(c, roles.ListAssignmentsOpts{UserID: u.ID, Effective: &effective, IncludeNames: &names}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	as, _ := roles.ExtractRoleAssignments(pages)
	var roleNames []string
	for _, a := range as {
		roleNames = append(roleNames, a.Role.Name)
		if a.Scope.Project.ID != p.ID || a.User.ID != u.ID || a.User.Name != "gc-u" {
			t.Errorf("assignment = %+v", a)
		}
	}
	slices.Sort(roleNames)
	if !slices.Equal(roleNames, []string{"gc-role", "member", "reader"}) {
		t.Errorf("effective roles = %v, want gc-role (through the group), member and reader (implied)", roleNames)
	}
	pages, err = roles.ListAssignmentsOnResource(c, roles.ListAssignmentsOnResourceOpts{UserID: u.ID, ProjectID: p.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs, _ := roles.ExtractRoles(pages); len(rs) != 1 || rs[0].Name != "member" {
		t.Errorf("roles.ListAssignmentsOnResource = %+v", rs)
	}

	// The user logs in, to its default project, and sees only that.
	userProvider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: env.url + "/v3", Username: "gc-u", Password: "gc-pw", DomainID: "default",
	})
	if err != nil {
		t.Fatalf("user login: %v", err)
	}
	uc, err := openstack.NewIdentityV3(userProvider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projects.Get(ctx, uc, p.ID).Extract(); err != nil {
		t.Errorf("the user reading its own project: %v", err)
	}
	_, err = projects.List(uc, nil).AllPages(ctx)
	wantStatus(t, err, http.StatusForbidden)
	_, err = projects.Create(ctx, uc, projects.CreateOpts{Name: "nope"}).Extract()
	wantStatus(t, err, http.StatusForbidden)

	// Application credentials.
	ac, err := applicationcredentials.Create(ctx, uc, u.ID, applicationcredentials.CreateOpts{
		Name: "gc-ac", Roles: []applicationcredentials.Role{{Name: "reader"}},
	}).Extract()
	if err != nil {
		t.Fatalf("applicationcredentials.Create: %v", err)
	}
	acProvider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: env.url + "/v3", ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret,
	})
	if err != nil {
		t.Fatalf("login with the application credential: %v", err)
	}
	if acProvider.Token() == "" {
		t.Error("no token from the application credential")
	}
	pages, err = applicationcredentials.List(uc, u.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acs, _ := applicationcredentials.ExtractApplicationCredentials(pages); len(acs) != 1 || acs[0].Name != "gc-ac" || acs[0].Secret != "" {
		t.Errorf("applicationcredentials.List = %+v", acs)
	}
	if got, err := applicationcredentials.Get(ctx, uc, u.ID, ac.ID).Extract(); err != nil || got.ProjectID != p.ID {
		t.Errorf("applicationcredentials.Get = %+v, %v", got, err)
	}
	if err := applicationcredentials.Delete(ctx, uc, u.ID, ac.ID).ExtractErr(); err != nil {
		t.Errorf("applicationcredentials.Delete: %v", err)
	}

	// Services, endpoints, regions.
	rg, err := regions.Create(ctx, c, regions.CreateOpts{ID: "gc-region", Description: "gc"}).Extract()
	if err != nil {
		t.Fatalf("regions.Create: %v", err)
	}
	_, err = regions.Create(ctx, c, regions.CreateOpts{ID: "gc-region"}).Extract()
	wantStatus(t, err, http.StatusConflict)
	sv, err := services.Create(ctx, c, services.CreateOpts{Type: "image", Extra: map[string]any{"name": "glance"}}).Extract()
	if err != nil {
		t.Fatalf("services.Create: %v", err)
	}
	ep, err := endpoints.Create(ctx, c, endpoints.CreateOpts{
		Availability: gophercloud.AvailabilityInternal, URL: "http://image.example:9292", Region: rg.ID, ServiceID: sv.ID,
	}).Extract()
	if err != nil {
		t.Fatalf("endpoints.Create: %v", err)
	}
	if ep.Region != rg.ID || ep.Availability != gophercloud.AvailabilityInternal {
		t.Errorf("endpoints.Create = %+v", ep)
	}
	pages, err = endpoints.List(c, endpoints.ListOpts{ServiceID: sv.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if eps, _ := endpoints.ExtractEndpoints(pages); len(eps) != 1 {
		t.Errorf("endpoints.List = %+v", eps)
	}
	if err := endpoints.Delete(ctx, c, ep.ID).ExtractErr(); err != nil {
		t.Errorf("endpoints.Delete: %v", err)
	}
	if err := services.Delete(ctx, c, sv.ID).ExtractErr(); err != nil {
		t.Errorf("services.Delete: %v", err)
	}
	if err := regions.Delete(ctx, c, rg.ID).ExtractErr(); err != nil {
		t.Errorf("regions.Delete: %v", err)
	}

	// Cleanup through the API, and 404s after.
	for _, del := range []func() error{
		func() error { return roles.Delete(ctx, c, r.ID).ExtractErr() },
		func() error { return groups.Delete(ctx, c, g.ID).ExtractErr() },
		func() error { return users.Delete(ctx, c, u.ID).ExtractErr() },
		func() error { return projects.Delete(ctx, c, p.ID).ExtractErr() },
		func() error { return domains.Delete(ctx, c, d.ID).ExtractErr() },
	} {
		if err := del(); err != nil {
			t.Errorf("delete: %v", err)
		}
	}
	_, err = users.Get(ctx, c, u.ID).Extract()
	wantStatus(t, err, http.StatusNotFound)
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if _, err = projects.Get(ctx, c, p.ID).Extract(); !errors.As(err, &unexpected) || unexpected.Actual != 404 {
		t.Errorf("deleted project: %v", err)
	}
}
