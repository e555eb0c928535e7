package blob

import (
	"errors"
	"fmt"
)

// Algorithm is the prefix of every digest the store accepts.
const Algorithm = "sha256:"

// ErrInvalidDigest is wrapped by the errors for malformed digests.
var ErrInvalidDigest = errors.New("invalid digest")

// MismatchError is PutExpect's error when the content is not what the
// caller expected: nothing was stored.
type MismatchError struct {
	// Want and Got are digests, "sha256:" and hex.
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("content has digest %s, want %s", e.Got, e.Want)
}

// ParseDigest returns the hex of d, which must be "sha256:" followed by 64
// lower-case hex digits: nothing else, so that the hex is safe as a file
// name (no separators, no "..", one spelling per content).
func ParseDigest(d string) (hex string, err error) {
	if len(d) != len(Algorithm)+64 || d[:len(Algorithm)] != Algorithm || !isHex64(d[len(Algorithm):]) {
		return "", fmt.Errorf("%w %s: want %q and 64 lower-case hex digits", ErrInvalidDigest, quote(d), Algorithm)
	}
	return d[len(Algorithm):], nil
}

// FromHex returns the digest of a SHA-256 given in hex, which must be 64
// lower-case hex digits.
func FromHex(hex string) (string, error) {
	if !isHex64(hex) {
		return "", fmt.Errorf("%w: sha256 %s: want 64 lower-case hex digits", ErrInvalidDigest, quote(hex))
	}
	return Algorithm + hex, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// quote quotes s for an error message, cut short if it is long: digests
// come from URLs and API bodies.
func quote(s string) string {
	const limit = 100
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
