package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/stratacloud/strata/lab/netlab"
)

// console is the machine's serial console: a log file that the firmware
// and the processes the machine runs append to.
type console struct {
	mu sync.Mutex
	f  *os.File
}

func openConsole(path string) (*console, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &console{f: f}, nil
}

// Printf writes to the console; a write that fails is lost, as on a
// serial line.
func (c *console) Printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.f, format, args...)
}

func (c *console) Close() error { return c.f.Close() }

// firmware is the machine's firmware during one power-on.
type firmware struct {
	m   *Machine
	con *console
}

func (fw *firmware) uefi() bool { return fw.m.cfg.Firmware == FirmwareUEFI }

func (fw *firmware) banner() {
	if fw.uefi() {
		fw.con.Printf("UEFI firmware (OVMF, simulated by the Strata lab) on %s\n", fw.m.cfg.Name)
	} else {
		fw.con.Printf("SeaBIOS (simulated by the Strata lab) on %s\n", fw.m.cfg.Name)
	}
}

// Actions a boot ends in.
const (
	// actionRun runs an OS: the process target describes.
	actionRun = iota + 1
	// actionPowerOff turns the machine off (iPXE's poweroff).
	actionPowerOff
)

// target is what a boot device booted.
type target struct {
	action int
	// os is what runs, for actionRun.
	os *osImage
}

// Client identities in DHCP (RFC 4578's options 93 and 94, and the
// vendor class PXE firmware and iPXE send), by firmware.
type dhcpIdentity struct {
	arch  iana.Arch
	class string
	ipxe  bool
}

var (
	// uefiPXE is OVMF's own PXE client (EFI x86-64, UNDI 3.0).
	uefiPXE = dhcpIdentity{arch: iana.EFI_X86_64, class: "PXEClient:Arch:00007:UNDI:003000"}
	// biosIPXE is iPXE in the NIC's option ROM under SeaBIOS.
	biosIPXE = dhcpIdentity{arch: iana.INTEL_X86PC, class: "PXEClient:Arch:00000:UNDI:002001", ipxe: true}
	// uefiIPXE is iPXE loaded by UEFI firmware (snponly.efi).
	uefiIPXE = dhcpIdentity{arch: iana.EFI_X86_64, class: "PXEClient:Arch:00007:UNDI:003010", ipxe: true}
)

// lease is a DHCP lease as boot firmware uses it.
type lease struct {
	addr       netip.Prefix
	router     netip.Addr
	server     netip.Addr // the DHCP server
	nextServer netip.Addr // siaddr: the TFTP server
	tftpName   string     // option 66
	bootFile   string     // option 67, else the file field
}

// netboot boots from the first NIC: on UEFI firmware, its PXE client
// fetches the iPXE loader over TFTP first; then iPXE asks DHCP again, as
// iPXE, and runs the script it is given. It returns what the script
// booted, nil when the script exited (the firmware goes on to its next
// boot device), or an error.
func (fw *firmware) netboot(ctx context.Context) (*target, error) {
	nic := fw.m.cfg.NICs[0]
	if err := fw.m.nicUp(nic.Name); err != nil {
		return nil, err
	}
	// Whatever firmware configured is gone when the OS starts, or when
	// the firmware moves on to another device.
	defer fw.m.resetNICs()
	ident := biosIPXE
	if fw.uefi() {
		fw.con.Printf(">>Start PXE over IPv4 on MAC: %s\n", strings.ToUpper(strings.ReplaceAll(nic.MAC.String(), ":", "")))
		l, err := fw.dhcp(ctx, nic, uefiPXE)
		if err != nil {
			return nil, fmt.Errorf("PXE-E16: no valid offer received: %w", err)
		}
		if l.bootFile == "" {
			return nil, errors.New("PXE-E53: no boot filename received")
		}
		server := l.nextServer
		if a, err := netip.ParseAddr(l.tftpName); err == nil {
			server = a
		}
		if !server.IsValid() || server.IsUnspecified() {
			return nil, fmt.Errorf("no TFTP server for %s", l.bootFile)
		}
		fw.con.Printf("  Station IP address is %s\n", l.addr.Addr())
		fw.con.Printf("  Server IP address is %s\n", server)
		fw.con.Printf("  NBP filename is %s\n", l.bootFile)
		if err := fw.m.configure(nic.Name, l); err != nil {
			return nil, err
		}
		nbp, err := fetchTFTP(ctx, fw.m.cfg.Netns, netip.AddrPortFrom(server, 69), l.bootFile, maxLoader)
		if err != nil {
			return nil, fmt.Errorf("PXE-E32: TFTP open timeout or error: %w", err)
		}
		fw.con.Printf("  NBP filesize is %d Bytes\n", len(nbp))
		fw.con.Printf(" Downloading NBP file...\n\n  NBP file downloaded successfully.\n")
		// The only network boot program this firmware can run is iPXE
		// (what the undercloud hands UEFI machines): an EFI application.
		if len(nbp) < 2 || string(nbp[:2]) != "MZ" {
			return nil, fmt.Errorf("%s is not an EFI application", l.bootFile)
		}
		fw.m.resetNICs()
		if err := fw.m.nicUp(nic.Name); err != nil {
			return nil, err
		}
		ident = uefiIPXE
	}
	fw.con.Printf("iPXE (simulated by the Strata lab) -- Open Source Network Boot Firmware\n")
	fw.con.Printf("Configuring (net0 %s)...", nic.MAC)
	l, err := fw.dhcp(ctx, nic, ident)
	if err != nil {
		fw.con.Printf(" %v\n", err)
		return nil, fmt.Errorf("no configuration methods succeeded: %w", err)
	}
	fw.con.Printf(" ok\n")
	fw.con.Printf("net0: %s/%s", l.addr.Addr(), net.IP(net.CIDRMask(l.addr.Bits(), 32)))
	if l.router.IsValid() {
		fw.con.Printf(" gw %s", l.router)
	}
	fw.con.Printf("\n")
	if err := fw.m.configure(nic.Name, l); err != nil {
		return nil, err
	}
	if l.nextServer.IsValid() && !l.nextServer.IsUnspecified() {
		fw.con.Printf("Next server: %s\n", l.nextServer)
	}
	fw.con.Printf("Filename: %s\n", l.bootFile)
	if l.bootFile == "" {
		return nil, errors.New("no boot filename")
	}
	u, err := bootFileURL(l)
	if err != nil {
		return nil, err
	}
	ip := &interp{
		fw:       fw,
		vars:     fw.settings(nic, l),
		fetchers: &fetchers{netns: fw.m.cfg.Netns, dir: fw.m.bootDir()},
	}
	defer ip.fetchers.close()
	return ip.chainURL(ctx, u, 0)
}

