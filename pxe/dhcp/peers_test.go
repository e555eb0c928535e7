package dhcp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/etcdleases"
)

var updateCorpus = flag.Bool("update-corpus", false, "write the packets real clients send in TestPeers to testdata/fuzz/FuzzHandle")

// The segment of the peer tests.
var (
	segServer = netip.MustParseAddr("10.213.0.1")
	segPool   = dhcp.Range{Start: netip.MustParseAddr("10.213.0.100"), End: netip.MustParseAddr("10.213.0.199")}
)

func segConfig(dir dhcp.Directory, leases dhcp.Leases, reg prometheus.Registerer, netns string) dhcp.Config {
	return dhcp.Config{
		Interface:     bridge,
		Netns:         netns,
		ServerIP:      segServer,
		Subnet:        netip.MustParsePrefix("10.213.0.0/24"),
		Pool:          segPool,
		Router:        segServer,
		DNS:           []netip.Addr{segServer},
		Directory:     dir,
		Leases:        leases,
		IPXEScriptURL: func(mac net.HardwareAddr) string { return "http://10.213.0.1:8080/ipxe/" + mac.String() },
		ProbeTimeout:  time.Second,
		Registerer:    reg,
	}
}

// directory is a fake dhcp.Directory: it knows the MACs in its map.
type directory map[string]dhcp.Host

func (d directory) Host(_ context.Context, mac net.HardwareAddr) (dhcp.Host, error) {
	h, ok := d[mac.String()]
	if !ok {
		return dhcp.Host{}, dhcp.ErrUnknownHost
	}
	return h, nil
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0x00, 0x13, 0x00, last} }

// udhcpcScript records each event of busybox udhcpc in out and configures
// the interface as udhcpc's default script would (so that RELEASE, sent
// from the leased address, can leave).
const udhcpcScript = `#!/bin/sh
echo "$1 ip=$ip mask=$mask siaddr=$siaddr boot_file=$boot_file serverid=$serverid router=$router lease=$lease" >> %q
case "$1" in
bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
`

// dhclientScript does the same for ISC dhclient.
const dhclientScript = `#!/bin/sh
echo "$reason ip=$new_ip_address mask=$new_subnet_mask server=$new_dhcp_server_identifier file=$new_filename" >> %q
case "$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
`

// events are the lines a client script recorded.
type events struct{ path string }

func newScript(t *testing.T, name, body string) (script string, ev events) {
	t.Helper()
	dir := t.TempDir()
	ev = events{path: filepath.Join(dir, name+".events")}
	script = filepath.Join(dir, name+".sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(body, ev.path)), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, ev
}

// last returns the fields of the last event named one of names.
func (e events) last(names ...string) (map[string]string, bool) {
	b, _ := os.ReadFile(e.path)
	var got map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, n := range names {
			if f[0] == n {
				got = map[string]string{"event": n}
				for _, kv := range f[1:] {
					k, v, _ := strings.Cut(kv, "=")
					got[k] = v
				}
			}
		}
	}
	return got, got != nil
}

func (e events) String() string { b, _ := os.ReadFile(e.path); return string(b) }

// udhcpc runs busybox udhcpc once in ns (-q: exit once bound) and returns
// what its script recorded for "bound".
func udhcpc(t *testing.T, ns string, args ...string) (map[string]string, error) {
	t.Helper()
	script, ev := newScript(t, "udhcpc", udhcpcScript)
	argv := append([]string{"busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-s", script, "-t", "8", "-T", "2"}, args...)
	p := start(t, ns, nil, argv...)
	if err := p.wait(60 * time.Second); err != nil {
		return nil, fmt.Errorf("udhcpc: %v\n%s\nevents:\n%s", err, p.out, ev)
	}
	b, ok := ev.last("bound")
	if ok {
		b["output"] = p.out.String()
	}
	if !ok {
		return nil, fmt.Errorf("udhcpc exited without a lease:\n%s\nevents:\n%s", p.out, ev)
	}
	return b, nil
}

// capture collects the packets the server receives, for the fuzz corpus.
type capture struct {
	mu   sync.Mutex
	pkts map[string][]byte
}

