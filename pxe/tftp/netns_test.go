package tftp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/pxe/tftp"
)

// testNet is a pair of network namespaces made for one test, joined by a
// veth with a jumbo MTU: the server's end has serverIP, the client's
// clientIP. The test process itself stays in the host's namespace.
type testNet struct {
	srvNS, clNS string
}

const netMTU = 9000

var (
	serverIP = netip.MustParseAddr("192.168.79.1")
	clientIP = netip.MustParseAddr("192.168.79.2")
)

// newTestNet makes the namespaces, named with a per-run prefix; they are
// deleted when the test ends, whether it passes or not.
func newTestNet(t *testing.T) testNet {
	t.Helper()
	id := strings.ToLower(rand.Text()[:6])
	n := testNet{srvNS: "tftp" + id + "s", clNS: "tftp" + id + "c"}
	t.Cleanup(func() {
		for _, ns := range []string{n.srvNS, n.clNS} {
			if err := netlab.DeleteNamespace(ns); err != nil {
				t.Errorf("delete namespace %s: %v", ns, err)
			}
		}
	})
	for _, ns := range []string{n.srvNS, n.clNS} {
		if err := netlab.CreateNamespace(ns); err != nil {
			t.Fatal(err)
		}
	}
	srvLink, clLink := "tf"+id+"s", "tf"+id+"c"
	if err := netlab.AddVeth(n.srvNS, srvLink, "", n.clNS, clLink); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		ns, link string
		addr     netip.Addr
	}{{n.srvNS, srvLink, serverIP}, {n.clNS, clLink, clientIP}} {
		if out, err := exec.Command("ip", "-n", l.ns, "link", "set", "dev", l.link, "mtu", strconv.Itoa(netMTU)).CombinedOutput(); err != nil {
			t.Fatalf("set the MTU of %s: %v: %s", l.link, err, out)
		}
		if err := netlab.AddAddress(l.ns, l.link, netip.PrefixFrom(l.addr, 24)); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// curl fetches name from the server on port 69 with curl in the client's
// namespace, asking for blksize and tsize, and returns curl's verbose
// output.
func (n testNet) curl(t testing.TB, name, local string, blksize int) (string, error) {
	t.Helper()
	return run(t, filepath.Dir(local), "ip", n.curlArgs(t, name, local, blksize)...)
}

func (n testNet) curlArgs(t testing.TB, name, local string, blksize int) []string {
	return []string{"netns", "exec", n.clNS, tool(t, "curl", "curl"), "-sS", "-v", "--tftp-blksize", strconv.Itoa(blksize),
		"-o", local, "tftp://" + serverIP.String() + "/" + name}
}

// tftpHPA fetches name with tftp-hpa in the client's namespace.
func (n testNet) tftpHPA(t testing.TB, name, local string) (string, error) {
	t.Helper()
	return run(t, filepath.Dir(local), "ip", n.tftpHPAArgs(t, name, local)...)
}

func (n testNet) tftpHPAArgs(t testing.TB, name, local string) []string {
	return []string{"netns", "exec", n.clNS, tool(t, "tftp", "tftp-hpa"), "-m", "binary", serverIP.String(), "-c", "get", name, local}
}

// nsServer is a server whose socket is in the server's namespace while it
// runs here, in the host's.
type nsServer struct {
	root string
	reg  *prometheus.Registry
}

// How a test server gets its socket in the server's namespace.
const (
	newInNetns  = "New in the namespace"    // New binds Addr on a thread there
	connInNetns = "Conn from the namespace" // the test opens the socket there
)

// startInNetns starts a server on serverIP:69 in n's server namespace, its
// socket opened the way open says, and runs it in a goroutine of this
// process, in the host's namespace.
func (n testNet) startInNetns(t *testing.T, open string, change ...func(*tftp.Config)) nsServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := tftp.Config{
		Addr:       netip.AddrPortFrom(serverIP, 69).String(),
		Root:       t.TempDir(),
		Timeout:    time.Second,
		Retries:    3,
		Registerer: reg,
	}
	for _, f := range change {
		f(&cfg)
	}
	var s *tftp.Server
	err := netlab.Do(n.srvNS, func() error {
		if open == connInNetns {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(serverIP, 69)))
			if err != nil {
				return err
			}
			cfg.Conn = c
		}
		var err error
		s, err = tftp.New(cfg)
		return err
	})
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
	return nsServer{root: cfg.Root, reg: reg}
}

