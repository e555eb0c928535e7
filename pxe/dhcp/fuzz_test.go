package dhcp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzHandle feeds arbitrary bytes to the packet handling: parsing, then
// the managed handler (with discovery on, so any MAC is served) as each
// message type in turn, and the proxy handler on both its ports. The seed
// corpus in testdata/fuzz/FuzzHandle holds packets captured from busybox
// udhcpc, ISC dhclient and insomniacslk's nclient4 in TestPeers
// (regenerate with go test -run TestPeers -update-corpus).
func FuzzHandle(f *testing.F) {
	for _, m := range []*dhcpv4.DHCPv4{
		msg(macA, dhcpv4.MessageTypeDiscover, withArch(iana.EFI_X86_64), vendorClass("PXEClient:Arch:00007:UNDI:003016")),
		msg(macA, dhcpv4.MessageTypeDiscover, withArch(iana.INTEL_X86PC), ipxe()),
		msg(macRes, dhcpv4.MessageTypeRequest, requested(ip4("10.0.0.50")), serverID(serverIP)),
		msg(macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip4("10.0.0.120"))),
		msg(macA, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(ip4("10.1.0.2"))),
		msg(macB, dhcpv4.MessageTypeDecline, requested(ip4("10.0.0.130")), serverID(serverIP)),
		msg(macB, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(ip4("10.0.0.77"))),
	} {
		f.Add(m.ToBytes())
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		peeked := peekType(b)
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		if peeked != 0 && len(req.Options.Get(dhcpv4.OptionDHCPMessageType)) == 1 && peeked != req.MessageType() {
			t.Fatalf("peekType = %v, parsed %v", peeked, req.MessageType())
		}
		ctx := context.Background()
		c := &clock{t: t0}
		leases := NewMemoryLeases()
		cfg := testConfig(c, leases)
		cfg.Discovery = true
		h, err := NewHandler(cfg)
		if err != nil {
			t.Fatal(err)
		}
		client := netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort)
		for _, mt := range []dhcpv4.MessageType{req.MessageType(), dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest,
			dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeDiscover,
			dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeRequest} {
			m, _ := dhcpv4.FromBytes(b)
			m.UpdateOption(dhcpv4.OptMessageType(mt))
			r, err := h.Handle(ctx, Packet{Msg: m, Port: ServerPort, Peer: client})
			if err != nil {
				t.Fatalf("managed %v: %v", mt, err)
			}
			checkReply(t, cfg, m, r, false)
			if err := leases.check(); err != nil {
				t.Fatalf("after %v: %v", mt, err)
			}
			c.Advance(time.Minute)
		}

		pcfg := testConfig(c, nil)
		pcfg.Mode, pcfg.Discovery = Proxy, true
		ph, err := NewHandler(pcfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []Packet{
			{Msg: req, Port: ServerPort, Peer: client},
			{Msg: req, Port: PXEPort, Peer: netip.MustParseAddrPort("10.0.0.60:68")},
		} {
			r, err := ph.Handle(ctx, p)
			if err != nil {
				t.Fatalf("proxy: %v", err)
			}
			checkReply(t, pcfg, req, r, true)
		}
	})
}

// checkReply asserts what holds of every answer.
func checkReply(t *testing.T, cfg Config, req *dhcpv4.DHCPv4, r Reply, proxy bool) {
	t.Helper()
	if r.Msg == nil {
		if r.Ignored == Answered {
			t.Fatal("no reply and no reason")
		}
		return
	}
	m, err := dhcpv4.FromBytes(r.Msg.ToBytes())
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != req.TransactionID || m.ClientHWAddr.String() != req.ClientHWAddr.String() {
		t.Fatalf("reply does not answer the request: %s", m.Summary())
	}
	if sid, _ := addr4(m.ServerIdentifier()); sid != cfg.ServerIP {
		t.Fatalf("server identifier %v", sid)
	}
	if !r.To.IsValid() || r.To.Port() == 0 {
		t.Fatalf("reply to %v", r.To)
	}
	yi, _ := addr4(m.YourIPAddr)
	switch mt := m.MessageType(); {
	case proxy:
		if !yi.IsUnspecified() || (mt != dhcpv4.MessageTypeOffer && mt != dhcpv4.MessageTypeAck) {
			t.Fatalf("proxy reply %v with yiaddr %v", mt, yi)
		}
	case mt == dhcpv4.MessageTypeNak:
		if !yi.IsUnspecified() {
			t.Fatalf("NAK with yiaddr %v", yi)
		}
	case mt == dhcpv4.MessageTypeOffer || mt == dhcpv4.MessageTypeAck:
		if yi.IsUnspecified() {
			if req.MessageType() != dhcpv4.MessageTypeInform {
				t.Fatalf("%v without an address to %v", mt, req.MessageType())
			}
			return
		}
		inPool := cfg.Pool.Contains(yi) || yi == netip.MustParseAddr("10.0.0.50")
		for _, n := range cfg.Relayed {
			inPool = inPool || n.Pool.Contains(yi)
		}
		if !inPool {
			t.Fatalf("%v of %v, outside the pools and reservations", mt, yi)
		}
	default:
		t.Fatalf("reply of type %v", mt)
	}
}

func TestPeekType(t *testing.T) {
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease} {
		m := msg(macA, mt, withArch(iana.EFI_X86_64), vendorClass("PXEClient:Arch:00007:UNDI:003016"))
		if got := peekType(m.ToBytes()); got != mt {
			t.Errorf("peekType of a %v = %v", mt, got)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 240), append(make([]byte, 240), 1), append(make([]byte, 240), 53, 1), append(make([]byte, 240), 12, 200, 1)} {
		if got := peekType(b); got != 0 {
			t.Errorf("peekType(%x) = %v, want 0", b, got)
		}
	}
}
