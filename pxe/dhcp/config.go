package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode says whether the server hands out addresses or only boot options.
type Mode int

const (
	// Managed: the server owns the segment's addresses (a pool, reservations,
	// leases) and refuses to start where another DHCP server answers.
	Managed Mode = iota
	// Proxy: proxyDHCP (PXE spec, ports 67 and 4011) beside an existing
	// DHCP server that hands out the addresses; answers carry boot options
	// only.
	Proxy
)

func (m Mode) String() string {
	switch m {
	case Managed:
		return "managed"
	case Proxy:
		return "proxy"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Range is an inclusive range of IPv4 addresses.
type Range struct {
	Start, End netip.Addr
}

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// Size is the number of addresses in the range.
func (r Range) Size() int {
	if !r.Start.Is4() || !r.End.Is4() || r.End.Less(r.Start) {
		return 0
	}
	return int(u32(r.End)-u32(r.Start)) + 1
}

// At returns the address i places after Start, wrapping around.
func (r Range) At(i uint32) netip.Addr {
	n := uint32(r.Size())
	if n == 0 {
		return netip.Addr{}
	}
	return fromU32(u32(r.Start) + i%n)
}

// Offset is the position of a in the range.
func (r Range) Offset(a netip.Addr) uint32 { return u32(a) - u32(r.Start) }

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Network is an IPv4 segment the server hands addresses out on.
type Network struct {
	// Subnet is the segment's prefix, e.g. 192.168.24.0/24.
	Subnet netip.Prefix
	// Pool is the dynamic range. Reserved addresses should lie outside it.
	Pool Range
	// Router is the default gateway given to clients (option 3), if valid.
	Router netip.Addr
}

// Host is what the Directory knows of a MAC address.
type Host struct {
	// NodeUUID is the node the port belongs to.
	NodeUUID string
	// PXE is true when the port may network-boot (Ironic's pxe_enabled).
	// A port with PXE false gets no answer at all.
	PXE bool
	// Address, when valid, is the address reserved for the MAC.
	Address netip.Addr
	// BootMode is the node's boot mode, "bios" or "uefi" (Ironic's
	// boot_mode), used when the client does not send its architecture
	// (option 93). Empty when unknown.
	BootMode string
}

// ErrUnknownHost is returned by a Directory for a MAC that is not an
// enrolled port.
var ErrUnknownHost = errors.New("unknown MAC address")

// Directory tells the server which MAC addresses are enrolled ports. The
// undercloud adapts its node store to it.
type Directory interface {
	// Host returns what is known of mac, or an error wrapping
	// ErrUnknownHost when it is not an enrolled port.
	Host(ctx context.Context, mac net.HardwareAddr) (Host, error)
}

// Config configures a Server (and a Handler, which uses every field but
// the socket ones). The zero value of an optional field takes the default
// named in its comment.
type Config struct {
	// Interface is the one interface the server binds to (SO_BINDTODEVICE);
	// it answers nothing that arrives elsewhere. Required.
	Interface string
	// Netns, when set, is the path of the network namespace (e.g.
	// /var/run/netns/lab0) in which Interface lives and the sockets are
	// opened; empty means the caller's.
	Netns string
	// Mode is Managed (the default) or Proxy.
	Mode Mode

	// ServerIP is the server's address on Interface: its identifier
	// (option 54) and, unless TFTPServer says otherwise, the TFTP server.
	// Required; Run checks that Interface has it.
	ServerIP netip.Addr
	// Subnet, Pool and Router describe the segment Interface is on
	// (managed mode).
	Subnet netip.Prefix
	Pool   Range
	Router netip.Addr
	// Relayed are further segments served through DHCP relay agents: a
	// request whose giaddr lies in one of their subnets is served from it.
	Relayed []Network
	// DNS servers given to clients (option 6).
	DNS []netip.Addr
	// LeaseTime is the lease duration (default 1h).
	LeaseTime time.Duration
	// OfferTime is how long an offered address is held for the client
	// before another can be offered it (default 30s).
	OfferTime time.Duration
	// QuarantineTime is how long a declined address is kept from
	// everyone (default 1h).
	QuarantineTime time.Duration
	// Discovery answers MACs the Directory does not know (for discovering
	// and inspecting unenrolled machines); off, they are ignored.
	Discovery bool

	// Directory answers which MACs are enrolled. Required.
	Directory Directory
	// Leases keeps the leases (managed mode). Required in managed mode.
	Leases Leases

	// TFTPServer is the TFTP server of the boot loaders (default ServerIP).
	TFTPServer netip.Addr
	// BIOSBootFile is the loader for BIOS clients (arch 0), over TFTP
	// (default "undionly.kpxe").
	BIOSBootFile string
	// UEFIBootFile is the loader for x86-64 UEFI clients (arch 7 and 9),
	// over TFTP (default "snponly.efi").
	UEFIBootFile string
	// ARM64BootFile is the loader for arm64 UEFI clients (arch 11); empty
	// leaves them without boot options.
	ARM64BootFile string
	// HTTPBootURL is the URL given to UEFI HTTP boot clients (arch 16);
	// nil leaves them without boot options.
	HTTPBootURL func(mac net.HardwareAddr) string
	// IPXEScriptURL is the URL of the per-node iPXE script, given to
	// clients whose user class is "iPXE" (so that iPXE does not load
	// itself again); nil leaves iPXE clients without boot options.
	IPXEScriptURL func(mac net.HardwareAddr) string

	// Workers is the number of packets handled at once (default 64: a
	// worker mostly waits for the lease store, and etcd batches the disk
	// writes of concurrent requests, so more workers than CPUs pays).
	Workers int
	// QueueSize bounds the packets waiting for a worker, half of them
	// DISCOVERs and half the rest (served first); more are dropped
	// (default 1024). Together with Workers it bounds the memory a burst
	// of clients can take.
	QueueSize int
	// RequestTimeout bounds the handling of one packet, store calls
	// included (default 5s).
	RequestTimeout time.Duration
	// ProbeTimeout is how long the managed-mode start waits for another
	// DHCP server to answer its probe (default 3s).
	ProbeTimeout time.Duration
	// ProbeIgnore are DHCP servers the probe does not count, such as the
	// other Strata servers sharing the leases.
	ProbeIgnore []netip.Addr

	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the metrics (strata_dhcp_*), if set.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults.
const (
	DefaultLeaseTime      = time.Hour
	DefaultOfferTime      = 30 * time.Second
	DefaultQuarantineTime = time.Hour
	DefaultWorkers        = 64
	DefaultQueueSize      = 1024
	DefaultRequestTimeout = 5 * time.Second
	DefaultProbeTimeout   = 3 * time.Second
	DefaultBIOSBootFile   = "undionly.kpxe"
	DefaultUEFIBootFile   = "snponly.efi"
)

// withDefaults returns c with its defaults filled in, or the first invalid
// field.
func (c Config) withDefaults() (Config, error) {
	if c.Interface == "" {
		return c, invalid("Interface", "is required: the server binds only to the interface it is given")
	}
	if c.Mode != Managed && c.Mode != Proxy {
		return c, invalid("Mode", "%v is neither managed nor proxy", c.Mode)
	}
	if !c.ServerIP.Is4() {
		return c, invalid("ServerIP", "%v is not an IPv4 address", c.ServerIP)
	}
	if c.Directory == nil {
		return c, invalid("Directory", "is required")
	}
	if c.Mode == Managed {
		if c.Leases == nil {
			return c, invalid("Leases", "is required in managed mode")
		}
		if err := c.local().validate("", c.ServerIP); err != nil {
			return c, err
		}
		for i, n := range c.Relayed {
			if err := n.validate(fmt.Sprintf("Relayed[%d].", i), netip.Addr{}); err != nil {
				return c, err
			}
		}
	}
	for i, a := range c.DNS {
		if !a.Is4() {
			return c, invalid(fmt.Sprintf("DNS[%d]", i), "%v is not an IPv4 address", a)
		}
	}
	if c.TFTPServer.IsValid() && !c.TFTPServer.Is4() {
		return c, invalid("TFTPServer", "%v is not an IPv4 address", c.TFTPServer)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"LeaseTime", c.LeaseTime}, {"OfferTime", c.OfferTime}, {"QuarantineTime", c.QuarantineTime},
		{"RequestTimeout", c.RequestTimeout}, {"ProbeTimeout", c.ProbeTimeout}} {
		if d.v < 0 {
			return c, invalid(d.name, "%v is negative", d.v)
		}
	}
	if c.LeaseTime != 0 && c.LeaseTime < time.Minute {
		return c, invalid("LeaseTime", "%v is shorter than a minute", c.LeaseTime)
	}
	if c.Workers < 0 || c.QueueSize < 0 {
		return c, invalid("Workers", "and QueueSize must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.LeaseTime, DefaultLeaseTime)
	def(&c.OfferTime, DefaultOfferTime)
	def(&c.QuarantineTime, DefaultQuarantineTime)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.ProbeTimeout, DefaultProbeTimeout)
	if !c.TFTPServer.IsValid() {
		c.TFTPServer = c.ServerIP
	}
	if c.BIOSBootFile == "" {
		c.BIOSBootFile = DefaultBIOSBootFile
	}
	if c.UEFIBootFile == "" {
		c.UEFIBootFile = DefaultUEFIBootFile
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// local is the segment Interface is on.
func (c Config) local() Network {
	return Network{Subnet: c.Subnet, Pool: c.Pool, Router: c.Router}
}

func (n Network) validate(field string, server netip.Addr) error {
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 {
		return invalid(field+"Subnet", "%v is not an IPv4 prefix of at most /30", n.Subnet)
	}
	if n.Subnet != n.Subnet.Masked() {
		return invalid(field+"Subnet", "%v has host bits set (want %v)", n.Subnet, n.Subnet.Masked())
	}
	if server.IsValid() && !n.Subnet.Contains(server) {
		return invalid("ServerIP", "%v is outside Subnet %v", server, n.Subnet)
	}
	if !n.Subnet.Contains(n.Pool.Start) || !n.Subnet.Contains(n.Pool.End) || n.Pool.Size() == 0 {
		return invalid(field+"Pool", "%v is not a range inside %v", n.Pool, n.Subnet)
	}
	if n.Pool.Contains(n.Subnet.Addr()) || n.Pool.Contains(broadcast(n.Subnet)) {
		return invalid(field+"Pool", "%v contains the network or broadcast address of %v", n.Pool, n.Subnet)
	}
	if server.IsValid() && n.Pool.Contains(server) {
		return invalid(field+"Pool", "%v contains ServerIP %v", n.Pool, server)
	}
	if n.Router.IsValid() && (!n.Subnet.Contains(n.Router) || n.Pool.Contains(n.Router)) {
		return invalid(field+"Router", "%v must be inside %v and outside the pool", n.Router, n.Subnet)
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	return fromU32(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

// ConfigError is an invalid Config field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "dhcp: " + e.Field + " " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
