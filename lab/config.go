// Package lab is the virtual datacenter: network namespaces and bridges
// for the provisioning (ctlplane), BMC and overcloud networks, a qemu VM
// per node, a virtual BMC per node (IPMI and Redfish) on the BMC network,
// and the undercloud daemon in a namespace of its own, wired to the
// ctlplane and BMC networks as TripleO's undercloud is.
//
// A lab is described by a lab.yaml (Config), brought up by a long-running
// lab daemon (Run) that owns the namespaces, the VMs, the BMC servers and
// the undercloud process, and that records everything it creates, in
// order, in a state file under the lab's state directory. Down removes
// what the state file lists, whether the daemon stopped cleanly, crashed
// or was killed.
package lab

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Node kinds: a qemu VM, or a simulated machine (lab/sim: a process per
// node, whose firmware network-boots for real and which runs the booted
// ramdisk's /init, or a disk image's, instead of a kernel).
const (
	KindVM  = "vm"
	KindSim = "sim"
)

// BMC types.
const (
	BMCIPMI    = "ipmi"
	BMCRedfish = "redfish"
)

// Accelerators: auto tries KVM and falls back to TCG.
const (
	AccelAuto = "auto"
	AccelTCG  = "tcg"
	AccelKVM  = "kvm"
)

// Config is a lab.yaml.
//
//	name: demo
//	accel: auto                # auto (KVM only where a probe boot works), tcg, kvm
//	bmc: {username: admin, password: s3cret}   # default password: generated
//	undercloud:
//	  binary: /usr/local/bin/undercloud        # default: next to strata, then PATH
//	  api_port: 6385                           # host loopback port; 0: a free one
//	  power_sync_interval: 10s
//	nodes:
//	  - name: node-0
//	    kind: vm                               # vm (qemu) or sim (no kernel: lab/sim)
//	    cpus: 1
//	    memory_mb: 512
//	    disks: [{size: 4GiB, serial: node-0-disk0}]
//	    nics: [ctlplane, internal_api]         # the first is the PXE NIC
//	    firmware: bios                         # bios (SeaBIOS) or uefi (OVMF)
//	    bmc: ipmi                              # ipmi or redfish
type Config struct {
	// Name names the lab; its interfaces and namespaces are prefixed with
	// a short hash of it. Default "default".
	Name string `json:"name,omitempty"`
	// Accel is auto (default), tcg or kvm.
	Accel string `json:"accel,omitempty"`
	// QEMU is the qemu-system-x86_64 binary. Default: found on PATH.
	QEMU       string           `json:"qemu,omitempty"`
	BMC        BMCConfig        `json:"bmc,omitempty"`
	Undercloud UndercloudConfig `json:"undercloud,omitempty"`
	Nodes      []Node           `json:"nodes"`
}

// BMCConfig are the credentials every node's BMC takes.
type BMCConfig struct {
	// Username default admin; Password default: generated at lab up.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// UndercloudConfig says how the lab runs its undercloud.
type UndercloudConfig struct {
	// Binary is the undercloud daemon. Default: "undercloud" in the
	// directory of the running strata, else on PATH.
	Binary string `json:"binary,omitempty"`
	// Agent is strata-agent, the deploy ramdisk's /init, built into the
	// ramdisk at lab up. Default: "strata-agent" beside the undercloud
	// binary, else on PATH.
	Agent string `json:"agent,omitempty"`
	// KernelCache holds the Debian kernel `make deps` unpacked, for the
	// deploy ramdisk. Default /var/cache/strata/kernel.
	KernelCache string `json:"kernel_cache,omitempty"`
	// Busybox is the static busybox of the test image the lab serves at
	// http://192.168.24.1:8088/images/test-image.raw. Default
	// /bin/busybox (Debian's busybox-static).
	Busybox string `json:"busybox,omitempty"`
	// APIPort is the port on 127.0.0.1 where the host reaches the
	// undercloud's API. Default 0: a free port.
	APIPort int `json:"api_port,omitempty"`
	// PowerSyncInterval is the conductor's power sync period. Default 10s.
	PowerSyncInterval Duration `json:"power_sync_interval,omitempty"`
	// Username and Password are the API's http_basic credentials.
	// Default admin and a generated password.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Node is one machine of the lab.
type Node struct {
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"`
	CPUs     int    `json:"cpus,omitempty"`
	MemoryMB int    `json:"memory_mb,omitempty"`
	Disks    []Disk `json:"disks,omitempty"`
	// NICs name the network of each NIC, in order; the first must be
	// ctlplane (the NIC the node PXE-boots from). Default [ctlplane].
	NICs     []string `json:"nics,omitempty"`
	Firmware string   `json:"firmware,omitempty"`
	BMC      string   `json:"bmc,omitempty"`
}

// Disk is a node's virtio disk, a sparse file.
type Disk struct {
	Size   Size   `json:"size"`
	Serial string `json:"serial,omitempty"`
}

// Defaults of a node.
const (
	DefaultCPUs     = 1
	DefaultMemoryMB = 512
	DefaultDiskSize = Size(4 << 30)
	// MaxNodes is bounded by the BMC network's addresses and the MAC
	// layout (one byte per node index).
	MaxNodes = 200
)

// DefaultNodes returns n default nodes: node-0 … node-(n-1), alternating
// IPMI and Redfish BMCs, one vCPU, 512 MiB, one 4 GiB disk, one NIC on
// ctlplane, SeaBIOS.
func DefaultNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		bmcType := BMCIPMI
		if i%2 == 1 {
			bmcType = BMCRedfish
		}
		nodes[i] = Node{Name: fmt.Sprintf("node-%d", i), BMC: bmcType}
	}
	return nodes
}

// LoadConfig reads a lab.yaml. Unknown keys are an error.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(b)
}

