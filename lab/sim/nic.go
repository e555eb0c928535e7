package sim

import (
	"bytes"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs fn with a netlink handle on the machine's namespace.
func (m *Machine) inNetns(fn func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromName(m.cfg.Netns)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", m.cfg.Netns, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", m.cfg.Netns, err)
	}
	defer h.Close()
	return fn(h)
}

// setupNICs gives each NIC its MAC, and leaves it down, as a machine's
// NICs are while it is off.
func (m *Machine) setupNICs() error {
	return m.inNetns(func(h *netlink.Handle) error {
		for _, n := range m.cfg.NICs {
			l, err := h.LinkByName(n.Name)
			if err != nil {
				return fmt.Errorf("nic %s in %s: %w", n.Name, m.cfg.Netns, err)
			}
			if err := h.LinkSetDown(l); err != nil {
				return fmt.Errorf("nic %s: %w", n.Name, err)
			}
			if !bytes.Equal(l.Attrs().HardwareAddr, n.MAC) {
				if err := h.LinkSetHardwareAddr(l, n.MAC); err != nil {
					return fmt.Errorf("nic %s: set MAC %s: %w", n.Name, n.MAC, err)
				}
			}
		}
		return nil
	})
}

// nicUp brings a NIC up, as firmware does before it network-boots.
func (m *Machine) nicUp(name string) error {
	return m.inNetns(func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("nic %s: %w", name, err)
		}
		return h.LinkSetUp(l)
	})
}

// configure gives a NIC the address of a lease, and its default route,
// so that the firmware's fetches go out on it.
func (m *Machine) configure(name string, l lease) error {
	return m.inNetns(func(h *netlink.Handle) error {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("nic %s: %w", name, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.addr.Addr().AsSlice(), Mask: net.CIDRMask(l.addr.Bits(), 32)}}
		if err := h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("nic %s: add %s: %w", name, l.addr, err)
		}
		if l.router.IsValid() && !l.router.IsUnspecified() {
			r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.router.AsSlice()}
			if err := h.RouteReplace(r); err != nil {
				return fmt.Errorf("nic %s: default route via %s: %w", name, l.router, err)
			}
		}
		return nil
	})
}

// resetNICs takes every NIC down and removes its IPv4 addresses (their
// routes go with them): what the firmware configured is gone when the OS
// starts, and all of it when the machine is off.
func (m *Machine) resetNICs() {
	err := m.inNetns(func(h *netlink.Handle) error {
		for _, n := range m.cfg.NICs {
			l, err := h.LinkByName(n.Name)
			if err != nil {
				return err
			}
			addrs, err := h.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if err := h.AddrDel(l, &a); err != nil {
					return err
				}
			}
			if err := h.LinkSetDown(l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		m.log.Warn("sim: resetting the NICs", "sim", m.cfg.Name, "err", err)
	}
}
