package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/httpboot"
	"github.com/stratacloud/strata/pxe/tftp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testImages != nil {
		os.RemoveAll(filepath.Dir(testImages[false]))
	}
	if deployDir != "" {
		os.RemoveAll(deployDir)
	}
	os.Exit(code)
}

// The test network: a bridge in a namespace of the test's, with Strata's
// DHCP, TFTP and HTTP boot servers and a stand-in for the undercloud's
// agent API on it.
var (
	netServer = netip.MustParseAddr("192.168.78.1")
	netSubnet = netip.MustParsePrefix("192.168.78.0/24")
	netPool   = dhcp.Range{Start: netip.MustParseAddr("192.168.78.100"), End: netip.MustParseAddr("192.168.78.150")}
	netBase   = "http://192.168.78.1:8088"
)

const bridge = "br0"

// testNet is the test network and its servers.
type testNet struct {
	t      *testing.T
	prefix string // of the namespaces: per run
	fabric string
	mu     sync.Mutex
	nodes  map[string]*inventory.Node // by MAC
	// lookups are the agent lookups' queries; inventories the inventories
	// the agents sent, by node.
	lookups     []string
	inventories map[string][]byte
}

// requireRoot fails a test that needs root and the tools `make deps`
// installs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the simulated machines need root (network namespaces)")
	}
	for _, tool := range []string{"mcopy", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps`", tool)
		}
	}
}

// newNamespaces returns a prefix for the test's namespaces; every
// namespace made with it is removed when the test ends.
func newNamespaces(t *testing.T) (prefix string, mkns func(suffix string) string) {
	b := make([]byte, 3)
	rand.Read(b)
	prefix = "simt" + hex.EncodeToString(b)
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := netlab.DeleteNamespace(made[i]); err != nil {
				t.Errorf("delete namespace %s: %v", made[i], err)
			}
		}
	})
	return prefix, func(suffix string) string {
		ns := prefix + "-" + suffix
		if err := netlab.CreateNamespace(ns); err != nil {
			t.Fatal(err)
		}
		made = append(made, ns)
		return ns
	}
}

// startNet builds the network and starts its servers, which stop when
// the test ends.
func startNet(t *testing.T, imagesDir string) (*testNet, func(string) string) {
	t.Helper()
	prefix, mkns := newNamespaces(t)
	n := &testNet{t: t, prefix: prefix, nodes: map[string]*inventory.Node{}, inventories: map[string][]byte{}}
	n.fabric = mkns("fab")
	if err := netlab.AddBridge(n.fabric, bridge); err != nil {
		t.Fatal(err)
	}
	if err := netlab.AddAddress(n.fabric, bridge, netip.PrefixFrom(netServer, netSubnet.Bits())); err != nil {
		t.Fatal(err)
	}
	tftpRoot := t.TempDir()
	for _, loader := range []string{"undionly.kpxe", "snponly.efi"} {
		data, err := os.ReadFile(filepath.Join("/usr/lib/ipxe", loader))
		if err != nil {
			t.Fatalf("iPXE loader (make deps installs Debian's ipxe): %v", err)
		}
		os.WriteFile(filepath.Join(tftpRoot, loader), data, 0o644)
	}

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boot, err := httpboot.New(httpboot.Config{
		Nodes:         httpboot.NodesFunc(n.lookupNode),
		Artifacts:     httpboot.FS(os.DirFS(imagesDir)),
		BaseURL:       netBase,
		APIURL:        netBase,
		DeployKernel:  images.DeployKernelName,
		DeployRamdisk: images.DeployRamdiskName,
		Logger:        log.With("part", "httpboot"),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", boot)
	mux.HandleFunc("GET /v1/lookup", n.serveLookup)
	mux.HandleFunc("POST /v1/continue_inspection", n.serveInventory)
	mux.HandleFunc("POST /v1/heartbeat/{node}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error_message": "done with this boot"}`, http.StatusConflict)
	})
	d, err := dhcp.New(dhcp.Config{
		Interface:     bridge,
		Netns:         "/var/run/netns/" + n.fabric,
		ServerIP:      netServer,
		Subnet:        netSubnet,
		Pool:          netPool,
		Directory:     n,
		Leases:        dhcp.NewMemoryLeases(),
		IPXEScriptURL: func(net.HardwareAddr) string { return netBase + "/boot.ipxe" },
		ProbeTimeout:  500 * time.Millisecond,
		Logger:        log.With("part", "dhcp"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ts *tftp.Server
	err = netlab.Do(n.fabric, func() error {
		var err error
		ts, err = tftp.New(tftp.Config{Addr: netip.AddrPortFrom(netServer, 69).String(), Root: tftpRoot, Logger: log.With("part", "tftp")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := netlab.Listen(n.fabric, "tcp", "192.168.78.1:8088")
	if err != nil {
		ts.Close()
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return d.Run(ctx) })
	g.Go(func() error { return ts.Run(ctx) })
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	t.Cleanup(func() {
		cancel()
		hs.Close()
		if err := g.Wait(); err != nil {
			t.Errorf("servers: %v", err)
		}
		if t.Failed() {
			t.Logf("servers' log:\n%s", tail(logs.String(), 4000))
		}
	})
	select {
	case <-d.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("the DHCP server is not ready:\n%s", logs.String())
	}
	return n, mkns
}

// Host tells the DHCP server which MACs are nodes'.
func (n *testNet) Host(_ context.Context, mac net.HardwareAddr) (dhcp.Host, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node, ok := n.nodes[mac.String()]
	if !ok {
		return dhcp.Host{}, fmt.Errorf("%w: %v", dhcp.ErrUnknownHost, mac)
	}
	return dhcp.Host{NodeUUID: node.UUID, PXE: true}, nil
}

func (n *testNet) lookupNode(_ context.Context, mac net.HardwareAddr) (*inventory.Node, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node, ok := n.nodes[mac.String()]
	if !ok {
		return nil, inventory.ErrNotFound
	}
	c := *node
	return &c, nil
}

func (n *testNet) setState(mac net.HardwareAddr, state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[mac.String()].ProvisionState = state
}

// serveLookup is the agent API's lookup: the node by its MAC, with a
// token.
func (n *testNet) serveLookup(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.lookups = append(n.lookups, r.URL.RawQuery)
	var node *inventory.Node
	for _, a := range strings.Split(r.URL.Query().Get("addresses"), ",") {
		if nd, ok := n.nodes[a]; ok {
			node = nd
		}
	}
	n.mu.Unlock()
	if node == nil {
		http.Error(w, `{"error_message": "no such node"}`, http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"node":   map[string]any{"uuid": node.UUID, "name": node.Name, "provision_state": node.ProvisionState},
		"config": map[string]any{"agent_token": "token-" + node.UUID},
	})
}

func (n *testNet) serveInventory(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token     string          `json:"agent_token"`
		Inventory json.RawMessage `json:"inventory"`
	}
	id := r.URL.Query().Get("node_uuid")
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Token != "token-"+id {
		http.Error(w, `{"error_message": "bad request"}`, http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	n.inventories[id] = body.Inventory
	n.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (n *testNet) inventory(id string) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inventories[id]
}

// The deploy kernel and ramdisk, built once per run around the real
// agent.
var (
	deployOnce sync.Once
	deployDir  string
	deployErr  error
)

// deployImages builds strata-agent, and a deploy kernel and ramdisk as
// the lab's (images.InstallDeploy) into a directory the test run shares:
// the Debian kernel, and a gzip'd newc cpio with the agent as /init. The
// ramdisk leaves out the modules, which a simulated machine does not
// load, and is compressed by gzip(1): images.Ramdisk's compression takes
// most of a minute under the race detector. (TestDeployRamdisk checks
// images.Ramdisk's own output.)
func deployImages(t *testing.T) string {
	t.Helper()
	deployOnce.Do(func() {
		deployErr = buildDeployImages()
	})
	if deployErr != nil {
		t.Fatal(deployErr)
	}
	return filepath.Join(deployDir, "images")
}

func buildDeployImages() error {
	k, err := images.FindKernel("")
	if err != nil {
		return err
	}
	if deployDir, err = os.MkdirTemp("", "strata-sim-deploy-"); err != nil {
		return err
	}
	agent := filepath.Join(deployDir, "strata-agent")
	build := exec.Command("go", "build", "-o", agent, "github.com/stratacloud/strata/cmd/strata-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building strata-agent: %v\n%s", err, out)
	}
	dir := filepath.Join(deployDir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kernel, err := os.ReadFile(k.Vmlinuz())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, images.DeployKernelName), kernel, 0o644); err != nil {
		return err
	}
	init, err := os.ReadFile(agent)
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	w := cpio.Newc.Writer(&archive)
	for _, r := range []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	} {
		if err := w.WriteRecord(r); err != nil {
			return err
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	gz := exec.Command("gzip", "-1", "-n", "-c")
	gz.Stdin = &archive
	out, err := gz.Output()
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, images.DeployRamdiskName), out, 0o644)
}

// node is a machine of the test: its config, with a namespace of its own
// holding eth0, the end of a veth on the test's bridge.
func (n *testNet) node(t *testing.T, mkns func(string) string, i int, firmware string) (*Machine, net.HardwareAddr) {
	t.Helper()
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x5e, 0x00, byte(i)}
	name := fmt.Sprintf("node-%d", i)
	ns := mkns(fmt.Sprintf("n%d", i))
	if err := netlab.AddVeth(n.fabric, fmt.Sprintf("sv%d", i), bridge, ns, "eth0"); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("6c1f6a4e-36b8-4a4f-8a8e-1d2b3c4d5e%02x", i)
	node := &inventory.Node{UUID: id, Name: name, ProvisionState: inventory.StateInspectWait, BootMode: firmware}
	n.mu.Lock()
	n.nodes[mac.String()] = node
	n.mu.Unlock()
	m, err := New(Config{
		Name: name, Dir: t.TempDir(), Netns: ns, CPUs: 2, MemoryMiB: 1536, Firmware: firmware,
		Disks: []Disk{{SizeBytes: 4 << 30, Serial: name + "-disk0"}, {SizeBytes: 8 << 30, Serial: name + "-disk1"}},
		NICs:  []NIC{{Name: "eth0", MAC: mac}}, UUID: strings.ToUpper(id), Serial: name,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m, mac
}

// TestNetbootAndDiskboot network-boots a BIOS and a UEFI machine from
// Strata's DHCP, TFTP and HTTP boot servers into the real deploy ramdisk:
// the agent runs as its /init in the machine's namespace, gets its
// address by DHCP, looks its node up by MAC and sends an inventory that
// is the machine's. Then each machine, with the test image on its disk,
// network-boots a node that is active: the script sends the firmware to
// the disk (sanboot on BIOS; exit to the next boot device on UEFI), whose
// boot entry runs the image's initramfs, which prints its marker.
func TestNetbootAndDiskboot(t *testing.T) {
	requireRoot(t)
	imagesDir := deployImages(t)
	n, mkns := startNet(t, imagesDir)
	for i, firmware := range []string{FirmwareBIOS, FirmwareUEFI} {
		m, mac := n.node(t, mkns, i, firmware)
		t.Run(firmware, func(t *testing.T) {
			t.Parallel()
			n.netbootAgent(t, m, mac)
			n.bootImage(t, m, mac, firmware == FirmwareUEFI)
		})
	}
}

func (n *testNet) netbootAgent(t *testing.T, m *Machine, mac net.HardwareAddr) {
	ctx := context.Background()
	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootPXE}); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(m.cfg.UUID)
	var sent []byte
	poll(t, m, "the agent's inventory", 90*time.Second, func() bool {
		sent = n.inventory(id)
		return sent != nil
	})
	console := readConsole(m)
	want := []string{"iPXE", "/boot.ipxe... ok", "/images/deploy.kernel... ok", "/images/deploy.initramfs... ok", "strata-agent: started", "leased from 192.168.78.1"}
	if m.cfg.Firmware == FirmwareUEFI {
		want = append(want, "NBP filename is snponly.efi")
	}
	if missing := contains(console, want...); len(missing) > 0 {
		t.Errorf("the console lacks %q:\n%s", missing, console)
	}
	if b := m.Boot(); b.Device != bmc.BootNone {
		t.Errorf("the one-time boot override is still %+v", b)
	}

	// What the agent sent is what the machine's hardware view shows,
	// with the NIC it booted from and the address it leased.
	var got inventory.Hardware
	if err := json.Unmarshal(sent, &got); err != nil {
		t.Fatal(err)
	}
	wantHW := m.Inventory()
	if len(got.Interfaces) != 1 {
		t.Fatalf("interfaces: %+v", got.Interfaces)
	}
	addr := got.Interfaces[0].IPv4Address
	if !netPool.Contains(addr) {
		t.Errorf("the agent's address %v is not from the pool", addr)
	}
	if err := wantHW.SetBootInterface(mac, addr); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantHW, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("the inventory sent (-want +got):\n%s", diff)
	}
	collected, err := hwinfo.Collect(m.root())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Inventory(), collected, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("the hardware view (-want +got):\n%s", diff)
	}
	n.mu.Lock()
	lookups := strings.Join(n.lookups, "\n")
	n.mu.Unlock()
	if !strings.Contains(lookups, "addresses="+strings.ReplaceAll(mac.String(), ":", "%3A")) {
		t.Errorf("no lookup by %s among:\n%s", mac, lookups)
	}

	// The agent runs in the machine's namespace; power off kills it.
	pid := m.PID()
	if pid == 0 {
		t.Fatal("the machine runs no process")
	}
	if got, want := nsOf(t, pid, "net"), nsOfNamed(t, m.cfg.Netns); got != want {
		t.Errorf("the agent runs in network namespace %s, want the machine's, %s", got, want)
	}
	powerOff(t, m, pid)
}

