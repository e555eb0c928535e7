package lab_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/agent"
	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/lab/vm"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/httpboot"
	"github.com/stratacloud/strata/pxe/ra"
	"github.com/stratacloud/strata/pxe/tftp"
)

// BenchmarkBootToMarker network-boots the same qemu VM (1 vCPU, 512 MiB,
// TCG) into the deploy ramdisk, once through Strata's servers and once
// through dnsmasq, and measures the wall time from starting qemu to the
// agent's banner (agent.Banner) on the serial console. It does so with
// SeaBIOS and qemu's iPXE NIC ROM, and with OVMF and no NIC ROM (OVMF's own
// PXE stack fetches snponly.efi by TFTP, then iPXE asks DHCP again and
// gets the script). Each (server, firmware) pair boots
// STRATA_BOOT_BENCH_RUNS times (default 2), the servers alternating which
// goes first, and the table gives the medians and Strata's time over
// dnsmasq's. With STRATA_BENCH_KEEP set, the VMs' consoles and the
// servers' files are kept (their directory is logged).
//
//	go test -run '^$' -bench BootToMarker -benchtime 1x ./lab/ -v
//
// Both sides hand out the same kernel (the Debian kernel, 8.2 MB), the
// same ramdisk (images.InstallDeploy with strata-agent, 7.7 MB) and the
// same kernel command line, from 192.168.87.1 on a bridge inside a
// namespace made for the run:
//
//   - Strata: pxe/dhcp (managed mode, leases in memory) answers firmware
//     with the iPXE loader on pxe/tftp, and iPXE with the URL of
//     pxe/httpboot's entry script, which chains to the node's script (a
//     node in "inspect wait", so the deploy ramdisk); iPXE fetches the
//     kernel and the ramdisk over HTTP.
//   - dnsmasq: DHCP and its built-in TFTP; iPXE (user class "iPXE") gets
//     tftp://192.168.87.1/boot.ipxe, which is the script httpboot renders
//     for the node with its URLs turned into tftp:// ones, so the kernel
//     and the ramdisk come over TFTP too.
//
// Where the time goes (from a packet capture on the bridge and the
// milestones the benchmark logs, on a shared 2-core host under TCG):
//
//   - The kernel and the ramdisk: 0.3 to 1 s over HTTP, 1.2 to 3 s over
//     TFTP, depending on the host's load. TFTP is lock-step, one block and
//     then its acknowledgement; Debian's iPXE asks for 1432-byte blocks
//     (blksize 1432, no windowsize) and dnsmasq grants them, so 15.9 MB is
//     11,100 round trips, 0.1 to 0.3 ms each through the tap (with
//     512-byte blocks it would be 31,000; over a routed network each round
//     trip costs a millisecond or more). HTTP is one TCP stream with many
//     segments in flight. That is the whole of Strata's advantage here.
//   - Everything else is the same on both sides, and is most of the time.
//     iPXE's "Configuring" takes about 18 s: its DHCP 3 s, because after
//     the first offer it waits for a ProxyDHCP offer that never comes (its
//     DISCOVER goes out again 1 s later, its REQUEST 3 s after the first);
//     then Debian's iPXE (1.0.0+git-20190125) does not finish until IPv6
//     autoconfiguration gives up too, after router solicitations 0.25,
//     0.5, 1, 2, 4 and 8 s apart that no router answers. OVMF's own PXE
//     boot adds about 8 s before iPXE (it gathers DHCP offers for 4 s
//     before it requests one). Linux up to the agent takes 6 to 9 s.
//   - dnsmasq pings an address before it offers it (3 s from DISCOVER to
//     OFFER), which iPXE's IPv6 wait and OVMF's 4 s of gathering offers
//     hide.
//
// With a router advertisement on the segment (dnsmasq --enable-ra) and
// iPXE's no-ProxyDHCP option (encapsulated option 175.176 = 1), the same
// dnsmasq BIOS boot took 9.4 s instead of about 25; Strata's DHCP server
// sends neither.
func BenchmarkBootToMarker(b *testing.B) {
	env := newBootEnv(b)
	runs := 2
	if v := os.Getenv("STRATA_BOOT_BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("STRATA_BOOT_BENCH_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	firmwares := []string{vm.FirmwareBIOS, vm.FirmwareUEFI}
	servers := []bootServer{
		{"strata", env.startStrata},
		{"dnsmasq", env.startDnsmasq},
	}
	results := map[string][]bootTimes{} // by firmware/server
	seq := 0
	for b.Loop() {
		for i := range runs {
			for _, fw := range firmwares {
				for k := range servers {
					srv := servers[(i+k)%len(servers)]
					seq++
					label := fmt.Sprintf("%s-%s-%d", fw, srv.name, seq)
					stop := srv.start(b, fw)
					t, err := env.boot(b, fw, label)
					if err != nil {
						logs := stop()
						b.Fatalf("%s: %v\n%s log:\n%s", label, err, srv.name, tail(logs, 4000))
					}
					// Kept with the console under STRATA_BENCH_KEEP.
					os.WriteFile(filepath.Join(env.dir, label, srv.name+".log"), []byte(stop()), 0o644)
					b.Logf("%s: marker after %.1f s", label, t.marker().Seconds())
					key := fw + "/" + srv.name
					results[key] = append(results[key], t)
				}
			}
		}
	}

	var table bytes.Buffer
	w := tabwriter.NewWriter(&table, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "firmware\tstrata s\tdnsmasq s\tstrata/dnsmasq\t\n")
	for _, fw := range firmwares {
		s := median(results[fw+"/strata"], milestoneMarker)
		d := median(results[fw+"/dnsmasq"], milestoneMarker)
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.2f\t\n", fw, s.Seconds(), d.Seconds(), s.Seconds()/d.Seconds())
		b.ReportMetric(s.Seconds(), "strata-"+fw+"-s")
		b.ReportMetric(d.Seconds(), "dnsmasq-"+fw+"-s")
		b.ReportMetric(s.Seconds()/d.Seconds(), "strata/dnsmasq-"+fw)
	}
	w.Flush()
	b.Logf("power-on to %q, median of %d boots each:\n%s", agent.Banner, len(results[firmwares[0]+"/strata"]), table.String())

	table.Reset()
	w = tabwriter.NewWriter(&table, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "firmware\tserver")
	for _, m := range milestones {
		fmt.Fprintf(w, "\t%s", m.name)
	}
	fmt.Fprintf(w, "\t\n")
	for _, fw := range firmwares {
		for _, srv := range servers {
			fmt.Fprintf(w, "%s\t%s", fw, srv.name)
			for i := range milestones {
				fmt.Fprintf(w, "\t%.1f", median(results[fw+"/"+srv.name], i).Seconds())
			}
			fmt.Fprintf(w, "\t\n")
		}
	}
	w.Flush()
	b.Logf("seconds from power-on to each milestone on the console (medians):\n%s", table.String())
}

// The bench network: a bridge in the run's namespace, the servers'
// address on it and the VM's tap.
const (
	benchBridge = "br0"
	benchTap    = "tap0"
	benchHTTP   = 8080
)

var (
	benchServer = netip.MustParseAddr("192.168.87.1")
	benchSubnet = netip.MustParsePrefix("192.168.87.0/24")
	benchPool   = dhcp.Range{Start: netip.MustParseAddr("192.168.87.100"), End: netip.MustParseAddr("192.168.87.200")}
	benchMAC    = net.HardwareAddr{0x52, 0x54, 0x00, 0x87, 0x00, 0x01}
	benchNode   = "6b8a1f2e-87b0-4c5d-9e3f-0a1b2c3d4e87"
)

// bootEnv is what every boot of the benchmark shares: the namespace, the
// deploy kernel and ramdisk, the TFTP root.
type bootEnv struct {
	ns      string
	dir     string
	dnsmasq string
	// tftpRoot holds the iPXE loaders (served by both TFTP servers),
	// dnsmasq's boot.ipxe, and images/ with the deploy kernel and
	// ramdisk (served over HTTP by Strata, over TFTP by dnsmasq).
	tftpRoot string
}

// newBootEnv checks the tools, builds the deploy ramdisk and the network.
// Everything is removed when the benchmark ends, whatever its outcome.
func newBootEnv(b testing.TB) *bootEnv {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("the boot benchmark needs root (network namespaces, tap devices)")
	}
	for _, p := range []string{vm.DefaultOVMFCode, vm.DefaultOVMFVars, vm.IPXEROM} {
		if _, err := os.Stat(p); err != nil {
			b.Fatalf("%s is missing: run `make deps` (Debian's ovmf and ipxe-qemu)", p)
		}
	}
	if _, err := exec.LookPath(vm.DefaultQEMU); err != nil {
		b.Fatalf("%s is missing: run `make deps` (Debian's qemu-system-x86)", vm.DefaultQEMU)
	}
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		dnsmasq = "/usr/sbin/dnsmasq" // not on PATH for every user
		if _, err := os.Stat(dnsmasq); err != nil {
			b.Fatal("dnsmasq is missing: run `make deps` (Debian's dnsmasq-base)")
		}
	}
	k, err := images.FindKernel("")
	if err != nil {
		b.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "strata-bootbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if b.Failed() || os.Getenv("STRATA_BENCH_KEEP") != "" {
			b.Logf("consoles and server files kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	env := &bootEnv{dir: dir, dnsmasq: dnsmasq}
	env.tftpRoot = filepath.Join(env.dir, "tftp")
	agentBin := filepath.Join(env.dir, "strata-agent")
	build := exec.Command("go", "build", "-o", agentBin, "github.com/stratacloud/strata/cmd/strata-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building strata-agent: %v\n%s", err, out)
	}
	kernel, ramdisk, err := images.InstallDeploy(filepath.Join(env.tftpRoot, "images"), k, agentBin)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("deploy kernel %s: %.1f MB, ramdisk: %.1f MB", k.Release, float64(kernel.Size)/1e6, float64(ramdisk.Size)/1e6)
	for _, name := range []string{"undionly.kpxe", "snponly.efi"} {
		if err := copyLoader(filepath.Join("/usr/lib/ipxe", name), filepath.Join(env.tftpRoot, name)); err != nil {
			b.Fatalf("iPXE loader (run `make deps`, Debian's ipxe): %v", err)
		}
	}
	if err := env.writeTFTPScript(); err != nil {
		b.Fatal(err)
	}

	id := make([]byte, 3)
	rand.Read(id)
	env.ns = "bootbench-" + hex.EncodeToString(id)
	if err := netlab.CreateNamespace(env.ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := netlab.DeleteNamespace(env.ns); err != nil {
			b.Errorf("delete namespace %s: %v", env.ns, err)
		}
	})
	if err := netlab.AddBridge(env.ns, benchBridge); err != nil {
		b.Fatal(err)
	}
	if err := netlab.AddAddress(env.ns, benchBridge, netip.PrefixFrom(benchServer, benchSubnet.Bits())); err != nil {
		b.Fatal(err)
	}
	if err := netlab.AddTap(env.ns, benchTap, benchBridge); err != nil {
		b.Fatal(err)
	}
	return env
}

