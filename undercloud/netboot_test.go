package undercloud_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/undercloud"
)

// netbootPorts are the ports of the network-boot services: DHCP, TFTP and
// the boot HTTP server's default.
var netbootPorts = map[string][]int{"udp": {67, 69, 4011}, "tcp": {undercloud.DefaultHTTPBootPort}}

// provisioningNet is a per-test pair of network namespaces joined by a
// veth: the undercloud's end (192.168.77.1/24) and a client's.
type provisioningNet struct {
	ucNS, clNS     string // namespace names
	ucLink, clLink string
	clMAC          net.HardwareAddr
}

func newProvisioningNet(t *testing.T) provisioningNet {
	t.Helper()
	id := rand.Text()[:4]
	id = strings.ToLower(id)
	p := provisioningNet{
		ucNS: "nb" + id + "-uc", clNS: "nb" + id + "-cl",
		ucLink: "nb" + id + "u", clLink: "nb" + id + "c",
	}
	// Registered first, so that it runs last (after the daemon stops), and
	// also when a step below fails.
	t.Cleanup(func() {
		for _, ns := range []string{p.ucNS, p.clNS} {
			if err := netlab.DeleteNamespace(ns); err != nil {
				t.Errorf("delete namespace %s: %v", ns, err)
			}
		}
	})
	for _, ns := range []string{p.ucNS, p.clNS} {
		if err := netlab.CreateNamespace(ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlab.AddVeth(p.ucNS, p.ucLink, "", p.clNS, p.clLink); err != nil {
		t.Fatal(err)
	}
	if err := netlab.AddAddress(p.ucNS, p.ucLink, netip.MustParsePrefix("192.168.77.1/24")); err != nil {
		t.Fatal(err)
	}
	links, err := netlab.Links(p.clNS)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == p.clLink {
			p.clMAC = l.MAC
		}
	}
	if p.clMAC == nil {
		t.Fatalf("no link %s in %s", p.clLink, p.clNS)
	}
	return p
}

// exec runs a command in the client's namespace.
func (p provisioningNet) exec(t *testing.T, timeout time.Duration, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.clNS}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), nil
}

// apiCall sends a JSON request to the undercloud's API.
func apiCall(t *testing.T, addr, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.87")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s %v", method, path, resp.Status, m)
	}
	return m
}

// udhcpcScript records the bound event's variables and configures the
// interface, as udhcpc's default script would.
const netbootUdhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	echo "ip=$ip siaddr=$siaddr boot_file=$boot_file serverid=$serverid" > %q
	ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