// ParseConfig parses lab.yaml's content.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return Config{}, fmt.Errorf("lab.yaml: %w", err)
	}
	return c, nil
}

// SetDefaults fills in what the config leaves out. It generates no
// secrets: see Complete.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		c.Name = "default"
	}
	if c.Accel == "" {
		c.Accel = AccelAuto
	}
	if c.Undercloud.Busybox == "" {
		c.Undercloud.Busybox = "/bin/busybox"
	}
	if c.BMC.Username == "" {
		c.BMC.Username = "admin"
	}
	if c.Undercloud.Username == "" {
		c.Undercloud.Username = "admin"
	}
	if c.Undercloud.PowerSyncInterval == 0 {
		c.Undercloud.PowerSyncInterval = Duration(10 * time.Second)
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Kind == "" {
			n.Kind = KindVM
		}
		if n.CPUs == 0 {
			n.CPUs = DefaultCPUs
		}
		if n.MemoryMB == 0 {
			n.MemoryMB = DefaultMemoryMB
		}
		if n.Disks == nil {
			n.Disks = []Disk{{Size: DefaultDiskSize}}
		}
		for j := range n.Disks {
			if n.Disks[j].Serial == "" {
				n.Disks[j].Serial = fmt.Sprintf("%s-disk%d", n.Name, j)
			}
		}
		if n.NICs == nil {
			n.NICs = []string{NetCtlplane}
		}
		if n.Firmware == "" {
			n.Firmware = "bios"
		}
		if n.BMC == "" {
			n.BMC = BMCIPMI
		}
	}
}

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// Validate checks a config with its defaults filled in, and names the
// first field that is wrong.
func (c *Config) Validate() error {
	if !labNameRE.MatchString(c.Name) {
		return fmt.Errorf("name: %q: want 1 to 32 lower-case letters, digits or '-'", c.Name)
	}
	switch c.Accel {
	case AccelAuto, AccelTCG, AccelKVM:
	default:
		return fmt.Errorf("accel: %q is not auto, tcg or kvm", c.Accel)
	}
	if len(c.BMC.Username) > 16 {
		return fmt.Errorf("bmc.username: longer than IPMI's 16 bytes")
	}
	if len(c.BMC.Password) > 20 {
		return fmt.Errorf("bmc.password: longer than IPMI's 20 bytes")
	}
	if strings.ContainsAny(c.Undercloud.Username, ":\n") {
		return fmt.Errorf("undercloud.username: must not contain ':' or a newline")
	}
	if p := c.Undercloud.APIPort; p < 0 || p > 65535 {
		return fmt.Errorf("undercloud.api_port: %d is not a port number", p)
	}
	if c.Undercloud.PowerSyncInterval < 0 {
		return fmt.Errorf("undercloud.power_sync_interval: must not be negative")
	}
	if len(c.Nodes) == 0 {
		return errors.New("nodes: a lab needs at least one node (or --nodes N)")
	}
	if len(c.Nodes) > MaxNodes {
		return fmt.Errorf("nodes: %d nodes, at most %d", len(c.Nodes), MaxNodes)
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		if !nodeNameRE.MatchString(n.Name) {
			return fmt.Errorf("%s.name: %q: want 1 to 32 lower-case letters, digits or '-'", field, n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("%s.name: %q is used twice", field, n.Name)
		}
		seen[n.Name] = true
		field = "node " + n.Name
		if n.Kind != KindVM && n.Kind != KindSim {
			return fmt.Errorf("%s: kind: %q is not one of: vm, sim", field, n.Kind)
		}
		if n.CPUs < 1 || n.CPUs > 64 {
			return fmt.Errorf("%s: cpus: %d is not between 1 and 64", field, n.CPUs)
		}
		if n.MemoryMB < 64 || n.MemoryMB > 1<<20 {
			return fmt.Errorf("%s: memory_mb: %d is not between 64 and 1048576", field, n.MemoryMB)
		}
		if len(n.Disks) > 8 {
			return fmt.Errorf("%s: disks: at most 8", field)
		}
		for j, d := range n.Disks {
			if d.Size < 1<<20 {
				return fmt.Errorf("%s: disks[%d].size: %s is less than 1MiB", field, j, d.Size)
			}
			if len(d.Serial) > 20 {
				return fmt.Errorf("%s: disks[%d].serial: longer than virtio's 20 bytes", field, j)
			}
		}
		if len(n.NICs) == 0 || len(n.NICs) > 8 {
			return fmt.Errorf("%s: nics: want 1 to 8", field)
		}
		if n.NICs[0] != NetCtlplane {
			return fmt.Errorf("%s: nics[0]: %q: the first NIC must be on ctlplane, the network it PXE-boots from", field, n.NICs[0])
		}
		for j, net := range n.NICs {
			if _, ok := networkByName(net); !ok || net == NetBMC {
				return fmt.Errorf("%s: nics[%d]: %q is not one of %s", field, j, net, strings.Join(nodeNetworks(), ", "))
			}
		}
		switch n.Firmware {
		case "bios", "uefi":
		default:
			return fmt.Errorf("%s: firmware: %q is not bios or uefi", field, n.Firmware)
		}
		switch n.BMC {
		case BMCIPMI, BMCRedfish:
		default:
			return fmt.Errorf("%s: bmc: %q is not ipmi or redfish", field, n.BMC)
		}
	}
	return nil
}

// Size is a number of bytes, written as 4GiB, 512MiB, 10G or a plain
// number of bytes.
type Size int64

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMGT]?)(i?B?)$`)

// ParseSize reads a size such as 4GiB.
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as 512MiB or 4GiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(n << shift), nil
}

func (s Size) String() string {
	for _, u := range []struct {
		unit  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if s > 0 && s%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", s>>u.shift, u.unit)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalJSON accepts "4GiB" or a number of bytes.
func (s *Size) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON writes the size as "4GiB".
func (s Size) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// Duration is a time.Duration written as "10s".
type Duration time.Duration

// UnmarshalJSON accepts "10s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"10s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as "10s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// Naming. A lab's namespaces are named <prefix>-net (the fabric: bridges,
// taps and the VMs), <prefix>-uc (the undercloud) and <prefix>-bmc (the
// virtual BMCs). The prefix is "sl" and four hex digits of a hash of the
// lab's name, short enough for interface names.

// Prefix is the lab's short name prefix.
func Prefix(labName string) string {
	h := sha256.Sum256([]byte(labName))
	return fmt.Sprintf("sl%x", h[:2])
}

// Namespace names.
func fabricNS(prefix string) string     { return prefix + "-net" }
func undercloudNS(prefix string) string { return prefix + "-uc" }
func bmcNS(prefix string) string        { return prefix + "-bmc" }

// MAC is the deterministic MAC address of a node's NIC: 52:54:00 (locally
// administered, qemu's range), a byte of the lab name's hash, the node's
// index and the NIC's index.
func MAC(labName string, node, nic int) net.HardwareAddr {
	h := sha256.Sum256([]byte(labName))
	return net.HardwareAddr{0x52, 0x54, 0x00, h[2], byte(node), byte(nic)}
}

// tapName is the tap device of a VM node's NIC in the fabric namespace.
func tapName(node, nic int) string { return fmt.Sprintf("tap%d-%d", node, nic) }

// simNS is a sim node's own namespace, which holds its NICs.
func simNS(prefix string, node int) string { return fmt.Sprintf("%s-n%d", prefix, node) }

// simLinkName is the fabric's end of the veth that is a sim node's NIC;
// simNICName is the node's end, in its namespace.
func simLinkName(node, nic int) string { return fmt.Sprintf("sim%d-%d", node, nic) }
func simNICName(nic int) string        { return fmt.Sprintf("eth%d", nic) }

// Networks.
const (
	NetCtlplane    = "ctlplane"
	NetBMC         = "bmc"
	NetExternal    = "external"
	NetInternalAPI = "internal_api"
	NetStorage     = "storage"
	NetStorageMgmt = "storage_mgmt"
	NetTenant      = "tenant"
)

// Network is one of the lab's networks: a bridge in the fabric
// namespace.
type Network struct {
	Name   string
	Subnet netip.Prefix
	// Undercloud is the undercloud's address on it, if it has one.
	Undercloud netip.Addr
}

// Bridge is the network's bridge in the fabric namespace.
func (n Network) Bridge() string { return "br-" + n.Name }

// Networks are the lab's networks: ctlplane and the overcloud networks of
// TripleO's network_data.yaml, and the BMC network.
var Networks = []Network{
	{Name: NetCtlplane, Subnet: netip.MustParsePrefix("192.168.24.0/24"), Undercloud: netip.MustParseAddr("192.168.24.1")},
	{Name: NetBMC, Subnet: netip.MustParsePrefix("192.168.25.0/24"), Undercloud: netip.MustParseAddr("192.168.25.1")},
	{Name: NetExternal, Subnet: netip.MustParsePrefix("10.0.0.0/24"), Undercloud: netip.MustParseAddr("10.0.0.1")},
	{Name: NetInternalAPI, Subnet: netip.MustParsePrefix("172.17.0.0/24")},
	{Name: NetStorage, Subnet: netip.MustParsePrefix("172.18.0.0/24")},
	{Name: NetStorageMgmt, Subnet: netip.MustParsePrefix("172.19.0.0/24")},
	{Name: NetTenant, Subnet: netip.MustParsePrefix("172.16.0.0/24")},
}

func networkByName(name string) (Network, bool) {
	i := slices.IndexFunc(Networks, func(n Network) bool { return n.Name == name })
	if i < 0 {
		return Network{}, false
	}
	return Networks[i], true
}

// nodeNetworks are the networks a node's NIC may be on.
func nodeNetworks() []string {
	var out []string
	for _, n := range Networks {
		if n.Name != NetBMC {
			out = append(out, n.Name)
		}
	}
	return out
}

// Addresses on the BMC network: the shared Redfish service (every
// Redfish system) and each node's own BMC.
var (
	redfishServiceAddr = netip.MustParseAddr("192.168.25.2")
	firstNodeBMC       = 10
)

// NodeBMCAddr is node i's BMC address: 192.168.25.10 + i.
func NodeBMCAddr(i int) netip.Addr {
	b := netip.MustParseAddr("192.168.25.0").As4()
	b[3] = byte(firstNodeBMC + i)
	return netip.AddrFrom4(b)
}

// The undercloud's API inside its namespace.
const undercloudAPIPort = 6385

// undercloudBootPort is the undercloud's HTTP boot port in the lab (its
// default).
const undercloudBootPort = 8088
