package vm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// kvmProbeTimeout is how long a KVM guest gets to reach SeaBIOS's boot
// menu; it takes milliseconds where KVM works.
const kvmProbeTimeout = 5 * time.Second

// DetectKVM reports whether qemu runs guests under KVM here. /dev/kvm
// existing is not enough (nested virtualization can hang a guest), so it
// boots SeaBIOS under KVM with no disk and watches its debug port for the
// boot attempt. It takes up to a few seconds where KVM does not work.
func DetectKVM(ctx context.Context, qemu string) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	if qemu == "" {
		qemu = DefaultQEMU
	}
	dir, err := os.MkdirTemp("", "strata-kvm-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	debug := filepath.Join(dir, "debug.log")
	// The machine and CPU model of the lab's VMs under KVM.
	cmd := exec.Command(qemu, "-accel", "kvm", "-machine", "q35", "-cpu", cpuModel(AccelKVM),
		"-nodefaults", "-no-user-config",
		"-display", "none", "-m", "64",
		"-chardev", "file,id=dbg,path="+debug,
		"-device", "isa-debugcon,iobase=0x402,chardev=dbg")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	ctx, cancel := context.WithTimeout(ctx, kvmProbeTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(debug); err == nil && (bytes.Contains(b, []byte("Booting from")) || bytes.Contains(b, []byte("No bootable device"))) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-done:
			return false
		case <-tick.C:
		}
	}
}
