// Package store keeps JSON records in etcd under a per-part key prefix.
// Every write is a compare-and-swap: creates require the key to be absent,
// updates and deletes require the ModRevision the caller last saw.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
)

// Errors returned by the store; match them with errors.Is.
var (
	ErrNotFound = errors.New("record not found")
	ErrExists   = errors.New("record already exists")
	ErrConflict = errors.New("record changed since it was read")
)

// MaxValueSize is the largest record the store accepts, well under etcd's
// request limit, so that no single record can stall the cluster.
const MaxValueSize = 1 << 20

// Store reads and writes records under one key prefix of an etcd cluster.
type Store struct {
	client *clientv3.Client
	kv     clientv3.KV
	watch  clientv3.Watcher
	lease  clientv3.Lease
	prefix string
}

// New returns a store whose keys all live under prefix (for example
// "/strata/undercloud/"). The caller keeps ownership of client.
func New(client *clientv3.Client, prefix string) *Store {
	return &Store{
		client: client,
		kv:     namespace.NewKV(client.KV, prefix),
		watch:  namespace.NewWatcher(client.Watcher, prefix),
		lease:  namespace.NewLease(client.Lease, prefix),
		prefix: prefix,
	}
}

// Client is the underlying etcd client, for leases and elections.
func (s *Store) Client() *clientv3.Client { return s.client }

// Prefix is the key prefix every record of this store lives under.
func (s *Store) Prefix() string { return s.prefix }

// Record is one stored value with its revisions.
type Record struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Lease          clientv3.LeaseID
}

func fromKV(kv interface {
	GetKey() []byte
	GetValue() []byte
	GetCreateRevision() int64
	GetModRevision() int64
	GetLease() int64
}) Record {
	return Record{
		Key:            string(kv.GetKey()),
		Value:          kv.GetValue(),
		CreateRevision: kv.GetCreateRevision(),
		ModRevision:    kv.GetModRevision(),
		Lease:          clientv3.LeaseID(kv.GetLease()),
	}
}

// Get returns the record at key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (Record, error) {
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return Record{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return fromKV(resp.Kvs[0]), nil
}

// Create stores value at key if no record is there yet, and returns the
// new record's revision; it fails with ErrExists otherwise.
func (s *Store) Create(ctx context.Context, key string, value []byte) (int64, error) {
	return s.Commit(ctx, []Cond{Absent(key)}, []Op{Put(key, value)})
}

// Update replaces the record at key if its ModRevision is still modRev.
func (s *Store) Update(ctx context.Context, key string, value []byte, modRev int64) (int64, error) {
	return s.Commit(ctx, []Cond{Unchanged(key, modRev)}, []Op{Put(key, value)})
}

// Delete removes the record at key if its ModRevision is still modRev.
func (s *Store) Delete(ctx context.Context, key string, modRev int64) error {
	_, err := s.Commit(ctx, []Cond{Unchanged(key, modRev)}, []Op{Del(key)})
	return err
}

// Page is one page of a listing.
type Page struct {
	Records []Record
	// More is true when records follow the last one of this page.
	More bool
	// Revision is the store revision the page was read at.
	Revision int64
}

// ListOptions select a page of a prefix listing, in key order.
type ListOptions struct {
	// After, when set, starts the page after this key.
	After string
	// Limit caps the number of records; zero means no limit.
	Limit int
	// Revision, when set, reads the listing as of that revision, so that
	// a paged scan sees one consistent snapshot.
	Revision int64
	// KeysOnly leaves values out.
	KeysOnly bool
}

// List returns records whose key starts with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string, o ListOptions) (Page, error) {
	start := prefix
	if o.After != "" {
		if !strings.HasPrefix(o.After, prefix) {
			return Page{}, fmt.Errorf("list %s: marker %q is outside the prefix", prefix, o.After)
		}
		start = o.After + "\x00"
	}
	opts := []clientv3.OpOption{
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend),
	}
	if o.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(o.Limit)))
	}
	if o.Revision > 0 {
		opts = append(opts, clientv3.WithRev(o.Revision))
	}
	if o.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	resp, err := s.kv.Get(ctx, start, opts...)
	if err != nil {
		return Page{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	p := Page{More: resp.More, Revision: resp.Header.Revision, Records: make([]Record, 0, len(resp.Kvs))}
	for _, kv := range resp.Kvs {
		p.Records = append(p.Records, fromKV(kv))
	}
	return p, nil
}

// ListAll returns every record under prefix, read in pages of pageSize
// from one consistent revision.
func (s *Store) ListAll(ctx context.Context, prefix string, pageSize int) ([]Record, int64, error) {
	if pageSize <= 0 {
		pageSize = 500
	}
	var all []Record
	o := ListOptions{Limit: pageSize}
	for {
		p, err := s.List(ctx, prefix, o)
		if err != nil {
			return nil, 0, err
		}
		all = append(all, p.Records...)
		o.Revision = p.Revision
		if !p.More || len(p.Records) == 0 {
			return all, p.Revision, nil
		}
		o.After = p.Records[len(p.Records)-1].Key
	}
}

// Count returns the number of records under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	resp, err := s.kv.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	return resp.Count, nil
}

