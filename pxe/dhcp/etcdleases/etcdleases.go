// Package etcdleases keeps the DHCP server's leases in etcd, so that they
// survive a restart and so that several servers sharing the etcd cluster
// never bind one address to two clients.
//
// Keys, under the store's prefix (the undercloud's is /strata/undercloud/):
//
//	dhcp/leases/<mac>          the lease of a MAC (aa:bb:cc:dd:ee:ff), JSON
//	dhcp/addrs/<ip>            the same lease, by address, zero-padded
//	                           (192.168.024.010) so that keys sort in address
//	                           order; a declined (quarantined) address has
//	                           only this record
//
// Both records of a lease are written in one transaction whose conditions
// are the ModRevisions (or absence) of every key dhcp.Plan's change touches;
// on conflict it reads them again and retries. The address record is what
// makes an address unique: two servers racing for one address both
// condition on it, and only one transaction succeeds.
//
// A Store remembers the records it last read or wrote with their
// revisions, and tries a Put on what it remembers first: a renewal or a
// returning client then costs one transaction and no reads. A record
// another server changed in between fails the transaction's condition, and
// the Put reads afresh, so the cache only ever costs a retry, never a
// wrong write. Lookup answers from it too; with several servers sharing
// etcd, that may offer an address another server has since given away,
// and the REQUEST then gets a NAK and the client starts over.
package etcdleases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/pxe/dhcp"
)

// Key prefixes, relative to the store's prefix.
const (
	LeasesPrefix = "dhcp/leases/"
	AddrsPrefix  = "dhcp/addrs/"
)

// maxAttempts bounds Put's retries under contention.
const maxAttempts = 16

// pageSize is how many address keys Free reads at a time.
const pageSize = 256

// maxCached bounds the records a Store remembers; past it, it forgets
// them all and starts again from etcd.
const maxCached = 1 << 17

// Store is a dhcp.Leases on etcd.
type Store struct {
	s     *store.Store
	mu    sync.Mutex
	cache map[string]cached
}

// cached is a record as last read or written, with its ModRevision.
type cached struct {
	l   dhcp.Lease
	rev int64
}

var _ dhcp.Leases = (*Store)(nil)

// New returns a lease store over s.
func New(s *store.Store) *Store { return &Store{s: s, cache: map[string]cached{}} }

func (st *Store) recall(key string) (*dhcp.Lease, int64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.cache[key]
	if !ok {
		return nil, 0, false
	}
	l := c.l
	return &l, c.rev, true
}

// remember records what key holds at rev; a nil l forgets it.
func (st *Store) remember(key string, l *dhcp.Lease, rev int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if l == nil {
		delete(st.cache, key)
		return
	}
	if len(st.cache) >= maxCached {
		clear(st.cache)
	}
	st.cache[key] = cached{l: *l, rev: rev}
}

// get returns the record at key from the cache if fresh is false and it is
// there, else from etcd.
func (st *Store) get(ctx context.Context, key string, fresh bool) (*dhcp.Lease, int64, error) {
	if !fresh {
		if l, rev, ok := st.recall(key); ok {
			return l, rev, nil
		}
	}
	return st.read(ctx, key)
}

// MACKey is the key of a MAC's lease.
func MACKey(mac net.HardwareAddr) string { return LeasesPrefix + mac.String() }

// AddrKey is the key of an address's lease.
func AddrKey(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("%s%03d.%03d.%03d.%03d", AddrsPrefix, b[0], b[1], b[2], b[3])
}

