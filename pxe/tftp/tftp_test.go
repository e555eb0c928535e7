package tftp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/pxe/tftp"
)

// TestTFTPHPA fetches files with Debian's tftp-hpa client: plain RFC 1350,
// 512-byte blocks, no options.
func TestTFTPHPA(t *testing.T) {
	s := newServer(t, nil)
	files := map[string][]byte{
		"big.bin":           writeRandom(t, s.root, "big.bin", 1<<20+123),
		"exact.bin":         writeRandom(t, s.root, "exact.bin", 512*8), // ends with an empty block
		"sub/dir/small.txt": writeRandom(t, s.root, "sub/dir/small.txt", 10),
		"empty":             writeRandom(t, s.root, "empty", 0),
	}
	out := t.TempDir()
	for name, want := range files {
		local := filepath.Join(out, strings.ReplaceAll(name, "/", "_"))
		if msg := tftpGet(t, s.port, name, local); strings.Contains(msg, "Error") {
			t.Fatalf("tftp get %s: %s", name, msg)
		}
		sameFile(t, local, want)
	}
	// The client is done when it has sent the last acknowledgement; the
	// server counts the transfer once that has come.
	waitFor(t, "4 transfers ok", func() bool {
		return metric(t, s.reg, "strata_tftp_transfer_duration_seconds", "result", "ok") == 4
	})
	var total float64
	for _, b := range files {
		total += float64(len(b))
	}
	if got := metric(t, s.reg, "strata_tftp_sent_bytes_total"); got != total {
		t.Errorf("bytes sent: got %v, want %v", got, total)
	}
}

// TestCurl fetches with curl's TFTP client, which negotiates blksize and
// tsize: the largest block RFC 2348 allows, an Ethernet-sized one, and
// curl's default.
func TestCurl(t *testing.T) {
	s := newServer(t, nil)
	want := writeRandom(t, s.root, "images/big.bin", 8<<20+7)
	for _, blksize := range []int{65464, 1468, 0} {
		t.Run(fmt.Sprintf("blksize=%d", blksize), func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "big.bin")
			out, err := curlGet(t, s.port, "images/big.bin", local, blksize)
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			sameFile(t, local, want)
			if blksize > 0 {
				if line := fmt.Sprintf("blksize parsed from OACK (%d) requested (%d)", blksize, blksize); !strings.Contains(out, line) {
					t.Errorf("curl's output lacks %q:\n%s", line, out)
				}
			}
			if line := fmt.Sprintf("tsize parsed from OACK (%d)", len(want)); !strings.Contains(out, line) {
				t.Errorf("curl's output lacks %q:\n%s", line, out)
			}
		})
	}
}

// TestIPXEBinaries serves Debian's iPXE loaders, as a PXE ROM fetches them
// (an Ethernet-sized block) and with tftp-hpa. They are copied into the
// root, as the undercloud stages them: /usr/lib/ipxe itself can not be the
// root, because its ipxe.efi is a symbolic link to /boot/ipxe.efi, out of
// it, and such links are refused.
func TestIPXEBinaries(t *testing.T) {
	const dir = "/usr/lib/ipxe"
	loaders := []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"}
	s := newServer(t, nil)
	for _, f := range loaders {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%v: run `make deps` (Debian package ipxe)", err)
		}
		writeFile(t, s.root, f, b)
	}
	for _, f := range loaders {
		t.Run(f, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			local := filepath.Join(t.TempDir(), f)
			if out, err := curlGet(t, s.port, f, local, 1432); err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			sameFile(t, local, want)
			local2 := filepath.Join(t.TempDir(), f)
			tftpGet(t, s.port, f, local2)
			sameFile(t, local2, want)
		})
	}

	t.Run("system directory as the root", func(t *testing.T) {
		sys := newServer(t, func(c *tftp.Config) { c.Root = dir })
		want, err := os.ReadFile(filepath.Join(dir, "undionly.kpxe"))
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(t.TempDir(), "undionly.kpxe")
		tftpGet(t, sys.port, "undionly.kpxe", local)
		sameFile(t, local, want)
		if fi, err := os.Lstat(filepath.Join(dir, "ipxe.efi")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Logf("Debian's ipxe.efi is no longer a symbolic link (%v): nothing to refuse", err)
			return
		}
		if r := ask(t, sys.port, packet(opRRQ, "ipxe.efi", "octet")); r.op != opERROR || !strings.Contains(r.msg, "access violation") {
			t.Errorf("ipxe.efi, a link out of the root: got opcode %d %q, want an access violation", r.op, r.msg)
		}
	})
}

