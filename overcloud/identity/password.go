package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"

	"golang.org/x/crypto/bcrypt"
)

// maxPasswordLen bounds what is hashed: a longer password is refused
// rather than hashed at a cost the caller chooses.
const maxPasswordLen = 4096

// hasher hashes passwords and application credential secrets with bcrypt,
// with at most a few hashes running at once so that a flood of logins
// cannot take every core.
type hasher struct {
	cost  int
	slots chan struct{}
	// dummy is a hash to compare against when the user does not exist, so
	// that a missing user costs as much time as a wrong password.
	dummy []byte
}

func newHasher(cost, concurrency int) (*hasher, error) {
	h := &hasher{cost: cost, slots: make(chan struct{}, concurrency)}
	d, err := bcrypt.GenerateFromPassword(prehash("not a password"), cost)
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

// prehash makes any length of password fit bcrypt's 72-byte input: the
// base64 of its SHA-256 is 44 bytes.
func prehash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns the stored form of secret.
func (h *hasher) hash(ctx context.Context, secret string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	b, err := bcrypt.GenerateFromPassword(prehash(secret), h.cost)
	return string(b), err
}

// verify says whether secret matches stored; an empty stored hash (no
// password set) never matches, but costs the same time.
func (h *hasher) verify(ctx context.Context, stored, secret string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	target := []byte(stored)
	if stored == "" {
		target = h.dummy
	}
	ok := bcrypt.CompareHashAndPassword(target, prehash(secret)) == nil
	return ok && stored != "", nil
}