func (c *capture) tap(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := sha256.Sum256(b)
	c.pkts[hex.EncodeToString(sum[:8])] = b
}

func (c *capture) write(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzHandle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, b := range c.pkts {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			continue
		}
		file := filepath.Join(dir, strings.ToLower(m.MessageType().String())+"-"+name)
		if err := os.WriteFile(file, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d packets to %s", len(c.pkts), dir)
}

// TestPeers runs busybox udhcpc and ISC dhclient against a managed server
// on a bridge in network namespaces, with its leases in etcd.
func TestPeers(t *testing.T) {
	t.Parallel()
	requireTool(t, "busybox", "busybox-static")
	requireTool(t, "dhclient", "isc-dhcp-client")
	seg := newSegment(t, "10.213.0.1/24")
	cli := etcdtest.Run(t)
	newLeases := func() *etcdleases.Store { return etcdleases.New(store.New(cli, "/strata/undercloud/")) }
	leases := newLeases()
	lease := func(m net.HardwareAddr) dhcp.Lease {
		t.Helper()
		l, err := leases.Lookup(context.Background(), m)
		if err != nil {
			t.Fatalf("lease of %v: %v", m, err)
		}
		return l
	}

	dir := directory{}
	for i := byte(1); i <= 9; i++ {
		dir[mac(i).String()] = dhcp.Host{NodeUUID: fmt.Sprintf("node-%d", i), PXE: true}
	}
	dir[mac(2).String()] = dhcp.Host{NodeUUID: "node-2", PXE: true, Address: netip.MustParseAddr("10.213.0.50")}
	reg := prometheus.NewRegistry()
	cfg := segConfig(dir, leases, reg, nsPath(seg.server))
	srv, err := dhcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	capt := &capture{pkts: map[string][]byte{}}
	dhcp.SetTap(srv, capt.tap)
	run := runServer(t, srv)
	if *updateCorpus {
		t.Cleanup(func() { capt.write(t) })
	}

	t.Run("udhcpc from the pool with PXE options", func(t *testing.T) {
		ns := seg.host("c1", mac(1), "")
		got, err := udhcpc(t, ns, "-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000")
		if err != nil {
			t.Fatal(err)
		}
		ip := netip.MustParseAddr(got["ip"])
		if !segPool.Contains(ip) || got["mask"] != "24" || got["router"] != "10.213.0.1" || got["serverid"] != "10.213.0.1" {
			t.Errorf("udhcpc bound %v, want an address of %v on 10.213.0.0/24 via 10.213.0.1", got, segPool)
		}
		if got["boot_file"] != "undionly.kpxe" || got["siaddr"] != "10.213.0.1" {
			t.Errorf("BIOS PXE client got boot_file %q from %q, want undionly.kpxe from 10.213.0.1", got["boot_file"], got["siaddr"])
		}
		if l := lease(mac(1)); l.IP != ip || l.State != dhcp.Bound || l.NodeUUID != "node-1" {
			t.Errorf("stored lease %+v, want %v bound to node-1", l, ip)
		}
	})

	t.Run("udhcpc with a reservation", func(t *testing.T) {
		ns := seg.host("c2", mac(2), "")
		got, err := udhcpc(t, ns)
		if err != nil {
			t.Fatal(err)
		}
		if got["ip"] != "10.213.0.50" {
			t.Errorf("reserved MAC got %s, want 10.213.0.50", got["ip"])
		}
	})

	t.Run("udhcpc releases", func(t *testing.T) {
		// udhcpc releases its lease on SIGUSR2 (-q quits before it could).
		ns := seg.host("c3", mac(3), "")
		script, ev := newScript(t, "udhcpc", udhcpcScript)
		p := start(t, ns, nil, "busybox", "udhcpc", "-i", "eth0", "-f", "-s", script, "-t", "8", "-T", "2")
		var ip string
		eventually(t, 60*time.Second, "udhcpc bound", func() (bool, string) {
			b, ok := ev.last("bound")
			ip = b["ip"]
			return ok, p.out.String()
		})
		if l := lease(mac(3)); l.State != dhcp.Bound || l.IP.String() != ip {
			t.Fatalf("stored lease %+v, want %s bound", l, ip)
		}
		if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "lease released", func() (bool, string) {
			l := lease(mac(3))
			return l.State == dhcp.Released && l.IP.String() == ip, fmt.Sprintf("%+v\nudhcpc: %s", l, p.out)
		})
		p.stop()
	})

	t.Run("udhcpc declines an address in use", func(t *testing.T) {
		// A squatter holds the address the client would be offered first.
		squatted := segPool.At(dhcp.MACHash(mac(4)))
		seg.host("sq", net.HardwareAddr{0x52, 0x54, 0x00, 0x13, 0xff, 0xff}, squatted.String()+"/24")
		ns := seg.host("c4", mac(4), "")
		got, err := udhcpc(t, ns, "-a1000")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("udhcpc -a:\n%s", got["output"])
		if got["ip"] == squatted.String() {
			t.Fatalf("client bound the squatted address %v", squatted)
		}
		l, err := leases.Addr(context.Background(), squatted)
		if err != nil || l.State != dhcp.Declined || !l.Active(time.Now()) {
			t.Errorf("record of %v = %+v, %v; want declined (quarantined)", squatted, l, err)
		}
	})

	t.Run("dhclient gets a lease and releases it", func(t *testing.T) {
		ns := seg.host("c5", mac(5), "")
		dir := t.TempDir()
		script, ev := newScript(t, "dhclient", dhclientScript)
		conf := filepath.Join(dir, "dhclient.conf")
		os.WriteFile(conf, []byte("timeout 60;\nretry 1;\ninitial-interval 1;\nbackoff-cutoff 2;\n"), 0o644)
		args := []string{"-4", "-v", "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "-cf", conf, "eth0"}
		p := start(t, ns, nil, append([]string{"dhclient", "-d", "-1"}, args...)...)
		var ip string
		eventually(t, 60*time.Second, "dhclient bound", func() (bool, string) {
			if b, ok := ev.last("BOUND"); ok {
				ip = b["ip"]
				return true, ""
			}
			return p.exited(), p.out.String() + ev.String()
		})
		if p.exited() {
			t.Fatalf("dhclient exited:\n%s", p.out)
		}
		b, _ := ev.last("BOUND")
		if !segPool.Contains(netip.MustParseAddr(ip)) || b["server"] != "10.213.0.1" || b["mask"] != "255.255.255.0" {
			t.Errorf("dhclient bound %v", b)
		}
		if l := lease(mac(5)); l.IP.String() != ip || l.State != dhcp.Bound {
			t.Errorf("stored lease %+v, want %s bound", l, ip)
		}
		// dhclient -r sends the RELEASE and stops the running client.
		r := start(t, ns, nil, append([]string{"dhclient", "-r"}, args...)...)
		if err := r.wait(60 * time.Second); err != nil {
			t.Fatalf("dhclient -r: %v\n%s", err, r.out)
		}
		eventually(t, 20*time.Second, "lease released", func() (bool, string) {
			l := lease(mac(5))
			return l.State == dhcp.Released, fmt.Sprintf("%+v", l)
		})
		p.stop()
	})

	t.Run("unknown MAC gets nothing", func(t *testing.T) {
		ns := seg.host("c6", net.HardwareAddr{0x52, 0x54, 0x00, 0x13, 0x01, 0x00}, "")
		p := start(t, ns, nil, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-s", "/bin/true", "-t", "2", "-T", "1")
		if err := p.wait(30 * time.Second); err == nil {
			t.Fatalf("udhcpc of an unknown MAC got a lease:\n%s", p.out)
		}
		if n := dhcp.Ignored(srv, dhcp.UnknownMAC); n == 0 {
			t.Error("no unknown_mac in strata_dhcp_ignored_total")
		}
	})

	t.Run("leases survive a restart", func(t *testing.T) {
		ns := seg.host("c7", mac(7), "")
		want := "10.213.0.177"
		got, err := udhcpc(t, ns, "-r", want)
		if err != nil {
			t.Fatal(err)
		}
		if got["ip"] != want {
			t.Fatalf("udhcpc -r %s got %s", want, got["ip"])
		}
		if err := run.stop(); err != nil {
			t.Fatal(err)
		}
		// A new server, lease store and registry over the same etcd.
		cfg2 := segConfig(dir, newLeases(), prometheus.NewRegistry(), nsPath(seg.server))
		startServer(t, cfg2)
		got, err = udhcpc(t, ns)
		if err != nil {
			t.Fatal(err)
		}
		if got["ip"] != want {
			t.Errorf("after the restart the client got %s, want its lease %s", got["ip"], want)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, name := range []string{"strata_dhcp_requests_total", "strata_dhcp_replies_total", "strata_dhcp_received_bytes_total",
			"strata_dhcp_sent_bytes_total", "strata_dhcp_request_duration_seconds", "strata_dhcp_ignored_total"} {
			if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
				t.Errorf("%s: %d series, %v", name, n, err)
			}
		}
		if n := dhcp.Replies(srv, "ACK"); n < 5 {
			t.Errorf("strata_dhcp_replies_total{type=ACK} = %v, want at least 5", n)
		}
	})
}

// TestForeignServer puts dnsmasq on the segment: managed mode must refuse
// to start, naming it; proxy mode must start and give a PXE client boot
// options only, beside dnsmasq's address.
func TestForeignServer(t *testing.T) {
	t.Parallel()
	requireTool(t, "dnsmasq", "dnsmasq-base")
	seg := newSegment(t, "10.213.0.1/24")
	fns := seg.host("f", net.HardwareAddr{0x52, 0x54, 0x00, 0x13, 0xfe, 0x01}, "10.213.0.2/24")
	tmp := t.TempDir()
	start(t, fns, nil, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface=eth0", "--bind-interfaces", "--dhcp-range=10.213.0.100,10.213.0.150,1h",
		"--dhcp-leasefile="+filepath.Join(tmp, "leases"), "--pid-file="+filepath.Join(tmp, "pid"), "--log-facility=-")
	pxeMAC := mac(0x20)
	cns := seg.host("c", pxeMAC, "")

	// Wait until dnsmasq answers, as seen by a client.
	eventually(t, 30*time.Second, "dnsmasq answers", func() (bool, string) {
		offers, err := pxeDiscover(cns, time.Second, nil)
		for _, o := range offers {
			if o.ServerIdentifier().String() == "10.213.0.2" {
				return true, ""
			}
		}
		return false, fmt.Sprint(offers, err)
	})

	dir := directory{pxeMAC.String(): {NodeUUID: "node-pxe", PXE: true}}
	t.Run("managed mode refuses", func(t *testing.T) {
		cfg := segConfig(dir, dhcp.NewMemoryLeases(), nil, nsPath(seg.server))
		cfg.ProbeTimeout = 10 * time.Second
		s, err := dhcp.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Run(context.Background())
		var fe *dhcp.ForeignServerError
		if !errors.As(err, &fe) || !errors.Is(err, dhcp.ErrForeignServer) {
			t.Fatalf("Run = %v, want a ForeignServerError", err)
		}
		if fe.Server.String() != "10.213.0.2" || !strings.Contains(err.Error(), "10.213.0.2") || !strings.Contains(err.Error(), "proxy mode") {
			t.Errorf("error %q should name dnsmasq (10.213.0.2) and suggest proxy mode", err)
		}
		select {
		case <-s.Ready():
			t.Error("the refused server says it is ready")
		default:
		}
	})

	t.Run("proxy mode starts beside it", func(t *testing.T) {
		cfg := segConfig(dir, nil, nil, nsPath(seg.server))
		cfg.Mode = dhcp.Proxy
		startServer(t, cfg)
		var ours, theirs *dhcpv4.DHCPv4
		eventually(t, 30*time.Second, "offers from both servers", func() (bool, string) {
			offers, err := pxeDiscover(cns, 2*time.Second, func(got []*dhcpv4.DHCPv4) bool {
				ours, theirs = nil, nil
				for _, o := range got {
					switch o.ServerIdentifier().String() {
					case "10.213.0.1":
						ours = o
					case "10.213.0.2":
						theirs = o
					}
				}
				return ours != nil && theirs != nil
			})
			return ours != nil && theirs != nil, fmt.Sprint(offers, err)
		})
		dnsmasqRange := dhcp.Range{Start: netip.MustParseAddr("10.213.0.100"), End: netip.MustParseAddr("10.213.0.150")}
		if a, _ := dhcp.Addr4(theirs.YourIPAddr); !dnsmasqRange.Contains(a) {
			t.Errorf("dnsmasq offered %v", theirs.YourIPAddr)
		}
		if !ours.YourIPAddr.IsUnspecified() || ours.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
			t.Errorf("proxy offer carries an address: yiaddr %v, lease option %v", ours.YourIPAddr, ours.Options.Has(dhcpv4.OptionIPAddressLeaseTime))
		}
		if ours.BootFileName != "snponly.efi" || ours.ServerIPAddr.String() != "10.213.0.1" || ours.ClassIdentifier() != "PXEClient" {
			t.Errorf("proxy offer: file %q from %v, class %q; want snponly.efi from 10.213.0.1, PXEClient",
				ours.BootFileName, ours.ServerIPAddr, ours.ClassIdentifier())
		}

		// The boot server exchange on port 4011, from the address dnsmasq gave.
		seg.ip("-n", cns, "addr", "add", theirs.YourIPAddr.String()+"/24", "dev", "eth0")
		ack, err := pxeBootServerRequest(cns, theirs.YourIPAddr, pxeMAC)
		if err != nil {
			t.Fatal(err)
		}
		if ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "snponly.efi" || !ack.YourIPAddr.IsUnspecified() {
			t.Errorf("port 4011 answer: %s", ack.Summary())
		}
	})
}

// pxeDiscover broadcasts a UEFI PXE client's DISCOVER from ns's eth0 and
// collects the OFFERs until done returns true or timeout passes.
func pxeDiscover(ns string, timeout time.Duration, done func([]*dhcpv4.DHCPv4) bool) ([]*dhcpv4.DHCPv4, error) {
	var c *nclient4.Client
	err := dhcp.InNetns(nsPath(ns), func() error {
		var err error
		c, err = nclient4.New("eth0", nclient4.WithTimeout(timeout), nclient4.WithRetry(1))
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d, err := dhcpv4.NewDiscovery(c.InterfaceAddr(), dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, make([]byte, 16)...))))
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var offers []*dhcpv4.DHCPv4
	_, err = c.SendAndRead(context.Background(), c.RemoteAddr(), d, func(m *dhcpv4.DHCPv4) bool {
		if m.MessageType() != dhcpv4.MessageTypeOffer {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		offers = append(offers, m)
		return done != nil && done(offers)
	})
	mu.Lock()
	defer mu.Unlock()
	if errors.Is(err, nclient4.ErrNoResponse) && len(offers) > 0 {
		err = nil
	}
	return offers, err
}

// pxeBootServerRequest sends the PXE client's REQUEST to the proxy's port
// 4011 from ip, over a UDP socket in ns, and reads the answer.
func pxeBootServerRequest(ns string, ip net.IP, hw net.HardwareAddr) (*dhcpv4.DHCPv4, error) {
	var conn *net.UDPConn
	err := dhcp.InNetns(nsPath(ns), func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: 0})
		return err
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(ip),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := conn.WriteToUDP(req.ToBytes(), &net.UDPAddr{IP: segServer.AsSlice(), Port: dhcp.PXEPort}); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		return dhcpv4.FromBytes(buf[:n])
	}
	return nil, errors.New("no answer on port 4011")
}

