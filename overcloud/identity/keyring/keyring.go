// Package keyring keeps the keys that seal identity tokens, in etcd so
// that every identity process shares them, and seals and opens tokens
// with them.
//
// A token is AES-256-GCM: encrypted and authenticated, so that it can be
// validated without a lookup and read by no one but identity. Keys rotate
// the way Keystone's Fernet keys do: the staged key becomes primary, the
// primary becomes a secondary, a fresh staged key is made, and the oldest
// secondaries beyond MaxActive are dropped. New tokens are sealed with the
// primary; tokens sealed with any kept key (staged, primary, secondary)
// open. Staging a key one rotation ahead means every process knows it
// before any process seals with it.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stratacloud/strata/internal/store"
)

// ErrInvalid is returned for a token that does not open: malformed,
// forged, tampered with, or sealed with a key no longer kept.
var ErrInvalid = errors.New("invalid token")

// State is a key's place in the rotation.
type State string

// The states of a key.
const (
	Staged    State = "staged"
	Primary   State = "primary"
	Secondary State = "secondary"
)

// Config configures a Keyring.
type Config struct {
	// Key is where the key set lives, relative to the store's prefix.
	// Default "token-keys".
	Key string
	// MaxActive is how many keys are kept: one staged, one primary and
	// MaxActive-2 secondaries. At least 3; default 3. A token outlives a
	// rotation as long as (MaxActive-2) rotation intervals exceed its
	// lifetime.
	MaxActive int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger records rotations. Nil discards.
	Logger *slog.Logger
}

// KeyInfo describes a key without its secret.
type KeyInfo struct {
	ID      uint32
	State   State
	Created time.Time
}

