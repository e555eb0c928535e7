package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// fakeDirectory knows the MACs in its map.
type fakeDirectory map[string]Host

func (d fakeDirectory) Host(_ context.Context, mac net.HardwareAddr) (Host, error) {
	h, ok := d[mac.String()]
	if !ok {
		return Host{}, ErrUnknownHost
	}
	return h, nil
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var (
	macA     = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0xa}
	macB     = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0xb}
	macRes   = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0x1e}
	macFar   = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0xfa}
	macNoPXE = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0x0f}
	macUEFI  = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0xef}
	macStray = net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0x99}

	serverIP = netip.MustParseAddr("10.0.0.1")
	bcast68  = netip.MustParseAddrPort("255.255.255.255:68")
)

func testDirectory() fakeDirectory {
	return fakeDirectory{
		macA.String():     {NodeUUID: "node-a", PXE: true},
		macB.String():     {NodeUUID: "node-b", PXE: true},
		macRes.String():   {NodeUUID: "node-r", PXE: true, Address: netip.MustParseAddr("10.0.0.50")},
		macFar.String():   {NodeUUID: "node-f", PXE: true, Address: netip.MustParseAddr("172.16.0.9")},
		macNoPXE.String(): {NodeUUID: "node-n", PXE: false},
		macUEFI.String():  {NodeUUID: "node-u", PXE: true, BootMode: "uefi"},
	}
}

// testConfig is a managed server on 10.0.0.0/24 with a relayed 10.1.0.0/24.
func testConfig(c *clock, leases Leases) Config {
	return Config{
		Interface: "test0",
		ServerIP:  serverIP,
		Subnet:    netip.MustParsePrefix("10.0.0.0/24"),
		Pool:      testPool,
		Router:    netip.MustParseAddr("10.0.0.254"),
		Relayed: []Network{{
			Subnet: netip.MustParsePrefix("10.1.0.0/24"),
			Pool:   relayPool,
			Router: netip.MustParseAddr("10.1.0.1"),
		}},
		DNS:           []netip.Addr{serverIP},
		Directory:     testDirectory(),
		Leases:        leases,
		HTTPBootURL:   func(mac net.HardwareAddr) string { return "http://10.0.0.1:8080/boot/" + mac.String() + "/ipxe.efi" },
		IPXEScriptURL: func(mac net.HardwareAddr) string { return "http://10.0.0.1:8080/ipxe/" + mac.String() + ".ipxe" },
		Now:           c.Now,
	}
}

type fixture struct {
	t      *testing.T
	h      *Handler
	leases *MemoryLeases
	clock  *clock
}

func newFixture(t *testing.T, mut func(*Config)) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	leases := NewMemoryLeases()
	cfg := testConfig(c, leases)
	if mut != nil {
		mut(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := leases.check(); err != nil {
			t.Errorf("lease store invariant: %v", err)
		}
	})
	return &fixture{t: t, h: h, leases: leases, clock: c}
}

// handle sends m to port 67 from the client port.
func (f *fixture) handle(m *dhcpv4.DHCPv4) Reply {
	f.t.Helper()
	return f.handleOn(m, ServerPort, netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort))
}

func (f *fixture) handleOn(m *dhcpv4.DHCPv4, port uint16, peer netip.AddrPort) Reply {
	f.t.Helper()
	// Round-trip through the wire format, as the server does.
	m, err := dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.h.Handle(context.Background(), Packet{Msg: m, Port: port, Peer: peer})
	if err != nil {
		f.t.Fatalf("Handle: %v", err)
	}
	if r.Msg != nil {
		if _, err := dhcpv4.FromBytes(r.Msg.ToBytes()); err != nil {
			f.t.Fatalf("reply does not parse: %v", err)
		}
	}
	return r
}