// bootImage network-boots the machine's node, now active with the test
// image on the machine's first disk, and waits for the image's marker.
func (n *testNet) bootImage(t *testing.T, m *Machine, mac net.HardwareAddr, gpt bool) {
	ctx := context.Background()
	putImage(t, testImage(t, gpt), m.DiskPath(0))
	n.setState(mac, inventory.StateActive)
	before := len(readConsole(m))
	if err := m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootPXE}); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, m, "the test image's marker", 60*time.Second, func() bool {
		return strings.Contains(readConsole(m)[before:], images.TestImageMarker)
	})
	console := readConsole(m)[before:]
	want := []string{"is active: booting from the local disk", "Loading /vmlinuz", "Loading /initrd.gz"}
	if m.cfg.Firmware == FirmwareBIOS {
		want = append(want, "Booting from SAN device 0x80")
	} else {
		want = append(want, "Leaving the network boot to the UEFI boot manager", "BdsDxe: starting /EFI/BOOT/BOOTX64.EFI")
	}
	if missing := contains(console, want...); len(missing) > 0 {
		t.Errorf("the console lacks %q:\n%s", missing, console)
	}
	pid := m.PID()
	if pid == 0 {
		t.Fatal("the machine runs no process")
	}
	// The image runs in namespaces of its own, but the machine's network.
	for _, ns := range []string{"user", "mnt", "pid"} {
		if nsOf(t, pid, ns) == nsOf(t, os.Getpid(), ns) {
			t.Errorf("the image's init shares the host's %s namespace", ns)
		}
	}
	if got, want := nsOf(t, pid, "net"), nsOfNamed(t, m.cfg.Netns); got != want {
		t.Errorf("the image runs in network namespace %s, want the machine's, %s", got, want)
	}
	checkNoMounts(t, m.cfg.Dir)
	powerOff(t, m, pid)
	checkNoMounts(t, m.cfg.Dir)
}