// blockingDirectory holds every lookup until release is closed, and
// records how many run at once.
type blockingDirectory struct {
	release       chan struct{}
	calls, inside atomic.Int64
	maxInside     atomic.Int64
}

func (d *blockingDirectory) Host(ctx context.Context, _ net.HardwareAddr) (dhcp.Host, error) {
	d.calls.Add(1)
	n := d.inside.Add(1)
	defer d.inside.Add(-1)
	for {
		m := d.maxInside.Load()
		if n <= m || d.maxInside.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-d.release:
		return dhcp.Host{PXE: true}, nil
	case <-ctx.Done():
		return dhcp.Host{}, ctx.Err()
	}
}

// TestBurst sends a thousand DISCOVERs at a server whose directory is
// stuck: the server holds Workers packets in hand and its DISCOVER queue
// full, drops the rest, and answers what it held once unstuck.
func TestBurst(t *testing.T) {
	t.Parallel()
	seg := newSegment(t, "10.213.0.1/24")
	cns := seg.host("b", mac(0x30), "10.213.0.9/24")
	dir := &blockingDirectory{release: make(chan struct{})}
	cfg := segConfig(dir, dhcp.NewMemoryLeases(), nil, nsPath(seg.server))
	cfg.Workers, cfg.QueueSize, cfg.RequestTimeout, cfg.ProbeTimeout = 2, 8, time.Minute, 300*time.Millisecond
	srv := startServer(t, cfg).s

	var conn *net.UDPConn
	if err := dhcp.InNetns(nsPath(cns), func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 213, 0, 9), Port: 68})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const burst = 1000
	for i := range burst {
		d, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDP(d.ToBytes(), &net.UDPAddr{IP: segServer.AsSlice(), Port: 67}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the server has read everything the kernel kept for it.
	var kernelDrops int
	eventually(t, 30*time.Second, "socket drained", func() (bool, string) {
		out, err := exec.Command("ip", "netns", "exec", seg.server, "cat", "/proc/net/udp").Output()
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(string(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 12 && strings.HasSuffix(f[1], ":0043") {
				_, rxq, _ := strings.Cut(f[4], ":")
				kernelDrops, _ = strconv.Atoi(f[12])
				return strings.Trim(rxq, "0") == "" && dir.inside.Load() == 2, string(out)
			}
		}
		return false, string(out)
	})
	read := burst - kernelDrops
	held := cfg.Workers + cfg.QueueSize/2 // all DISCOVERs: half the queue is theirs
	eventually(t, 10*time.Second, "the rest dropped", func() (bool, string) {
		got := int(dhcp.Errors(srv, "queue_full"))
		return got == read-held, fmt.Sprintf("queue_full drops = %d, want %d (%d read, %d held)", got, read-held, read, held)
	})
	close(dir.release)
	eventually(t, 30*time.Second, "held packets answered", func() (bool, string) {
		n := dhcp.Replies(srv, "OFFER")
		return n == float64(held), fmt.Sprintf("%v offers", n)
	})
	if m := dir.maxInside.Load(); m > int64(cfg.Workers) {
		t.Errorf("%d lookups ran at once, want at most %d workers", m, cfg.Workers)
	}
	if c := dir.calls.Load(); c != int64(held) {
		t.Errorf("%d packets handled, want the %d held", c, held)
	}
	t.Logf("burst of %d: kernel dropped %d, server dropped %d, answered %d", burst, kernelDrops, read-held, held)
}

// TestRunChecksInterface: the server starts only on an interface that
// exists and carries ServerIP, and opens nothing otherwise.
func TestRunChecksInterface(t *testing.T) {
	t.Parallel()
	seg := newSegment(t, "10.213.0.1/24")
	for _, tt := range []struct {
		name string
		mut  func(*dhcp.Config)
		want string
	}{
		{"missing interface", func(c *dhcp.Config) { c.Interface = "nope0" }, "interface nope0"},
		{"address not on the interface", func(c *dhcp.Config) { c.ServerIP, c.Router = netip.MustParseAddr("10.213.0.7"), netip.Addr{} },
			"ServerIP 10.213.0.7 is not an address of interface br0"},
		{"missing namespace", func(c *dhcp.Config) { c.Netns = "/var/run/netns/" + seg.prefix + "-none" }, "network namespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := segConfig(directory{}, dhcp.NewMemoryLeases(), nil, nsPath(seg.server))
			tt.mut(&cfg)
			s, err := dhcp.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