func parseAddrKey(k string) (netip.Addr, bool) {
	f := strings.Split(strings.TrimPrefix(k, AddrsPrefix), ".")
	if len(f) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// read returns the lease at key (nil if absent) with its ModRevision.
func (st *Store) read(ctx context.Context, key string) (*dhcp.Lease, int64, error) {
	r, err := st.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		st.remember(key, nil, 0)
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var l dhcp.Lease
	if err := json.Unmarshal(r.Value, &l); err != nil {
		return nil, 0, fmt.Errorf("%s: decode: %w", key, err)
	}
	st.remember(key, &l, r.ModRevision)
	return &l, r.ModRevision, nil
}

// Lookup implements dhcp.Leases.
func (st *Store) Lookup(ctx context.Context, mac net.HardwareAddr) (dhcp.Lease, error) {
	l, _, err := st.get(ctx, MACKey(mac), false)
	if err != nil {
		return dhcp.Lease{}, err
	}
	if l == nil {
		return dhcp.Lease{}, fmt.Errorf("%v: %w", mac, dhcp.ErrNoLease)
	}
	return *l, nil
}

// Addr returns the record of address a, or dhcp.ErrNoLease.
func (st *Store) Addr(ctx context.Context, a netip.Addr) (dhcp.Lease, error) {
	l, _, err := st.read(ctx, AddrKey(a))
	if err != nil {
		return dhcp.Lease{}, err
	}
	if l == nil {
		return dhcp.Lease{}, fmt.Errorf("%v: %w", a, dhcp.ErrNoLease)
	}
	return *l, nil
}

// cond is the condition that key is still as it was read.
func cond(key string, rev int64) store.Cond {
	if rev == 0 {
		return store.Absent(key)
	}
	return store.Unchanged(key, rev)
}

// Put implements dhcp.Leases.
func (st *Store) Put(ctx context.Context, l dhcp.Lease, now time.Time) error {
	addrKey, macKey := AddrKey(l.IP), MACKey(l.MAC)
	for attempt := range maxAttempts {
		fresh := attempt > 0
		atAddr, addrRev, err := st.get(ctx, addrKey, fresh)
		if err != nil {
			return err
		}
		atMAC, macRev, err := st.get(ctx, macKey, fresh)
		if err != nil {
			return err
		}
		c, err := dhcp.Plan(now, l, atAddr, atMAC)
		if err != nil {
			if fresh {
				return err
			}
			continue // decided on remembered records: check them
		}
		conds := []store.Cond{cond(addrKey, addrRev), cond(macKey, macRev)}
		var ops []store.Op
		var dels []string
		if c.FreeAddr.IsValid() {
			k := AddrKey(c.FreeAddr)
			old, rev, err := st.get(ctx, k, fresh)
			if err != nil {
				return err
			}
			conds = append(conds, cond(k, rev))
			if old != nil && string(old.MAC) == string(l.MAC) {
				ops, dels = append(ops, store.Del(k)), append(dels, k)
			}
		}
		if c.DropMAC != nil {
			k := MACKey(c.DropMAC)
			old, rev, err := st.get(ctx, k, fresh)
			if err != nil {
				return err
			}
			conds = append(conds, cond(k, rev))
			if old != nil && old.IP == l.IP {
				ops, dels = append(ops, store.Del(k)), append(dels, k)
			}
		}
		ops = append(ops, store.PutJSON(addrKey, c.PutAddr))
		switch {
		case c.PutMAC != nil:
			ops = append(ops, store.PutJSON(macKey, c.PutMAC))
		case c.DelMAC:
			ops, dels = append(ops, store.Del(macKey)), append(dels, macKey)
		}
		rev, err := st.s.Commit(ctx, conds, ops)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		st.remember(addrKey, c.PutAddr, rev)
		if c.PutMAC != nil {
			st.remember(macKey, c.PutMAC, rev)
		}
		for _, k := range dels {
			st.remember(k, nil, 0)
		}
		return nil
	}
	return fmt.Errorf("lease %v for %v: %w after %d attempts", l.IP, l.MAC, store.ErrConflict, maxAttempts)
}

// Free implements dhcp.Leases. It first looks for an address without a
// record, reading only keys, a page at a time from from; then, if the
// pool is full of records, for one whose record no longer keeps it.
func (st *Store) Free(ctx context.Context, r dhcp.Range, from netip.Addr, now time.Time, skip func(netip.Addr) bool) (netip.Addr, error) {
	if !r.Contains(from) {
		from = r.Start
	}
	// Two sweeps of [from, End] then [Start, from), first for absent keys.
	spans := []dhcp.Range{{Start: from, End: r.End}}
	if from != r.Start {
		spans = append(spans, dhcp.Range{Start: r.Start, End: from.Prev()})
	}
	for _, sp := range spans {
		a, ok, err := st.absent(ctx, sp, skip)
		if err != nil || ok {
			return a, err
		}
	}
	for _, sp := range spans {
		a, ok, err := st.reclaimable(ctx, sp, now, skip)
		if err != nil || ok {
			return a, err
		}
	}
	return netip.Addr{}, fmt.Errorf("%v: %w", r, dhcp.ErrPoolExhausted)
}

// scan calls fn with the records of span in address order, a page at a
// time, until fn returns false.
func (st *Store) scan(ctx context.Context, sp dhcp.Range, keysOnly bool, fn func(netip.Addr, store.Record) bool) error {
	o := store.ListOptions{Limit: pageSize, KeysOnly: keysOnly}
	if sp.Start != netip.IPv4Unspecified() {
		o.After = AddrKey(sp.Start.Prev())
	}
	for {
		p, err := st.s.List(ctx, AddrsPrefix, o)
		if err != nil {
			return err
		}
		for _, rec := range p.Records {
			a, ok := parseAddrKey(rec.Key)
			if !ok {
				continue
			}
			if sp.End.Less(a) || !fn(a, rec) {
				return nil
			}
		}
		if !p.More || len(p.Records) == 0 {
			return nil
		}
		o.After, o.Revision = p.Records[len(p.Records)-1].Key, p.Revision
	}
}

// absent finds the first address of sp without a record.
func (st *Store) absent(ctx context.Context, sp dhcp.Range, skip func(netip.Addr) bool) (netip.Addr, bool, error) {
	// Positions in sp: next is the lowest one not yet known to be taken.
	var next uint64
	var found netip.Addr
	gap := func(upto uint64) bool {
		for i := next; i < upto; i++ {
			if a := sp.At(uint32(i)); skip == nil || !skip(a) {
				found = a
				return true
			}
		}
		return false
	}
	err := st.scan(ctx, sp, true, func(a netip.Addr, _ store.Record) bool {
		i := uint64(sp.Offset(a))
		if gap(i) {
			return false
		}
		next = i + 1
		return true
	})
	if err != nil || found.IsValid() {
		return found, found.IsValid(), err
	}
	return found, gap(uint64(sp.Size())), nil
}

// reclaimable finds the first address of sp whose record no longer keeps it.
func (st *Store) reclaimable(ctx context.Context, sp dhcp.Range, now time.Time, skip func(netip.Addr) bool) (netip.Addr, bool, error) {
	var found netip.Addr
	var decodeErr error
	err := st.scan(ctx, sp, false, func(a netip.Addr, rec store.Record) bool {
		var l dhcp.Lease
		if err := json.Unmarshal(rec.Value, &l); err != nil {
			decodeErr = fmt.Errorf("%s: decode: %w", rec.Key, err)
			return false
		}
		if l.Active(now) || (skip != nil && skip(a)) {
			return true
		}
		found = a
		return false
	})
	if err == nil {
		err = decodeErr
	}
	return found, found.IsValid(), err
}

// All returns every address record, in address order.
func (st *Store) All(ctx context.Context) ([]dhcp.Lease, error) {
	recs, _, err := st.s.ListAll(ctx, AddrsPrefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([]dhcp.Lease, 0, len(recs))
	for _, r := range recs {
		var l dhcp.Lease
		if err := json.Unmarshal(r.Value, &l); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
		out = append(out, l)
	}
	return out, nil
}
