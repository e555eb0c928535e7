package netlab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// MaxNameLen is the longest interface name Linux takes (IFNAMSIZ - 1).
const MaxNameLen = 15

// handle returns a netlink handle bound to the named namespace.
func handle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlab: netlink: %w", err)
		}
		return h, nil
	}
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("netlab: namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("netlab: netlink in %s: %w", ns, err)
	}
	return h, nil
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("netlab: interface name %q: want 1 to %d characters", name, MaxNameLen)
	}
	return nil
}

// AddBridge creates a bridge in the namespace and brings it up.
func AddBridge(ns, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("netlab: add bridge %s: %w", name, err)
	}
	return setUp(h, name)
}

// AddVeth creates a veth pair: name in namespace ns, attached to the
// bridge master there (if master is not empty), and its peer peerName in
// namespace peerNS. Both ends are brought up.
func AddVeth(ns, name, master, peerNS, peerName string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkName(peerName); err != nil {
		return err
	}
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	var peerFd netns.NsHandle = -1
	if peerNS != ns {
		if peerNS == "" {
			peerFd, err = netns.Get()
		} else {
			peerFd, err = netns.GetFromName(peerNS)
		}
		if err != nil {
			return fmt.Errorf("netlab: namespace %s: %w", peerNS, err)
		}
		defer peerFd.Close()
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peerName}
	if peerFd >= 0 {
		veth.PeerNamespace = netlink.NsFd(peerFd)
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("netlab: add veth %s/%s: %w", name, peerName, err)
	}
	if master != "" {
		if err := setMaster(h, name, master); err != nil {
			return err
		}
	}
	if err := setUp(h, name); err != nil {
		return err
	}
	return SetUp(peerNS, peerName)
}

// AddTap creates a persistent tap device in the namespace (a qemu process
// started in that namespace attaches to it by name), attaches it to the
// bridge master and brings it up.
func AddTap(ns, name, master string) error {
	if err := checkName(name); err != nil {
		return err
	}
	// The tap is created through /dev/net/tun, in the namespace of the
	// thread that opens it: not through the netlink handle's socket.
	err := Do(ns, func() error {
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name},
			Mode:      netlink.TUNTAP_MODE_TAP,
			// Not multi-queue, so that qemu's own TUNSETIFF matches.
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE | netlink.TUNTAP_TUN_EXCL,
		}
		return netlink.LinkAdd(tap)
	})
	if err != nil {
		return fmt.Errorf("netlab: add tap %s: %w", name, err)
	}
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if master != "" {
		if err := setMaster(h, name, master); err != nil {
			return err
		}
	}
	return setUp(h, name)
}

// AddAddress adds an address with its prefix (192.168.24.1/24) to an
// interface.
func AddAddress(ns, name string, p netip.Prefix) error {
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %s: %w", name, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := h.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("netlab: add %s to %s: %w", p, name, err)
	}
	return nil
}

// SetUp brings an interface up.
func SetUp(ns, name string) error {
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return setUp(h, name)
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netlab: set %s up: %w", name, err)
	}
	return nil
}

func setMaster(h *netlink.Handle, name, master string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %s: %w", name, err)
	}
	m, err := h.LinkByName(master)
	if err != nil {
		return fmt.Errorf("netlab: bridge %s: %w", master, err)
	}
	if err := h.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("netlab: attach %s to %s: %w", name, master, err)
	}
	return nil
}

// DeleteLink removes an interface (both ends of a veth go together). An
// interface or namespace that does not exist is no error.
func DeleteLink(ns, name string) error {
	if ns != "" && !NamespaceExists(ns) {
		return nil
	}
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("netlab: %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil {
		return fmt.Errorf("netlab: delete %s: %w", name, err)
	}
	return nil
}

// Link is an interface as Links reports it.
type Link struct {
	Name   string
	Type   string // bridge, veth, tuntap, device, ...
	Master string
	Up     bool
	MAC    net.HardwareAddr
	Addrs  []netip.Prefix
}

// Links lists the interfaces of a namespace.
func Links(ns string) ([]Link, error) {
	h, err := handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netlab: list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range ls {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		link := Link{
			Name:   a.Name,
			Type:   l.Type(),
			Master: names[a.MasterIndex],
			Up:     a.Flags&net.FlagUp != 0,
			MAC:    a.HardwareAddr,
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("netlab: addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			link.Addrs = append(link.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, link)
	}
	return out, nil
}
