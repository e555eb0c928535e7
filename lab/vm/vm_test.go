package vm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/lab/vm"
)

// requireTools fails the test when what it needs is not installed: `make
// deps` installs it.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the VM test needs root (network namespaces and tap devices)")
	}
	for _, p := range []string{vm.DefaultOVMFCode, vm.DefaultOVMFVars, vm.IPXEROM} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make deps` (Debian's ovmf and ipxe-qemu)", p)
		}
	}
	if _, err := exec.LookPath(vm.DefaultQEMU); err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian's qemu-system-x86)", vm.DefaultQEMU)
	}
}

// tapNamespace makes a namespace with a bridge and a tap on it, removed
// when the test ends.
func tapNamespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	ns := "vmtest-" + hex.EncodeToString(b)
	if err := netlab.CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netlab.DeleteNamespace(ns); err != nil {
			t.Error(err)
		}
	})
	if err := netlab.AddBridge(ns, "br0"); err != nil {
		t.Fatal(err)
	}
	if err := netlab.AddTap(ns, "tap0", "br0"); err != nil {
		t.Fatal(err)
	}
	return ns
}

func newVM(t *testing.T, ns, firmware string) (*vm.Machine, string) {
	t.Helper()
	dir := t.TempDir()
	accel := vm.AccelTCG
	if vm.DetectKVM(context.Background(), "") {
		accel = vm.AccelKVM
	}
	t.Logf("accelerator: %s", accel)
	m, err := vm.New(vm.Config{
		Name:      "vmtest",
		Dir:       dir,
		Accel:     accel,
		Firmware:  firmware,
		MemoryMiB: 128,
		Disks:     []vm.Disk{{Path: filepath.Join(dir, "disk0.raw"), SizeBytes: 64 << 20, Serial: "D0"}},
		NICs:      []vm.NIC{{Tap: "tap0", MAC: net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0, 1}}},
		Start:     func(c *exec.Cmd) error { return netlab.Start(ns, c) },
		UUID:      "8b0e3b4e-4a4b-4d6e-9d2e-0d3f6a2b1c01",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return m, dir
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func bootArg(args []string) string {
	if i := slices.Index(args, "-boot"); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func TestPowerAndBootOrderBIOS(t *testing.T) {
	requireTools(t)
	ns := tapNamespace(t)
	m, dir := newVM(t, ns, vm.FirmwareBIOS)
	ctx := ctxT(t)

	if on, _ := m.PoweredOn(ctx); on {
		t.Fatal("a new VM is on")
	}
	if st, _ := m.Status(ctx); st != "off" {
		t.Fatalf("status of a new VM = %q, want off", st)
	}

	// A one-time PXE boot: -boot once=n, consumed by the power-on.
	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootPXE}); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	if on, _ := m.PoweredOn(ctx); !on {
		t.Fatal("not on after PowerOn")
	}
	if got, want := bootArg(m.Cmdline()), "once=n,order=cn"; got != want {
		t.Errorf("-boot %q, want %q", got, want)
	}
	if b := m.Boot(); b.Device != bmc.BootNone {
		t.Errorf("one-time override not consumed: %+v", b)
	}
	if st, err := m.Status(ctx); err != nil || st != "running" {
		t.Errorf("query-status = %q, %v; want running", st, err)
	}
	pid := m.PID()
	if !alive(pid) {
		t.Fatalf("qemu %d is not running", pid)
	}
	// The NIC's iPXE ROM runs: SeaBIOS boots from the network first.
	console := filepath.Join(dir, "console.log")
	waitFor(t, "iPXE on the serial console", 90*time.Second, func() bool {
		b, _ := os.ReadFile(console)
		return strings.Contains(string(b), "iPXE")
	})
	ctx = ctxT(t)

	// A reset with the same order is system_reset in the same process.
	if err := m.Reset(ctx, false); err != nil {
		t.Fatal(err)
	}
	if m.PID() != pid {
		t.Errorf("reset with an unchanged boot order restarted qemu (pid %d → %d)", pid, m.PID())
	}

	// A persistent disk override changes the order: qemu starts afresh.
	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true}); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(ctx, false); err != nil {
		t.Fatal(err)
	}
	if m.PID() == pid || alive(pid) {
		t.Errorf("reset to a new boot order kept qemu %d", pid)
	}
	if got, want := bootArg(m.Cmdline()), "order=c"; got != want {
		t.Errorf("-boot %q, want %q", got, want)
	}
	if b := m.Boot(); b.Device != bmc.BootDisk || !b.Persistent {
		t.Errorf("persistent override lost: %+v", b)
	}

	// Graceful power off asks the guest (which has no OS to answer).
	if err := m.PowerOff(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Hard power off kills the process.
	pid = m.PID()
	if err := m.PowerOff(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, _ := m.PoweredOn(ctx); on || alive(pid) {
		t.Fatalf("on after PowerOff (qemu %d alive: %v)", pid, alive(pid))
	}
	if err := m.PowerOff(ctx, false); err != nil {
		t.Errorf("PowerOff of a stopped VM: %v", err)
	}

	// Killed behind the BMC's back, the VM is off.
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	pid = m.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed VM to be off", 10*time.Second, func() bool {
		on, _ := m.PoweredOn(ctx)
		return !on
	})

	// A stopped VM is started by a reset.
	if err := m.Reset(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, _ := m.PoweredOn(ctx); !on {
		t.Fatal("a reset did not start a stopped VM")
	}

	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootCDROM}); !errors.Is(err, bmc.ErrUnsupported) {
		t.Errorf("SetBoot(cdrom) = %v, want ErrUnsupported", err)
	}
}

func TestUEFIBootOrder(t *testing.T) {
	requireTools(t)
	ns := tapNamespace(t)
	m, dir := newVM(t, ns, vm.FirmwareUEFI)
	ctx := ctxT(t)

	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootPXE, Persistent: true, UEFI: true}); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(m.Cmdline(), " ")
	for _, want := range []string{"if=pflash", "OVMF_VARS.fd", "virtio-net-pci,netdev=net0,mac=52:54:00:aa:00:01", "bootindex=1"} {
		if !strings.Contains(args, want) {
			t.Errorf("command line lacks %q: %s", want, args)
		}
	}
	if strings.Contains(args, "-boot") {
		t.Errorf("UEFI command line has -boot: %s", args)
	}
	if i := strings.Index(args, "virtio-net-pci"); i < 0 || !strings.Contains(args[i:], "bootindex=1") {
		t.Errorf("the NIC is not first to boot: %s", args)
	}
	if st, err := m.Status(ctx); err != nil || st != "running" {
		t.Errorf("query-status = %q, %v; want running", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "OVMF_VARS.fd")); err != nil {
		t.Errorf("no per-VM UEFI variable store: %v", err)
	}
	// OVMF runs the EFI driver of the NIC's iPXE ROM and boots from it.
	start := time.Now()
	waitFor(t, "iPXE on the serial console", 3*time.Minute, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		return strings.Contains(string(b), "iPXE")
	})
	t.Logf("OVMF reached iPXE in %s", time.Since(start).Round(time.Millisecond))
	if err := m.PowerOff(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
}