// TestDiskboot boots machines from disk alone: the test image, MBR and
// GPT, with BIOS and UEFI firmware; and a blank disk, on which the
// firmware finds nothing and says so, and stays on.
func TestDiskboot(t *testing.T) {
	requireRoot(t)
	_, mkns := newNamespaces(t)
	for i, tc := range []struct {
		name, firmware string
		image          string // "", "mbr", "gpt"
	}{
		{"mbr-bios", FirmwareBIOS, "mbr"},
		{"gpt-bios", FirmwareBIOS, "gpt"},
		{"mbr-uefi", FirmwareUEFI, "mbr"},
		{"gpt-uefi", FirmwareUEFI, "gpt"},
		{"blank", FirmwareBIOS, ""},
	} {
		ns := mkns(fmt.Sprintf("d%d", i))
		// A NIC with no one on the other end.
		if err := netlab.AddVeth(ns, "eth0", "", ns, "wire"); err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := New(Config{Name: tc.name, Dir: t.TempDir(), Netns: ns, Firmware: tc.firmware,
				Disks: []Disk{{SizeBytes: 256 << 20}}, NICs: []NIC{{Name: "eth0", MAC: net.HardwareAddr{0x52, 0x54, 0x00, 0x5f, 0, byte(i)}}}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			if tc.image != "" {
				putImage(t, testImage(t, tc.image == "gpt"), m.DiskPath(0))
			}
			ctx := context.Background()
			m.SetBoot(ctx, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})
			if err := m.PowerOn(ctx); err != nil {
				t.Fatal(err)
			}
			want := images.TestImageMarker
			if tc.image == "" {
				want = NoBootableDevice
			}
			poll(t, m, want, 60*time.Second, func() bool { return strings.Contains(readConsole(m), want) })
			if on, _ := m.PoweredOn(ctx); !on {
				t.Error("the machine is off")
			}
			if tc.image == "" {
				if strings.Contains(readConsole(m), "iPXE") || m.PID() != 0 {
					t.Errorf("a disk boot tried the network or runs something:\n%s", readConsole(m))
				}
			}
			if b := m.Boot(); b.Device != bmc.BootDisk {
				t.Errorf("the persistent boot override is now %+v", b)
			}
			// A hard reset boots again.
			if err := m.Reset(ctx, false); err != nil {
				t.Fatal(err)
			}
			poll(t, m, "the second boot", 60*time.Second, func() bool { return strings.Count(readConsole(m), want) == 2 })
			powerOff(t, m, m.PID())
			checkNoMounts(t, m.cfg.Dir)
		})
	}
}

