package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// How long the agent waits for its boot NIC's driver to create it.
const linkWait = 60 * time.Second

// BootNIC is the configured NIC the machine booted from.
type BootNIC struct {
	Name   string
	MAC    net.HardwareAddr
	Addr   netip.Prefix
	Router netip.Addr // invalid when the lease named none
	Server netip.Addr // the DHCP server that gave the lease
}

// bringUp finds the NIC with the boot MAC, sets it up, and configures it
// with an address from DHCP, retrying until ctx ends.
func bringUp(ctx context.Context, mac net.HardwareAddr, log *slog.Logger) (BootNIC, error) {
	link, err := waitLink(ctx, mac)
	if err != nil {
		return BootNIC{}, err
	}
	name := link.Attrs().Name
	log.Debug("boot NIC found", "nic", name)
	if err := netlink.LinkSetUp(link); err != nil {
		return BootNIC{}, fmt.Errorf("%s: set up: %w", name, err)
	}
	var lease *nclient4.Lease
	for attempt := 1; ; attempt++ {
		lease, err = dhcp(ctx, name)
		if err == nil {
			break
		}
		log.Warn("DHCP failed, trying again", "nic", name, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return BootNIC{}, fmt.Errorf("%s: DHCP: %w", name, err)
		case <-time.After(time.Duration(min(attempt, 10)) * time.Second):
		}
	}
	ack := lease.ACK
	ip, _ := netip.AddrFromSlice(ack.YourIPAddr.To4())
	ones, _ := ack.SubnetMask().Size()
	if ack.SubnetMask() == nil {
		ones = 24
	}
	nic := BootNIC{Name: name, MAC: mac, Addr: netip.PrefixFrom(ip, ones)}
	nic.Server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if r := ack.Router(); len(r) > 0 {
		nic.Router, _ = netip.AddrFromSlice(r[0].To4())
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ones, 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return BootNIC{}, fmt.Errorf("%s: add %s: %w", name, nic.Addr, err)
	}
	if nic.Router.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: nic.Router.AsSlice()}
		if err := netlink.RouteReplace(route); err != nil {
			return BootNIC{}, fmt.Errorf("%s: default route via %s: %w", name, nic.Router, err)
		}
	}
	return nic, nil
}

// waitLink waits for the NIC with this MAC to appear.
func waitLink(ctx context.Context, mac net.HardwareAddr) (netlink.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, linkWait)
	defer cancel()
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("listing NICs: %w", err)
		}
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, mac) {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			var names []string
			for _, l := range links {
				names = append(names, fmt.Sprintf("%s (%s)", l.Attrs().Name, l.Attrs().HardwareAddr))
			}
			return nil, fmt.Errorf("no NIC with MAC %s after %s; there are %v", mac, linkWait, names)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dhcp runs one DORA exchange on the NIC.
func dhcp(ctx context.Context, ifname string) (*nclient4.Lease, error) {
	c, err := nclient4.New(ifname, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.Request(ctx, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("strata-agent")))
}
