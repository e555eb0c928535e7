// Package vm is the lab's virtual machine: a qemu-system-x86_64 process
// per node, driven as a bmc.Machine by the node's virtual BMC. Power on
// starts qemu with the boot order of the BMC's boot override, power off
// kills the process (or asks the guest to shut down through ACPI), and a
// reset is QMP's system_reset, or a fresh start when the boot order has
// changed since the process began. The process's liveness is the power
// state, so a VM killed behind the BMC's back is off.
package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
)

// Firmware types.
const (
	FirmwareBIOS = "bios" // SeaBIOS
	FirmwareUEFI = "uefi" // OVMF
)

// Accelerators.
const (
	AccelTCG = "tcg"
	AccelKVM = "kvm"
)

// Default paths of Debian's packages (qemu-system-x86, ovmf, ipxe-qemu).
const (
	DefaultQEMU     = "qemu-system-x86_64"
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// IPXEROM is iPXE for virtio-net, legacy PXE and EFI in one ROM: the
	// ROM qemu loads for virtio-net-pci by default.
	IPXEROM = "/usr/lib/ipxe/qemu/efi-virtio.rom"
)

// maxSocketPath is the longest path a unix socket can have.
const maxSocketPath = 107

// Config describes a VM. Name, Dir and at least one NIC or disk are
// needed; the rest has defaults.
type Config struct {
	// Name names the guest (qemu's -name), for ps and logs.
	Name string
	// Dir holds the VM's own files: the QMP socket, the UEFI variable
	// store, qemu's log. Its path must be short enough for a unix socket.
	Dir string
	// QEMU is the qemu-system-x86_64 binary. Default: found on PATH.
	QEMU string
	// Accel is tcg (default) or kvm.
	Accel string
	// CPUs and MemoryMiB size the guest. Default 1 and 512.
	CPUs      int
	MemoryMiB int
	// Firmware is bios (default) or uefi.
	Firmware string
	// OVMFCode and OVMFVars are the UEFI firmware and the template of its
	// variable store, copied once per VM. Defaults: Debian's 4M images.
	OVMFCode, OVMFVars string
	// NICROM is the NICs' option ROM. Default: qemu's own choice, Debian's
	// iPXE (IPXEROM). (Naming that same file explicitly keeps SeaBIOS from
	// running it: qemu patches only its default ROMs.) NoROM loads none:
	// OVMF then network-boots with its own UEFI PXE stack, as a UEFI
	// server's firmware does, and SeaBIOS can not network-boot at all.
	NICROM string
	// Disks are virtio disks, raw sparse files created at New if missing.
	Disks []Disk
	// NICs are virtio NICs on existing tap devices.
	NICs []NIC
	// ConsoleLog receives the serial console, appended across power
	// cycles. Default Dir/console.log.
	ConsoleLog string
	// UUID is the SMBIOS system UUID, and Serial its serial number.
	UUID, Serial string
	// Start starts the qemu process. Default (*exec.Cmd).Start; the lab
	// starts it in the namespace that holds the taps.
	Start func(*exec.Cmd) error
	// OnStart and OnExit report each qemu process as it starts and ends,
	// for a record that outlives this process.
	OnStart func(pid int)
	OnExit  func(pid int)
	// GracefulTimeout bounds a graceful reset's wait for the guest to
	// shut down before it is stopped hard. Default 30s.
	GracefulTimeout time.Duration
	// Logger receives the log; default: discard.
	Logger *slog.Logger
}

// Disk is a virtio disk.
type Disk struct {
	Path      string
	SizeBytes int64
	Serial    string
}

// NIC is a virtio NIC on a tap device.
type NIC struct {
	Tap string
	MAC net.HardwareAddr
}

// Machine is a qemu VM. It implements bmc.Machine.
type Machine struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	boot bmc.BootConfig
	proc *process
}

var _ bmc.Machine = (*Machine)(nil)