// dora runs DISCOVER and REQUEST for mac and returns the ACKed address.
func (f *fixture) dora(mac net.HardwareAddr, mods ...dhcpv4.Modifier) netip.Addr {
	f.t.Helper()
	offer := f.handle(msg(mac, dhcpv4.MessageTypeDiscover, mods...))
	if offer.Msg == nil {
		f.t.Fatalf("no offer for %v: %s", mac, offer.Ignored)
	}
	req := msg(mac, dhcpv4.MessageTypeRequest, append(mods, requested(offer.Msg.YourIPAddr), serverID(serverIP))...)
	ack := f.handle(req)
	if ack.Msg == nil || ack.Msg.MessageType() != dhcpv4.MessageTypeAck {
		f.t.Fatalf("no ACK for %v: %s", mac, summarize(ack))
	}
	a, _ := addr4(ack.Msg.YourIPAddr)
	return a
}

func msg(mac net.HardwareAddr, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4})}, mods...)...)
	if err != nil {
		panic(err)
	}
	return m
}

func requested(ip net.IP) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip))
}

func serverID(a netip.Addr) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(a.AsSlice()))
}

func withArch(a iana.Arch) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptClientArch(a))
}

func vendorClass(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(s)) }

func ipxe() dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE")) }

func ip4(s string) net.IP { return net.ParseIP(s).To4() }

// summary is what the tests compare of a reply.
type summary struct {
	Type     string
	YourIP   string
	To       string
	Server   string
	SIAddr   string
	File     string
	Option67 string
	Class    string
	// IPXEEncap is option 175, iPXE's own options, in hex.
	IPXEEncap string
	Router    string
	Lease     time.Duration
	Message   string
	Ignored   Reason
}

func summarize(r Reply) summary {
	if r.Msg == nil {
		return summary{Ignored: r.Ignored}
	}
	m := r.Msg
	s := summary{
		Type: m.MessageType().String(), To: r.To.String(), File: m.BootFileName,
		Option67: m.BootFileNameOption(), Class: m.ClassIdentifier(), Message: m.Message(),
		Lease: m.IPAddressLeaseTime(0), IPXEEncap: fmt.Sprintf("%x", m.Options.Get(dhcpv4.GenericOptionCode(175))),
	}
	str := func(ip net.IP) string {
		if a, ok := addr4(ip); ok && !a.IsUnspecified() {
			return a.String()
		}
		return ""
	}
	s.YourIP, s.Server, s.SIAddr = str(m.YourIPAddr), str(m.ServerIdentifier()), str(m.ServerIPAddr)
	if rs := m.Router(); len(rs) > 0 {
		s.Router = str(rs[0])
	}
	return s
}

// offerTo is the OFFER the fixture's network gives yiaddr, without boot options.
func offerTo(yiaddr string) summary {
	return summary{Type: "OFFER", YourIP: yiaddr, To: bcast68.String(), Server: "10.0.0.1", Router: "10.0.0.254", Lease: time.Hour}
}

var (
	testPool  = Range{Start: netip.MustParseAddr("10.0.0.100"), End: netip.MustParseAddr("10.0.0.199")}
	relayPool = Range{Start: netip.MustParseAddr("10.1.0.100"), End: netip.MustParseAddr("10.1.0.150")}
)

// poolAt is where a client lands in an empty pool: the MAC's hash spreads
// clients (and servers racing for them) over the pool.
func poolAt(mac net.HardwareAddr) string { return testPool.At(macHash(mac)).String() }

func with(s summary, f func(*summary)) summary { f(&s); return s }

