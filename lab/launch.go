package lab

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/lab/netlab"
)

// DefaultBaseDir holds the state directories of labs, one per lab name,
// unless $STRATA_LAB_DIR names another.
const DefaultBaseDir = "/var/lib/strata/lab"

// StateDir is the state directory of the lab name under base (default
// DefaultBaseDir).
func StateDir(base, name string) string {
	if base == "" {
		base = DefaultBaseDir
	}
	return filepath.Join(base, name)
}

// ErrUp is returned by Launch for a lab that is already up.
var ErrUp = errors.New("lab is already up")

// LoadLabConfig reads the config a lab was launched with (with its
// defaults and generated secrets) from its state directory.
func LoadLabConfig(dir string) (Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("%w (no %s in %s)", ErrNotUp, ConfigFile, dir)
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return c, nil
}

// password makes a random password of n letters and digits.
func password(n int) string {
	const chars = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// Launch brings a lab up: it checks cfg, writes it (with generated
// passwords) into the state directory dir, starts the lab daemon (the
// command daemon, which must run Run on dir) detached in a session of its
// own with its output in dir/daemon.log, and waits until the lab is ready,
// has failed, or ctx ends. On failure the caller takes the lab down with
// Down.
func Launch(ctx context.Context, cfg Config, dir string, daemon *exec.Cmd) (State, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return State{}, err
	}
	if cfg.BMC.Password == "" {
		cfg.BMC.Password = password(16)
	}
	if cfg.Undercloud.Password == "" {
		cfg.Undercloud.Password = password(20)
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	qemu, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return State{}, fmt.Errorf("qemu: %w (install Debian's qemu-system-x86: make deps)", err)
	}
	cfg.QEMU = qemu
	uc, err := findBinary("undercloud", "undercloud.binary", cfg.Undercloud.Binary, daemon.Path)
	if err != nil {
		return State{}, err
	}
	cfg.Undercloud.Binary = uc
	agent, err := findBinary("strata-agent", "undercloud.agent", cfg.Undercloud.Agent, uc)
	if err != nil {
		return State{}, err
	}
	cfg.Undercloud.Agent = agent
	if _, err := images.FindKernel(cfg.Undercloud.KernelCache); err != nil {
		return State{}, fmt.Errorf("undercloud.kernel_cache: %w", err)
	}

	if s, err := LoadState(dir); err == nil {
		if s.Daemon.Alive() {
			return State{}, fmt.Errorf("%w: %s (daemon pid %d)", ErrUp, s.Name, s.Daemon.PID)
		}
		return State{}, fmt.Errorf("lab %s was not taken down (its daemon is gone): run strata lab down first", s.Name)
	}
	prefix := Prefix(cfg.Name)
	for _, ns := range []string{fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)} {
		if netlab.NamespaceExists(ns) {
			return State{}, fmt.Errorf("namespace %s exists: another lab with the prefix %s is up (a name whose hash collides, or another state directory); take it down or choose another name", ns, prefix)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return State{}, err
	}
	if err := writeJSON(filepath.Join(dir, ConfigFile), cfg, 0o600); err != nil {
		return State{}, err
	}
	logPath := filepath.Join(dir, daemonLog)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return State{}, err
	}
	defer logf.Close()
	daemon.Stdin = nil
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := daemon.Start(); err != nil {
		return State{}, fmt.Errorf("start the lab daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()

	for {
		s, err := LoadState(dir)
		if err == nil {
			switch s.Phase {
			case PhaseReady:
				return s, nil
			case PhaseFailed, PhaseStopped:
				return s, fmt.Errorf("the lab failed: %s\n%s", s.Error, tail(logPath, 20))
			}
		}
		select {
		case <-exited:
			if s, err := LoadState(dir); err == nil && s.Phase == PhaseReady {
				return s, nil
			}
			return State{}, fmt.Errorf("the lab daemon exited (%s):\n%s", daemon.ProcessState, tail(logPath, 20))
		case <-ctx.Done():
			return State{}, fmt.Errorf("the lab is not ready: %w; see %s", ctx.Err(), logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// findBinary finds one of Strata's binaries: the configured one, or the
// one beside another binary (as make build puts them), or on PATH.
func findBinary(name, field, configured, beside string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return filepath.Abs(p)
	}
	if beside != "" {
		p := filepath.Join(filepath.Dir(beside), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("the %s binary is not beside %s nor on PATH: build it (make build) or set %s in lab.yaml", name, filepath.Base(beside), field)
	}
	return filepath.Abs(p)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Down takes the lab whose state directory is dir down: it stops the lab
// daemon (SIGTERM, which takes down what it built), then removes whatever
// the state file still lists (all of it, if the daemon was killed), the
// lab's namespaces, and the state directory. A lab that is not up is no
// error. report, if not nil, is told what is removed.
func Down(ctx context.Context, dir string, report func(string)) error {
	if report == nil {
		report = func(string) {}
	}
	s, err := LoadState(dir)
	if errors.Is(err, ErrNotUp) {
		if _, statErr := os.Stat(dir); statErr == nil {
			// A launch that failed before the daemon wrote its state.
			if cfg, err := LoadLabConfig(dir); err == nil {
				removeNamespaces(Prefix(cfg.Name), report)
			}
			return os.RemoveAll(dir)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if s.Daemon.Alive() {
		report(fmt.Sprintf("stopping the lab daemon (pid %d)", s.Daemon.PID))
		if p, err := os.FindProcess(s.Daemon.PID); err == nil {
			p.Signal(syscall.SIGTERM)
		}
		if !waitGone(ctx, s.Daemon, 90*time.Second) {
			report("the lab daemon did not stop: killing it")
			stopProcess(ctx, Resource{Kind: ResProcess, Name: "lab daemon", PID: s.Daemon.PID, StartTime: s.Daemon.StartTime})
		}
		if s2, err := LoadState(dir); err == nil {
			s = s2
		}
	}
	var errs []error
	for _, err := range removeResources(ctx, s.Resources, func(r Resource) error {
		report("removed " + r.String())
		return nil
	}) {
		errs = append(errs, err)
	}
	removeNamespaces(s.Prefix, report)
	if len(errs) > 0 {
		return fmt.Errorf("lab %s: not all removed (the state is kept in %s): %w", s.Name, dir, errors.Join(errs...))
	}
	return os.RemoveAll(dir)
}

// removeNamespaces deletes the lab's namespaces by their names, in case a
// record of them was lost.
func removeNamespaces(prefix string, report func(string)) {
	for _, ns := range []string{fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)} {
		if netlab.NamespaceExists(ns) {
			if err := netlab.DeleteNamespace(ns); err == nil {
				report("removed netns " + ns)
			}
		}
	}
}
