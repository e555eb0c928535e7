package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// GetJSON reads the record at key into a value of type T and returns it
// with the record's ModRevision.
func GetJSON[T any](ctx context.Context, s *Store, key string) (T, int64, error) {
	var v T
	r, err := s.Get(ctx, key)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return v, 0, fmt.Errorf("%s: decode: %w", key, err)
	}
	return v, r.ModRevision, nil
}

// ErrNoChange may be returned by a Modify function to leave the record as it is.
var ErrNoChange = errors.New("no change")

// maxAttempts bounds Modify's retries under contention.
const maxAttempts = 32

// Modify reads the record at key, applies fn to it, and writes the result
// back with a compare-and-swap, retrying from a fresh read when another
// writer got there first. fn must be free of side effects, since it may
// run more than once. If fn returns ErrNoChange, nothing is written and the
// current value is returned; any other error aborts and is returned as is.
func Modify[T any](ctx context.Context, s *Store, key string, fn func(*T) error) (T, int64, error) {
	var zero T
	for attempt := 0; attempt < maxAttempts; attempt++ {
		v, rev, err := GetJSON[T](ctx, s, key)
		if err != nil {
			return zero, 0, err
		}
		if err := fn(&v); err != nil {
			if errors.Is(err, ErrNoChange) {
				return v, rev, nil
			}
			return zero, 0, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return zero, 0, fmt.Errorf("%s: encode: %w", key, err)
		}
		newRev, err := s.Update(ctx, key, b, rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return zero, 0, err
		}
		return v, newRev, nil
	}
	return zero, 0, fmt.Errorf("%s: %w after %d attempts", key, ErrConflict, maxAttempts)
}
