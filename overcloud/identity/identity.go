// Package identity is Strata's identity service: a Keystone v3-compatible
// API (discovery, tokens, the catalog, domains, projects, users, groups,
// roles and their assignments, services, endpoints, regions and
// application credentials) with its state in etcd.
//
// Tokens are sealed (encrypted and authenticated) with keys kept in etcd
// and rotated like Keystone's Fernet keys, so any identity process
// validates any token without a lookup of the token itself; what a token
// grants (the user, the scope, the roles) is recomputed at validation, and
// revocation events in etcd refuse revoked tokens everywhere.
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/identity/keyring"
	"github.com/stratacloud/strata/overcloud/policy"
)

// DefaultPrefix is where identity keeps its records in etcd.
const DefaultPrefix = "/strata/overcloud/identity/"

// Config configures the identity service. Zero values get the defaults
// named on each field.
type Config struct {
	// Etcd is the cluster the state lives in. Required; the caller keeps
	// ownership.
	Etcd *clientv3.Client
	// Prefix is the key prefix of identity's records; DefaultPrefix.
	Prefix string

	// TokenExpiration is how long a token is valid; 1h.
	TokenExpiration time.Duration
	// KeyRotation is how often the token keys rotate; 24h. Negative
	// disables automatic rotation. With MaxActiveKeys keys kept, a token
	// stays valid across rotations only if (MaxActiveKeys-2) *
	// KeyRotation is at least TokenExpiration, which New checks.
	KeyRotation time.Duration
	// MaxActiveKeys is how many token keys are kept; 3.
	MaxActiveKeys int

	// PasswordCost is the bcrypt cost of password and secret hashes; 12.
	PasswordCost int
	// HashConcurrency bounds the hashes computed at once; 2 per CPU.
	HashConcurrency int
	// LoginBurst is how many failed authentications one identity may make
	// at once before it is throttled; 10.
	LoginBurst int
	// LoginRefill is how often a throttled identity gets one more
	// attempt; 6s.
	LoginRefill time.Duration

	// TokenCacheTTL is how long the API reuses a token validation; 10s.
	// Revoked tokens are refused at once regardless; role changes made
	// through another identity process take up to this long to apply.
	TokenCacheTTL time.Duration
	// RevocationResync is how often the revocation list is reread in full
	// (it is also watched); 1m.
	RevocationResync time.Duration

	// Policy overrides rules of the default policy, by name, in
	// oslo.policy's language.
	Policy map[string]string

	// Logger receives the service's logs; nil discards. Passwords,
	// secrets and tokens are never logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the identity service.
type Server struct {
	cfg      Config
	st       *store.Store
	log      *slog.Logger
	now      func() time.Time
	keys     *keyring.Keyring
	revoked  *revocations
	policy   *policy.Enforcer
	auth     *api.Authenticator
	errs     *api.Errors
	hasher   *hasher
	throttle *throttle
	handler  http.Handler
}

// New validates cfg, loads (or creates) the token keys and the revocation
// list, and returns a Server ready to serve. Call Run to keep its state
// current and its keys rotating.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Etcd == nil {
		return nil, errors.New("identity: an etcd client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.TokenExpiration == 0 {
		cfg.TokenExpiration = time.Hour
	}
	if cfg.KeyRotation == 0 {
		cfg.KeyRotation = 24 * time.Hour
	}
	if cfg.MaxActiveKeys == 0 {
		cfg.MaxActiveKeys = 3
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = 12
	}
	if cfg.HashConcurrency == 0 {
		cfg.HashConcurrency = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = 10
	}
	if cfg.LoginRefill == 0 {
		cfg.LoginRefill = 6 * time.Second
	}
	if cfg.TokenCacheTTL == 0 {
		cfg.TokenCacheTTL = 10 * time.Second
	}
	if cfg.RevocationResync == 0 {
		cfg.RevocationResync = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.TokenExpiration < time.Minute:
		return nil, fmt.Errorf("identity: token expiration %s is shorter than a minute", cfg.TokenExpiration)
	case cfg.MaxActiveKeys < 3:
		return nil, fmt.Errorf("identity: at least 3 token keys must be kept, not %d", cfg.MaxActiveKeys)
	case cfg.KeyRotation > 0 && time.Duration(cfg.MaxActiveKeys-2)*cfg.KeyRotation < cfg.TokenExpiration:
		return nil, fmt.Errorf("identity: with %d keys kept, rotating every %s would invalidate tokens before they expire (%s)",
			cfg.MaxActiveKeys, cfg.KeyRotation, cfg.TokenExpiration)
	case cfg.PasswordCost < 4 || cfg.PasswordCost > 31:
		return nil, fmt.Errorf("identity: bcrypt cost %d is outside 4..31", cfg.PasswordCost)
	}

	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	s.st = store.New(cfg.Etcd, cfg.Prefix)
	var err error
	if s.policy, err = policy.New(defaultPolicy, cfg.Policy); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if s.hasher, err = newHasher(cfg.PasswordCost, cfg.HashConcurrency); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.throttle = newThrottle(cfg.LoginBurst, cfg.LoginRefill, cfg.Now)
	s.keys, err = keyring.Load(ctx, s.st, keyring.Config{
		Key: tokenKeysKey, MaxActive: cfg.MaxActiveKeys, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("identity: token keys: %w", err)
	}
	s.revoked = newRevocations(s.st, cfg.Now, cfg.TokenExpiration, cfg.Logger)
	if _, err := s.revoked.load(ctx); err != nil {
		return nil, fmt.Errorf("identity: revocation list: %w", err)
	}
	s.errs = &api.Errors{Format: api.KeystoneFormat, Logger: cfg.Logger}
	s.auth = api.NewAuthenticator(api.AuthConfig{
		Validator:   s,
		Revocations: s.revoked,
		CacheTTL:    cfg.TokenCacheTTL,
		Now:         cfg.Now,
		Errors:      s.errs,
	})
	s.handler = api.Instrument(api.Routes(s.routes(), s.errs), s.errs, cfg.Logger)
	return s, nil
}

// Handler is the Keystone v3 API, to be served at the root of a listener
// (its catalog URL is <root>/v3).
func (s *Server) Handler() http.Handler { return s.handler }

var _ api.TokenValidator = (*Server)(nil)

// Run keeps the token keys and the revocation list current with etcd and
// rotates the keys on schedule, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.keys.Watch(ctx) })
	wg.Go(func() { s.revoked.run(ctx, s.cfg.RevocationResync) })
	if s.cfg.KeyRotation > 0 {
		wg.Go(func() { s.rotateKeys(ctx) })
	}
	wg.Wait()
	return nil
}

// rotateKeys rotates the token keys every KeyRotation. Every identity
// process runs this; the rotation's compare-and-swap makes the first to
// find the keys due rotate them, once.
func (s *Server) rotateKeys(ctx context.Context) {
	check := min(s.cfg.KeyRotation/10, time.Hour)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		if _, err := s.keys.RotateIfOlder(ctx, s.cfg.KeyRotation); err != nil && ctx.Err() == nil {
			s.log.Warn("token key rotation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RotateKeys rotates the token keys now.
func (s *Server) RotateKeys(ctx context.Context) error { return s.keys.Rotate(ctx) }

// Keys describes the token keys (never their secrets).
func (s *Server) Keys() []keyring.KeyInfo { return s.keys.Keys() }

// changed is called after every write that can change what a token
// grants: cached validations are dropped so that the change applies from
// the next request.
func (s *Server) changed() { s.auth.Purge() }