func TestDiscover(t *testing.T) {
	macP := net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0x77}
	poolA := poolAt(macA)
	tftp := func(file string) func(*summary) {
		return func(s *summary) { s.File, s.Option67, s.SIAddr = file, file, "10.0.0.1" }
	}
	tests := []struct {
		name      string
		mac       net.HardwareAddr
		mods      []dhcpv4.Modifier
		discovery bool
		want      summary
	}{
		{name: "pool", mac: macA, want: offerTo(poolA)},
		{name: "requested address honoured", mac: macA, mods: []dhcpv4.Modifier{requested(ip4("10.0.0.123"))}, want: offerTo("10.0.0.123")},
		{name: "requested address outside the pool ignored", mac: macA, mods: []dhcpv4.Modifier{requested(ip4("10.0.0.20"))}, want: offerTo(poolA)},
		{name: "reservation", mac: macRes, want: offerTo("10.0.0.50")},
		{name: "reservation on another subnet falls back to the pool", mac: macFar, want: offerTo(poolAt(macFar))},
		{name: "BIOS arch 0", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC), vendorClass("PXEClient:Arch:00000:UNDI:002001")},
			want: with(offerTo(poolA), tftp("undionly.kpxe"))},
		{name: "UEFI x64 arch 7", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.EFI_X86_64), vendorClass("PXEClient:Arch:00007:UNDI:003016")},
			want: with(offerTo(poolA), tftp("snponly.efi"))},
		{name: "EFI BC arch 9", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.EFI_BC)},
			want: with(offerTo(poolA), tftp("snponly.efi"))},
		{name: "HTTP boot arch 16", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.EFI_X86_64_HTTP), vendorClass("HTTPClient:Arch:00016:UNDI:003001")},
			want: with(offerTo(poolA), func(s *summary) {
				u := "http://10.0.0.1:8080/boot/52:54:00:00:00:0a/ipxe.efi"
				s.File, s.Option67, s.Class = u, u, "HTTPClient"
			})},
		{name: "arch from the vendor class", mac: macA, mods: []dhcpv4.Modifier{vendorClass("PXEClient:Arch:00007:UNDI:003016")},
			want: with(offerTo(poolA), tftp("snponly.efi"))},
		{name: "arch from the node's boot mode", mac: macUEFI, mods: []dhcpv4.Modifier{vendorClass("PXEClient")},
			want: with(offerTo(poolAt(macUEFI)), tftp("snponly.efi"))},
		{name: "unknown arch gets an address only", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.PPC_OPAL)}, want: offerTo(poolA)},
		{name: "iPXE gets its script, not itself", mac: macA, mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC), vendorClass("PXEClient:Arch:00000:UNDI:002001"), ipxe()},
			want: with(offerTo(poolA), func(s *summary) {
				u := "http://10.0.0.1:8080/ipxe/52:54:00:00:00:0a.ipxe"
				s.File, s.Option67 = u, u
				s.IPXEEncap = "b00101" // no-pxedhcp: this offer is all there is
			})},
		{name: "unknown MAC ignored", mac: macP, mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC)}, want: summary{Ignored: UnknownMAC}},
		{name: "unknown MAC answered with discovery on", mac: macP, mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC)}, discovery: true,
			want: with(offerTo(poolAt(macP)), tftp("undionly.kpxe"))},
		{name: "PXE-disabled port ignored", mac: macNoPXE, want: summary{Ignored: PXEDisabled}},
		{name: "relayed", mac: macA, mods: []dhcpv4.Modifier{dhcpv4.WithGatewayIP(ip4("10.1.0.2"))},
			want: with(offerTo(relayPool.At(macHash(macA)).String()), func(s *summary) { s.To, s.Router = "10.1.0.2:67", "10.1.0.1" })},
		{name: "relay on an unknown subnet ignored", mac: macA, mods: []dhcpv4.Modifier{dhcpv4.WithGatewayIP(ip4("192.168.7.1"))}, want: summary{Ignored: NoNetwork}},
		{name: "not ethernet", mac: macA, mods: []dhcpv4.Modifier{dhcpv4.WithHWType(iana.HWTypeIEEE802)}, want: summary{Ignored: NotEthernet}},
		{name: "a reply is not a request", mac: macA, mods: []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply }}, want: summary{Ignored: NotRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Discovery = tt.discovery })
			got := summarize(f.handle(msg(tt.mac, dhcpv4.MessageTypeDiscover, tt.mods...)))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDiscoverKeepsAddresses(t *testing.T) {
	f := newFixture(t, nil)
	a := f.dora(macA)
	if got := f.handle(msg(macA, dhcpv4.MessageTypeDiscover)); got.Msg.YourIPAddr.String() != a.String() {
		t.Errorf("second DISCOVER offered %v, want the leased %v", got.Msg.YourIPAddr, a)
	}
	// An offer is held for its client: another client's DISCOVER asking for
	// it is offered something else.
	ob := f.handle(msg(macB, dhcpv4.MessageTypeDiscover, requested(a.AsSlice())))
	if ob.Msg.YourIPAddr.String() == a.String() {
		t.Errorf("%v offered to two clients", a)
	}
	// After a restart (a new handler on the same store), the lease is kept.
	h2, err := NewHandler(f.h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h2
	if got := f.handle(msg(macA, dhcpv4.MessageTypeDiscover)); got.Msg.YourIPAddr.String() != a.String() {
		t.Errorf("after a restart, DISCOVER offered %v, want the leased %v", got.Msg.YourIPAddr, a)
	}
}

func TestPoolExhausted(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Pool = Range{Start: netip.MustParseAddr("10.0.0.100"), End: netip.MustParseAddr("10.0.0.101")}
	})
	f.dora(macA)
	f.handle(msg(macB, dhcpv4.MessageTypeDiscover)) // holds the last address as an offer
	got := f.handle(msg(macUEFI, dhcpv4.MessageTypeDiscover))
	if got.Ignored != PoolExhausted {
		t.Errorf("third client: %+v, want ignored for %s", summarize(got), PoolExhausted)
	}
	f.clock.Advance(DefaultOfferTime + time.Second)
	if got := f.handle(msg(macUEFI, dhcpv4.MessageTypeDiscover)); got.Msg == nil {
		t.Errorf("after the offer expired: %s, want an offer", got.Ignored)
	}
}