// TestRefusals: nothing outside the root is served, whatever the name, and
// write requests are refused; each gets an error packet and nothing is
// written anywhere.
func TestRefusals(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "secret", []byte("outside the root"))
	s := newServer(t, nil)
	writeFile(t, s.root, "sub/ok.txt", []byte("inside"))
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(s.root, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.root, "dir-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../..", filepath.Join(s.root, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(s.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, beforeOutside := tree(t, s.root), tree(t, outside)

	tests := []struct {
		name string
		want string // in the error message
	}{
		{"../etc/passwd", "access violation"},
		{"/etc/passwd", "access violation"},
		{"sub/../../etc/passwd", "access violation"},
		{`..\..\etc\passwd`, "access violation"},
		{"link-out", "access violation"},
		{"dir-out/secret", "access violation"},
		{"sub/up/etc/passwd", "access violation"},
		{"sub", "access violation"},  // a directory
		{"fifo", "access violation"}, // not a regular file; must not hang
		{"missing.bin", "file not found"},
	}
	for _, tc := range tests {
		t.Run(strings.NewReplacer("/", "_", `\`, "_").Replace(tc.name), func(t *testing.T) {
			r := ask(t, s.port, packet(opRRQ, tc.name, "octet"))
			if r.op != opERROR || !strings.Contains(r.msg, tc.want) {
				t.Errorf("raw RRQ: got opcode %d %q, want an error packet saying %q", r.op, r.msg, tc.want)
			}
			local := filepath.Join(t.TempDir(), "out")
			if out := tftpGet(t, s.port, tc.name, local); !strings.Contains(out, "Error code 1: "+tc.want) {
				t.Errorf("tftp-hpa: got %q, want an error saying %q", out, tc.want)
			}
			if !strings.Contains(tc.name, `\`) {
				// curl shows the error code, not the message.
				out, err := curlGet(t, s.port, tc.name, local, 65464)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 68 || !strings.Contains(out, "TFTP error") {
					t.Errorf("curl: got %v, want exit status 68 after a TFTP error\n%s", err, out)
				}
			}
		})
	}

	t.Run("write request", func(t *testing.T) {
		r := ask(t, s.port, packet(opWRQ, "new.bin", "octet", "blksize", "1468", "tsize", "5"))
		if r.op != opERROR || !strings.Contains(r.msg, "read-only") {
			t.Errorf("raw WRQ: got opcode %d %q, want an error packet saying read-only", r.op, r.msg)
		}
		r = ask(t, s.port, packet(opWRQ, "../escape.bin", "octet"))
		if r.op != opERROR {
			t.Errorf("raw WRQ out of the root: got opcode %d, want an error packet", r.op)
		}
		dir := t.TempDir()
		writeFile(t, dir, "up.bin", []byte("upload"))
		out, err := run(t, dir, tool(t, "tftp", "tftp-hpa"), "-l", "-m", "binary", "127.0.0.1", s.port, "-c", "put", "up.bin", "sub/up.bin")
		if err != nil || !strings.Contains(out, "Error code 1: access violation: this server is read-only") {
			t.Errorf("tftp-hpa put: got %v %q, want a read-only error", err, out)
		}
		cmd := exec.Command(tool(t, "curl", "curl"), "-sS", "-T", filepath.Join(dir, "up.bin"), "tftp://127.0.0.1:"+s.port+"/curl.bin")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("curl upload succeeded: %s", out)
		}
	})

	if after := tree(t, s.root); after != before {
		t.Errorf("the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := tree(t, outside); after != beforeOutside {
		t.Errorf("the directory outside the root changed:\nbefore:\n%s\nafter:\n%s", beforeOutside, after)
	}
	if got := metric(t, s.reg, "strata_tftp_errors_total", "reason", "read_only"); got != 4 {
		t.Errorf("read-only refusals: got %v, want 4", got)
	}
	if got := metric(t, s.reg, "strata_tftp_sent_bytes_total"); got != 0 {
		t.Errorf("bytes sent: got %v, want 0", got)
	}
	// Still serving.
	r := ask(t, s.port, packet(opRRQ, "sub/ok.txt", "octet"))
	if r.op != opDATA || !bytes.Equal(r.body[2:], []byte("inside")) {
		t.Errorf("sub/ok.txt: got opcode %d %q", r.op, r.body)
	}
}

// TestVirtual serves per-node files made up per request, by the client's
// address.
func TestVirtual(t *testing.T) {
	var (
		mu    sync.Mutex
		asked []string
	)
	s := newServer(t, func(c *tftp.Config) {
		c.Virtual = func(path string, remote netip.Addr) (io.ReadSeekCloser, int64, bool) {
			mu.Lock()
			asked = append(asked, path)
			mu.Unlock()
			switch path {
			case "pxelinux.cfg/01-52-54-00-12-34-56":
				b := []byte("config for " + remote.String() + "\n")
				return nopCloser{bytes.NewReader(b)}, int64(len(b)), true
			case "unsized.ipxe":
				b := bytes.Repeat([]byte("#!ipxe\n"), 1000)
				return nopCloser{bytes.NewReader(b)}, -1, true
			case "shadowed.txt":
				return nopCloser{bytes.NewReader([]byte("virtual"))}, 7, true
			}
			return nil, 0, false
		}
	})
	writeFile(t, s.root, "shadowed.txt", []byte("on disk"))
	writeFile(t, s.root, "plain.txt", []byte("plain file"))

	tests := []struct {
		name string
		want string
	}{
		{"pxelinux.cfg/01-52-54-00-12-34-56", "config for " + loopback.String() + "\n"},
		{"./pxelinux.cfg//01-52-54-00-12-34-56", "config for " + loopback.String() + "\n"}, // cleaned first
		{"unsized.ipxe", strings.Repeat("#!ipxe\n", 1000)},
		{"shadowed.txt", "virtual"},
		{"plain.txt", "plain file"},
	}
	for _, tc := range tests {
		local := filepath.Join(t.TempDir(), "out")
		if out, err := curlGet(t, s.port, tc.name, local, 1468); err != nil {
			t.Fatalf("curl %s: %v\n%s", tc.name, err, out)
		}
		sameFile(t, local, []byte(tc.want))
		local2 := filepath.Join(t.TempDir(), "out")
		tftpGet(t, s.port, tc.name, local2)
		sameFile(t, local2, []byte(tc.want))
	}
	// Refused names never reach Virtual.
	mu.Lock()
	asked = nil
	mu.Unlock()
	ask(t, s.port, packet(opRRQ, "../pxelinux.cfg/x", "octet"))
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 0 {
		t.Errorf("Virtual was asked for %q", asked)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestConcurrency: past the limit a request is refused with "server busy";
// once a transfer ends its slot is free again.
func TestConcurrency(t *testing.T) {
	content := bytes.Repeat([]byte("slow"), 100_000)
	slow := &blockingFile{Reader: bytes.NewReader(content), started: make(chan struct{}), release: make(chan struct{})}
	s := newServer(t, func(c *tftp.Config) {
		c.Concurrency = 1
		c.Virtual = func(path string, _ netip.Addr) (io.ReadSeekCloser, int64, bool) {
			if path == "slow" {
				return slow, int64(len(content)), true
			}
			return nil, 0, false
		}
	})
	writeFile(t, s.root, "small.txt", []byte("small"))

	local := filepath.Join(t.TempDir(), "slow")
	curl := start(t, tool(t, "curl", "curl"), "-sS", "--tftp-blksize", "65464", "-o", local, "tftp://127.0.0.1:"+s.port+"/slow")
	select {
	case <-slow.started:
	case <-curl.exited:
		t.Fatalf("curl ended before the transfer started: %v\n%s", curl.err, curl.out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the slow transfer did not start")
	}
	if got := metric(t, s.reg, "strata_tftp_transfers_in_flight"); got != 1 {
		t.Errorf("transfers in flight: got %v, want 1", got)
	}

	r := ask(t, s.port, packet(opRRQ, "small.txt", "octet"))
	if r.op != opERROR || !strings.Contains(r.msg, "server busy") {
		t.Errorf("a second request: got opcode %d %q, want server busy", r.op, r.msg)
	}
	if got := metric(t, s.reg, "strata_tftp_errors_total", "reason", "busy"); got != 1 {
		t.Errorf("busy refusals: got %v, want 1", got)
	}

	close(slow.release)
	if err := curl.wait(t); err != nil {
		t.Fatalf("curl: %v\n%s", err, curl.out.String())
	}
	sameFile(t, local, content)
	waitFor(t, "the slot to be free", func() bool { return metric(t, s.reg, "strata_tftp_transfers_in_flight") == 0 })
	out := filepath.Join(t.TempDir(), "small.txt")
	tftpGet(t, s.port, "small.txt", out)
	sameFile(t, out, []byte("small"))
}

// TestShutdown: ending Run's context ends a transfer in flight, and Run
// returns.
func TestShutdown(t *testing.T) {
	content := bytes.Repeat([]byte("x"), 1<<20)
	slow := &blockingFile{Reader: bytes.NewReader(content), started: make(chan struct{}), release: make(chan struct{})}
	root := t.TempDir()
	s, err := tftp.New(tftp.Config{
		Addr: "127.0.0.1:0", Root: root, Timeout: time.Second, Retries: 2,
		Virtual: func(string, netip.Addr) (io.ReadSeekCloser, int64, bool) {
			return slow, int64(len(content)), true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	port := strconv.Itoa(int(s.Addr().Port()))

	local := filepath.Join(t.TempDir(), "out")
	curl := start(t, tool(t, "curl", "curl"), "-sS", "-v", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+port+"/anything")
	<-slow.started
	cancel()
	close(slow.release) // the read returns; the next one sees the shutdown
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := curl.wait(t); err == nil {
		t.Errorf("curl succeeded although the server shut down mid-transfer\n%s", curl.out.String())
	}
	// The port is free again.
	s2, err := tftp.New(tftp.Config{Addr: "127.0.0.1:" + port, Root: root})
	if err != nil {
		t.Fatalf("the port was not released: %v", err)
	}
	s2.Close()
}

// TestShutdownIdle: a server that served a transfer and then shuts down
// counts no bad packet: the read that the shutdown interrupts is not one.
func TestShutdownIdle(t *testing.T) {
	root := t.TempDir()
	want := writeRandom(t, root, "f.bin", 3000)
	reg := prometheus.NewRegistry()
	s, err := tftp.New(tftp.Config{Addr: "127.0.0.1:0", Root: root, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	local := filepath.Join(t.TempDir(), "f.bin")
	tftpGet(t, strconv.Itoa(int(s.Addr().Port())), "f.bin", local)
	sameFile(t, local, want)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := metric(t, reg, "strata_tftp_errors_total", "reason", "bad_packet"); got != 0 {
		t.Errorf("bad packets: got %v, want 0", got)
	}
}

func TestConfig(t *testing.T) {
	root := t.TempDir()
	bad := []tftp.Config{
		{Addr: "127.0.0.1:0"},
		{Addr: "127.0.0.1:0", Root: filepath.Join(root, "missing")},
		{Addr: "127.0.0.1:0", Root: root, MaxBlockSize: 512},
		{Addr: "127.0.0.1:0", Root: root, MaxBlockSize: 65465},
		{Addr: "127.0.0.1:0", Root: root, Concurrency: -1},
		{Addr: "127.0.0.1:0", Root: root, Timeout: -time.Second},
		{Addr: "no such host:x", Root: root},
	}
	for _, c := range bad {
		if s, err := tftp.New(c); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	s, err := tftp.New(tftp.Config{Addr: "127.0.0.1:0", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Addr().Addr().IsLoopback() || s.Addr().Port() == 0 {
		t.Errorf("Addr: %v", s.Addr())
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}

	// New takes Conn over, Addr aside: it closes it if it fails, and the
	// server closes it when it is done.
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := listen()
	if s, err := tftp.New(tftp.Config{Conn: c, Root: filepath.Join(root, "missing")}); err == nil {
		s.Close()
		t.Error("New with a missing root succeeded")
	}
	if _, err := c.WriteToUDP([]byte("x"), c.LocalAddr().(*net.UDPAddr)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Conn after New failed: write: %v, want it closed", err)
	}
	c = listen()
	s, err = tftp.New(tftp.Config{Conn: c, Addr: "no such host:x", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Addr(), c.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Errorf("Addr with Conn: got %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := c.WriteToUDP([]byte("x"), c.LocalAddr().(*net.UDPAddr)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Conn after Close: write: %v, want it closed", err)
	}
}