// process is one run of qemu.
type process struct {
	cmd  *exec.Cmd
	args []string
	// resetOrder is the boot order a system_reset of this process boots
	// with.
	resetOrder string
	done       chan struct{}
}

// New checks cfg, fills in its defaults, and creates the VM's directory
// and missing disk files. The VM is off.
func New(cfg Config) (*Machine, error) {
	if cfg.Name == "" {
		return nil, errors.New("vm: name: required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("vm: dir: required")
	}
	if cfg.QEMU == "" {
		cfg.QEMU = DefaultQEMU
	}
	switch cfg.Accel {
	case "":
		cfg.Accel = AccelTCG
	case AccelTCG, AccelKVM:
	default:
		return nil, fmt.Errorf("vm: accel: %q is not tcg or kvm", cfg.Accel)
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 512
	}
	if cfg.CPUs < 0 || cfg.MemoryMiB < 0 {
		return nil, errors.New("vm: cpus and memory must not be negative")
	}
	switch cfg.Firmware {
	case "":
		cfg.Firmware = FirmwareBIOS
	case FirmwareBIOS, FirmwareUEFI:
	default:
		return nil, fmt.Errorf("vm: firmware: %q is not bios or uefi", cfg.Firmware)
	}
	if cfg.OVMFCode == "" {
		cfg.OVMFCode = DefaultOVMFCode
	}
	if cfg.OVMFVars == "" {
		cfg.OVMFVars = DefaultOVMFVars
	}
	if cfg.ConsoleLog == "" {
		cfg.ConsoleLog = filepath.Join(cfg.Dir, "console.log")
	}
	if cfg.Start == nil {
		cfg.Start = (*exec.Cmd).Start
	}
	if cfg.GracefulTimeout <= 0 {
		cfg.GracefulTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Disks) == 0 && len(cfg.NICs) == 0 {
		return nil, errors.New("vm: a VM needs a disk or a NIC to boot from")
	}
	for i, n := range cfg.NICs {
		if n.Tap == "" || len(n.MAC) != 6 {
			return nil, fmt.Errorf("vm: nic %d: needs a tap and a MAC", i)
		}
	}
	m := &Machine{cfg: cfg, log: cfg.Logger}
	if len(m.qmpPath()) > maxSocketPath {
		return nil, fmt.Errorf("vm: dir %s: too long for the QMP socket (at most %d characters)", cfg.Dir, maxSocketPath-len("/qmp.sock"))
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	for i, d := range cfg.Disks {
		if d.Path == "" || d.SizeBytes <= 0 {
			return nil, fmt.Errorf("vm: disk %d: needs a path and a size", i)
		}
		if err := sparseFile(d.Path, d.SizeBytes); err != nil {
			return nil, fmt.Errorf("vm: disk %d: %w", i, err)
		}
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

func (m *Machine) qmpPath() string { return filepath.Join(m.cfg.Dir, "qmp.sock") }

// Hardware describes the VM for its BMC.
func (m *Machine) Hardware() bmc.Hardware {
	hw := bmc.Hardware{
		UUID:         m.cfg.UUID,
		Serial:       m.cfg.Serial,
		Manufacturer: "QEMU",
		Model:        "Strata lab VM",
		CPUs:         m.cfg.CPUs,
		CPUModel:     "QEMU Virtual CPU",
		MemoryMiB:    m.cfg.MemoryMiB,
		Firmware:     m.cfg.Firmware,
	}
	for i, n := range m.cfg.NICs {
		hw.NICs = append(hw.NICs, bmc.NIC{Name: fmt.Sprintf("nic%d", i), MAC: n.MAC.String()})
	}
	for i, d := range m.cfg.Disks {
		hw.Disks = append(hw.Disks, bmc.Disk{Name: fmt.Sprintf("vd%c", 'a'+i), SizeBytes: d.SizeBytes, Serial: d.Serial, Model: "QEMU virtio disk"})
	}
	return hw
}

// PoweredOn reports whether the qemu process runs.
func (m *Machine) PoweredOn(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running() != nil, nil
}

// running returns the qemu process if it has not exited. m.mu is held.
func (m *Machine) running() *process {
	if m.proc == nil {
		return nil
	}
	select {
	case <-m.proc.done:
		m.proc = nil
		return nil
	default:
		return m.proc
	}
}

// PID returns the running qemu's process id, or 0 when the VM is off.
func (m *Machine) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		return 0
	}
	return m.proc.cmd.Process.Pid
}

// Cmdline returns the running qemu's arguments (without the program), or
// nil when the VM is off.
func (m *Machine) Cmdline() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		return nil
	}
	return slices.Clone(m.proc.args)
}

