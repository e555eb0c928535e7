// Package leasestest checks that an implementation of dhcp.Leases keeps
// the rules every lease store must keep (the ones dhcp.Plan states), the
// way testing/fstest checks a file system.
package leasestest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/dhcp"
)

// MAC returns a distinct locally administered MAC address for i.
func MAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x00, 0x5e, byte(i >> 16), byte(i >> 8), byte(i)}
}

// Run checks the store that open returns; open must return an empty store
// each time it is called.
func Run(t *testing.T, open func(t *testing.T) dhcp.Leases) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pool := dhcp.Range{Start: netip.MustParseAddr("10.9.0.10"), End: netip.MustParseAddr("10.9.0.19")}
	ip := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, 0, last}) }
	bound := func(i int, a netip.Addr, until time.Time) dhcp.Lease {
		return dhcp.Lease{MAC: MAC(i), IP: a, State: dhcp.Bound, Expiry: until, Updated: t0}
	}
	hour := t0.Add(time.Hour)

	t.Run("BindLookupAndMove", func(t *testing.T) {
		s := open(t)
		if _, err := s.Lookup(ctx, MAC(1)); !errors.Is(err, dhcp.ErrNoLease) {
			t.Fatalf("Lookup of an unknown MAC = %v, want ErrNoLease", err)
		}
		must(t, s.Put(ctx, bound(1, ip(10), hour), t0))
		l := lookup(t, s, MAC(1))
		if l.IP != ip(10) || l.State != dhcp.Bound || !l.Expiry.Equal(hour) {
			t.Fatalf("Lookup = %+v, want bound to 10.9.0.10 until %v", l, hour)
		}
		// Renewing extends; moving frees the old address.
		must(t, s.Put(ctx, bound(1, ip(10), hour.Add(time.Hour)), t0))
		must(t, s.Put(ctx, bound(1, ip(11), hour), t0))
		if got := free(t, s, pool, ip(10), t0); got != ip(10) {
			t.Fatalf("after the MAC moved, Free from .10 = %v, want .10 (freed)", got)
		}
		if got := lookup(t, s, MAC(1)).IP; got != ip(11) {
			t.Fatalf("Lookup after the move = %v, want .11", got)
		}
	})

	t.Run("AddressInUse", func(t *testing.T) {
		s := open(t)
		must(t, s.Put(ctx, bound(1, ip(12), hour), t0))
		if err := s.Put(ctx, bound(2, ip(12), hour), t0); !errors.Is(err, dhcp.ErrAddrInUse) {
			t.Fatalf("binding a held address to another MAC = %v, want ErrAddrInUse", err)
		}
		if got := free(t, s, pool, ip(12), t0); got == ip(12) {
			t.Fatalf("Free returned the held address %v", got)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		must(t, s.Put(ctx, bound(1, ip(13), t0.Add(time.Minute)), t0))
		later := t0.Add(2 * time.Minute)
		// Fill every other address so that only the expired one is left.
		for i, a := 0, pool.Start; pool.Contains(a); i, a = i+1, a.Next() {
			if a != ip(13) {
				must(t, s.Put(ctx, bound(100+i, a, hour), t0))
			}
		}
		if got := free(t, s, pool, pool.Start, later); got != ip(13) {
			t.Fatalf("Free with only an expired lease left = %v, want .13", got)
		}
		if _, err := s.Free(ctx, pool, pool.Start, t0, nil); !errors.Is(err, dhcp.ErrPoolExhausted) {
			t.Fatalf("Free before the expiry = %v, want ErrPoolExhausted", err)
		}
		// Another MAC takes the expired address; the old holder loses it.
		must(t, s.Put(ctx, bound(2, ip(13), hour), later))
		if _, err := s.Lookup(ctx, MAC(1)); !errors.Is(err, dhcp.ErrNoLease) {
			t.Fatalf("Lookup of the expired holder = %v, want ErrNoLease", err)
		}
	})

	t.Run("Release", func(t *testing.T) {
		s := open(t)
		must(t, s.Put(ctx, bound(1, ip(14), hour), t0))
		rel := dhcp.Lease{MAC: MAC(2), IP: ip(14), State: dhcp.Released, Expiry: t0}
		if err := s.Put(ctx, rel, t0); !errors.Is(err, dhcp.ErrNoLease) {
			t.Fatalf("release by another MAC = %v, want ErrNoLease", err)
		}
		rel.MAC = MAC(1)
		must(t, s.Put(ctx, rel, t0))
		if l := lookup(t, s, MAC(1)); l.State != dhcp.Released || l.IP != ip(14) {
			t.Fatalf("after release, Lookup = %+v, want released .14 (remembered)", l)
		}
		must(t, s.Put(ctx, bound(2, ip(14), hour), t0))
	})

	t.Run("DeclineQuarantines", func(t *testing.T) {
		s := open(t)
		must(t, s.Put(ctx, bound(1, ip(15), hour), t0))
		dec := dhcp.Lease{MAC: MAC(1), IP: ip(15), State: dhcp.Declined, Expiry: t0.Add(10 * time.Minute)}
		must(t, s.Put(ctx, dec, t0))
		if _, err := s.Lookup(ctx, MAC(1)); !errors.Is(err, dhcp.ErrNoLease) {
			t.Fatalf("after decline, Lookup = %v, want ErrNoLease", err)
		}
		for _, i := range []int{1, 2} {
			if err := s.Put(ctx, bound(i, ip(15), hour), t0.Add(time.Minute)); !errors.Is(err, dhcp.ErrAddrInUse) {
				t.Fatalf("binding a quarantined address to MAC %d = %v, want ErrAddrInUse", i, err)
			}
		}
		if got := free(t, s, pool, ip(15), t0); got == ip(15) {
			t.Fatal("Free returned a quarantined address")
		}
		must(t, s.Put(ctx, bound(2, ip(15), hour), t0.Add(11*time.Minute)))
		// A decline of an address another client holds changes nothing.
		dec.MAC = MAC(3)
		if err := s.Put(ctx, dec, t0.Add(12*time.Minute)); !errors.Is(err, dhcp.ErrAddrInUse) {
			t.Fatalf("decline of another's address = %v, want ErrAddrInUse", err)
		}
	})

	t.Run("FreeOrderAndSkip", func(t *testing.T) {
		s := open(t)
		must(t, s.Put(ctx, bound(1, ip(17), hour), t0))
		must(t, s.Put(ctx, bound(2, ip(18), t0.Add(time.Second)), t0))
		later := t0.Add(time.Minute)
		// From .17: .17 is held, .18 expired but had a record, .19 never had
		// one: fresh addresses come first.
		if got := free(t, s, pool, ip(17), later); got != ip(19) {
			t.Fatalf("Free from .17 = %v, want .19", got)
		}
		skip := func(a netip.Addr) bool { return a == ip(19) }
		got, err := s.Free(ctx, pool, ip(17), later, skip)
		if err != nil || got != ip(10) {
			t.Fatalf("Free from .17 skipping .19 = %v, %v; want .10 (wrapped)", got, err)
		}
	})

	t.Run("ConcurrentBindsNeverShareAnAddress", func(t *testing.T) {
		s := open(t)
		const clients = 24
		var mu sync.Mutex
		holders := map[netip.Addr][]int{}
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := range pool.Size() {
					a := pool.At(uint32(i + try))
					err := s.Put(ctx, bound(i, a, hour), t0)
					if errors.Is(err, dhcp.ErrAddrInUse) {
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					mu.Lock()
					holders[a] = append(holders[a], i)
					mu.Unlock()
					return
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(holders) != pool.Size() {
			t.Errorf("%d addresses bound, want all %d", len(holders), pool.Size())
		}
		for a, hs := range holders {
			if len(hs) != 1 {
				t.Errorf("%v bound to clients %v", a, hs)
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, s dhcp.Leases, mac net.HardwareAddr) dhcp.Lease {
	t.Helper()
	l, err := s.Lookup(context.Background(), mac)
	if err != nil {
		t.Fatalf("Lookup %v: %v", mac, err)
	}
	return l
}

func free(t *testing.T, s dhcp.Leases, r dhcp.Range, from netip.Addr, now time.Time) netip.Addr {
	t.Helper()
	a, err := s.Free(context.Background(), r, from, now, nil)
	if err != nil {
		t.Fatalf("Free from %v: %v", from, err)
	}
	return a
}