type keyRecord struct {
	ID      uint32    `json:"id"`
	Secret  []byte    `json:"secret"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
}

type keySet struct {
	Version   int         `json:"version"`
	Keys      []keyRecord `json:"keys"`
	RotatedAt time.Time   `json:"rotated_at"`
}

// Keyring seals and opens tokens with the key set stored in etcd.
type Keyring struct {
	st  *store.Store
	cfg Config

	mu         sync.RWMutex
	rev        int64
	set        keySet
	aeads      map[uint32]cipher.AEAD
	primary    uint32
	lastReload time.Time
}

const (
	formatVersion = 1
	headerLen     = 1 + 4 // version, key id
	nonceLen      = 12
)

// Load reads the key set, creating it (a primary and a staged key) if
// this is the first identity process to start.
func Load(ctx context.Context, st *store.Store, cfg Config) (*Keyring, error) {
	if cfg.Key == "" {
		cfg.Key = "token-keys"
	}
	if cfg.MaxActive == 0 {
		cfg.MaxActive = 3
	}
	if cfg.MaxActive < 3 {
		return nil, fmt.Errorf("keyring: MaxActive must be at least 3, not %d", cfg.MaxActive)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keyring{st: st, cfg: cfg}
	err := k.Reload(ctx)
	if errors.Is(err, store.ErrNotFound) {
		now := cfg.Now().UTC()
		set := keySet{Version: 1, RotatedAt: now}
		for _, s := range []State{Primary, Staged} {
			kr, err := newKey(s, now, set.Keys)
			if err != nil {
				return nil, err
			}
			set.Keys = append(set.Keys, kr)
		}
		b, merr := json.Marshal(set)
		if merr != nil {
			return nil, merr
		}
		if _, err := st.Create(ctx, cfg.Key, b); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("keyring: create key set: %w", err)
		}
		// Whether we or a concurrent process created it, read what won.
		err = k.Reload(ctx)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func newKey(s State, now time.Time, existing []keyRecord) (keyRecord, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return keyRecord{}, fmt.Errorf("keyring: %w", err)
	}
	var id uint32
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return keyRecord{}, fmt.Errorf("keyring: %w", err)
		}
		id = binary.BigEndian.Uint32(b[:])
		taken := false
		for _, k := range existing {
			taken = taken || k.ID == id
		}
		if !taken {
			break
		}
	}
	return keyRecord{ID: id, Secret: secret, State: s, Created: now}, nil
}

// Reload reads the key set from etcd.
func (k *Keyring) Reload(ctx context.Context) error {
	set, rev, err := store.GetJSON[keySet](ctx, k.st, k.cfg.Key)
	if err != nil {
		return err
	}
	return k.install(set, rev)
}

func (k *Keyring) install(set keySet, rev int64) error {
	aeads := make(map[uint32]cipher.AEAD, len(set.Keys))
	var primary uint32
	havePrimary := false
	for _, kr := range set.Keys {
		block, err := aes.NewCipher(kr.Secret)
		if err != nil {
			return fmt.Errorf("keyring: key %08x: %w", kr.ID, err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("keyring: key %08x: %w", kr.ID, err)
		}
		aeads[kr.ID] = a
		if kr.State == Primary {
			primary, havePrimary = kr.ID, true
		}
	}
	if !havePrimary {
		return errors.New("keyring: the key set has no primary key")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if rev < k.rev {
		return nil // an older read lost a race with a newer one
	}
	k.set, k.rev, k.aeads, k.primary = set, rev, aeads, primary
	k.lastReload = k.cfg.Now()
	return nil
}

// Seal encrypts and authenticates plaintext with the primary key and
// returns it as a URL-safe token.
func (k *Keyring) Seal(plaintext []byte) (string, error) {
	k.mu.RLock()
	a, id := k.aeads[k.primary], k.primary
	k.mu.RUnlock()
	buf := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plaintext)+a.Overhead())
	buf[0] = formatVersion
	binary.BigEndian.PutUint32(buf[1:5], id)
	if _, err := rand.Read(buf[headerLen:]); err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	out := a.Seal(buf, buf[headerLen:], plaintext, buf[:headerLen])
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Unseal opens a token sealed by Seal with any kept key. When the token
// names a key this process does not know, it rereads the key set once
// (another process may have rotated), but not more than once a second, so
// that forged tokens cannot make it hammer etcd.
func (k *Keyring) Unseal(ctx context.Context, token string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < headerLen+nonceLen+16 || raw[0] != formatVersion {
		return nil, ErrInvalid
	}
	id := binary.BigEndian.Uint32(raw[1:5])
	k.mu.RLock()
	a, ok := k.aeads[id]
	stale := k.cfg.Now().Sub(k.lastReload) > time.Second
	k.mu.RUnlock()
	if !ok && stale {
		if err := k.Reload(ctx); err != nil {
			return nil, err
		}
		k.mu.RLock()
		a, ok = k.aeads[id]
		k.mu.RUnlock()
	}
	if !ok {
		return nil, ErrInvalid
	}
	plain, err := a.Open(nil, raw[headerLen:headerLen+nonceLen], raw[headerLen+nonceLen:], raw[:headerLen])
	if err != nil {
		return nil, ErrInvalid
	}
	return plain, nil
}

// Rotate promotes the staged key to primary, demotes the primary to
// secondary, stages a new key and drops the oldest secondaries beyond
// MaxActive.
func (k *Keyring) Rotate(ctx context.Context) error {
	_, err := k.rotate(ctx, 0)
	return err
}

// RotateIfOlder rotates if the last rotation is at least age ago, and says
// whether it did. Several processes may call it on the same schedule: the
// compare-and-swap lets one of them rotate, and the others then see a
// recent rotation and leave it.
func (k *Keyring) RotateIfOlder(ctx context.Context, age time.Duration) (bool, error) {
	return k.rotate(ctx, age)
}

func (k *Keyring) rotate(ctx context.Context, minAge time.Duration) (bool, error) {
	rotated := false
	set, rev, err := store.Modify(ctx, k.st, k.cfg.Key, func(s *keySet) error {
		now := k.cfg.Now().UTC()
		rotated = false
		if minAge > 0 && now.Sub(s.RotatedAt) < minAge {
			return store.ErrNoChange
		}
		var staged, secondaries []keyRecord
		var primary []keyRecord
		for _, kr := range s.Keys {
			switch kr.State {
			case Staged:
				staged = append(staged, kr)
			case Primary:
				primary = append(primary, kr)
			default:
				secondaries = append(secondaries, kr)
			}
		}
		if len(staged) == 0 {
			kr, err := newKey(Staged, now, s.Keys)
			if err != nil {
				return err
			}
			staged = append(staged, kr)
		}
		for i := range primary {
			primary[i].State = Secondary
		}
		// Newest secondaries first: the old primary, then the rest in the
		// order they were kept.
		secondaries = append(primary, secondaries...)
		newPrimary := staged[0]
		newPrimary.State = Primary
		next, err := newKey(Staged, now, s.Keys)
		if err != nil {
			return err
		}
		if keep := k.cfg.MaxActive - 2; len(secondaries) > keep {
			secondaries = secondaries[:keep]
		}
		s.Keys = append([]keyRecord{next, newPrimary}, secondaries...)
		s.RotatedAt = now
		rotated = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("keyring: rotate: %w", err)
	}
	if err := k.install(set, rev); err != nil {
		return false, err
	}
	if rotated {
		k.cfg.Logger.Info("token keys rotated", "primary", fmt.Sprintf("%08x", k.primaryID()), "keys", len(set.Keys))
	}
	return rotated, nil
}

func (k *Keyring) primaryID() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.primary
}

// Keys describes the kept keys, staged first, then primary, then
// secondaries from newest to oldest.
func (k *Keyring) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, len(k.set.Keys))
	for i, kr := range k.set.Keys {
		out[i] = KeyInfo{ID: kr.ID, State: kr.State, Created: kr.Created}
	}
	return out
}

// Watch keeps the key set current with etcd until ctx ends, rereading it
// whenever it changes and whenever the watch has to be re-established.
func (k *Keyring) Watch(ctx context.Context) error {
	for {
		if err := k.Reload(ctx); err != nil && ctx.Err() == nil {
			k.cfg.Logger.Warn("token keys: reload failed", "err", err)
		}
		k.mu.RLock()
		rev := k.rev
		k.mu.RUnlock()
		for range k.st.Watch(ctx, k.cfg.Key, rev+1) {
			if err := k.Reload(ctx); err != nil && ctx.Err() == nil {
				k.cfg.Logger.Warn("token keys: reload failed", "err", err)
			}
		}
		// The watch ended (compaction, a lost leader): pause a moment so a
		// broken cluster is not spun on, then resync and watch again.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
