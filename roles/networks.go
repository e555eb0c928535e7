package roles

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"

	"sigs.k8s.io/yaml"
)

// Network is an isolated overcloud network, as TripleO's
// network_data.yaml gives it.
type Network struct {
	Name      string `json:"name"`
	NameLower string `json:"name_lower,omitempty"`
	// VIP asks for a virtual address on the network for the API
	// endpoints, held by the controllers.
	VIP bool `json:"vip,omitempty"`
	// MTU of the network. Default 1500.
	MTU     int               `json:"mtu,omitempty"`
	Subnets map[string]Subnet `json:"subnets"`
}

// Subnet is one of a network's subnets.
type Subnet struct {
	IPSubnet string `json:"ip_subnet"`
	// AllocationPools are where nodes' addresses come from; the whole
	// subnet but its first and last ten addresses when none is given.
	AllocationPools []Pool `json:"allocation_pools,omitempty"`
	GatewayIP       string `json:"gateway_ip,omitempty"`
	// VLAN is the subnet's VLAN ID on the nodes' trunk; 0 for none.
	VLAN int `json:"vlan,omitempty"`
}

// Pool is a range of addresses, both ends included.
type Pool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ParseNetworks reads a networks file (YAML or JSON): a list of
// networks. Unknown keys are refused.
func ParseNetworks(data []byte) ([]Network, error) {
	var ns []Network
	if err := yaml.UnmarshalStrict(data, &ns); err != nil {
		return nil, fmt.Errorf("networks file: %w", err)
	}
	return ns, nil
}

var networkName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// ValidateNetworks checks the networks: names, subnets that parse and
// overlap neither each other nor the provisioning network (ctlplane; not
// checked when invalid), pools inside their subnets, VLAN IDs in range
// and not shared, MTUs a network can carry. It reports every problem.
func ValidateNetworks(ns []Network, ctlplane netip.Prefix) error {
	var p Problems
	type placed struct {
		where  string
		prefix netip.Prefix
	}
	var all []placed
	if ctlplane.IsValid() {
		all = append(all, placed{"the provisioning network (ctlplane)", ctlplane.Masked()})
	}
	names := map[string]bool{}
	vlans := map[int]string{}
	for i, n := range ns {
		where := "network " + n.Name
		if !networkName.MatchString(n.Name) {
			where = fmt.Sprintf("network %d", i+1)
			p.add("%s: name %q must be a letter followed by letters and digits", where, n.Name)
		} else if names[n.Name] {
			p.add("%s: defined twice", where)
		}
		names[n.Name] = true
		if n.MTU != 0 && (n.MTU < 1280 || n.MTU > 9216) {
			p.add("%s: mtu %d is outside 1280-9216", where, n.MTU)
		}
		if len(n.Subnets) == 0 {
			p.add("%s: has no subnets", where)
		}
		subnetNames := make([]string, 0, len(n.Subnets))
		for s := range n.Subnets {
			subnetNames = append(subnetNames, s)
		}
		sort.Strings(subnetNames)
		for _, sn := range subnetNames {
			s := n.Subnets[sn]
			swhere := fmt.Sprintf("%s, subnet %s", where, sn)
			prefix, err := netip.ParsePrefix(s.IPSubnet)
			if err != nil {
				p.add("%s: ip_subnet %q is not an address/length", swhere, s.IPSubnet)
				continue
			}
			if prefix != prefix.Masked() {
				p.add("%s: ip_subnet %s has host bits set (the subnet is %s)", swhere, prefix, prefix.Masked())
				prefix = prefix.Masked()
			}
			for _, o := range all {
				if o.prefix.Overlaps(prefix) {
					p.add("%s: %s overlaps %s (%s)", swhere, prefix, o.where, o.prefix)
				}
			}
			all = append(all, placed{swhere, prefix})
			if s.VLAN != 0 {
				if s.VLAN < 1 || s.VLAN > 4094 {
					p.add("%s: vlan %d is outside 1-4094", swhere, s.VLAN)
				} else if other, ok := vlans[s.VLAN]; ok {
					p.add("%s: vlan %d is also %s's", swhere, s.VLAN, other)
				}
				vlans[s.VLAN] = swhere
			}
			if s.GatewayIP != "" {
				if gw, err := netip.ParseAddr(s.GatewayIP); err != nil || !prefix.Contains(gw) {
					p.add("%s: gateway_ip %q is not an address in %s", swhere, s.GatewayIP, prefix)
				}
			}
			for _, pool := range s.AllocationPools {
				start, err1 := netip.ParseAddr(pool.Start)
				end, err2 := netip.ParseAddr(pool.End)
				switch {
				case err1 != nil || err2 != nil:
					p.add("%s: allocation pool %s-%s: not two addresses", swhere, pool.Start, pool.End)
				case !prefix.Contains(start) || !prefix.Contains(end):
					p.add("%s: allocation pool %s-%s is not inside %s", swhere, pool.Start, pool.End, prefix)
				case end.Less(start):
					p.add("%s: allocation pool %s-%s ends before it starts", swhere, pool.Start, pool.End)
				}
			}
		}
	}
	return p.err()
}