// TestNetns serves from a socket in another network namespace than the
// server's goroutines, in every way the server can get it, to real
// clients in a third namespace: curl with the largest block RFC 2348
// allows, which the server caps to fit the veth's MTU (less the IPv4 and
// UDP headers, 28 bytes), and with an Ethernet-sized one, and tftp-hpa
// with 512-byte blocks.
func TestNetns(t *testing.T) {
	n := newTestNet(t)
	for _, open := range []string{newInNetns, connInNetns} {
		t.Run(open, func(t *testing.T) {
			s := n.startInNetns(t, open)
			want := writeRandom(t, s.root, "images/big.bin", 6<<20+7)
			for _, c := range []struct {
				blksize, granted int // 0: tftp-hpa, no options
			}{{65464, netMTU - 28}, {1468, 1468}, {0, 512}} {
				t.Run(fmt.Sprintf("blksize=%d", c.blksize), func(t *testing.T) {
					local := filepath.Join(t.TempDir(), "big.bin")
					if c.blksize == 0 {
						out, err := n.tftpHPA(t, "images/big.bin", local)
						if err != nil || strings.Contains(out, "Error") {
							t.Fatalf("tftp-hpa: %v\n%s", err, out)
						}
						sameFile(t, local, want)
						return
					}
					out, err := n.curl(t, "images/big.bin", local, c.blksize)
					if err != nil {
						t.Fatalf("curl: %v\n%s", err, out)
					}
					sameFile(t, local, want)
					if line := fmt.Sprintf("blksize parsed from OACK (%d) requested (%d)", c.granted, c.blksize); !strings.Contains(out, line) {
						t.Errorf("curl's output lacks %q:\n%s", line, out)
					}
					if line := fmt.Sprintf("tsize parsed from OACK (%d)", len(want)); !strings.Contains(out, line) {
						t.Errorf("curl's output lacks %q:\n%s", line, out)
					}
				})
			}
			// The server counts a transfer once the client's last
			// acknowledgement has come, maybe after the client ended.
			waitFor(t, "3 transfers ok", func() bool {
				return metric(t, s.reg, "strata_tftp_transfer_duration_seconds", "result", "ok") == 3
			})
			if got, want := metric(t, s.reg, "strata_tftp_sent_bytes_total"), float64(3*len(want)); got != want {
				t.Errorf("bytes sent: got %v, want %v", got, want)
			}
		})
	}
}

// TestNetnsConcurrent runs transfers at once over the veth, with the
// socket in the server's namespace: curl with several block sizes and
// tftp-hpa, each fetching its own file. The files hold their first block
// until every transfer has started, so that all are in flight together.
func TestNetnsConcurrent(t *testing.T) {
	n := newTestNet(t)
	blksizes := []int{65464, 8192, 1468, 1024, 512, 0, 0, 65464} // 0: tftp-hpa
	release := make(chan struct{})
	files := map[string]*blockingFile{}
	contents := map[string][]byte{}
	for i := range blksizes {
		name := fmt.Sprintf("f%d.bin", i)
		b := make([]byte, 2<<20+1000*i)
		rand.Read(b)
		contents[name] = b
		files[name] = &blockingFile{Reader: bytes.NewReader(b), started: make(chan struct{}), release: release}
	}
	s := n.startInNetns(t, connInNetns, func(c *tftp.Config) {
		c.Virtual = func(path string, _ netip.Addr) (io.ReadSeekCloser, int64, bool) {
			f, ok := files[path]
			if !ok {
				return nil, 0, false
			}
			return f, f.Size(), true
		}
	})
	dir := t.TempDir()
	procs := make([]*proc, len(blksizes))
	for i, blksize := range blksizes {
		name := fmt.Sprintf("f%d.bin", i)
		args := n.curlArgs(t, name, filepath.Join(dir, name), blksize)
		if blksize == 0 {
			args = n.tftpHPAArgs(t, name, filepath.Join(dir, name))
		}
		procs[i] = start(t, "ip", args...)
	}
	for i := range blksizes {
		select {
		case <-files[fmt.Sprintf("f%d.bin", i)].started:
		case <-procs[i].exited:
			t.Fatalf("client %d ended before its transfer started: %v\n%s", i, procs[i].err, procs[i].out.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("transfer %d did not start", i)
		}
	}
	if got := metric(t, s.reg, "strata_tftp_transfers_in_flight"); got != float64(len(blksizes)) {
		t.Errorf("transfers in flight: got %v, want %d", got, len(blksizes))
	}
	close(release)
	var total float64
	for i, p := range procs {
		name := fmt.Sprintf("f%d.bin", i)
		if err := p.wait(t); err != nil || strings.Contains(p.out.String(), "Error") {
			t.Errorf("client %d (blksize %d): %v\n%s", i, blksizes[i], err, p.out.String())
			continue
		}
		sameFile(t, filepath.Join(dir, name), contents[name])
		total += float64(len(contents[name]))
	}
	waitFor(t, "the transfers to end", func() bool { return metric(t, s.reg, "strata_tftp_transfers_in_flight") == 0 })
	if got := metric(t, s.reg, "strata_tftp_transfer_duration_seconds", "result", "ok"); got != float64(len(blksizes)) {
		t.Errorf("transfers ok: got %v, want %d", got, len(blksizes))
	}
	if got := metric(t, s.reg, "strata_tftp_sent_bytes_total"); got != total {
		t.Errorf("bytes sent: got %v, want %v", got, total)
	}
}