func TestRequest(t *testing.T) {
	nak := func(msg string) summary {
		return summary{Type: "NAK", To: bcast68.String(), Server: "10.0.0.1", Message: msg}
	}
	ack := func(ip, to string) summary {
		return summary{Type: "ACK", YourIP: ip, To: to, Server: "10.0.0.1", Router: "10.0.0.254", Lease: time.Hour}
	}
	tests := []struct {
		name  string
		setup func(f *fixture) *dhcpv4.DHCPv4
		want  summary
		// lease, when set, is the address macA must hold afterwards.
		lease string
	}{
		{name: "selecting", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			f.handle(msg(macA, dhcpv4.MessageTypeDiscover, requested(ip4("10.0.0.150"))))
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.150")), serverID(serverIP))
		}, want: ack("10.0.0.150", bcast68.String()), lease: "10.0.0.150"},
		{name: "selecting another server", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.150")), serverID(netip.MustParseAddr("10.0.0.9")))
		}, want: summary{Ignored: OtherServer}},
		{name: "selecting without an address", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, serverID(serverIP))
		}, want: nak("no requested address")},
		{name: "init-reboot", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.160")))
		}, want: ack("10.0.0.160", bcast68.String()), lease: "10.0.0.160"},
		{name: "init-reboot on the wrong subnet", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("192.168.1.5")))
		}, want: nak("192.168.1.5 is not on subnet 10.0.0.0/24")},
		{name: "init-reboot outside the pool", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.20")))
		}, want: nak("10.0.0.20 is not in the pool")},
		{name: "address taken by another client", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			f.handle(msg(macB, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.170"))))
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.170")))
		}, want: nak("10.0.0.170 is in use")},
		{name: "address offered to another client", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			f.handle(msg(macB, dhcpv4.MessageTypeDiscover, requested(ip4("10.0.0.171"))))
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.171")))
		}, want: nak("10.0.0.171 is offered to another client")},
		{name: "reserved client asking for another address", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macRes, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.120")))
		}, want: nak("52:54:00:00:00:1e is reserved 10.0.0.50")},
		{name: "reserved client", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macRes, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.50")), serverID(serverIP))
		}, want: ack("10.0.0.50", bcast68.String())},
		{name: "renewing", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			f.handle(msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.180"))))
			f.clock.Advance(30 * time.Minute)
			return msg(macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip4("10.0.0.180")), dhcpv4.WithBroadcast(false))
		}, want: ack("10.0.0.180", "10.0.0.180:68"), lease: "10.0.0.180"},
		{name: "rebinding after expiry", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			f.handle(msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.181"))))
			f.clock.Advance(2 * time.Hour)
			return msg(macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip4("10.0.0.181")), dhcpv4.WithBroadcast(true))
		}, want: ack("10.0.0.181", "10.0.0.181:68"), lease: "10.0.0.181"},
		{name: "renewing an address on the wrong subnet", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip4("172.16.0.4")))
		}, want: nak("172.16.0.4 is not on subnet 10.0.0.0/24")},
		{name: "relayed request on the wrong subnet", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.120")), dhcpv4.WithGatewayIP(ip4("10.1.0.2")))
		}, want: summary{Type: "NAK", To: "10.1.0.2:67", Server: "10.0.0.1", Message: "10.0.0.120 is not on subnet 10.1.0.0/24"}},
		{name: "relayed", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.1.0.120")), dhcpv4.WithGatewayIP(ip4("10.1.0.2")))
		}, want: summary{Type: "ACK", YourIP: "10.1.0.120", To: "10.1.0.2:67", Server: "10.0.0.1", Router: "10.1.0.1", Lease: time.Hour}, lease: "10.1.0.120"},
		{name: "unknown MAC", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macStray, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.120")))
		}, want: summary{Ignored: UnknownMAC}},
		{name: "neither address nor ciaddr", setup: func(f *fixture) *dhcpv4.DHCPv4 {
			return msg(macA, dhcpv4.MessageTypeRequest)
		}, want: summary{Ignored: Malformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			got := summarize(f.handle(tt.setup(f)))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if tt.lease != "" {
				l, err := f.leases.Lookup(context.Background(), macA)
				if err != nil || l.IP.String() != tt.lease || l.State != Bound || !l.Expiry.Equal(f.clock.Now().Add(time.Hour)) {
					t.Errorf("lease of macA = %+v, %v; want %s bound for an hour", l, err, tt.lease)
				}
			}
		})
	}
}