`

// TestNetboot runs the daemon with its network-boot services on a veth in
// a namespace (provisioning.netns) and boots a client against them, step
// by step, from the other end: DHCP with busybox udhcpc, the iPXE loaders
// with curl and tftp-hpa over TFTP, the iPXE script and an image with curl
// over HTTP.
func TestNetboot(t *testing.T) {
	t.Parallel()
	pn := newProvisioningNet(t)
	data := t.TempDir()
	images := filepath.Join(data, "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := []byte("not really a kernel\n")
	if err := os.WriteFile(filepath.Join(images, "deploy.kernel"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	const stepDelay = 4 * time.Second
	addr := startDaemon(t, undercloud.Config{
		DataDir:   data,
		Conductor: undercloud.ConductorConfig{FakeStepDelay: undercloud.Duration(stepDelay)},
		Provisioning: undercloud.ProvisioningConfig{
			Interface:     pn.ucLink,
			Netns:         "/run/netns/" + pn.ucNS,
			Address:       "192.168.77.1/24",
			DeployKernel:  "deploy.kernel",
			DeployRamdisk: "deploy.initramfs",
		},
	})
	// The services listen in the provisioning namespace, not here.
	if got := ownSockets(t); len(got) > 0 {
		t.Errorf("network-boot sockets in the daemon's own namespace: %v", got)
	}

	n := apiCall(t, addr, "POST", "/v1/nodes", map[string]any{"name": "nb-0", "driver": "fake-hardware"})
	uuid, _ := n["uuid"].(string)
	apiCall(t, addr, "POST", "/v1/ports", map[string]any{"address": pn.clMAC.String(), "node_uuid": uuid, "pxe_enabled": true})

	script := func() string {
		t.Helper()
		out, err := pn.exec(t, 10*time.Second, "curl", "-sSf", "http://192.168.77.1:8088/boot/"+pn.clMAC.String()+".ipxe")
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}

	t.Run("dhcp", func(t *testing.T) {
		dir := t.TempDir()
		ev := filepath.Join(dir, "bound")
		sh := filepath.Join(dir, "udhcpc.sh")
		if err := os.WriteFile(sh, []byte(fmt.Sprintf(netbootUdhcpcScript, ev)), 0o755); err != nil {
			t.Fatal(err)
		}
		// The managed server probes for a foreign DHCP server before it
		// answers: udhcpc's 10×2s of DISCOVERs outlast the probe.
		out, err := pn.exec(t, 40*time.Second, "busybox", "udhcpc", "-i", pn.clLink, "-f", "-q", "-n",
			"-t", "10", "-T", "2", "-s", sh, "-V", "PXEClient:Arch:00000:UNDI:002001")
		if err != nil {
			t.Fatalf("udhcpc: %v\n%s", err, out)
		}
		b, err := os.ReadFile(ev)
		if err != nil {
			t.Fatalf("udhcpc bound no lease: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, kv := range strings.Fields(string(b)) {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		ip, err := netip.ParseAddr(got["ip"])
		if err != nil || ip.Compare(netip.MustParseAddr("192.168.77.100")) < 0 || ip.Compare(netip.MustParseAddr("192.168.77.200")) > 0 {
			t.Errorf("leased ip %q, want one in 192.168.77.100-192.168.77.200 (%v)", got["ip"], got)
		}
		if got["boot_file"] != "undionly.kpxe" || got["siaddr"] != "192.168.77.1" || got["serverid"] != "192.168.77.1" {
			t.Errorf("boot options %v, want boot_file undionly.kpxe from siaddr and serverid 192.168.77.1", got)
		}
	})

	t.Run("tftp", func(t *testing.T) {
		// The daemon runs here, its TFTP socket is in the provisioning
		// namespace: the loaders come over TFTP all the same, with curl's
		// Ethernet-sized blocks and tftp-hpa's 512-byte ones. The address
		// is the client's own, whether or not DHCP gave it one.
		if err := netlab.AddAddress(pn.clNS, pn.clLink, netip.MustParsePrefix("192.168.77.9/24")); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for _, c := range []struct {
			loader string
			args   []string
		}{
			{"undionly.kpxe", []string{"curl", "-sSf", "--tftp-blksize", "1468", "-o", filepath.Join(dir, "undionly.kpxe"), "tftp://192.168.77.1/undionly.kpxe"}},
			{"snponly.efi", []string{"tftp", "-m", "binary", "192.168.77.1", "-c", "get", "snponly.efi", filepath.Join(dir, "snponly.efi")}},
		} {
			out, err := pn.exec(t, 30*time.Second, c.args...)
			if err != nil || bytes.Contains(out, []byte("Error")) {
				t.Fatalf("%s: %v\n%s", c.loader, err, out)
			}
			if got, want := sha256File(t, filepath.Join(dir, c.loader)), sha256File(t, filepath.Join("/usr/lib/ipxe", c.loader)); got != want {
				t.Errorf("%s over TFTP: sha256 %s, want %s", c.loader, got, want)
			}
		}
	})

	t.Run("router advertisement", func(t *testing.T) {
		// Firmware's IPv6 configuration ends at once: an advertisement
		// that offers no prefix and no default route answers rdisc6.
		// (udhcpc's script flushed the link's addresses, its IPv6 link-
		// local one too: taking the link down and up makes a new one.)
		for _, state := range []string{"down", "up"} {
			if out, err := pn.exec(t, 5*time.Second, "ip", "link", "set", pn.clLink, state); err != nil {
				t.Fatalf("ip link set %s: %v\n%s", state, err, out)
			}
		}
		var out []byte
		var err error
		for range 15 { // until the link-local addresses are past duplicate detection
			if out, err = pn.exec(t, 30*time.Second, "rdisc6", "-1", "-r", "3", "-w", "1000", pn.clLink); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || !bytes.Contains(out, []byte("Router lifetime           :            0")) || bytes.Contains(out, []byte("Prefix")) {
			addrs, _ := pn.exec(t, 5*time.Second, "ip", "addr")
			t.Errorf("rdisc6: %v\n%s\n%s", err, out, addrs)
		}
	})

	t.Run("script in enroll", func(t *testing.T) {
		s := script()
		if !strings.HasPrefix(s, "#!ipxe") || !strings.Contains(s, "exit") || strings.Contains(s, "kernel ") {
			t.Errorf("script of an enrolled node, want a plain exit:\n%s", s)
		}
	})

	t.Run("image", func(t *testing.T) {
		out, err := pn.exec(t, 10*time.Second, "curl", "-sSf", "http://192.168.77.1:8088/images/deploy.kernel")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, kernel) {
			t.Errorf("/images/deploy.kernel = %q, want %q", out, kernel)
		}
	})

	t.Run("script in inspecting", func(t *testing.T) {
		apiCall(t, addr, "PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "manage"})
		waitField(t, addr, uuid, "provision_state", "manageable")
		apiCall(t, addr, "PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "inspect"})
		start := time.Now()
		if st := node(t, addr, uuid)["provision_state"]; st != "inspecting" {
			t.Fatalf("provision_state %v after inspect, want inspecting", st)
		}
		s := script()
		if time.Since(start) >= stepDelay {
			t.Fatalf("the script took longer than the fake inspection (%v)", stepDelay)
		}
		for _, want := range []string{
			"\nkernel --name kernel http://192.168.77.1:8088/images/deploy.kernel ",
			"\ninitrd --name ramdisk http://192.168.77.1:8088/images/deploy.initramfs ",
			"BOOTIF=01-" + strings.ReplaceAll(pn.clMAC.String(), ":", "-"),
			"strata.node=" + uuid,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("script of an inspecting node lacks %q:\n%s", want, s)
			}
		}
	})
}

// childEnv carries the data directory and the interface to the daemon
// TestNetbootInNamespace runs in a child process.
const childEnv = "STRATA_TEST_NETBOOT_CHILD"

// TestNetbootInNamespace runs the daemon as a process inside the
// provisioning namespace (provisioning.netns empty, as `ip netns exec`
// does it), which is how TFTP runs in the lab, and fetches the iPXE loader
// over TFTP from the client's namespace.
func TestNetbootInNamespace(t *testing.T) {
	t.Parallel()
	pn := newProvisioningNet(t)
	if err := netlab.AddAddress(pn.clNS, pn.clLink, netip.MustParsePrefix("192.168.77.9/24")); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cmd := exec.Command("ip", "netns", "exec", pn.ucNS, os.Args[0], "-test.run=^TestNetbootChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+data+","+pn.ucLink)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("the daemon did not stop on SIGTERM:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(data, undercloud.AddrFile)); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the daemon exited: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not start:\n%s", out.String())
		}
	}
	f := filepath.Join(t.TempDir(), "undionly.kpxe")
	if o, err := pn.exec(t, 20*time.Second, "curl", "-sSf", "-o", f, "tftp://192.168.77.1/undionly.kpxe"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if got, want := sha256File(t, f), sha256File(t, "/usr/lib/ipxe/undionly.kpxe"); got != want {
		t.Errorf("undionly.kpxe over TFTP: sha256 %s, want %s", got, want)
	}
	// ipxe.efi is a symbolic link in Debian; the copy is the file.
	if got, want := sha256File(t, filepath.Join(data, "tftpboot", "ipxe.efi")), sha256File(t, "/usr/lib/ipxe/ipxe.efi"); got != want {
		t.Errorf("tftpboot/ipxe.efi: sha256 %s, want %s", got, want)
	}
}

// TestNetbootChild is the daemon of TestNetbootInNamespace, in its child
// process; run any other way it has nothing to do.
func TestNetbootChild(t *testing.T) {
	env := os.Getenv(childEnv)
	if env == "" {
		return
	}
	data, iface, _ := strings.Cut(env, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err := undercloud.Run(ctx, undercloud.Config{
		DataDir:   data,
		Listen:    "127.0.0.1:0",
		Conductor: undercloud.ConductorConfig{ShutdownGrace: undercloud.Duration(time.Second)},
		Provisioning: undercloud.ProvisioningConfig{
			Interface: iface,
			Address:   "192.168.77.1/24",
		},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestNetbootOff checks that without a provisioning interface the daemon
// runs and opens none of the network-boot services' sockets, even with the
// rest of the provisioning section set.
func TestNetbootOff(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t, undercloud.Config{
		Provisioning: undercloud.ProvisioningConfig{Address: "192.168.77.1/24"},
	})
	if got := ownSockets(t); len(got) > 0 {
		t.Errorf("network-boot sockets without a provisioning interface: %v", got)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %s", resp.Status)
	}
}

// ownSockets lists this process's sockets (in its own network namespace)
// bound to a network-boot port.
func ownSockets(t *testing.T) []string {
	t.Helper()
	// /proc/thread-self/net is this thread's namespace; /proc/self/net
	// would be the main thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var found []string
	for proto, ports := range netbootPorts {
		for _, table := range []string{proto, proto + "6"} {
			f, err := os.Open("/proc/thread-self/net/" + table)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fl := strings.Fields(sc.Text())
				if len(fl) < 10 || !inodes[fl[9]] {
					continue
				}
				_, hexPort, _ := strings.Cut(fl[1], ":")
				port, err := strconv.ParseUint(hexPort, 16, 16)
				if err != nil {
					continue
				}
				for _, p := range ports {
					if int(port) == p {
						found = append(found, fmt.Sprintf("%s %s", table, fl[1]))
					}
				}
			}
			f.Close()
		}
	}
	return found
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestProvisioningConfig checks that bad provisioning settings are refused
// with an error that names the field.
func TestProvisioningConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		prov  undercloud.ProvisioningConfig
		field string // "" when valid
	}{
		{"off", undercloud.ProvisioningConfig{}, ""},
		{"off, rest ignored", undercloud.ProvisioningConfig{Address: "nonsense"}, ""},
		{"defaults", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24"}, ""},
		{"proxy, range", undercloud.ProvisioningConfig{Interface: "eth1", Address: "10.0.0.1/16", DHCPMode: "proxy", DHCPRange: "10.0.5.1-10.0.5.9"}, ""},
		{"no address", undercloud.ProvisioningConfig{Interface: "eth1"}, "provisioning.address"},
		{"address without prefix", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1"}, "provisioning.address"},
		{"network address", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.0/24"}, "provisioning.address"},
		{"ipv6", undercloud.ProvisioningConfig{Interface: "eth1", Address: "fd00::1/64"}, "provisioning.address"},
		{"bad interface", undercloud.ProvisioningConfig{Interface: "eth1/x", Address: "192.168.24.1/24"}, "provisioning.interface"},
		{"relative netns", undercloud.ProvisioningConfig{Interface: "eth1", Netns: "lab0", Address: "192.168.24.1/24"}, "provisioning.netns"},
		{"range outside", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", DHCPRange: "192.168.25.1-192.168.25.9"}, "provisioning.dhcp_range"},
		{"range backwards", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", DHCPRange: "192.168.24.9-192.168.24.2"}, "provisioning.dhcp_range"},
		{"range has server", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", DHCPRange: "192.168.24.1-192.168.24.9"}, "provisioning.dhcp_range"},
		{"small subnet, no default range", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/26"}, "provisioning.dhcp_range"},
		{"mode", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", DHCPMode: "relay"}, "provisioning.dhcp_mode"},
		{"port", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", HTTPPort: 70000}, "provisioning.http_port"},
		{"kernel path", undercloud.ProvisioningConfig{Interface: "eth1", Address: "192.168.24.1/24", DeployKernel: "../k"}, "provisioning.deploy_kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := undercloud.Config{DataDir: "/var/lib/strata", Listen: "127.0.0.1:6385", Auth: undercloud.AuthNone, LogFormat: "json", Provisioning: tc.prov}
			// What Run's defaults would fill in.
			cfg.Provisioning.TFTPRoot, cfg.Provisioning.ImagesDir = "/var/lib/strata/tftpboot", "/var/lib/strata/images"
			err := cfg.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate: %v, want no error", err)
			case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field+":")):
				t.Errorf("Validate: %v, want an error about %s", err, tc.field)
			}
		})
	}
}
