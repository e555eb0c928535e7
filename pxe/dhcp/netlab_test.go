package dhcp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/dhcp"
)

// This file holds the test helpers that build a network segment out of
// network namespaces and run real DHCP peers on it. Every namespace is
// named with a per-run prefix ("sd" + 4 hex digits) and deleted when the
// test ends, whatever its outcome; every process is stopped by its PID.

// requireTool fails the test when a program is missing, naming the Debian
// package that `make deps` installs it from.
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run `make deps` (Debian package %s): %v", name, pkg, err)
	}
	return p
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test builds network namespaces and needs root")
	}
	requireTool(t, "ip", "iproute2")
}

// lab is the namespaces of one test.
type lab struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	nss    []string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	requireRoot(t)
	var b [2]byte
	rand.Read(b[:])
	l := &lab{t: t, prefix: "sd" + hex.EncodeToString(b[:])}
	t.Cleanup(l.close)
	return l
}

// ip runs the ip command and fails the test on error.
func (l *lab) ip(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ns creates the namespace prefix+name with its loopback up.
func (l *lab) ns(name string) string {
	l.t.Helper()
	full := l.prefix + name
	l.ip("netns", "add", full)
	l.mu.Lock()
	l.nss = append(l.nss, full)
	l.mu.Unlock()
	l.ip("-n", full, "link", "set", "lo", "up")
	return full
}

func (l *lab) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.nss[i]).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v\n%s", l.nss[i], err, out)
		}
	}
	l.nss = nil
}

func nsPath(ns string) string { return "/var/run/netns/" + ns }

// segment is a bridge "br0" in a server namespace, with an address, and
// client namespaces plugged into it, each with one interface "eth0".
type segment struct {
	*lab
	server string
}

const bridge = "br0"

func newSegment(t testing.TB, serverCIDR string) *segment {
	t.Helper()
	l := newLab(t)
	s := &segment{lab: l, server: l.ns("s")}
	l.ip("-n", s.server, "link", "add", bridge, "type", "bridge")
	l.ip("-n", s.server, "addr", "add", serverCIDR, "dev", bridge)
	l.ip("-n", s.server, "link", "set", bridge, "up")
	return s
}

// host plugs a new namespace into the bridge, with mac on its eth0 and,
// if cidr is set, that address.
func (s *segment) host(name string, mac net.HardwareAddr, cidr string) string {
	s.t.Helper()
	ns := s.ns(name)
	port := "vp" + name
	s.ip("-n", s.server, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	s.ip("-n", s.server, "link", "set", port, "master", bridge, "up")
	s.ip("-n", ns, "link", "set", "eth0", "address", mac.String(), "up")
	if cidr != "" {
		s.ip("-n", ns, "addr", "add", cidr, "dev", "eth0")
	}
	return ns
}

// proc is a process the test started; it is stopped by its PID at cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs argv in namespace ns (`ip netns exec` execs it, so the PID is
// the program's own).
func start(t testing.TB, ns string, env []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: argv[0], cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(argv, " "), err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop kills the process by its PID and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// wait waits for the process to exit, up to timeout.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.stop()
		return fmt.Errorf("%s still running after %v (killed); output:\n%s", p.name, timeout, p.out)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v; last: %s", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running is a Server started by a test.
type running struct {
	s    *dhcp.Server
	stop func() error
}

// startServer runs a server until the test ends, and waits until it listens.
func startServer(t testing.TB, cfg dhcp.Config) *running {
	t.Helper()
	s, err := dhcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return runServer(t, s)
}

func runServer(t testing.TB, s *dhcp.Server) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-res })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-res:
		res <- err
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready after 60s")
	}
	return &running{s: s, stop: stop}
}
