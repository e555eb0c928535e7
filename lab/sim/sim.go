// Package sim is the lab's simulated machine (node kind sim): a machine
// with no CPU of its own, driven as a bmc.Machine by the node's virtual BMC
// as a qemu VM is (lab/vm).
//
// Its firmware really boots from the network, on the node's NIC: a veth in
// the node's own network namespace, on the lab's bridge. It asks DHCP as
// PXE firmware and iPXE do (option 93 by firmware, user class "iPXE"),
// fetches the iPXE loader over TFTP first when it is UEFI firmware (as
// OVMF's own PXE stack does), then runs the iPXE script it is given over
// HTTP, following its chains, and fetches the kernel and the ramdisk the
// script names. It checks them (a Linux kernel; a newc cpio, gzip'd or
// not, with an executable /init) and then, instead of starting the kernel,
// runs the ramdisk's /init as a process in the node's namespace, with
// --root naming a tree that shows the machine's hardware as Linux would
// (proc, sys and DMI, written by hwinfo.Render, and the partitions of its
// disks) and whose dev holds each disk as a sparse file.
//
// Booting from disk follows the boot loader configuration that BIOS or
// UEFI firmware would reach on the disks (syslinux's, in a FAT partition:
// the active one, or the EFI system partition) to its kernel and
// initramfs, and runs the initramfs's /init chrooted into the unpacked
// initramfs, in new user, mount, PID, UTS and IPC namespaces: root there
// is an unprivileged user of the host, and nothing it mounts reaches the
// host's mount namespace.
//
// Power is the machine's own state, from power on to power off, whatever
// runs: when /init exits, the machine hangs as Linux does when init dies
// ("Kernel panic"), until its BMC powers it off. Power off kills the
// process by its PID.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
)

// Firmware types, as lab/vm names them.
const (
	FirmwareBIOS = "bios" // SeaBIOS with iPXE in the NIC's option ROM
	FirmwareUEFI = "uefi" // OVMF with its own PXE stack
)

// NoBootableDevice is what the firmware writes on the console when
// nothing it tried could boot.
const NoBootableDevice = "No bootable device."

// Config describes a simulated machine. Name, Dir, Netns and at least one
// NIC are needed; the rest has defaults.
type Config struct {
	// Name names the machine in logs.
	Name string
	// Dir holds the machine's files: its disks and hardware view (root/),
	// what the firmware loaded (boot/), the unpacked initramfs of a disk
	// boot (image/), and the console log.
	Dir string
	// Netns is the node's network namespace, which holds its NICs.
	Netns string
	// CPUs and MemoryMiB size the machine. Default 1 and 512.
	CPUs      int
	MemoryMiB int
	// Firmware is bios (default) or uefi.
	Firmware string
	// Disks are the machine's disks, /dev/vda, /dev/vdb, ...: sparse
	// files created at New if missing.
	Disks []Disk
	// NICs are the machine's NICs; the first is the one it network-boots
	// from. Each is an existing interface in Netns (the node's end of a
	// veth), to which New gives its MAC.
	NICs []NIC
	// ConsoleLog receives the firmware's messages and the output of what
	// the machine runs, appended across power cycles. Default
	// Dir/console.log.
	ConsoleLog string
	// UUID is the SMBIOS system UUID, and Serial its serial number.
	UUID, Serial string
	// OnStart and OnExit report each process the machine runs (its /init)
	// as it starts and ends, for a record that outlives this process.
	OnStart func(pid int)
	OnExit  func(pid int)
	// GracefulTimeout bounds a graceful reset's wait for the OS to shut
	// down before the machine is stopped hard. Default 30s.
	GracefulTimeout time.Duration
	// Logger receives the log; default: discard.
	Logger *slog.Logger
}

// Disk is a virtio disk.
type Disk struct {
	SizeBytes int64
	Serial    string
}

// NIC is a virtio NIC: an interface in the machine's namespace.
type NIC struct {
	Name string
	MAC  net.HardwareAddr
}

// Machine is a simulated machine. It implements bmc.Machine.
type Machine struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	boot bmc.BootConfig
	on   *power // nil when off
}

var _ bmc.Machine = (*Machine)(nil)

// power is one power-on of the machine: a goroutine that boots it and
// runs what it booted, until it is cancelled (power off) or the OS shuts
// the machine down.
type power struct {
	cancel context.CancelFunc
	// done is closed when the machine is off again.
	done chan struct{}
	// shutdown is closed to ask the OS to shut down, as an ACPI power
	// button press does.
	shutdown     chan struct{}
	shutdownOnce sync.Once
	// pid is the running /init's, 0 when none runs.
	pid atomic.Int64
}

