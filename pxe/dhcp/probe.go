package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// ErrForeignServer: another DHCP server answers on the segment, so managed
// mode does not start. Match with errors.Is; errors.As gives the
// *ForeignServerError with its address.
var ErrForeignServer = errors.New("another DHCP server answers on the segment")

// ForeignServerError names the DHCP server that answered the probe.
type ForeignServerError struct {
	Interface string
	// Server is the server's identifier (option 54), or the packet's
	// siaddr when it sent none.
	Server netip.Addr
	// Offered is the address it offered the probe.
	Offered netip.Addr
}

func (e *ForeignServerError) Error() string {
	return fmt.Sprintf("dhcp: another DHCP server, %v, answers on %s (it offered %v): refusing to start in managed mode; "+
		"run in proxy mode to serve only boot options beside it, or stop it", e.Server, e.Interface, e.Offered)
}

func (e *ForeignServerError) Unwrap() error { return ErrForeignServer }

// prober is the client side of the probe, opened in the server's namespace.
type prober struct {
	c *nclient4.Client
}

// newProber opens a raw DHCP client socket on iface (port 68). timeout is
// the whole wait: a first try and a retry twice as long.
func newProber(iface string, timeout time.Duration) (*prober, error) {
	c, err := nclient4.New(iface, nclient4.WithTimeout(timeout/3), nclient4.WithRetry(2))
	if err != nil {
		return nil, fmt.Errorf("dhcp probe on %s: %w", iface, err)
	}
	return &prober{c: c}, nil
}

// run broadcasts a DISCOVER from the interface's MAC and waits for an
// OFFER from a server not in ignore. It returns a *ForeignServerError if
// one answers, nil if none does.
func (p *prober) run(ctx context.Context, iface string, ignore []netip.Addr) error {
	defer p.c.Close()
	discover, err := dhcpv4.NewDiscovery(p.c.InterfaceAddr(), dhcpv4.WithBroadcast(true))
	if err != nil {
		return fmt.Errorf("dhcp probe: %w", err)
	}
	foreign := func(m *dhcpv4.DHCPv4) bool {
		if m.MessageType() != dhcpv4.MessageTypeOffer {
			return false
		}
		return !slices.Contains(ignore, offerServer(m))
	}
	offer, err := p.c.SendAndRead(ctx, p.c.RemoteAddr(), discover, foreign)
	if errors.Is(err, nclient4.ErrNoResponse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dhcp probe on %s: %w", iface, err)
	}
	yi, _ := addr4(offer.YourIPAddr)
	return &ForeignServerError{Interface: iface, Server: offerServer(offer), Offered: yi}
}

func offerServer(m *dhcpv4.DHCPv4) netip.Addr {
	if a, ok := addr4(m.ServerIdentifier()); ok {
		return a
	}
	a, _ := addr4(m.ServerIPAddr)
	return a
}
