package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// TokenValidator checks a Keystone token and says whose it is. The
// undercloud adapts the overcloud's remote validator (which asks the
// identity service, as keystonemiddleware does) to it.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (user string, roles []string, err error)
}

// Keystone is Ironic's auth_strategy=keystone: a request carries a token
// in X-Auth-Token, and the roles on the token's scope decide what it may
// do. Reading needs one of ReadRoles, anything else one of WriteRoles.
// Validations are cached for CacheTTL, which bounds how long a revoked
// token is still accepted.
type Keystone struct {
	Validator TokenValidator
	// ReadRoles default to reader, member, admin, baremetal_observer and
	// baremetal_admin.
	ReadRoles []string
	// WriteRoles default to admin and baremetal_admin (Ironic's
	// is_admin and baremetal admin rules).
	WriteRoles []string
	// CacheTTL defaults to 10s.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedToken
}

type cachedToken struct {
	user    string
	roles   []string
	expires time.Time
}

// maxCachedTokens bounds the cache; it is emptied when full.
const maxCachedTokens = 10000

var _ Authenticator = (*Keystone)(nil)

// Authenticate validates the token and checks its roles against the
// request's method.
func (k *Keystone) Authenticate(r *http.Request) (string, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return "", fmt.Errorf("authentication required: send a Keystone token in X-Auth-Token: %w", ErrUnauthorized)
	}
	user, roles, err := k.validate(r.Context(), tok)
	if err != nil {
		return "", fmt.Errorf("the token is not valid: %w", ErrUnauthorized)
	}
	need := k.WriteRoles
	if need == nil {
		need = []string{"admin", "baremetal_admin"}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		need = k.ReadRoles
		if need == nil {
			need = []string{"reader", "member", "admin", "baremetal_observer", "baremetal_admin"}
		}
	}
	for _, role := range roles {
		if slices.Contains(need, role) {
			return user, nil
		}
	}
	return "", fmt.Errorf("user %s needs one of the roles %v for %s: %w", user, need, r.Method, ErrForbidden)
}

func (k *Keystone) validate(ctx context.Context, tok string) (string, []string, error) {
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	ttl := k.CacheTTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	key := sha256.Sum256([]byte(tok))
	k.mu.Lock()
	if c, ok := k.cache[key]; ok && now().Before(c.expires) {
		k.mu.Unlock()
		return c.user, c.roles, nil
	}
	k.mu.Unlock()
	user, roles, err := k.Validator.ValidateToken(ctx, tok)
	if err != nil {
		return "", nil, err
	}
	k.mu.Lock()
	if k.cache == nil || len(k.cache) >= maxCachedTokens {
		k.cache = map[[32]byte]cachedToken{}
	}
	k.cache[key] = cachedToken{user: user, roles: roles, expires: now().Add(ttl)}
	k.mu.Unlock()
	return user, roles, nil
}