func (p *power) askShutdown() { p.shutdownOnce.Do(func() { close(p.shutdown) }) }

// New checks cfg, fills in its defaults, creates the machine's directory
// and missing disk files, and gives each NIC its MAC. The machine is off.
func New(cfg Config) (*Machine, error) {
	if cfg.Name == "" {
		return nil, errors.New("sim: name: required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("sim: dir: required")
	}
	if cfg.Netns == "" {
		return nil, errors.New("sim: netns: required")
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 512
	}
	if cfg.CPUs < 0 || cfg.MemoryMiB < 0 {
		return nil, errors.New("sim: cpus and memory must not be negative")
	}
	switch cfg.Firmware {
	case "":
		cfg.Firmware = FirmwareBIOS
	case FirmwareBIOS, FirmwareUEFI:
	default:
		return nil, fmt.Errorf("sim: firmware: %q is not bios or uefi", cfg.Firmware)
	}
	if len(cfg.NICs) == 0 {
		return nil, errors.New("sim: a machine needs a NIC")
	}
	for i, n := range cfg.NICs {
		if n.Name == "" || len(n.MAC) != 6 {
			return nil, fmt.Errorf("sim: nic %d: needs an interface name and a MAC", i)
		}
	}
	if len(cfg.Disks) > 26 {
		return nil, errors.New("sim: at most 26 disks")
	}
	for i, d := range cfg.Disks {
		if d.SizeBytes <= 0 || d.SizeBytes%512 != 0 {
			return nil, fmt.Errorf("sim: disk %d: size %d is not a positive whole number of 512-byte sectors", i, d.SizeBytes)
		}
	}
	if cfg.ConsoleLog == "" {
		cfg.ConsoleLog = filepath.Join(cfg.Dir, "console.log")
	}
	if cfg.GracefulTimeout <= 0 {
		cfg.GracefulTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	m := &Machine{cfg: cfg, log: cfg.Logger}
	for _, d := range []string{filepath.Join(m.root(), "dev"), m.bootDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	for i, d := range cfg.Disks {
		if err := sparseFile(m.DiskPath(i), d.SizeBytes); err != nil {
			return nil, fmt.Errorf("sim: disk %d: %w", i, err)
		}
	}
	if err := m.setupNICs(); err != nil {
		return nil, fmt.Errorf("sim %s: %w", cfg.Name, err)
	}
	return m, nil
}

// sparseFile creates a file of size bytes that takes no space until
// written, unless it exists.
func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// root is the tree of the machine's hardware view: what its /init gets
// as --root.
func (m *Machine) root() string { return filepath.Join(m.cfg.Dir, "root") }

// diskName is the kernel's name of disk i: vda, vdb, ...
func diskName(i int) string { return fmt.Sprintf("vd%c", 'a'+i) }

// DiskPath is the file that is disk i, /dev/vda for i = 0, in the
// machine's hardware view.
func (m *Machine) DiskPath(i int) string {
	return filepath.Join(m.root(), "dev", diskName(i))
}

// Hardware describes the machine for its BMC, as a lab VM with the same
// config describes itself.
func (m *Machine) Hardware() bmc.Hardware {
	hw := bmc.Hardware{
		UUID:         m.cfg.UUID,
		Serial:       m.cfg.Serial,
		Manufacturer: Manufacturer,
		Model:        Product,
		CPUs:         m.cfg.CPUs,
		CPUModel:     "QEMU Virtual CPU",
		MemoryMiB:    m.cfg.MemoryMiB,
		Firmware:     m.cfg.Firmware,
	}
	for i, n := range m.cfg.NICs {
		hw.NICs = append(hw.NICs, bmc.NIC{Name: fmt.Sprintf("nic%d", i), MAC: n.MAC.String()})
	}
	for i, d := range m.cfg.Disks {
		hw.Disks = append(hw.Disks, bmc.Disk{Name: diskName(i), SizeBytes: d.SizeBytes, Serial: d.Serial, Model: "QEMU virtio disk"})
	}
	return hw
}

// PoweredOn reports whether the machine is on.
func (m *Machine) PoweredOn(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running() != nil, nil
}

// running returns the current power-on, if the machine has not gone off
// by itself. m.mu is held.
func (m *Machine) running() *power {
	if m.on == nil {
		return nil
	}
	select {
	case <-m.on.done:
		m.on = nil
		return nil
	default:
		return m.on
	}
}

// PID returns the process id of what the machine runs (its /init), or 0
// when it is off or runs nothing but its firmware.
func (m *Machine) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.running(); p != nil {
		return int(p.pid.Load())
	}
	return 0
}

// Boot returns the boot override.
func (m *Machine) Boot() bmc.BootConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boot
}

// SetBoot sets the boot override, for the next boot: the network (pxe) or
// the disks (disk). CD-ROM and BIOS setup are not supported.
func (m *Machine) SetBoot(_ context.Context, b bmc.BootConfig) error {
	switch b.Device {
	case bmc.BootNone, bmc.BootPXE, bmc.BootDisk:
	default:
		return fmt.Errorf("sim: boot device %q: %w", b.Device, bmc.ErrUnsupported)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boot = b
	return nil
}

// PowerOn starts the machine, booting per the boot override, which it
// consumes unless it is persistent. It returns at once: the boot goes on
// in the background.
func (m *Machine) PowerOn(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		m.startLocked()
	}
	return nil
}

// PowerOff stops the machine at once, killing what it runs by its PID;
// or, if graceful, asks its OS to shut down and returns (an OS that does
// not listen, like the firmware, goes on running).
func (m *Machine) PowerOff(ctx context.Context, graceful bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.running()
	if p == nil {
		return nil
	}
	if graceful {
		p.askShutdown()
		return nil
	}
	return m.stopLocked(ctx, p)
}

// Reset restarts the machine: at once, or, if graceful, after its OS has
// shut down (or GracefulTimeout or ctx has passed). A stopped machine is
// started.
func (m *Machine) Reset(ctx context.Context, graceful bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.running(); p != nil {
		if graceful {
			p.askShutdown()
			t := time.NewTimer(m.cfg.GracefulTimeout)
			select {
			case <-p.done:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		// A reset that was begun is carried through.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := m.stopLocked(sctx, p); err != nil {
			return err
		}
	}
	m.startLocked()
	return nil
}

// Close stops the machine.
func (m *Machine) Close(ctx context.Context) error { return m.PowerOff(ctx, false) }

// Devices the firmware boots from.
const (
	devNet  = "network"
	devDisk = "disk"
)

// order is the boot order of the next boot. A PXE override boots the
// network, then the disks: a script that exits hands the machine back to
// the firmware, which goes on to its next boot option (the undercloud's
// scripts for deployed UEFI nodes count on it). A disk override boots the
// disks alone. With no override, it is the disks, then the network, as a
// lab VM boots. m.mu is held.
func (m *Machine) order() []string {
	switch m.boot.Device {
	case bmc.BootPXE:
		return []string{devNet, devDisk}
	case bmc.BootDisk:
		return []string{devDisk}
	}
	return []string{devDisk, devNet}
}

// startLocked powers the machine on. m.mu is held.
func (m *Machine) startLocked() {
	order := m.order()
	if !m.boot.Persistent {
		m.boot.Device = bmc.BootNone
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &power{cancel: cancel, done: make(chan struct{}), shutdown: make(chan struct{})}
	m.on = p
	m.log.Info("sim powered on", "sim", m.cfg.Name, "order", order)
	go func() {
		defer close(p.done)
		defer cancel()
		m.life(ctx, p, order)
		m.log.Info("sim powered off", "sim", m.cfg.Name)
	}()
}

// stopLocked cuts the power and waits until the machine is off: its
// process killed, its NICs reset. m.mu is held.
func (m *Machine) stopLocked(ctx context.Context, p *power) error {
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("sim %s: still stopping: %w", m.cfg.Name, ctx.Err())
	}
	if m.on == p {
		m.on = nil
	}
	return nil
}

// life is one power-on: the firmware tries each boot device in order and
// runs what one of them boots, until the power is cut or the OS powers
// the machine off.
func (m *Machine) life(ctx context.Context, p *power, order []string) {
	con, err := openConsole(m.cfg.ConsoleLog)
	if err != nil {
		m.log.Error("sim: console", "sim", m.cfg.Name, "err", err)
		<-ctx.Done()
		return
	}
	defer con.Close()
	m.resetNICs()
	defer m.resetNICs()
	fw := &firmware{m: m, con: con}
	fw.banner()
	for _, dev := range order {
		var t *target
		var err error
		switch dev {
		case devNet:
			t, err = fw.netboot(ctx)
		case devDisk:
			t, err = fw.diskboot(ctx, anyDrive)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			con.Printf("%s boot failed: %v\n", dev, err)
			m.log.Info("sim: boot failed", "sim", m.cfg.Name, "device", dev, "err", err)
			continue
		}
		if t == nil {
			continue
		}
		switch t.action {
		case actionPowerOff:
			con.Printf("Powering off\n")
			return
		case actionRun:
			if m.runOS(ctx, p, con, t) {
				return
			}
			// The OS is gone and the machine hangs until power off.
			<-ctx.Done()
			return
		}
	}
	con.Printf("%s\n", NoBootableDevice)
	<-ctx.Done()
}
