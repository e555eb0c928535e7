package identity

import (
	"net/http"

	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// defaultPolicy is Keystone's default policy, in its own words: each rule
// is the scope-aware default (system, domain and project readers and
// admins) or'ed with the legacy rule that the clients and Tempest still
// rely on, where the admin role on any scope administers the cloud. The
// default roles nest through implied roles, admin ⊃ member ⊃ reader, so
// "role:reader" also admits members and admins.
var defaultPolicy = map[string]string{
	"admin_required":                 "role:admin or is_admin:1",
	"service_role":                   "role:service",
	"service_or_admin":               "rule:admin_required or rule:service_role",
	"owner":                          "user_id:%(user_id)s",
	"admin_or_owner":                 "rule:admin_required or rule:owner",
	"token_subject":                  "user_id:%(target.token.user_id)s",
	"admin_or_token_subject":         "rule:admin_required or rule:token_subject",
	"service_admin_or_token_subject": "rule:service_or_admin or rule:token_subject",
	"system_reader":                  "role:reader and system_scope:all",
	"system_admin":                   "role:admin and system_scope:all",
	"admin_or_system_reader":         "rule:admin_required or rule:system_reader",
	"admin_or_system_admin":          "rule:admin_required or rule:system_admin",

	// Tokens.
	"identity:validate_token":    "rule:system_reader or rule:service_admin_or_token_subject",
	"identity:check_token":       "rule:system_reader or rule:service_admin_or_token_subject",
	"identity:revoke_token":      "rule:system_admin or rule:admin_or_token_subject",
	"identity:get_auth_catalog":  "",
	"identity:get_auth_projects": "",
	"identity:get_auth_domains":  "",
	"identity:get_auth_system":   "",

	// Domains.
	"identity:get_domain":    "rule:admin_or_system_reader or token.domain.id:%(target.domain.id)s or token.project.domain.id:%(target.domain.id)s",
	"identity:list_domains":  "rule:admin_or_system_reader",
	"identity:create_domain": "rule:admin_or_system_admin",
	"identity:update_domain": "rule:admin_or_system_admin",
	"identity:delete_domain": "rule:admin_or_system_admin",

	// Projects.
	"identity:get_project":        "rule:admin_or_system_reader or (role:reader and domain_id:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
	"identity:list_projects":      "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s)",
	"identity:list_user_projects": "rule:admin_or_system_reader or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
	"identity:create_project":     "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",
	"identity:update_project":     "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",
	"identity:delete_project":     "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",

	"identity:get_project_tag":     "rule:admin_or_system_reader or (role:reader and domain_id:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
	"identity:list_project_tags":   "rule:admin_or_system_reader or (role:reader and domain_id:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
	"identity:create_project_tag":  "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",
	"identity:update_project_tags": "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",
	"identity:delete_project_tag":  "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",
	"identity:delete_project_tags": "rule:admin_or_system_admin or (role:admin and domain_id:%(target.project.domain_id)s)",

	// Users.
	"identity:get_user":             "rule:admin_or_system_reader or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
	"identity:list_users":           "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s)",
	"identity:create_user":          "rule:admin_or_system_admin or (role:admin and token.domain.id:%(target.user.domain_id)s)",
	"identity:update_user":          "rule:admin_or_system_admin or (role:admin and token.domain.id:%(target.user.domain_id)s)",
	"identity:delete_user":          "rule:admin_or_system_admin or (role:admin and token.domain.id:%(target.user.domain_id)s)",
	"identity:list_groups_for_user": "rule:admin_or_system_reader or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(user_id)s",

	// Groups.
	"identity:get_group":              "rule:admin_or_system_reader or (role:reader and domain_id:%(target.group.domain_id)s)",
	"identity:list_groups":            "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s)",
	"identity:create_group":           "rule:admin_or_system_admin or (role:admin and domain_id:%(target.group.domain_id)s)",
	"identity:update_group":           "rule:admin_or_system_admin or (role:admin and domain_id:%(target.group.domain_id)s)",
	"identity:delete_group":           "rule:admin_or_system_admin or (role:admin and domain_id:%(target.group.domain_id)s)",
	"identity:list_users_in_group":    "rule:admin_or_system_reader or (role:reader and domain_id:%(target.group.domain_id)s)",
	"identity:check_user_in_group":    "rule:admin_or_system_reader or (role:reader and domain_id:%(target.group.domain_id)s)",
	"identity:add_user_to_group":      "rule:admin_or_system_admin or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
	"identity:remove_user_from_group": "rule:admin_or_system_admin or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",

	// Roles are a system-wide resource.
	"identity:get_role":    "rule:admin_or_system_reader",
	"identity:list_roles":  "rule:admin_or_system_reader",
	"identity:create_role": "rule:admin_or_system_admin",
	"identity:update_role": "rule:admin_or_system_admin",
	"identity:delete_role": "rule:admin_or_system_admin",

	"identity:get_implied_role":          "rule:admin_or_system_reader",
	"identity:list_implied_roles":        "rule:admin_or_system_reader",
	"identity:list_role_inference_rules": "rule:admin_or_system_reader",
	"identity:create_implied_role":       "rule:admin_or_system_admin",
	"identity:delete_implied_role":       "rule:admin_or_system_admin",

	// Grants: a domain admin manages the grants in its domain, to actors of
	// its domain.
	"identity:check_grant":           "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s and domain_id:%(target.actor.domain_id)s)",
	"identity:list_grants":           "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s and domain_id:%(target.actor.domain_id)s)",
	"identity:create_grant":          "rule:admin_or_system_admin or (role:admin and domain_id:%(target.domain_id)s and domain_id:%(target.actor.domain_id)s)",
	"identity:revoke_grant":          "rule:admin_or_system_admin or (role:admin and domain_id:%(target.domain_id)s and domain_id:%(target.actor.domain_id)s)",
	"identity:check_system_grant":    "rule:admin_or_system_reader",
	"identity:list_system_grants":    "rule:admin_or_system_reader",
	"identity:create_system_grant":   "rule:admin_or_system_admin",
	"identity:revoke_system_grant":   "rule:admin_or_system_admin",
	"identity:list_role_assignments": "rule:admin_or_system_reader or (role:reader and domain_id:%(target.domain_id)s)",

	// The catalog.
	"identity:get_service":     "rule:admin_or_system_reader",
	"identity:list_services":   "rule:admin_or_system_reader",
	"identity:create_service":  "rule:admin_or_system_admin",
	"identity:update_service":  "rule:admin_or_system_admin",
	"identity:delete_service":  "rule:admin_or_system_admin",
	"identity:get_endpoint":    "rule:admin_or_system_reader",
	"identity:list_endpoints":  "rule:admin_or_system_reader",
	"identity:create_endpoint": "rule:admin_or_system_admin",
	"identity:update_endpoint": "rule:admin_or_system_admin",
	"identity:delete_endpoint": "rule:admin_or_system_admin",
	"identity:get_region":      "",
	"identity:list_regions":    "",
	"identity:create_region":   "rule:admin_or_system_admin",
	"identity:update_region":   "rule:admin_or_system_admin",
	"identity:delete_region":   "rule:admin_or_system_admin",

	// Application credentials belong to their user.
	"identity:get_application_credential":    "rule:admin_or_system_reader or rule:owner",
	"identity:list_application_credentials":  "rule:admin_or_system_reader or rule:owner",
	"identity:create_application_credential": "rule:owner",
	"identity:delete_application_credential": "rule:admin_or_system_admin or rule:owner",
}

// enforce checks action for the request's caller against target, and
// returns Keystone's 403 when it is not allowed.
func (s *Server) enforce(r *http.Request, action string, target policy.Target) error {
	c, ok := api.CredentialsFrom(r.Context())
	if !ok {
		return api.ErrNoToken
	}
	if !s.policy.Allowed(action, c, target) {
		return api.Forbidden("You are not authorized to perform the requested action: %s.", action)
	}
	return nil
}

// caller returns the request's credentials; Require put them there.
func caller(r *http.Request) *api.Credentials {
	c, _ := api.CredentialsFrom(r.Context())
	if c == nil {
		return &api.Credentials{}
	}
	return c
}