// Status is qemu's run state from QMP query-status ("running",
// "paused", "prelaunch", ...), or "off" when no process runs.
func (m *Machine) Status(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		return "off", nil
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := qmp(ctx, m.qmpPath(), "query-status", &st); err != nil {
		return "", fmt.Errorf("vm %s: %w", m.cfg.Name, err)
	}
	return st.Status, nil
}

// Boot returns the boot override.
func (m *Machine) Boot() bmc.BootConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boot
}

// SetBoot sets the boot override, for the next boot. The VM boots from
// the network (pxe) or its first disk (disk); CD-ROM and BIOS setup are
// not supported.
func (m *Machine) SetBoot(_ context.Context, b bmc.BootConfig) error {
	switch b.Device {
	case bmc.BootNone, bmc.BootPXE, bmc.BootDisk:
	default:
		return fmt.Errorf("vm: boot device %q: %w", b.Device, bmc.ErrUnsupported)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boot = b
	return nil
}

// PowerOn starts qemu, booting per the boot override, which it consumes
// unless it is persistent. It returns once qemu answers on QMP.
func (m *Machine) PowerOn(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.startLocked(ctx)
}

// PowerOff kills the qemu process by its PID, or, if graceful, asks the
// guest to shut down (ACPI power button) and returns.
func (m *Machine) PowerOff(ctx context.Context, graceful bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		return nil
	}
	if graceful {
		if err := qmp(ctx, m.qmpPath(), "system_powerdown", nil); err != nil {
			return fmt.Errorf("vm %s: %w", m.cfg.Name, err)
		}
		return nil
	}
	return m.killLocked(ctx)
}

// Reset restarts the VM. A hard reset of a running VM whose boot order is
// unchanged is QMP's system_reset; when the boot override asks for another
// order, qemu is started afresh with it. A graceful reset asks the guest
// to shut down, waits for it (stopping it hard after GracefulTimeout or
// when ctx ends), then starts it. A stopped VM is started.
func (m *Machine) Reset(ctx context.Context, graceful bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.running()
	if p == nil {
		return m.startLocked(ctx)
	}
	if graceful {
		if err := qmp(ctx, m.qmpPath(), "system_powerdown", nil); err != nil {
			return fmt.Errorf("vm %s: %w", m.cfg.Name, err)
		}
		t := time.NewTimer(m.cfg.GracefulTimeout)
		select {
		case <-p.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		// What is left of ctx may be too little to start again: a reset
		// that was begun is carried through.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := m.killLocked(ctx); err != nil {
			return err
		}
		return m.startLocked(ctx)
	}
	order, _ := m.nextOrder()
	if order != p.resetOrder {
		if err := m.killLocked(ctx); err != nil {
			return err
		}
		return m.startLocked(ctx)
	}
	if err := qmp(ctx, m.qmpPath(), "system_reset", nil); err != nil {
		return fmt.Errorf("vm %s: %w", m.cfg.Name, err)
	}
	m.consumeBoot()
	return nil
}

// Close stops the VM: qemu is asked to quit, and killed if it does not.
func (m *Machine) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() == nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	qmp(qctx, m.qmpPath(), "quit", nil)
	cancel()
	select {
	case <-m.proc.done:
		return nil
	case <-time.After(2 * time.Second):
	}
	return m.killLocked(ctx)
}

