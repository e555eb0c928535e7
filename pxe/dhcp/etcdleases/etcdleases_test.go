package etcdleases_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stratacloud/strata/internal/etcdserver"
	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/etcdleases"
	"github.com/stratacloud/strata/pxe/dhcp/leasestest"
)

func TestConformance(t *testing.T) {
	cli := etcdtest.Run(t)
	n := 0
	leasestest.Run(t, func(*testing.T) dhcp.Leases {
		n++ // a fresh prefix per subtest: an empty store
		return etcdleases.New(store.New(cli, "/test/"+string(rune('a'+n))+"/"))
	})
}

// TestLayout pins the documented key layout and record format.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	cli := etcdtest.Run(t)
	s := etcdleases.New(store.New(cli, "/strata/undercloud/"))
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := dhcp.Lease{MAC: leasestest.MAC(7), IP: netip.MustParseAddr("192.168.24.10"), State: dhcp.Bound,
		Expiry: t0.Add(time.Hour), NodeUUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", Hostname: "node-0", Updated: t0}
	if err := s.Put(ctx, l, t0); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"schema_version": 1.0, "mac": "02:00:5e:00:00:07", "ip": "192.168.24.10", "state": "bound",
		"expires_at": "2030-01-02T04:04:05Z", "node_uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
		"hostname": "node-0", "updated_at": "2030-01-02T03:04:05Z",
	}
	for _, key := range []string{"/strata/undercloud/dhcp/leases/02:00:5e:00:00:07", "/strata/undercloud/dhcp/addrs/192.168.024.010"} {
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v, %d keys", key, err, len(resp.Kvs))
		}
		var got map[string]any
		if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", key, d)
		}
	}
}

// TestRestartKeepsLeases stops the embedded etcd member and starts it
// again on the same data directory, as an undercloud restart does.
func TestRestartKeepsLeases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	l := dhcp.Lease{MAC: leasestest.MAC(1), IP: netip.MustParseAddr("10.9.0.11"), State: dhcp.Bound, Expiry: t0.Add(time.Hour), Updated: t0}
	run := func(fn func(s *etcdleases.Store)) {
		srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cli, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		fn(etcdleases.New(store.New(cli, "/strata/undercloud/")))
	}
	run(func(s *etcdleases.Store) {
		if err := s.Put(ctx, l, t0); err != nil {
			t.Fatal(err)
		}
	})
	run(func(s *etcdleases.Store) {
		got, err := s.Lookup(ctx, l.MAC)
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if got.IP != l.IP || !got.Expiry.Equal(l.Expiry) || got.State != dhcp.Bound {
			t.Fatalf("after restart: %+v, want %+v", got, l)
		}
	})
}

// TestStaleCache: a store that remembers an old record must not write
// over what another store (another server) did since.
func TestStaleCache(t *testing.T) {
	ctx := context.Background()
	cli := etcdtest.Run(t)
	a := etcdleases.New(store.New(cli, "/strata/undercloud/"))
	b := etcdleases.New(store.New(cli, "/strata/undercloud/"))
	t0 := time.Now()
	x := netip.MustParseAddr("10.9.0.12")
	lease := func(i int, st dhcp.State) dhcp.Lease {
		return dhcp.Lease{MAC: leasestest.MAC(i), IP: x, State: st, Expiry: t0.Add(time.Hour), Updated: t0}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Put(ctx, lease(1, dhcp.Bound), t0)) // a remembers x bound to 1
	rel := lease(1, dhcp.Released)
	rel.Expiry = t0
	must(b.Put(ctx, rel, t0))                  // b releases it
	must(b.Put(ctx, lease(2, dhcp.Bound), t0)) // and gives it to 2
	// a renews 1 on x from what it remembers: refused on the fresh records.
	if err := a.Put(ctx, lease(1, dhcp.Bound), t0); !errors.Is(err, dhcp.ErrAddrInUse) {
		t.Fatalf("renewal over a stale cache = %v, want ErrAddrInUse", err)
	}
	if got, err := a.Addr(ctx, x); err != nil || got.MAC.String() != leasestest.MAC(2).String() {
		t.Fatalf("x is now %+v, %v; want bound to MAC 2", got, err)
	}
}

// TestTwoServers runs clients against two handlers sharing etcd, each with
// its own lease store (and cache) and offers: no address is ever ACKed to
// two clients, and the pool fills exactly.
func TestTwoServers(t *testing.T) {
	ctx := context.Background()
	cli := etcdtest.Run(t)
	pool := dhcp.Range{Start: netip.MustParseAddr("10.0.0.100"), End: netip.MustParseAddr("10.0.0.119")}
	server := netip.MustParseAddr("10.0.0.1")
	var handlers []*dhcp.Handler
	for range 2 {
		h, err := dhcp.NewHandler(dhcp.Config{
			Interface: "test0", ServerIP: server, Subnet: netip.MustParsePrefix("10.0.0.0/24"), Pool: pool,
			Directory: anyHost{}, Discovery: true,
			Leases: etcdleases.New(store.New(cli, "/strata/undercloud/")),
		})
		if err != nil {
			t.Fatal(err)
		}
		handlers = append(handlers, h)
	}
	const clients = 40
	var mu sync.Mutex
	acked := map[netip.Addr][]int{}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handlers[i%2]
			hw := leasestest.MAC(i)
			handle := func(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
				r, err := h.Handle(ctx, dhcp.Packet{Msg: m, Port: dhcp.ServerPort, Peer: netip.MustParseAddrPort("0.0.0.0:68")})
				if err != nil {
					t.Error(err)
				}
				return r.Msg
			}
			for range 10 {
				d, _ := dhcpv4.NewDiscovery(hw)
				offer := handle(d)
				if offer == nil {
					return // pool exhausted
				}
				req, _ := dhcpv4.NewRequestFromOffer(offer)
				ack := handle(req)
				if ack != nil && ack.MessageType() == dhcpv4.MessageTypeAck {
					a, _ := netip.AddrFromSlice(ack.YourIPAddr.To4())
					mu.Lock()
					acked[a] = append(acked[a], i)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	for a, cs := range acked {
		if len(cs) != 1 {
			t.Errorf("%v ACKed to clients %v", a, cs)
		}
	}
	if len(acked) != pool.Size() {
		t.Errorf("%d addresses ACKed, want the whole pool of %d", len(acked), pool.Size())
	}
	all, err := etcdleases.New(store.New(cli, "/strata/undercloud/")).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if cs := acked[l.IP]; len(cs) != 1 || l.MAC.String() != leasestest.MAC(cs[0]).String() || l.State != dhcp.Bound {
			t.Errorf("etcd has %v for %v, but it was ACKed to clients %v", l.MAC, l.IP, cs)
		}
	}
}

// anyHost knows every MAC as a PXE port.
type anyHost struct{}

func (anyHost) Host(context.Context, net.HardwareAddr) (dhcp.Host, error) {
	return dhcp.Host{PXE: true}, nil
}