// bootFileURL is where iPXE fetches the boot file from: a URL as it is,
// a plain name from the next server over TFTP.
func bootFileURL(l lease) (*url.URL, error) {
	if strings.Contains(l.bootFile, "://") {
		u, err := url.Parse(l.bootFile)
		if err != nil {
			return nil, fmt.Errorf("boot file %q: %w", l.bootFile, err)
		}
		return u, nil
	}
	server := l.nextServer
	if a, err := netip.ParseAddr(l.tftpName); err == nil {
		server = a
	}
	if !server.IsValid() || server.IsUnspecified() {
		return nil, fmt.Errorf("boot file %q: no TFTP server", l.bootFile)
	}
	return &url.URL{Scheme: "tftp", Host: server.String(), Path: "/" + strings.TrimPrefix(l.bootFile, "/")}, nil
}

// settings are iPXE's settings after DHCP, which scripts expand.
func (fw *firmware) settings(nic NIC, l lease) map[string]string {
	platform, arch := "pcbios", "i386"
	if fw.uefi() {
		platform, arch = "efi", "x86_64"
	}
	v := map[string]string{
		"mac":       nic.MAC.String(),
		"ip":        l.addr.Addr().String(),
		"netmask":   net.IP(net.CIDRMask(l.addr.Bits(), 32)).String(),
		"platform":  platform,
		"buildarch": arch,
		"filename":  l.bootFile,
		"uuid":      strings.ToLower(fw.m.cfg.UUID),
		"serial":    fw.m.cfg.Serial,
	}
	if l.router.IsValid() {
		v["gateway"] = l.router.String()
	}
	if l.nextServer.IsValid() {
		v["next-server"] = l.nextServer.String()
	}
	return v
}

// dhcp runs one DORA exchange on the NIC, from inside the machine's
// namespace, as the client ident; it retries as firmware does, for up to
// half a minute.
func (fw *firmware) dhcp(ctx context.Context, nic NIC, ident dhcpIdentity) (lease, error) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(ident.class)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(ident.arch)),
		// Client network interface identifier: UNDI 3.16.
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16}),
		dhcpv4.WithNetboot,
	}
	if id, err := uuid.Parse(fw.m.cfg.UUID); err == nil {
		// Option 97: type 0, then the SMBIOS UUID.
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, id[:]...)))
	}
	if ident.ipxe {
		mods = append(mods, dhcpv4.WithUserClass("iPXE", false))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ack *dhcpv4.DHCPv4
	err := netlab.Do(fw.m.cfg.Netns, func() error {
		// The socket is opened on this thread, in the namespace.
		c, err := nclient4.New(nic.Name, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(6))
		if err != nil {
			return err
		}
		defer c.Close()
		l, err := c.Request(ctx, mods...)
		if err != nil {
			return err
		}
		ack = l.ACK
		return nil
	})
	if err != nil {
		return lease{}, err
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return lease{}, errors.New("the DHCP server gave no address")
	}
	ones := 24
	if m := ack.SubnetMask(); m != nil {
		ones, _ = m.Size()
	}
	l := lease{addr: netip.PrefixFrom(ip, ones), tftpName: ack.TFTPServerName(), bootFile: ack.BootFileNameOption()}
	if l.bootFile == "" {
		l.bootFile = strings.TrimRight(ack.BootFileName, "\x00")
	}
	l.server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	l.nextServer, _ = netip.AddrFromSlice(ack.ServerIPAddr.To4())
	if r := ack.Router(); len(r) > 0 {
		l.router, _ = netip.AddrFromSlice(r[0].To4())
	}
	return l, nil
}