// Boot orders, in qemu's -boot letters: the network, the first disk, or
// the disk then the network (the default, as on a real server whose disk
// holds no OS yet).
const (
	orderNet      = "n"
	orderDisk     = "c"
	orderDefault  = "cn"
	startTimeout  = 20 * time.Second
	qmpRetryDelay = 20 * time.Millisecond
)

// nextOrder is the boot order the next boot should use, and whether it
// comes from a one-time override.
func (m *Machine) nextOrder() (string, bool) {
	switch m.boot.Device {
	case bmc.BootPXE:
		return orderNet, !m.boot.Persistent
	case bmc.BootDisk:
		return orderDisk, !m.boot.Persistent
	}
	return orderDefault, false
}

func (m *Machine) consumeBoot() {
	if !m.boot.Persistent {
		m.boot.Device = bmc.BootNone
	}
}

// startLocked starts qemu if it does not run. m.mu is held.
func (m *Machine) startLocked(ctx context.Context) error {
	if m.running() != nil {
		return nil
	}
	order, once := m.nextOrder()
	if m.cfg.Firmware == FirmwareUEFI {
		if err := m.prepareUEFI(); err != nil {
			return err
		}
	}
	args := m.args(order, once)
	resetOrder := order
	if once && m.cfg.Firmware == FirmwareBIOS {
		resetOrder = orderDefault // -boot once= reverts on reset
	}
	os.Remove(m.qmpPath())
	logf, err := os.OpenFile(filepath.Join(m.cfg.Dir, "qemu.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("vm %s: %w", m.cfg.Name, err)
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(m.cfg.QEMU, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = m.cfg.Dir
	// Its own process group: a signal to the lab's group does not reach
	// the VMs, which the lab stops itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cfg.Start(cmd); err != nil {
		return fmt.Errorf("vm %s: start qemu: %w", m.cfg.Name, err)
	}
	p := &process{cmd: cmd, args: args, resetOrder: resetOrder, done: make(chan struct{})}
	pid := cmd.Process.Pid
	if m.cfg.OnStart != nil {
		m.cfg.OnStart(pid)
	}
	go func() {
		err := cmd.Wait()
		m.log.Info("qemu exited", "vm", m.cfg.Name, "pid", pid, "status", exitStatus(err))
		// No lock here: killLocked waits for done with m.mu held.
		close(p.done)
		if m.cfg.OnExit != nil {
			m.cfg.OnExit(pid)
		}
	}()
	m.proc = p
	m.consumeBoot()
	m.log.Info("qemu started", "vm", m.cfg.Name, "pid", pid, "boot", order, "once", once)

	// Wait until qemu answers on QMP: it has then parsed its command line
	// and opened its devices. If the caller can not wait that long, the VM
	// goes on starting (a later PowerOn finds it on); a qemu that does not
	// answer within startTimeout is killed.
	limit := time.NewTimer(startTimeout)
	defer limit.Stop()
	for {
		var st struct {
			Status string `json:"status"`
		}
		err := qmp(ctx, m.qmpPath(), "query-status", &st)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("vm %s: qemu exited at start: %s", m.cfg.Name, logTail(logf.Name(), logStart))
		case <-ctx.Done():
			return fmt.Errorf("vm %s: qemu is still starting: %w", m.cfg.Name, ctx.Err())
		case <-limit.C:
			m.killLocked(context.WithoutCancel(ctx))
			return fmt.Errorf("vm %s: qemu did not answer on QMP in %s: %w", m.cfg.Name, startTimeout, err)
		case <-time.After(qmpRetryDelay):
		}
	}
}

// killLocked kills qemu by its PID and waits for it to be gone. m.mu is
// held; the exit watcher does not need it to finish.
func (m *Machine) killLocked(ctx context.Context) error {
	p := m.running()
	if p == nil {
		return nil
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("vm %s: kill %d: %w", m.cfg.Name, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("vm %s: qemu %d did not exit: %w", m.cfg.Name, p.cmd.Process.Pid, ctx.Err())
	}
	if m.proc == p {
		m.proc = nil
	}
	return nil
}

// prepareUEFI copies the variable store template once.
func (m *Machine) prepareUEFI() error {
	vars := filepath.Join(m.cfg.Dir, "OVMF_VARS.fd")
	if _, err := os.Stat(vars); err == nil {
		return nil
	}
	b, err := os.ReadFile(m.cfg.OVMFVars)
	if err != nil {
		return fmt.Errorf("vm %s: UEFI variables (is Debian's ovmf installed?): %w", m.cfg.Name, err)
	}
	return os.WriteFile(vars, b, 0o644)
}

// args is qemu's command line for a boot with order, once or not.
func (m *Machine) args(order string, once bool) []string {
	c := m.cfg
	a := []string{
		"-name", "guest=" + c.Name,
		"-machine", "q35",
		"-accel", c.Accel,
		"-cpu", cpuModel(c.Accel),
		"-smp", fmt.Sprint(c.CPUs),
		"-m", fmt.Sprint(c.MemoryMiB),
		"-nodefaults", "-no-user-config", "-nographic",
		"-chardev", "file,id=console,append=on,path=" + qemuOpt(c.ConsoleLog),
		"-serial", "chardev:console",
		"-qmp", "unix:" + qemuOpt(m.qmpPath()) + ",server=on,wait=off",
	}
	if c.UUID != "" {
		a = append(a, "-uuid", c.UUID)
	}
	smbios := "type=1,manufacturer=QEMU,product=Strata lab VM"
	if c.Serial != "" {
		smbios += ",serial=" + qemuOpt(c.Serial)
	}
	a = append(a, "-smbios", smbios)

	// SeaBIOS follows -boot; OVMF follows the devices' bootindex.
	netFirst := order == orderNet
	bootindex := func(isNet bool, i int) string {
		if c.Firmware != FirmwareUEFI {
			return ""
		}
		first := (isNet == netFirst)
		n := i + 1
		if !first {
			n += 100
		}
		return fmt.Sprintf(",bootindex=%d", n)
	}
	if c.Firmware == FirmwareUEFI {
		a = append(a,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+qemuOpt(c.OVMFCode),
			"-drive", "if=pflash,format=raw,unit=1,file="+qemuOpt(filepath.Join(c.Dir, "OVMF_VARS.fd")),
		)
	} else if once {
		a = append(a, "-boot", "once="+order+",order="+orderDefault)
	} else {
		a = append(a, "-boot", "order="+order)
	}
	for i, d := range c.Disks {
		id := fmt.Sprintf("disk%d", i)
		a = append(a,
			"-drive", "file="+qemuOpt(d.Path)+",if=none,id="+id+",format=raw,cache=unsafe",
			"-device", "virtio-blk-pci,drive="+id+serialOpt(d.Serial)+bootindex(false, i),
		)
	}
	for i, n := range c.NICs {
		id := fmt.Sprintf("net%d", i)
		a = append(a,
			"-netdev", "tap,id="+id+",ifname="+n.Tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev="+id+",mac="+n.MAC.String()+romOpt(c.NICROM)+bootindex(true, i),
		)
	}
	return a
}

// cpuModel is the guest CPU: all TCG can emulate, or the host's.
func cpuModel(accel string) string {
	if accel == AccelKVM {
		return "host"
	}
	return "max"
}

// NoROM is the NICROM that loads no option ROM.
const NoROM = "none"

func romOpt(path string) string {
	switch path {
	case "":
		return ""
	case NoROM:
		return ",romfile="
	}
	return ",romfile=" + qemuOpt(path)
}

func serialOpt(s string) string {
	if s == "" {
		return ""
	}
	return ",serial=" + qemuOpt(s)
}

// qemuOpt escapes a value inside a qemu option list (a comma is doubled).
func qemuOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// logTail returns what qemu wrote to its log since offset, shortened.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return "(no log)"
	}
	s := strings.TrimSpace(string(b[offset:]))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	if s == "" {
		return "(qemu wrote nothing)"
	}
	return s
}
