package roles

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Address is a node's place on one isolated network: its address with
// the subnet's length, and what the node needs to configure the link.
type Address struct {
	Address string `json:"address"` // CIDR, e.g. 172.17.0.10/24
	VLAN    int    `json:"vlan,omitempty"`
	MTU     int    `json:"mtu,omitempty"`
	Gateway string `json:"gateway,omitempty"`
}

// Addresses are every assigned node's addresses: by hostname, then by
// network name.
type Addresses map[string]map[string]Address

// VIPs are the virtual addresses of the networks that ask for one, by
// network name.
type VIPs map[string]string

// AssignAddresses gives each assignment an address on every network its
// role is on, from the first subnet (in name order) of the network's
// allocation pools, and each network that asks for it a virtual address.
// Addresses already in current (for the same hostname and network) and
// vips are kept, so that the same plan again changes nothing and a scale
// up only adds; the others are taken in pool order, lowest free first,
// nodes in role and index order. Running out of a pool is an error that
// names the network. The networks must be valid (ValidateNetworks).
func AssignAddresses(rs []Role, nets []Network, as []Assignment, current Addresses, vips VIPs) (Addresses, VIPs, error) {
	byRole := map[string]Role{}
	for _, r := range rs {
		byRole[r.Name] = r
	}
	ordered := slices.Clone(as)
	order := map[string]int{}
	for i, r := range rs {
		order[r.Name] = i
	}
	slices.SortFunc(ordered, func(a, b Assignment) int {
		if d := order[a.Role] - order[b.Role]; d != 0 {
			return d
		}
		return a.Index - b.Index
	})

	out := Addresses{}
	outVIPs := VIPs{}
	var p Problems
	for _, n := range nets {
		s, err := firstSubnet(n)
		if err != nil {
			p.add("network %s: %v", n.Name, err)
			continue
		}
		used := map[netip.Addr]bool{}
		if s.gateway.IsValid() {
			used[s.gateway] = true
		}
		// Keep what is already given, first, so that nothing new takes it.
		var need []string // hostnames without an address yet
		keepVIP := ""
		if n.VIP {
			if a, err := netip.ParseAddr(vips[n.Name]); err == nil && s.contains(a) && !used[a] {
				keepVIP = a.String()
				used[a] = true
			}
		}
		for _, a := range ordered {
			if !slices.Contains(byRole[a.Role].Networks, n.Name) {
				continue
			}
			if old, ok := current[a.Hostname][n.Name]; ok {
				if pa, err := netip.ParsePrefix(old.Address); err == nil && s.contains(pa.Addr()) && !used[pa.Addr()] {
					used[pa.Addr()] = true
					out.set(a.Hostname, n.Name, s.address(pa.Addr(), n))
					continue
				}
			}
			need = append(need, a.Hostname)
		}
		next := s.iter(used)
		if n.VIP {
			if keepVIP == "" {
				a, ok := next()
				if !ok {
					p.add("network %s: its allocation pools have no address left for its virtual IP", n.Name)
					continue
				}
				keepVIP = a.String()
			}
			outVIPs[n.Name] = keepVIP
		}
		for _, host := range need {
			a, ok := next()
			if !ok {
				p.add("network %s: its allocation pools have no address left for %s (%d nodes need one)", n.Name, host, len(need))
				break
			}
			out.set(host, n.Name, s.address(a, n))
		}
	}
	if err := p.err(); err != nil {
		return nil, nil, err
	}
	return out, outVIPs, nil
}

func (as Addresses) set(host, network string, a Address) {
	if as[host] == nil {
		as[host] = map[string]Address{}
	}
	as[host][network] = a
}

// subnet is a network's subnet, parsed.
type subnet struct {
	prefix  netip.Prefix
	pools   [][2]netip.Addr
	gateway netip.Addr
	vlan    int
}

// firstSubnet is the network's subnet that comes first by name, with
// its pools (the subnet but its first and last ten addresses when none
// is given).
func firstSubnet(n Network) (subnet, error) {
	names := make([]string, 0, len(n.Subnets))
	for name := range n.Subnets {
		names = append(names, name)
	}
	if len(names) == 0 {
		return subnet{}, fmt.Errorf("has no subnets")
	}
	sort.Strings(names)
	sn := n.Subnets[names[0]]
	prefix, err := netip.ParsePrefix(sn.IPSubnet)
	if err != nil || !prefix.Addr().Is4() {
		return subnet{}, fmt.Errorf("subnet %s: ip_subnet %q is not an IPv4 address/length", names[0], sn.IPSubnet)
	}
	s := subnet{prefix: prefix.Masked(), vlan: sn.VLAN}
	if gw, err := netip.ParseAddr(sn.GatewayIP); err == nil {
		s.gateway = gw
	}
	for _, pool := range sn.AllocationPools {
		start, err1 := netip.ParseAddr(pool.Start)
		end, err2 := netip.ParseAddr(pool.End)
		if err1 != nil || err2 != nil {
			return subnet{}, fmt.Errorf("subnet %s: allocation pool %s-%s: not two addresses", names[0], pool.Start, pool.End)
		}
		s.pools = append(s.pools, [2]netip.Addr{start, end})
	}
	if len(s.pools) == 0 {
		first, last := s.prefix.Addr(), lastAddr(s.prefix)
		for range 10 {
			first, last = first.Next(), last.Prev()
		}
		if last.Less(first) {
			return subnet{}, fmt.Errorf("subnet %s: %s is too small for a pool without allocation_pools", names[0], s.prefix)
		}
		s.pools = append(s.pools, [2]netip.Addr{first, last})
	}
	return s, nil
}

func (s subnet) contains(a netip.Addr) bool {
	for _, p := range s.pools {
		if !a.Less(p[0]) && !p[1].Less(a) {
			return true
		}
	}
	return false
}

// iter returns the free addresses of the pools in order, skipping used.
func (s subnet) iter(used map[netip.Addr]bool) func() (netip.Addr, bool) {
	pool, cur := 0, netip.Addr{}
	return func() (netip.Addr, bool) {
		for pool < len(s.pools) {
			if !cur.IsValid() {
				cur = s.pools[pool][0]
			} else {
				cur = cur.Next()
			}
			if !cur.IsValid() || s.pools[pool][1].Less(cur) {
				pool, cur = pool+1, netip.Addr{}
				continue
			}
			if !used[cur] {
				used[cur] = true
				return cur, true
			}
		}
		return netip.Addr{}, false
	}
}

func (s subnet) address(a netip.Addr, n Network) Address {
	out := Address{Address: netip.PrefixFrom(a, s.prefix.Bits()).String(), VLAN: s.vlan, MTU: n.MTU}
	if s.gateway.IsValid() {
		out.Gateway = s.gateway.String()
	}
	return out
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	for i := 3; i >= 0 && host > 0; i-- {
		bits := min(host, 8)
		b[i] |= byte(1<<bits - 1)
		host -= bits
	}
	return netip.AddrFrom4(b)
}

// String lists the addresses one node per line, for messages and tests.
func (as Addresses) String() string {
	hosts := make([]string, 0, len(as))
	for h := range as {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	for _, h := range hosts {
		nets := make([]string, 0, len(as[h]))
		for n := range as[h] {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		fmt.Fprintf(&b, "%s:", h)
		for _, n := range nets {
			fmt.Fprintf(&b, " %s=%s", n, as[h][n].Address)
		}
		b.WriteString("\n")
	}
	return b.String()
}
