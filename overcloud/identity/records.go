package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
)

// Generic record access: every kind of record is read, created, updated
// and deleted the same way, with its name index kept in the same
// transaction.

// maxUpdateAttempts bounds compare-and-swap retries under contention.
const maxUpdateAttempts = 16

func notFound(kind, id string) error {
	return api.NotFound("Could not find %s: %s.", kind, id)
}

func duplicate(kind, name string) error {
	return api.Conflict("Conflict occurred attempting to store %s - Duplicate entry found with name %s.", kind, name)
}

func getRecord[T any](ctx context.Context, st *store.Store, key, kind, id string) (T, int64, error) {
	v, rev, err := store.GetJSON[T](ctx, st, key)
	if errors.Is(err, store.ErrNotFound) {
		return v, 0, notFound(kind, id)
	}
	return v, rev, err
}

// lookup is getRecord for callers that treat a missing record as absent
// rather than as an error.
func lookup[T any](ctx context.Context, st *store.Store, key string) (*T, error) {
	v, _, err := store.GetJSON[T](ctx, st, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func listRecords[T any](ctx context.Context, st *store.Store, prefix string) ([]T, error) {
	recs, _, err := st.ListAll(ctx, prefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(recs))
	for _, r := range recs {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// listKeys returns the last segment of every key under prefix.
func listKeys(ctx context.Context, st *store.Store, prefix string) ([]string, error) {
	p, err := st.List(ctx, prefix, store.ListOptions{KeysOnly: true})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(p.Records))
	for _, r := range p.Records {
		out = append(out, unseg(r.Key[len(prefix):]))
	}
	return out, nil
}

// createRecord stores v at key, and its name index when nameKey is set;
// either existing is a 409.
func createRecord(ctx context.Context, st *store.Store, kind, name, key string, v any, nameKey, id string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	conds := []store.Cond{store.Absent(key)}
	ops := []store.Op{store.Put(key, b)}
	if nameKey != "" {
		conds = append(conds, store.Absent(nameKey))
		ops = append(ops, store.Put(nameKey, []byte(id)))
	}
	_, err = st.Commit(ctx, conds, ops)
	if errors.Is(err, store.ErrExists) {
		if nameKey == "" {
			return api.Conflict("Conflict occurred attempting to store %s - Duplicate ID, %s.", kind, id)
		}
		return duplicate(kind, name)
	}
	return err
}

// updateRecord applies fn to the record at key and writes it back with a
// compare-and-swap, moving its name index if fn renamed it. fn may run
// more than once and must not have side effects.
func updateRecord[T any](ctx context.Context, st *store.Store, kind, id, key string, nameKey func(*T) string, fn func(*T) error) (T, error) {
	var zero T
	for range maxUpdateAttempts {
		v, rev, err := getRecord[T](ctx, st, key, kind, id)
		if err != nil {
			return zero, err
		}
		oldName := ""
		if nameKey != nil {
			oldName = nameKey(&v)
		}
		if err := fn(&v); err != nil {
			return zero, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return zero, err
		}
		conds := []store.Cond{store.Unchanged(key, rev)}
		ops := []store.Op{store.Put(key, b)}
		if nameKey != nil {
			if newName := nameKey(&v); newName != oldName {
				conds = append(conds, store.Absent(newName))
				ops = append(ops, store.Del(oldName), store.Put(newName, []byte(id)))
			}
		}
		_, err = st.Commit(ctx, conds, ops)
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, store.ErrExists):
			return zero, api.Conflict("Conflict occurred attempting to update %s - Duplicate entry found with the new name.", kind)
		case errors.Is(err, store.ErrConflict):
			continue
		default:
			return zero, err
		}
	}
	return zero, fmt.Errorf("update %s %s: %w", kind, id, store.ErrConflict)
}

// deleteRecord removes the record at key and its name index, after check
// (if set) has approved the current value.
func deleteRecord[T any](ctx context.Context, st *store.Store, kind, id, key string, nameKey func(*T) string, check func(*T) error) (T, error) {
	var zero T
	for range maxUpdateAttempts {
		v, rev, err := getRecord[T](ctx, st, key, kind, id)
		if err != nil {
			return zero, err
		}
		if check != nil {
			if err := check(&v); err != nil {
				return zero, err
			}
		}
		ops := []store.Op{store.Del(key)}
		if nameKey != nil {
			ops = append(ops, store.Del(nameKey(&v)))
		}
		_, err = st.Commit(ctx, []store.Cond{store.Unchanged(key, rev)}, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return zero, err
		}
		return v, nil
	}
	return zero, fmt.Errorf("delete %s %s: %w", kind, id, store.ErrConflict)
}

// idByName resolves a name index key to the ID it holds.
func idByName(ctx context.Context, st *store.Store, nameKey string) (string, bool, error) {
	r, err := st.Get(ctx, nameKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(r.Value), true, nil
}