func TestRelayedNAKIsBroadcastByTheRelay(t *testing.T) {
	f := newFixture(t, nil)
	r := f.handle(msg(macA, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.120")), dhcpv4.WithGatewayIP(ip4("10.1.0.2")), dhcpv4.WithBroadcast(false)))
	if !r.Msg.IsBroadcast() {
		t.Error("a NAK through a relay must have the broadcast flag")
	}
	if r.Msg.GatewayIPAddr.String() != "10.1.0.2" {
		t.Errorf("giaddr = %v, want the relay's", r.Msg.GatewayIPAddr)
	}
}

func TestDecline(t *testing.T) {
	f := newFixture(t, nil)
	a := f.dora(macA)
	r := f.handle(msg(macA, dhcpv4.MessageTypeDecline, requested(a.AsSlice()), serverID(serverIP)))
	if r.Ignored != NoReply {
		t.Fatalf("DECLINE answered: %+v", summarize(r))
	}
	if _, err := f.leases.Lookup(context.Background(), macA); !errors.Is(err, ErrNoLease) {
		t.Errorf("after DECLINE the client still has a lease: %v", err)
	}
	if b := f.dora(macA); b == a {
		t.Errorf("after DECLINE the client got %v again", a)
	}
	got := summarize(f.handle(msg(macB, dhcpv4.MessageTypeRequest, requested(a.AsSlice()))))
	if got.Type != "NAK" {
		t.Errorf("another client requesting the quarantined %v: %+v, want NAK", a, got)
	}
	f.clock.Advance(DefaultQuarantineTime + time.Second)
	if got := summarize(f.handle(msg(macB, dhcpv4.MessageTypeRequest, requested(a.AsSlice())))); got.Type != "ACK" {
		t.Errorf("after the quarantine, requesting %v: %+v, want ACK", a, got)
	}
	// A DECLINE of an address someone else holds is ignored.
	f.handle(msg(macA, dhcpv4.MessageTypeDecline, requested(a.AsSlice()), serverID(serverIP)))
	if l, err := f.leases.Lookup(context.Background(), macB); err != nil || l.IP != a || l.State != Bound {
		t.Errorf("macB's lease after macA declined it: %+v, %v", l, err)
	}
}

func TestRelease(t *testing.T) {
	f := newFixture(t, nil)
	a := f.dora(macA)
	// A RELEASE for another server, or from another MAC, changes nothing.
	f.handle(msg(macA, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(a.AsSlice()), serverID(netip.MustParseAddr("10.0.0.9"))))
	f.handle(msg(macB, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(a.AsSlice()), serverID(serverIP)))
	if l, _ := f.leases.Lookup(context.Background(), macA); l.State != Bound {
		t.Fatalf("lease after foreign RELEASEs: %+v", l)
	}
	r := f.handle(msg(macA, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(a.AsSlice()), serverID(serverIP)))
	if r.Ignored != NoReply {
		t.Fatalf("RELEASE answered: %+v", summarize(r))
	}
	if l, _ := f.leases.Lookup(context.Background(), macA); l.State != Released {
		t.Errorf("lease after RELEASE: %+v, want released", l)
	}
	if got := summarize(f.handle(msg(macB, dhcpv4.MessageTypeRequest, requested(a.AsSlice())))); got.Type != "ACK" {
		t.Errorf("another client requesting the released %v: %+v, want ACK", a, got)
	}
}

func TestInform(t *testing.T) {
	f := newFixture(t, nil)
	got := summarize(f.handle(msg(macA, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(ip4("10.0.0.77")), withArch(iana.EFI_X86_64))))
	want := summary{Type: "ACK", To: "10.0.0.77:68", Server: "10.0.0.1", Router: "10.0.0.254",
		File: "snponly.efi", Option67: "snponly.efi", SIAddr: "10.0.0.1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if r := f.handle(msg(macA, dhcpv4.MessageTypeInform)); r.Ignored != Malformed {
		t.Errorf("INFORM without ciaddr: %+v", summarize(r))
	}
}

func TestProxy(t *testing.T) {
	peer := netip.MustParseAddrPort("10.0.0.60:68")
	any68 := netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort)
	proxyOffer := func(file, class string) summary {
		// Always a next server: iPXE ignores a proxy answer without
		// one, even one whose file is a URL.
		return summary{Type: "OFFER", To: bcast68.String(), Server: "10.0.0.1", SIAddr: "10.0.0.1", File: file, Option67: file, Class: class}
	}
	pxe7 := []dhcpv4.Modifier{withArch(iana.EFI_X86_64), vendorClass("PXEClient:Arch:00007:UNDI:003016")}
	tests := []struct {
		name string
		mac  net.HardwareAddr
		mt   dhcpv4.MessageType
		port uint16
		peer netip.AddrPort
		mods []dhcpv4.Modifier
		want summary
	}{
		{name: "PXE DISCOVER", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68, mods: pxe7,
			want: proxyOffer("snponly.efi", "PXEClient")},
		{name: "BIOS", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68,
			mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC), vendorClass("PXEClient:Arch:00000:UNDI:002001")},
			want: proxyOffer("undionly.kpxe", "PXEClient")},
		{name: "HTTP boot", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68,
			mods: []dhcpv4.Modifier{withArch(iana.EFI_X86_64_HTTP), vendorClass("HTTPClient:Arch:00016")},
			want: proxyOffer("http://10.0.0.1:8080/boot/52:54:00:00:00:0a/ipxe.efi", "HTTPClient")},
		{name: "iPXE", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68,
			mods: append(pxe7, ipxe()), want: proxyOffer("http://10.0.0.1:8080/ipxe/52:54:00:00:00:0a.ipxe", "PXEClient")},
		{name: "boot server REQUEST on 4011", mac: macA, mt: dhcpv4.MessageTypeRequest, port: PXEPort, peer: peer,
			mods: append(pxe7, dhcpv4.WithClientIP(ip4("10.0.0.60"))),
			want: with(proxyOffer("snponly.efi", "PXEClient"), func(s *summary) { s.Type, s.To = "ACK", peer.String() })},
		{name: "not a PXE client", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68, want: summary{Ignored: NotPXE}},
		{name: "REQUEST on 67 is the real server's", mac: macA, mt: dhcpv4.MessageTypeRequest, port: ServerPort, peer: any68, mods: pxe7, want: summary{Ignored: UnexpectedType}},
		{name: "unknown MAC", mac: macStray, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68, mods: pxe7, want: summary{Ignored: UnknownMAC}},
		{name: "unknown arch", mac: macA, mt: dhcpv4.MessageTypeDiscover, port: ServerPort, peer: any68, mods: []dhcpv4.Modifier{withArch(iana.PPC_OPAL)}, want: summary{Ignored: NoBootFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				c.Mode = Proxy
				c.Subnet, c.Pool, c.Router, c.Relayed, c.Leases = netip.Prefix{}, Range{}, netip.Addr{}, nil, nil
			})
			r := f.handleOn(msg(tt.mac, tt.mt, tt.mods...), tt.port, tt.peer)
			if d := cmp.Diff(tt.want, summarize(r)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if r.Msg != nil {
				if !r.Msg.YourIPAddr.IsUnspecified() {
					t.Errorf("proxy answer carries yiaddr %v", r.Msg.YourIPAddr)
				}
				if r.Msg.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || r.Msg.Options.Has(dhcpv4.OptionSubnetMask) {
					t.Error("proxy answer carries address options")
				}
				if got := r.Msg.Options.Get(dhcpv4.OptionVendorSpecificInformation); string(got) != string(pxeVendorOptions) {
					t.Errorf("option 43 = %x, want %x", got, pxeVendorOptions)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(*Config)
		field string
	}{
		{"no interface", func(c *Config) { c.Interface = "" }, "Interface"},
		{"no server address", func(c *Config) { c.ServerIP = netip.Addr{} }, "ServerIP"},
		{"server outside the subnet", func(c *Config) { c.ServerIP = netip.MustParseAddr("10.5.0.1") }, "ServerIP"},
		{"pool outside the subnet", func(c *Config) { c.Pool.End = netip.MustParseAddr("10.0.1.5") }, "Pool"},
		{"pool holding the server", func(c *Config) { c.Pool.Start = netip.MustParseAddr("10.0.0.1") }, "Pool"},
		{"pool holding the broadcast address", func(c *Config) { c.Pool.End = netip.MustParseAddr("10.0.0.255") }, "Pool"},
		{"reversed pool", func(c *Config) { c.Pool.Start, c.Pool.End = c.Pool.End, c.Pool.Start }, "Pool"},
		{"subnet with host bits", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.0.0.1/24") }, "Subnet"},
		{"IPv6 subnet", func(c *Config) { c.Subnet = netip.MustParsePrefix("fd00::/64") }, "Subnet"},
		{"router in the pool", func(c *Config) { c.Router = netip.MustParseAddr("10.0.0.150") }, "Router"},
		{"bad relayed network", func(c *Config) { c.Relayed[0].Pool.End = netip.MustParseAddr("10.2.0.1") }, "Relayed[0].Pool"},
		{"no directory", func(c *Config) { c.Directory = nil }, "Directory"},
		{"no leases in managed mode", func(c *Config) { c.Leases = nil }, "Leases"},
		{"short lease", func(c *Config) { c.LeaseTime = time.Second }, "LeaseTime"},
		{"bad mode", func(c *Config) { c.Mode = 7 }, "Mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(&clock{}, NewMemoryLeases())
			cfg.Relayed = append([]Network(nil), cfg.Relayed...)
			tt.mut(&cfg)
			_, err := New(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("New = %v, want a ConfigError for %s", err, tt.field)
			}
		})
	}
}