// Cond is a precondition of a transaction.
type Cond struct {
	key  string
	kind condKind
	rev  int64
}

type condKind int

const (
	condAbsent condKind = iota
	condModRev
	condCreateRev
	condExists
)

// Key is the key the condition is about.
func (c Cond) Key() string { return c.key }

func (c Cond) cmp() clientv3.Cmp {
	switch c.kind {
	case condAbsent:
		return clientv3.Compare(clientv3.CreateRevision(c.key), "=", 0)
	case condCreateRev:
		return clientv3.Compare(clientv3.CreateRevision(c.key), "=", c.rev)
	case condExists:
		return clientv3.Compare(clientv3.CreateRevision(c.key), ">", 0)
	default:
		return clientv3.Compare(clientv3.ModRevision(c.key), "=", c.rev)
	}
}

// holds re-evaluates the condition against the key's revisions as read
// back from a failed transaction.
func (c Cond) holds(create, mod int64) bool {
	switch c.kind {
	case condAbsent:
		return create == 0
	case condCreateRev:
		return create == c.rev
	case condExists:
		return create > 0
	default:
		return mod == c.rev
	}
}

// Absent holds when no record exists at key.
func Absent(key string) Cond { return Cond{key: key, kind: condAbsent} }

// Unchanged holds when the record at key still has ModRevision rev.
func Unchanged(key string, rev int64) Cond { return Cond{key: key, kind: condModRev, rev: rev} }

// Exists holds when a record exists at key.
func Exists(key string) Cond { return Cond{key: key, kind: condExists} }

// Created holds when the record at key is the one created at revision rev:
// the fencing check of a lock key.
func Created(key string, rev int64) Cond { return Cond{key: key, kind: condCreateRev, rev: rev} }

// Op is a write in a transaction.
type Op struct {
	key string
	op  clientv3.Op
	err error
}

// Put writes value at key.
func Put(key string, value []byte) Op {
	if len(value) > MaxValueSize {
		return Op{key: key, err: fmt.Errorf("%s: value of %d bytes exceeds %d", key, len(value), MaxValueSize)}
	}
	return Op{key: key, op: clientv3.OpPut(key, string(value))}
}

// PutJSON writes v encoded as JSON at key.
func PutJSON(key string, v any) Op {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{key: key, err: fmt.Errorf("%s: encode: %w", key, err)}
	}
	return Put(key, b)
}

// PutLeased writes value at key, bound to lease: it vanishes when the lease
// expires or is revoked.
func PutLeased(key string, value []byte, lease clientv3.LeaseID) Op {
	return Op{key: key, op: clientv3.OpPut(key, string(value), clientv3.WithLease(lease))}
}

// Del removes key.
func Del(key string) Op { return Op{key: key, op: clientv3.OpDelete(key)} }

// DelPrefix removes every key under prefix.
func DelPrefix(prefix string) Op {
	return Op{key: prefix, op: clientv3.OpDelete(prefix, clientv3.WithPrefix())}
}

// Commit applies ops atomically if every condition holds, and returns the
// revision of the write. When a condition fails it returns a *CondError
// naming the key, wrapping ErrExists (an Absent condition failed),
// ErrNotFound (an Exists condition failed) or ErrConflict (any other).
func (s *Store) Commit(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	cmps := make([]clientv3.Cmp, len(conds))
	// On failure, read back every conditioned key so that the caller learns
	// which condition failed.
	elses := make([]clientv3.Op, len(conds))
	for i, c := range conds {
		cmps[i] = c.cmp()
		elses[i] = clientv3.OpGet(c.key, clientv3.WithKeysOnly())
	}
	thens := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		if o.err != nil {
			return 0, o.err
		}
		thens[i] = o.op
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(thens...).Else(elses...).Commit()
	if err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, c := range conds {
		var create, mod int64
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
			create, mod = kvs[0].CreateRevision, kvs[0].ModRevision
		}
		if !c.holds(create, mod) {
			kind := ErrConflict
			switch c.kind {
			case condAbsent:
				kind = ErrExists
			case condExists:
				kind = ErrNotFound
			}
			return 0, &CondError{Key: c.key, Err: kind}
		}
	}
	// A condition failed and then held again when read back: the record
	// changed in between.
	return 0, &CondError{Err: ErrConflict}
}

// CondError reports the key whose condition failed in Commit.
type CondError struct {
	Key string
	Err error
}

func (e *CondError) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

func (e *CondError) Unwrap() error { return e.Err }