// powerOff turns the machine off and checks that its process (if pid is
// not 0) and its NIC's configuration are gone.
func powerOff(t *testing.T, m *Machine, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.PowerOff(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, _ := m.PoweredOn(ctx); on || m.PID() != 0 {
		t.Errorf("after power off: on %v, pid %d", on, m.PID())
	}
	if pid != 0 {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d is still there after power off (%v)", pid, err)
		}
	}
	links, err := netlab.Links(m.cfg.Netns)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name != m.cfg.NICs[0].Name {
			continue
		}
		for _, a := range l.Addrs {
			if a.Addr().Is4() {
				t.Errorf("%s keeps %s after power off", l.Name, a)
			}
		}
		if l.Up {
			t.Errorf("%s is up after power off", l.Name)
		}
	}
}

// checkNoMounts fails if the host's mount namespace has a mount under
// dir.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			t.Errorf("the host has a mount in the machine's directory: %s", line)
		}
	}
}

// nsOf is the namespace of a kind that a process is in.
func nsOf(t *testing.T, pid int, kind string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// nsOfNamed is the network namespace of a name, as nsOf shows it.
func nsOfNamed(t *testing.T, name string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

func readConsole(m *Machine) string {
	b, _ := os.ReadFile(m.cfg.ConsoleLog)
	return string(b)
}

// poll waits for cond, failing the test with the console after d.
func poll(t *testing.T, m *Machine, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; console:\n%s", what, d, tail(readConsole(m), 6000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// syncBuffer collects a log written from several goroutines.
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

var _ io.Writer = (*syncBuffer)(nil)
