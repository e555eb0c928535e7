package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// AuthTokenHeader carries the caller's token.
const AuthTokenHeader = "X-Auth-Token"

// Credentials is what a validated token says about its bearer.
type Credentials struct {
	UserID         string
	UserName       string
	UserDomainID   string
	UserDomainName string

	// Exactly one scope, or none (an unscoped token).
	ProjectID         string
	ProjectName       string
	ProjectDomainID   string
	ProjectDomainName string
	DomainID          string
	DomainName        string
	System            bool

	// Roles are the role names on the scope, implied roles included.
	Roles   []string
	RoleIDs []string

	Methods   []string
	AuditIDs  []string
	IssuedAt  time.Time
	ExpiresAt time.Time

	// AppCredID is set when the token came from an application credential.
	AppCredID string
	// AppCredUnrestricted says whether that credential may manage other
	// credentials.
	AppCredUnrestricted bool
}

// HasRole says whether the credentials carry the role, by name, ignoring
// case as oslo.policy does.
func (c *Credentials) HasRole(name string) bool {
	return slices.ContainsFunc(c.Roles, func(r string) bool { return strings.EqualFold(r, name) })
}

// Attr returns a credential attribute by its oslo.policy name: user_id,
// project_id, domain_id, system_scope, token.project.domain.id, ...
func (c *Credentials) Attr(name string) (string, bool) {
	v := ""
	switch name {
	case "user_id":
		v = c.UserID
	case "user_domain_id", "token.user.domain.id":
		v = c.UserDomainID
	case "project_id", "token.project.id":
		v = c.ProjectID
	case "project_domain_id", "token.project.domain.id":
		v = c.ProjectDomainID
	case "domain_id", "token.domain.id":
		v = c.DomainID
	case "system_scope":
		if c.System {
			v = "all"
		}
	default:
		return "", false
	}
	return v, v != ""
}

// CanAccessProject says whether the bearer may see resources owned by
// project id: its token is scoped to that project, or it is an admin.
// Services answer 404 when it may not, so that other projects' resources
// are not even known to exist.
func (c *Credentials) CanAccessProject(id string) bool {
	return c.ProjectID == id || c.HasRole("admin")
}

type credKey struct{}

type credHolderKey struct{}

// credHolder lets Instrument, which runs outside the authentication
// middleware, log who the request was from.
type credHolder struct{ creds *Credentials }

// WithCredentials returns ctx carrying c.
func WithCredentials(ctx context.Context, c *Credentials) context.Context {
	if h, ok := ctx.Value(credHolderKey{}).(*credHolder); ok {
		h.creds = c
	}
	return context.WithValue(ctx, credKey{}, c)
}

// CredentialsFrom returns the credentials Authenticator.Require put in ctx.
func CredentialsFrom(ctx context.Context) (*Credentials, bool) {
	c, ok := ctx.Value(credKey{}).(*Credentials)
	return c, ok && c != nil
}

// TokenValidator checks a token and says whose it is. It returns an error
// of kind ErrUnauthorized (or ErrNotFound) when the token is not valid, and
// any other error when it could not tell.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (*Credentials, error)
}

// RevocationChecker says whether a token, valid when it was cached, has
// been revoked since. It must be cheap: it runs on every cache hit.
type RevocationChecker interface {
	IsRevoked(c *Credentials) bool
}

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	Validator TokenValidator
	// Revocations, when set, is consulted on every cache hit, so that a
	// revoked token is refused at once rather than when its entry expires.
	Revocations RevocationChecker
	// CacheTTL bounds how long a validation is reused; zero means 10s, a
	// negative value disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens; zero means 10000.
	CacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Errors writes the 401s; nil means Keystone's format.
	Errors *Errors
}

// Authenticator is the token validation middleware.
type Authenticator struct {
	cfg AuthConfig

	mu    sync.Mutex
	cache map[[32]byte]cacheEntry
}

type cacheEntry struct {
	creds *Credentials
	until time.Time
}

// NewAuthenticator returns an Authenticator with defaults filled in.
func NewAuthenticator(cfg AuthConfig) *Authenticator {
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 10 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Errors == nil {
		cfg.Errors = &Errors{}
	}
	return &Authenticator{cfg: cfg, cache: make(map[[32]byte]cacheEntry)}
}

// ErrNoToken is returned by Authenticate for a request without a token.
var ErrNoToken = &Error{Kind: ErrUnauthorized, Message: "The request you have made requires authentication."}

// Authenticate validates token, from the cache when a recent validation
// is there and the token has not been revoked since.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*Credentials, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	now := a.cfg.Now()
	key := sha256.Sum256([]byte(token))
	if a.cfg.CacheTTL > 0 {
		a.mu.Lock()
		e, ok := a.cache[key]
		if ok && !now.Before(e.until) {
			delete(a.cache, key)
			ok = false
		}
		a.mu.Unlock()
		if ok {
			if a.cfg.Revocations != nil && a.cfg.Revocations.IsRevoked(e.creds) {
				a.forget(key)
				return nil, ErrNoToken
			}
			return e.creds, nil
		}
	}
	c, err := a.cfg.Validator.ValidateToken(ctx, token)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
			return nil, ErrNoToken
		}
		return nil, err
	}
	if a.cfg.CacheTTL > 0 {
		until := now.Add(a.cfg.CacheTTL)
		if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(until) {
			until = c.ExpiresAt
		}
		a.store(key, cacheEntry{creds: c, until: until}, now)
	}
	return c, nil
}

func (a *Authenticator) store(key [32]byte, e cacheEntry, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.cfg.CacheSize {
		for k, old := range a.cache {
			if !now.Before(old.until) {
				delete(a.cache, k)
			}
		}
		// Still full: drop arbitrary entries (map order is random), which
		// costs those tokens one more validation, nothing else.
		for k := range a.cache {
			if len(a.cache) < a.cfg.CacheSize {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = e
}

func (a *Authenticator) forget(key [32]byte) {
	a.mu.Lock()
	delete(a.cache, key)
	a.mu.Unlock()
}

// Forget drops token from the cache.
func (a *Authenticator) Forget(token string) { a.forget(sha256.Sum256([]byte(token))) }

// Purge empties the cache, so that a change of roles or of a user's state
// takes effect at the next request rather than after CacheTTL.
func (a *Authenticator) Purge() {
	a.mu.Lock()
	clear(a.cache)
	a.mu.Unlock()
}

// Require admits only requests with a valid X-Auth-Token, and gives next
// the bearer's Credentials in the request context.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Authenticate(r.Context(), r.Header.Get(AuthTokenHeader))
		if err != nil {
			a.cfg.Errors.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), c)))
	})
}
