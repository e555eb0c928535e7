package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// MemoryLeases keeps leases in memory: they are lost when the process
// ends. It suits tests, fuzzing and simulations; the undercloud keeps its
// leases in etcd (package etcdleases).
type MemoryLeases struct {
	mu    sync.Mutex
	macs  map[string]Lease
	addrs map[netip.Addr]Lease
}

var _ Leases = (*MemoryLeases)(nil)

// NewMemoryLeases returns an empty in-memory lease store.
func NewMemoryLeases() *MemoryLeases {
	return &MemoryLeases{macs: map[string]Lease{}, addrs: map[netip.Addr]Lease{}}
}

// Lookup implements Leases.
func (m *MemoryLeases) Lookup(_ context.Context, mac net.HardwareAddr) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.macs[string(mac)]
	if !ok {
		return Lease{}, fmt.Errorf("%v: %w", mac, ErrNoLease)
	}
	return l, nil
}

// Free implements Leases.
func (m *MemoryLeases) Free(_ context.Context, r Range, from netip.Addr, now time.Time, skip func(netip.Addr) bool) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint32(r.Size())
	start := uint32(0)
	if r.Contains(from) {
		start = r.Offset(from)
	}
	for _, fresh := range []bool{true, false} {
		for i := uint32(0); i < n; i++ {
			a := r.At(start + i)
			l, used := m.addrs[a]
			if fresh && used || !fresh && (!used || l.Active(now)) {
				continue
			}
			if skip != nil && skip(a) {
				continue
			}
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%v: %w", r, ErrPoolExhausted)
}

// Put implements Leases.
func (m *MemoryLeases) Put(_ context.Context, l Lease, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var atAddr, atMAC *Lease
	if v, ok := m.addrs[l.IP]; ok {
		atAddr = &v
	}
	if v, ok := m.macs[string(l.MAC)]; ok {
		atMAC = &v
	}
	c, err := Plan(now, l, atAddr, atMAC)
	if err != nil {
		return err
	}
	if c.FreeAddr.IsValid() {
		if v, ok := m.addrs[c.FreeAddr]; ok && sameMAC(v.MAC, l.MAC) {
			delete(m.addrs, c.FreeAddr)
		}
	}
	if c.DropMAC != nil {
		if v, ok := m.macs[string(c.DropMAC)]; ok && v.IP == l.IP {
			delete(m.macs, string(c.DropMAC))
		}
	}
	m.addrs[l.IP] = *c.PutAddr
	switch {
	case c.PutMAC != nil:
		m.macs[string(l.MAC)] = *c.PutMAC
	case c.DelMAC:
		delete(m.macs, string(l.MAC))
	}
	return nil
}

// All returns every address record, in address order.
func (m *MemoryLeases) All() []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.addrs))
	for _, l := range m.addrs {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// check verifies the store's invariants: each MAC record is mirrored by
// the record of its address, and no address is bound to two MACs. Tests
// and the fuzzer call it.
func (m *MemoryLeases) check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, l := range m.macs {
		a, ok := m.addrs[l.IP]
		if !ok || string(a.MAC) != k || a.State != l.State {
			return fmt.Errorf("mac %v has %v (%s) but the address record is %+v", net.HardwareAddr(k), l.IP, l.State, a)
		}
	}
	for ip, a := range m.addrs {
		if a.State == Declined {
			continue
		}
		if l, ok := m.macs[string(a.MAC)]; ok && l.IP != ip {
			return fmt.Errorf("address %v names %v, whose record is for %v", ip, a.MAC, l.IP)
		}
	}
	return nil
}
