// Package ra answers IPv6 router solicitations on the provisioning
// network with a router advertisement that offers nothing: no prefix, no
// default route, no DHCPv6. Network-boot firmware such as iPXE waits for
// its IPv6 configuration to finish or give up (about 13 s with Debian's
// iPXE) before it goes on to boot; on an isolated provisioning network,
// where no router speaks, this answer ends that wait at once.
package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Server answers router solicitations on one interface.
type Server struct {
	conn *ipv6.PacketConn
	raw  *icmp.PacketConn
	ifi  *net.Interface
	msg  []byte
	log  *slog.Logger
}

var allNodes = &net.IPAddr{IP: net.IPv6linklocalallnodes}

// New opens the ICMPv6 socket on the interface named ifname, in the
// calling thread's network namespace, and joins the all-routers group.
func New(ifname string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ra: %w", err)
	}
	raw, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("ra: %w", err)
	}
	c := raw.IPv6PacketConn()
	fail := func(err error) (*Server, error) {
		raw.Close()
		return nil, fmt.Errorf("ra on %s: %w", ifname, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := c.SetICMPFilter(&f); err != nil {
		return fail(err)
	}
	if err := c.JoinGroup(ifi, &net.IPAddr{IP: net.ParseIP("ff02::2")}); err != nil {
		return fail(err)
	}
	// Neighbour discovery messages must carry hop limit 255 (RFC 4861).
	if err := c.SetMulticastHopLimit(255); err != nil {
		return fail(err)
	}
	if err := c.SetHopLimit(255); err != nil {
		return fail(err)
	}
	if err := c.SetMulticastInterface(ifi); err != nil {
		return fail(err)
	}
	if err := c.SetControlMessage(ipv6.FlagInterface, true); err != nil {
		return fail(err)
	}
	return &Server{conn: c, raw: raw, ifi: ifi, msg: advertisement(ifi.HardwareAddr), log: log}, nil
}

// advertisement is the router advertisement: current hop limit 64, no
// flags, router lifetime 0 (not a default router), and the sender's
// link-layer address.
func advertisement(mac net.HardwareAddr) []byte {
	body := []byte{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if len(mac) == 6 {
		body = append(body, 1, 1) // source link-layer address, 8 bytes
		body = append(body, mac...)
	}
	m := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
	b, _ := m.Marshal(nil) // the kernel fills in the checksum
	return b
}

// Run answers solicitations until ctx ends, and advertises once at start
// for clients that solicited before it listened.
func (s *Server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.raw.Close()
	}()
	s.send()
	buf := make([]byte, 1500)
	for {
		n, cm, src, err := s.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ra: %w", err)
		}
		if cm != nil && cm.IfIndex != s.ifi.Index {
			continue
		}
		if n < 8 || ipv6.ICMPType(buf[0]) != ipv6.ICMPTypeRouterSolicitation {
			continue
		}
		s.log.Debug("router solicitation", "from", src)
		s.send()
	}
}

// Close stops the server.
func (s *Server) Close() error { return s.raw.Close() }

func (s *Server) send() {
	s.raw.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := s.conn.WriteTo(s.msg, &ipv6.ControlMessage{IfIndex: s.ifi.Index, HopLimit: 255}, allNodes); err != nil {
		s.log.Warn("router advertisement not sent", "interface", s.ifi.Name, "err", err)
	}
}
