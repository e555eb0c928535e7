package identity

import (
	"net/http"

	"github.com/stratacloud/strata/overcloud/api"
)

// routes maps the Keystone v3 API onto the handlers. Discovery, token
// issue and the password change are open; everything else needs a valid
// X-Auth-Token. GET routes also answer HEAD.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	open := func(pattern string, f api.Func) { mux.Handle(pattern, s.errs.Handle(f)) }
	authed := func(pattern string, f api.Func) { mux.Handle(pattern, s.auth.Require(s.errs.Handle(f))) }

	open("GET /{$}", s.versions)
	open("GET /v3", s.version)
	open("GET /v3/{$}", s.version)
	open("POST /v3/auth/tokens", s.issueToken)
	open("POST /v3/users/{user_id}/password", s.changePassword)

	authed("GET /v3/auth/tokens", s.validateToken)
	authed("DELETE /v3/auth/tokens", s.revokeToken)
	authed("GET /v3/auth/catalog", s.authCatalog)
	authed("GET /v3/auth/projects", s.authProjects)
	authed("GET /v3/auth/domains", s.authDomains)
	authed("GET /v3/auth/system", s.authSystem)

	authed("GET /v3/domains", s.listDomains)
	authed("POST /v3/domains", s.createDomain)
	authed("GET /v3/domains/{domain_id}", s.getDomain)
	authed("PATCH /v3/domains/{domain_id}", s.updateDomain)
	authed("DELETE /v3/domains/{domain_id}", s.deleteDomain)

	authed("GET /v3/projects", s.listProjects)
	authed("POST /v3/projects", s.createProject)
	authed("GET /v3/projects/{project_id}", s.getProject)
	authed("PATCH /v3/projects/{project_id}", s.updateProject)
	authed("DELETE /v3/projects/{project_id}", s.deleteProject)
	authed("GET /v3/projects/{project_id}/tags", s.listProjectTags)
	authed("PUT /v3/projects/{project_id}/tags", s.replaceProjectTags)
	authed("DELETE /v3/projects/{project_id}/tags", s.deleteProjectTags)
	authed("GET /v3/projects/{project_id}/tags/{value}", s.checkProjectTag)
	authed("PUT /v3/projects/{project_id}/tags/{value}", s.addProjectTag)
	authed("DELETE /v3/projects/{project_id}/tags/{value}", s.deleteProjectTag)

	authed("GET /v3/users", s.listUsers)
	authed("POST /v3/users", s.createUser)
	authed("GET /v3/users/{user_id}", s.getUser)
	authed("PATCH /v3/users/{user_id}", s.updateUser)
	authed("DELETE /v3/users/{user_id}", s.deleteUser)
	authed("GET /v3/users/{user_id}/projects", s.listUserProjects)
	authed("GET /v3/users/{user_id}/groups", s.listGroupsForUser)

	authed("GET /v3/groups", s.listGroups)
	authed("POST /v3/groups", s.createGroup)
	authed("GET /v3/groups/{group_id}", s.getGroup)
	authed("PATCH /v3/groups/{group_id}", s.updateGroup)
	authed("DELETE /v3/groups/{group_id}", s.deleteGroup)
	authed("GET /v3/groups/{group_id}/users", s.listUsersInGroup)
	authed("PUT /v3/groups/{group_id}/users/{user_id}", s.addUserToGroup)
	authed("GET /v3/groups/{group_id}/users/{user_id}", s.checkUserInGroup)
	authed("DELETE /v3/groups/{group_id}/users/{user_id}", s.removeUserFromGroup)

	authed("GET /v3/roles", s.listRoles)
	authed("POST /v3/roles", s.createRole)
	authed("GET /v3/roles/{role_id}", s.getRole)
	authed("PATCH /v3/roles/{role_id}", s.updateRole)
	authed("DELETE /v3/roles/{role_id}", s.deleteRole)
	authed("GET /v3/roles/{prior_role_id}/implies", s.listImpliedRoles)
	authed("PUT /v3/roles/{prior_role_id}/implies/{implied_role_id}", s.createImpliedRole)
	authed("GET /v3/roles/{prior_role_id}/implies/{implied_role_id}", s.getImpliedRole)
	authed("DELETE /v3/roles/{prior_role_id}/implies/{implied_role_id}", s.deleteImpliedRole)
	authed("GET /v3/role_inferences", s.listRoleInferences)
	authed("GET /v3/role_assignments", s.listRoleAssignments)

	grants := []struct{ scope, scopePath, actor, actorPath string }{
		{scopeProj, "/v3/projects/{project_id}", actorUser, "/users/{user_id}"},
		{scopeProj, "/v3/projects/{project_id}", actorGroup, "/groups/{group_id}"},
		{scopeDomain, "/v3/domains/{domain_id}", actorUser, "/users/{user_id}"},
		{scopeDomain, "/v3/domains/{domain_id}", actorGroup, "/groups/{group_id}"},
		{scopeSystem, "/v3/system", actorUser, "/users/{user_id}"},
		{scopeSystem, "/v3/system", actorGroup, "/groups/{group_id}"},
	}
	for _, g := range grants {
		base := g.scopePath + g.actorPath + "/roles"
		authed("GET "+base, s.listGrants(g.scope, g.actor))
		authed("PUT "+base+"/{role_id}", s.putGrant(g.scope, g.actor))
		authed("GET "+base+"/{role_id}", s.checkGrant(g.scope, g.actor))
		authed("DELETE "+base+"/{role_id}", s.deleteGrant(g.scope, g.actor))
	}

	authed("GET /v3/services", s.listServices)
	authed("POST /v3/services", s.createService)
	authed("GET /v3/services/{service_id}", s.getService)
	authed("PATCH /v3/services/{service_id}", s.updateService)
	authed("DELETE /v3/services/{service_id}", s.deleteService)

	authed("GET /v3/endpoints", s.listEndpoints)
	authed("POST /v3/endpoints", s.createEndpoint)
	authed("GET /v3/endpoints/{endpoint_id}", s.getEndpoint)
	authed("PATCH /v3/endpoints/{endpoint_id}", s.updateEndpoint)
	authed("DELETE /v3/endpoints/{endpoint_id}", s.deleteEndpoint)

	authed("GET /v3/regions", s.listRegions)
	authed("POST /v3/regions", s.createRegion)
	authed("GET /v3/regions/{region_id}", s.getRegion)
	authed("PUT /v3/regions/{region_id}", s.createRegion)
	authed("PATCH /v3/regions/{region_id}", s.updateRegion)
	authed("DELETE /v3/regions/{region_id}", s.deleteRegion)

	authed("GET /v3/users/{user_id}/application_credentials", s.listAppCreds)
	authed("POST /v3/users/{user_id}/application_credentials", s.createAppCred)
	authed("GET /v3/users/{user_id}/application_credentials/{application_credential_id}", s.getAppCred)
	authed("DELETE /v3/users/{user_id}/application_credentials/{application_credential_id}", s.deleteAppCred)
	return mux
}
