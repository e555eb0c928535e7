package lab

import (
	"fmt"
	"net/netip"

	"github.com/stratacloud/strata/lab/netlab"
)

// The lab's wiring, all inside its own namespaces, so that nothing of it
// shows in (or leaks to) the host's network, and the host's firewall does
// not filter its bridges:
//
//	<prefix>-net   the fabric: a bridge per network (br-ctlplane, br-bmc,
//	               br-external, br-internal_api, br-storage,
//	               br-storage_mgmt, br-tenant), a tap per node NIC
//	               (tap<node>-<nic>), and the qemu processes that use them.
//	<prefix>-uc    the undercloud: ctlplane 192.168.24.1/24, bmc
//	               192.168.25.1/24, external 10.0.0.1/24, each a veth to its
//	               bridge (uc-<network> on the fabric side).
//	<prefix>-bmc   the virtual BMCs: one veth (bmc, bmcs on the fabric
//	               side) to br-bmc with 192.168.25.2 (the shared Redfish
//	               service) and 192.168.25.10+i (node i's BMC: IPMI on UDP
//	               623, Redfish on 443).
//	<prefix>-n<i>  sim node i: its NICs eth0, eth1, ..., each a veth to
//	               its network's bridge (sim<i>-<j> on the fabric side),
//	               and the processes the node runs.

// undercloudVeths are the networks the undercloud has an address on, with
// the name of the fabric side of its veth.
var undercloudVeths = []string{NetCtlplane, NetBMC, NetExternal}

// buildNetwork creates the namespaces, bridges, veths, addresses and taps,
// recording each before it is created.
func buildNetwork(st *stateStore, prefix string, nodes []Node) error {
	fab, uc, bmcs := fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)
	for _, ns := range []string{fab, uc, bmcs} {
		if err := st.add(Resource{Kind: ResNamespace, Name: ns}); err != nil {
			return err
		}
		if err := netlab.CreateNamespace(ns); err != nil {
			return err
		}
	}
	link := func(ns, name string, create func() error) error {
		if err := st.add(Resource{Kind: ResLink, Name: name, Netns: ns}); err != nil {
			return err
		}
		return create()
	}
	for _, n := range Networks {
		if err := link(fab, n.Bridge(), func() error { return netlab.AddBridge(fab, n.Bridge()) }); err != nil {
			return err
		}
	}
	for _, name := range undercloudVeths {
		n, _ := networkByName(name)
		side := "uc-" + name
		if err := link(fab, side, func() error { return netlab.AddVeth(fab, side, n.Bridge(), uc, name) }); err != nil {
			return err
		}
		if err := netlab.AddAddress(uc, name, netip.PrefixFrom(n.Undercloud, n.Subnet.Bits())); err != nil {
			return err
		}
	}
	bmcNet, _ := networkByName(NetBMC)
	if err := link(fab, "bmcs", func() error { return netlab.AddVeth(fab, "bmcs", bmcNet.Bridge(), bmcs, "bmc") }); err != nil {
		return err
	}
	addrs := []netip.Addr{redfishServiceAddr}
	for i := range nodes {
		addrs = append(addrs, NodeBMCAddr(i))
	}
	for _, a := range addrs {
		if err := netlab.AddAddress(bmcs, "bmc", netip.PrefixFrom(a, bmcNet.Subnet.Bits())); err != nil {
			return err
		}
	}
	for i, node := range nodes {
		if node.Kind == KindSim {
			ns := simNS(prefix, i)
			if err := st.add(Resource{Kind: ResNamespace, Name: ns}); err != nil {
				return err
			}
			if err := netlab.CreateNamespace(ns); err != nil {
				return err
			}
		}
		for j, netName := range node.NICs {
			n, ok := networkByName(netName)
			if !ok {
				return fmt.Errorf("node %s: no network %q", node.Name, netName)
			}
			if node.Kind == KindSim {
				// The node's MAC is the machine's to set (lab/sim).
				ns, side := simNS(prefix, i), simLinkName(i, j)
				if err := link(fab, side, func() error { return netlab.AddVeth(fab, side, n.Bridge(), ns, simNICName(j)) }); err != nil {
					return err
				}
				continue
			}
			tap := tapName(i, j)
			if err := link(fab, tap, func() error { return netlab.AddTap(fab, tap, n.Bridge()) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// labNamespaces are the namespaces a lab with these nodes makes.
func labNamespaces(prefix string, nodes []Node) []string {
	out := []string{fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)}
	for i, n := range nodes {
		if n.Kind == KindSim {
			out = append(out, simNS(prefix, i))
		}
	}
	return out
}