func copyLoader(src, dst string) error {
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// node is the VM's node, in a state that boots the deploy ramdisk.
func node(firmware string) *inventory.Node {
	return &inventory.Node{
		UUID:           benchNode,
		Name:           "bootbench",
		ProvisionState: inventory.StateInspectWait,
		BootMode:       firmware,
	}
}

// httpBase is where Strata's HTTP boot server is reached.
func httpBase() string {
	return "http://" + netip.AddrPortFrom(benchServer, benchHTTP).String()
}

// bootHandler is Strata's HTTP boot handler with the one node.
func (e *bootEnv) bootHandler(firmware string, log *slog.Logger) (http.Handler, error) {
	n := node(firmware)
	return httpboot.New(httpboot.Config{
		Nodes: httpboot.NodesFunc(func(_ context.Context, mac net.HardwareAddr) (*inventory.Node, error) {
			if !bytes.Equal(mac, benchMAC) {
				return nil, inventory.ErrNotFound
			}
			c := *n
			return &c, nil
		}),
		Artifacts:     httpboot.FS(os.DirFS(filepath.Join(e.tftpRoot, "images"))),
		BaseURL:       httpBase(),
		APIURL:        "http://" + benchServer.String() + ":6385",
		DeployKernel:  images.DeployKernelName,
		DeployRamdisk: images.DeployRamdiskName,
		// Under TCG on a busy host the kernel's check that the IO-APIC
		// timer ticks can fail, and the kernel panics; both sides get
		// the same command line with it.
		KernelArgs: []string{"no_timer_check"},
		Logger:     log,
	})
}

// writeTFTPScript writes dnsmasq's boot.ipxe: the script Strata renders
// for the node, fetching over TFTP instead of HTTP, so that both sides
// boot the same kernel with the same command line.
func (e *bootEnv) writeTFTPScript() error {
	h, err := e.bootHandler(vm.FirmwareBIOS, nil)
	if err != nil {
		return err
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boot/"+strings.ReplaceAll(benchMAC.String(), ":", "-")+".ipxe", nil))
	script := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(script, "console=ttyS0") {
		return fmt.Errorf("httpboot's script for %v: %d\n%s", benchMAC, rec.Code, script)
	}
	from, to := httpBase()+"/images/", "tftp://"+benchServer.String()+"/images/"
	if n := strings.Count(script, from); n != 2 {
		return fmt.Errorf("httpboot's script fetches %d artifacts from %s, not a kernel and a ramdisk:\n%s", n, from, script)
	}
	script = strings.ReplaceAll(script, from, to)
	return os.WriteFile(filepath.Join(e.tftpRoot, "boot.ipxe"), []byte(script), 0o644)
}

// bootServer is one side of the comparison. start serves DHCP and the
// boot files on the bench network; the function it returns stops them
// and returns their log. Both run again for every boot, so that only one
// DHCP server is ever on the network.
type bootServer struct {
	name  string
	start func(b testing.TB, firmware string) (stop func() string)
}

// onceStop makes a stop function safe to call twice, and calls it at
// cleanup if the benchmark stops first.
func onceStop(b testing.TB, stop func() string) func() string {
	var once sync.Once
	var out string
	f := func() string {
		once.Do(func() { out = stop() })
		return out
	}
	b.Cleanup(func() { f() })
	return f
}

// syncBuffer collects a log written from several goroutines or a process.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// directory is the DHCP server's view of the one node.
type directory struct{ firmware string }

func (d directory) Host(_ context.Context, mac net.HardwareAddr) (dhcp.Host, error) {
	if !bytes.Equal(mac, benchMAC) {
		return dhcp.Host{}, fmt.Errorf("%w: %v", dhcp.ErrUnknownHost, mac)
	}
	return dhcp.Host{NodeUUID: benchNode, PXE: true, BootMode: d.firmware}, nil
}

// startStrata runs pxe/dhcp, pxe/tftp and pxe/httpboot in this process,
// their sockets in the bench namespace, wired as the undercloud wires
// them (undercloud/netboot.go).
func (e *bootEnv) startStrata(b testing.TB, firmware string) func() string {
	b.Helper()
	return e.serveStrata(b, firmware, dhcp.Managed)
}

// serveStrata is startStrata with the DHCP server in the given mode: in
// proxy mode it hands out boot programs and scripts only, beside another
// server's addresses.
func (e *bootEnv) serveStrata(b testing.TB, firmware string, mode dhcp.Mode) func() string {
	b.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	handler, err := e.bootHandler(firmware, log.With("part", "httpboot"))
	if err != nil {
		b.Fatal(err)
	}
	var leases dhcp.Leases // none in proxy mode: the other server's
	if mode == dhcp.Managed {
		leases = dhcp.NewMemoryLeases()
	}
	d, err := dhcp.New(dhcp.Config{
		Interface:     benchBridge,
		Netns:         "/var/run/netns/" + e.ns,
		Mode:          mode,
		ServerIP:      benchServer,
		Subnet:        benchSubnet,
		Pool:          benchPool,
		Directory:     directory{firmware},
		Leases:        leases,
		IPXEScriptURL: func(net.HardwareAddr) string { return httpBase() + "/boot.ipxe" },
		// The probe for another DHCP server runs before the clock starts;
		// a shorter one only makes the benchmark shorter.
		ProbeTimeout: time.Second,
		Logger:       log.With("part", "dhcp"),
	})
	if err != nil {
		b.Fatal(err)
	}
	// New binds the TFTP socket in the namespace of the thread it runs
	// on, and the server then serves in that namespace.
	var ts *tftp.Server
	var rs *ra.Server // the undercloud's router advertisements (its default)
	err = netlab.Do(e.ns, func() error {
		var err error
		ts, err = tftp.New(tftp.Config{
			Addr:   netip.AddrPortFrom(benchServer, 69).String(),
			Root:   e.tftpRoot,
			Logger: log.With("part", "tftp"),
		})
		if err != nil {
			return err
		}
		rs, err = ra.New(benchBridge, log.With("part", "ra"))
		if err != nil {
			ts.Close()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := netlab.Listen(e.ns, "tcp", netip.AddrPortFrom(benchServer, benchHTTP).String())
	if err != nil {
		ts.Close()
		b.Fatal(err)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return d.Run(ctx) })
	g.Go(func() error { return ts.Run(ctx) })
	g.Go(func() error { return rs.Run(ctx) })
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	stop := onceStop(b, func() string {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(sctx)
		scancel()
		if err := g.Wait(); err != nil {
			b.Errorf("strata's servers: %v", err)
		}
		return logs.String()
	})
	ready := make(chan error, 1)
	go func() { ready <- g.Wait() }()
	select {
	case <-d.Ready():
	case err := <-ready:
		out := stop()
		b.Fatalf("strata's DHCP server did not start: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		out := stop()
		b.Fatalf("strata's DHCP server not ready after 30s\n%s", out)
	}
	return stop
}

// startDnsmasq runs dnsmasq in the foreground in the bench namespace:
// DHCP on the bridge, TFTP from the TFTP root, no DNS.
func (e *bootEnv) startDnsmasq(b testing.TB, _ string) func() string {
	b.Helper()
	return e.serveDnsmasq(b, true)
}

// serveDnsmasq is startDnsmasq; without boot, dnsmasq hands out
// addresses only: no boot file, no TFTP, as a site's DHCP server that
// knows nothing of network boot.
func (e *bootEnv) serveDnsmasq(b testing.TB, boot bool) func() string {
	b.Helper()
	dir, err := os.MkdirTemp(e.dir, "dnsmasq-")
	if err != nil {
		b.Fatal(err)
	}
	args := []string{
		"--keep-in-foreground",
		"--conf-file=/dev/null",
		"--port=0", // no DNS
		"--no-resolv", "--no-hosts",
		"--user=root", // the temporary directories are root's alone
		"--log-facility=-",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"),
		"--dhcp-leasefile=" + filepath.Join(dir, "dnsmasq.leases"),
		"--interface=" + benchBridge,
		"--bind-interfaces",
		fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.0,1h", benchPool.Start, benchPool.End),
	}
	ready := "DHCP, IP range" // the last line dnsmasq logs as it starts
	if boot {
		ready = "TFTP root is"
		args = append(args, e.dnsmasqBootArgs()...)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(e.dnsmasq, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := netlab.Start(e.ns, cmd); err != nil {
		b.Fatalf("start dnsmasq: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := onceStop(b, func() string {
		// By its PID: SIGTERM, then SIGKILL if it lingers.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return logs.String()
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), ready) {
		select {
		case <-done:
			b.Fatalf("dnsmasq exited at start: %s\n%s", cmd.ProcessState, logs)
		default:
		}
		if time.Now().After(deadline) {
			out := stop()
			b.Fatalf("dnsmasq not ready after 30s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop
}

// dnsmasqBootArgs make dnsmasq the boot server too: TFTP from the TFTP
// root, and the loader or the script by client.
func (e *bootEnv) dnsmasqBootArgs() []string {
	script := "tftp://" + benchServer.String() + "/boot.ipxe"
	return []string{
		"--enable-tftp",
		"--tftp-root=" + e.tftpRoot,
		// iPXE says so in its user class (option 77); UEFI firmware in
		// its architecture (option 93: 7 and 9 are x86-64 UEFI).
		"--dhcp-userclass=set:ipxe,iPXE",
		"--dhcp-match=set:efi64,option:client-arch,7",
		"--dhcp-match=set:efi64,option:client-arch,9",
		"--dhcp-boot=tag:ipxe," + script,
		"--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi",
		"--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
	}
}

// milestone is a line on the console, in the order they come.
type milestone struct {
	name string
	re   *regexp.Regexp
}

// The milestones of a boot. iPXE's progress ("... 42%" and backspaces)
// stays on the line of the URL, which ends with "ok".
var milestones = []milestone{
	{"iPXE", regexp.MustCompile(`Open Source Network Boot Firmware`)},
	{"configured", regexp.MustCompile(`Configuring \([^\n]*ok`)},
	{"kernel loaded", regexp.MustCompile(`deploy\.kernel\.\.\.[^\n]*ok`)},
	{"ramdisk loaded", regexp.MustCompile(`deploy\.initramfs\.\.\.[^\n]*ok`)},
	{"Linux", regexp.MustCompile(`Linux version`)},
	{"agent", regexp.MustCompile(regexp.QuoteMeta(agent.Banner))},
}

var milestoneMarker = len(milestones) - 1

// bootTimes are the times since power-on at which each milestone appeared
// (zero for one never seen).
type bootTimes []time.Duration

func (t bootTimes) marker() time.Duration { return t[milestoneMarker] }

// bootTimeout bounds one boot: a TFTP fetch under TCG is slow, but not
// this slow.
const bootTimeout = 10 * time.Minute

// boot powers on a fresh VM with the given firmware, booting from the
// network, and times the milestones on its console until the agent's
// banner.
func (e *bootEnv) boot(b testing.TB, firmware, label string) (bootTimes, error) {
	b.Helper()
	cfg := vm.Config{
		Name:      "bootbench-" + label,
		Dir:       filepath.Join(e.dir, label),
		Accel:     vm.AccelTCG,
		CPUs:      1,
		MemoryMiB: 512,
		Firmware:  firmware,
		NICs:      []vm.NIC{{Tap: benchTap, MAC: benchMAC}},
		Start:     func(c *exec.Cmd) error { return netlab.Start(e.ns, c) },
	}
	if firmware == vm.FirmwareUEFI {
		// OVMF's own PXE stack, as on a UEFI server's NIC.
		cfg.NICROM = vm.NoROM
	}
	m, err := vm.New(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.PowerOff(ctx, false); err != nil {
			b.Errorf("%s: %v", label, err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootPXE, Persistent: true, UEFI: firmware == vm.FirmwareUEFI}); err != nil {
		return nil, err
	}
	console := filepath.Join(cfg.Dir, "console.log")
	start := time.Now()
	if err := m.PowerOn(ctx); err != nil {
		return nil, err
	}
	times := make(bootTimes, len(milestones))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out, _ := os.ReadFile(console)
		now := time.Since(start)
		for i, ms := range milestones {
			if times[i] == 0 && ms.re.Match(out) {
				times[i] = now
			}
		}
		if times.marker() != 0 {
			return times, nil
		}
		if bytes.Contains(out, []byte("No bootable device")) { // SeaBIOS has tried everything
			return nil, fmt.Errorf("the firmware found nothing to boot; console:\n%s", tail(string(out), 4000))
		}
		if bytes.Contains(out, []byte("Kernel panic")) {
			return nil, fmt.Errorf("the kernel panicked; console:\n%s", tail(string(out), 4000))
		}
		if on, _ := m.PoweredOn(ctx); !on {
			return nil, fmt.Errorf("qemu exited before the agent started; console:\n%s", tail(string(out), 4000))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no %q on the console after %s; console:\n%s", agent.Banner, bootTimeout, tail(string(out), 4000))
		case <-tick.C:
		}
	}
}

// median is the median time of milestone i over ts (the mean of the middle
// two for an even count), among the boots that saw it.
func median(ts []bootTimes, i int) time.Duration {
	var d []time.Duration
	for _, t := range ts {
		if t[i] != 0 {
			d = append(d, t[i])
		}
	}
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
