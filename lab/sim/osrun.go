package sim

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/stratacloud/strata/lab/netlab"
)

// imageID is the host's user and group that are root for an OS booted
// from disk (its user namespace maps its 0 to this alone): an id that no
// account of the host has, so that the OS, root in its own namespaces,
// owns nothing of the host.
const imageID = 0x5100_0000

// bootDir holds what the firmware loaded.
func (m *Machine) bootDir() string { return filepath.Join(m.cfg.Dir, "boot") }

// imageDir is the unpacked initramfs of a disk boot.
func (m *Machine) imageDir() string { return filepath.Join(m.cfg.Dir, "image") }

// runOS runs what the firmware booted in place of its kernel, until the
// power is cut or the OS ends. It reports whether the machine is off: the
// power was cut, or the OS exited after it was asked to shut down. An OS
// that exits by itself leaves the machine hung, on, as Linux does when
// init dies.
func (m *Machine) runOS(ctx context.Context, p *power, con *console, t *target) bool {
	cmd, err := m.command(t.os, con)
	if err == nil {
		err = netlab.Start(m.cfg.Netns, cmd)
	}
	if err != nil {
		con.Printf("Kernel panic - not syncing: No working init found: %v\n", err)
		m.log.Warn("sim: no init", "sim", m.cfg.Name, "err", err)
		return false
	}
	pid := cmd.Process.Pid
	p.pid.Store(int64(pid))
	m.log.Info("sim: init started", "sim", m.cfg.Name, "pid", pid, "kind", t.os.kind)
	if m.cfg.OnStart != nil {
		m.cfg.OnStart(pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		p.pid.Store(0)
		if m.cfg.OnExit != nil {
			m.cfg.OnExit(pid)
		}
	}()
	shutdown := p.shutdown
	asked := false
	for {
		select {
		case <-ctx.Done():
			// A PID namespace's init takes all of it along.
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
			return true
		case <-shutdown:
			// The ACPI power button: an OS that handles SIGTERM shuts
			// down (the agent does; an init that ignores it, as a
			// namespace's init does without a handler, goes on).
			shutdown, asked = nil, true
			syscall.Kill(pid, syscall.SIGTERM)
		case err := <-exited:
			m.log.Info("sim: init exited", "sim", m.cfg.Name, "pid", pid, "err", err)
			if asked {
				con.Printf("reboot: Power down\n")
				return true
			}
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
					status = int(ws)
				}
			}
			con.Printf("Kernel panic - not syncing: Attempted to kill init! exitcode=0x%08x\n", status)
			return false
		}
	}
}

// command prepares what runs in place of the kernel: the ramdisk's /init
// with the machine's hardware view as its root, or a disk's initramfs,
// unpacked, with its /init chrooted into it in namespaces of its own.
func (m *Machine) command(img *osImage, con *console) (*exec.Cmd, error) {
	env := []string{"HOME=/", "TERM=linux"}
	switch img.kind {
	case osRamdisk:
		init := filepath.Join(m.bootDir(), "init")
		if err := extractInit(img.initrds, m.bootDir(), init); err != nil {
			return nil, err
		}
		if err := m.renderRoot(img.cmdline); err != nil {
			return nil, err
		}
		return &exec.Cmd{
			Path:   init,
			Args:   []string{"/init", "--root", m.root() + "/"},
			Env:    env,
			Dir:    m.root(),
			Stdout: con.f,
			Stderr: con.f,
			// Its own process group: a signal to the lab's group does not
			// reach the machines, which the lab stops itself.
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		}, nil
	case osDisk:
		dir := m.imageDir()
		if err := unpackTree(img.initrds, m.bootDir(), dir, imageID, imageID); err != nil {
			return nil, err
		}
		if err := checkInit(dir); err != nil {
			return nil, err
		}
		con.Printf("Run /init as init process (in the unpacked initramfs, in namespaces of its own)\n")
		return &exec.Cmd{
			Path:   "/init",
			Args:   []string{"/init"},
			Env:    env,
			Dir:    "/",
			Stdout: con.f,
			Stderr: con.f,
			SysProcAttr: &syscall.SysProcAttr{
				Chroot: dir,
				// A user namespace owns the others: mounts made in it are
				// its own (the host's shared mounts are slaves in it) and
				// its root is imageID outside. A PID namespace makes
				// /init its PID 1, and takes every process along when it
				// is killed. The network namespace is the node's.
				Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
					syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: imageID, Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: imageID, Size: 1}},
				Credential:  &syscall.Credential{Uid: 0, Gid: 0},
			},
		}, nil
	}
	return nil, fmt.Errorf("unknown OS kind %d", img.kind)
}
