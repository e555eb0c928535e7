package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"time"
)

// The records identity keeps in etcd, one JSON value per key under the
// service's prefix. Every name that must be unique has an index key
// (names/...) holding the owner's ID, written in the same transaction as
// the record, so that a duplicate name loses the compare-and-swap.

// DefaultDomainID is the ID of the domain that exists from the start.
const DefaultDomainID = "default"

type domain struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	Tags        []string  `json:"tags,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

type project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DomainID    string    `json:"domain_id"`
	ParentID    string    `json:"parent_id"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	Tags        []string  `json:"tags,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Extra holds the attributes a client set that identity does not
	// know (see extra.go).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

type user struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	DomainID         string    `json:"domain_id"`
	DefaultProjectID string    `json:"default_project_id,omitempty"`
	Description      string    `json:"description,omitempty"`
	Email            string    `json:"email,omitempty"`
	Enabled          bool      `json:"enabled"`
	PasswordHash     string    `json:"password_hash,omitempty"`
	PasswordSetAt    time.Time `json:"password_set_at,omitzero"`
	CreatedAt        time.Time `json:"created_at"`
	// Extra holds the attributes a client set that identity does not
	// know, such as Tempest's "project_id" (see extra.go).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

type group struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DomainID    string    `json:"domain_id"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

type role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id,omitempty"`
	Description string `json:"description,omitempty"`
	// Implies lists the IDs of the roles this one implies: admin implies
	// member, member implies reader.
	Implies   []string  `json:"implies,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

type catalogService struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Enabled     bool   `json:"enabled"`
}

type endpoint struct {
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	Interface string `json:"interface"`
	URL       string `json:"url"`
	RegionID  string `json:"region_id,omitempty"`
	Enabled   bool   `json:"enabled"`
}

type region struct {
	ID             string `json:"id"`
	Description    string `json:"description"`
	ParentRegionID string `json:"parent_region_id,omitempty"`
}

type appCred struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Description  string     `json:"description,omitempty"`
	UserID       string     `json:"user_id"`
	ProjectID    string     `json:"project_id"`
	RoleIDs      []string   `json:"role_ids"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Unrestricted bool       `json:"unrestricted"`
	SecretHash   string     `json:"secret_hash"`
	CreatedAt    time.Time  `json:"created_at"`
}

// assignment is the value at an assignment key; the key says who holds
// which role where.
type assignment struct {
	CreatedAt time.Time `json:"created_at"`
}

// Keys. Segments that come from users (names) are path-escaped, so that a
// name with a slash cannot reach into another key's space.
const (
	domainsPrefix     = "domains/"
	projectsPrefix    = "projects/"
	usersPrefix       = "users/"
	groupsPrefix      = "groups/"
	rolesPrefix       = "roles/"
	servicesPrefix    = "services/"
	endpointsPrefix   = "endpoints/"
	regionsPrefix     = "regions/"
	appCredsPrefix    = "appcreds/"
	revocationsPrefix = "revocations/"
	assignmentsPrefix = "assignments/"
	membersPrefix     = "members/"    // members/<group>/<user>
	userGroupsPrefix  = "usergroups/" // usergroups/<user>/<group>
	bootstrapKey      = "bootstrap"
	tokenKeysKey      = "token-keys"
)

func seg(s string) string { return url.PathEscape(s) }

func domainNameKey(name string) string { return "names/domains/" + seg(name) }
func projectNameKey(domainID, name string) string {
	return "names/projects/" + seg(domainID) + "/" + seg(name)
}
func userNameKey(domainID, name string) string {
	return "names/users/" + seg(domainID) + "/" + seg(name)
}
func groupNameKey(domainID, name string) string {
	return "names/groups/" + seg(domainID) + "/" + seg(name)
}
func roleNameKey(domainID, name string) string {
	if domainID == "" {
		domainID = "-"
	}
	return "names/roles/" + seg(domainID) + "/" + seg(name)
}
func appCredNameKey(userID, name string) string {
	return "names/appcreds/" + seg(userID) + "/" + seg(name)
}

// Actor and scope kinds of role assignments.
const (
	actorUser   = "user"
	actorGroup  = "group"
	scopeProj   = "project"
	scopeDomain = "domain"
	scopeSystem = "system"
	systemAll   = "all"
)

func assignmentKey(actorType, actorID, scopeType, scopeID, roleID string) string {
	return assignmentsPrefix + actorType + "/" + seg(actorID) + "/" + scopeType + "/" + seg(scopeID) + "/" + seg(roleID)
}

func assignmentScopePrefix(actorType, actorID, scopeType, scopeID string) string {
	return assignmentsPrefix + actorType + "/" + seg(actorID) + "/" + scopeType + "/" + seg(scopeID) + "/"
}

// newID returns 32 lower-case hex digits, Keystone's ID form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newAuditID returns 22 URL-safe characters, Keystone's audit ID form.
func newAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func unseg(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
