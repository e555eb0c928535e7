package tftp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stratacloud/strata/pxe/tftp"
)

// testServer is a running server with its root and its metrics.
type testServer struct {
	*tftp.Server
	root string
	reg  *prometheus.Registry
	port string
}

// newServer starts a server on a loopback port with a fresh root and
// tightened timeouts; change adjusts the configuration first. The server
// is stopped, and must stop, when the test ends.
func newServer(t *testing.T, change func(*tftp.Config)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := tftp.Config{
		Addr:       "127.0.0.1:0",
		Root:       t.TempDir(),
		Timeout:    time.Second,
		Retries:    3,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
	}
	if change != nil {
		change(&cfg)
	}
	s, err := tftp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30 s after its context ended")
		}
	})
	return &testServer{Server: s, root: cfg.Root, reg: reg, port: strconv.Itoa(int(s.Addr().Port()))}
}

// testWriter sends the server's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// tool finds a program that `make deps` installs, or fails the test naming
// the Debian package.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian package %s): %v", name, pkg, err)
	}
	return p
}

// run runs a program in dir and returns what it printed. The program is
// killed if it outlives the deadline.
func run(t testing.TB, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeRandom writes size random bytes to root/name and returns them.
func writeRandom(t testing.TB, root, name string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	writeFile(t, root, name, b)
	return b
}

func writeFile(t testing.TB, root, name string, b []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sameFile fails the test unless the file at path holds want.
func sameFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum(got) != sum(want) {
		t.Fatalf("%s: got %d bytes with sha256 %s, want %d bytes with sha256 %s", path, len(got), sum(got), len(want), sum(want))
	}
}

// tftpGet fetches name with Debian's tftp-hpa client, which knows no
// options: RFC 1350 with 512-byte blocks. It returns the client's output;
// tftp-hpa exits 0 even when the server refuses, and says so in its output.
func tftpGet(t testing.TB, port, name, local string) string {
	t.Helper()
	bin := tool(t, "tftp", "tftp-hpa")
	out, err := run(t, filepath.Dir(local), bin, "-l", "-m", "binary", "127.0.0.1", port, "-c", "get", name, local)
	if err != nil {
		t.Fatalf("tftp get %s: %v\n%s", name, err, out)
	}
	return out
}

// curlGet fetches name with curl's TFTP client, asking for blksize (0: curl's
// default, 512) and tsize. It returns curl's verbose output and its error.
func curlGet(t testing.TB, port, name, local string, blksize int) (string, error) {
	t.Helper()
	bin := tool(t, "curl", "curl")
	args := []string{"-sS", "-v", "--path-as-is", "-o", local}
	if blksize > 0 {
		args = append(args, "--tftp-blksize", strconv.Itoa(blksize))
	}
	args = append(args, "tftp://127.0.0.1:"+port+"/"+name)
	return run(t, filepath.Dir(local), bin, args...)
}

// TFTP opcodes, for the raw client.
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// packet builds a request packet.
func packet(op uint16, name, mode string, opts ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, op)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, mode...)
	b = append(b, 0)
	for _, o := range opts {
		b = append(b, o...)
		b = append(b, 0)
	}
	return b
}

// reply is the first packet a server answered a request with.
type reply struct {
	op   uint16
	code uint16 // ERROR
	msg  string // ERROR
	from *net.UDPAddr
	body []byte
}

// ask sends one request packet from a fresh socket and returns the first
// answer. Transfers it starts are ended with an error packet.
func ask(t testing.TB, port string, pkt []byte) reply {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, _ := strconv.Atoi(port)
	if _, err := c.WriteToUDP(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 65536)
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer to %q: %v", pkt, err)
	}
	r := reply{op: binary.BigEndian.Uint16(buf), from: from, body: append([]byte(nil), buf[2:n]...)}
	if r.op == opERROR && n >= 4 {
		r.code = binary.BigEndian.Uint16(buf[2:])
		r.msg = string(bytes.TrimRight(buf[4:n], "\x00"))
	} else {
		// End the transfer the request started.
		c.WriteToUDP(append(binary.BigEndian.AppendUint16(nil, opERROR), 0, 0, 'e', 'n', 'd', 0), from)
	}
	return r
}

// tree lists the files under root with their sizes, to see that nothing was
// written.
func tree(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, p+" "+fi.Mode().String()+" "+strconv.FormatInt(fi.Size(), 10))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// metric returns the value of a counter or gauge series in reg, or the
// sample count of a histogram, 0 when the series does not exist.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingFile is a virtual file whose reads wait until it is released.
type blockingFile struct {
	*bytes.Reader
	started chan struct{}
	release chan struct{}
	once    bool
}

func (f *blockingFile) Read(p []byte) (int, error) {
	if !f.once {
		f.once = true
		close(f.started)
		<-f.release
	}
	return f.Reader.Read(p)
}

func (f *blockingFile) Close() error { return nil }

var _ io.ReadSeekCloser = (*blockingFile)(nil)

// loopback is the address the tests' clients come from.
var loopback = netip.MustParseAddr("127.0.0.1")

// proc is a program started in the background, killed when the test ends
// if it is still running.
type proc struct {
	cmd    *exec.Cmd
	out    syncBuffer
	exited chan struct{}
	err    error
}

// syncBuffer is a bytes.Buffer that a program writes to while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait waits for the program to end and returns how it ended.
func (p *proc) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end", p.cmd.Path)
		return nil
	}
}
