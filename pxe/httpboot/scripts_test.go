package httpboot_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/httpboot"
	"github.com/stratacloud/strata/pxe/ipxe"
	"github.com/stratacloud/strata/pxe/ipxe/ipxetest"
)

const (
	mac  = "52:54:00:12:34:56"
	uuid = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
)

func node(state string, change func(*inventory.Node)) *inventory.Node {
	n := &inventory.Node{
		UUID:           uuid,
		Name:           "compute-0",
		ProvisionState: state,
		DriverInfo:     map[string]any{"deploy_kernel": "deploy/vmlinuz-6.1", "deploy_ramdisk": "deploy/initramfs-6.1"},
		Properties:     map[string]any{},
	}
	if change != nil {
		change(n)
	}
	return n
}

// fileName turns a state into a golden file's name.
func fileName(s string) string {
	return strings.NewReplacer(" ", "-", ":", "-", "/", "-").Replace(s)
}

// TestScriptPerState renders the script of a node in every provision state
// and compares it with its golden file; each must also be valid iPXE.
func TestScriptPerState(t *testing.T) {
	e := newEnv(t, nil)
	want := map[string]ipxe.Action{}
	for _, s := range []string{"inspecting", "inspect wait", "cleaning", "clean wait", "clean hold", "deploying", "wait call-back", "deploy hold", "rescuing", "rescue wait", "rescue", "servicing", "service wait", "service hold"} {
		want[s] = ipxe.Ramdisk
	}
	for _, s := range []string{"active", "adopting", "unrescuing", "deploy complete"} {
		want[s] = ipxe.LocalDisk
	}
	for _, state := range inventory.AllStates() {
		t.Run(fileName(state), func(t *testing.T) {
			e.nodes.set(mac, node(state, nil))
			resp, body := e.get(t, "GET", "/boot/"+mac+".ipxe")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
			if err := ipxetest.Check(body); err != nil {
				t.Errorf("not a valid iPXE script: %v\n%s", err, body)
			}
			golden(t, "state-"+fileName(state)+".ipxe", body)
			action := want[state] // Exit by default
			switch action {
			case ipxe.Ramdisk:
				for _, s := range []string{"kernel --name kernel http://192.0.2.1:8080/images/deploy/vmlinuz-6.1 initrd=ramdisk BOOTIF=01-52-54-00-12-34-56 strata.api=http://192.0.2.1:6385 strata.node=" + uuid + " console=tty0 console=ttyS0,115200n8 || goto retry", "initrd --name ramdisk http://192.0.2.1:8080/images/deploy/initramfs-6.1 || goto retry"} {
					if !strings.Contains(string(body), s) {
						t.Errorf("the script lacks %q", s)
					}
				}
			case ipxe.LocalDisk:
				if !strings.Contains(string(body), "sanboot --no-describe --drive 0x80") {
					t.Error("the script does not boot the local disk")
				}
			default:
				if strings.Contains(string(body), "kernel") || strings.Contains(string(body), "sanboot") || strings.Contains(string(body), "chain") {
					t.Error("the script boots something")
				}
			}
		})
	}
}

// TestScriptVariants: boot modes, per-node settings, unknown machines,
// the entry script.
func TestScriptVariants(t *testing.T) {
	tests := []struct {
		name      string
		node      *inventory.Node // nil: unknown
		path      string          // default /boot/<mac>.ipxe
		discovery bool
		want      []string // lines the script must have
	}{
		{name: "active-uefi-boot-mode", node: node("active", func(n *inventory.Node) { n.BootMode = "uefi" }),
			want: []string{"exit"}},
		{name: "active-uefi-capability", node: node("active", func(n *inventory.Node) { n.Properties["capabilities"] = "profile:compute,boot_mode:uefi" }),
			want: []string{"exit"}},
		{name: "active-platform-efi", node: node("active", nil), path: "/boot/52-54-00-12-34-56.ipxe?platform=efi",
			want: []string{"exit"}},
		{name: "active-platform-pcbios", node: node("active", func(n *inventory.Node) { n.BootMode = "uefi" }), path: "/boot/52-54-00-12-34-56.ipxe?platform=pcbios",
			want: []string{"sanboot --no-describe --drive 0x80 || goto failed"}},
		{name: "rescue-kernel", node: node("rescue wait", func(n *inventory.Node) {
			n.DriverInfo["rescue_kernel"] = "rescue/vmlinuz"
			n.DriverInfo["rescue_ramdisk"] = "rescue/initramfs"
		}), want: []string{"kernel --name kernel http://192.0.2.1:8080/images/rescue/vmlinuz initrd=ramdisk"}},
		{name: "append-params", node: node("cleaning", func(n *inventory.Node) { n.DriverInfo["kernel_append_params"] = "nofb  nomodeset ipa-debug=1" }),
			want: []string{"console=ttyS0,115200n8 nofb nomodeset ipa-debug=1 || goto retry"}},
		{name: "url-images", node: node("deploying", func(n *inventory.Node) {
			n.DriverInfo["deploy_kernel"] = "https://images.example/k"
			n.DriverInfo["deploy_ramdisk"] = "http://images.example/i%20x"
		}), want: []string{"kernel --name kernel https://images.example/k ", "initrd --name ramdisk http://images.example/i%20x || goto retry"}},
		{name: "default-images", node: node("inspecting", func(n *inventory.Node) { n.DriverInfo = map[string]any{} }),
			want: []string{"http://192.0.2.1:8080/images/deploy/vmlinuz initrd=ramdisk", "http://192.0.2.1:8080/images/deploy/initramfs || goto retry"}},
		{name: "bad-append-params", node: node("cleaning", func(n *inventory.Node) { n.DriverInfo["kernel_append_params"] = "a ${secret}" }),
			want: []string{"can not boot: see the undercloud log", "exit"}},
		{name: "bad-kernel", node: node("cleaning", func(n *inventory.Node) { n.DriverInfo["deploy_kernel"] = "../../etc/shadow" }),
			want: []string{"can not boot: see the undercloud log", "exit"}},
		{name: "unnamed", node: node("deploying", func(n *inventory.Node) { n.Name = "" })},
		{name: "dashed-upper-mac", node: node("available", nil), path: "/boot/52-54-00-12-34-56.ipxe"},
		{name: "unknown", want: []string{"unknown machine 52:54:00:12:34:56: not booting it", "exit"}},
		{name: "unknown-discovery", discovery: true,
			want: []string{"kernel --name kernel http://192.0.2.1:8080/images/deploy/vmlinuz initrd=ramdisk BOOTIF=01-52-54-00-12-34-56 strata.api=http://192.0.2.1:6385 strata.discovery=1 console=tty0 console=ttyS0,115200n8 || goto retry"}},
		{name: "entry", path: "/boot.ipxe",
			want: []string{"chain --autofree http://192.0.2.1:8080/boot/${mac:hexhyp}.ipxe?platform=${platform} || goto retry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *httpboot.Config, _ string) { c.Discovery = tc.discovery })
			if tc.node != nil {
				e.nodes.set(mac, tc.node)
			}
			path := tc.path
			if path == "" {
				path = "/boot/" + mac + ".ipxe"
			}
			resp, body := e.get(t, "GET", path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if err := ipxetest.Check(body); err != nil {
				t.Errorf("not a valid iPXE script: %v\n%s", err, body)
			}
			golden(t, tc.name+".ipxe", body)
			for _, line := range tc.want {
				if !strings.Contains(string(body), line) {
					t.Errorf("the script lacks %q", line)
				}
			}
		})
	}
}

func TestScriptErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/boot/52:54:00:12:34.ipxe", "/boot/not-a-mac.ipxe", "/boot/" + mac, "/boot/" + mac + ".cfg", "/boot/"} {
		if resp, _ := e.get(t, "GET", path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
	// The node store failing is not an unknown machine: iPXE retries.
	e.nodes.err = errors.New("etcd is down")
	if resp, _ := e.get(t, "GET", "/boot/"+mac+".ipxe"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("with the store down: status %d, want 503", resp.StatusCode)
	}
	if got := metric(t, e.reg, "strata_httpboot_errors_total", "reason", "lookup"); got != 1 {
		t.Errorf("lookup errors: got %v, want 1", got)
	}
	if got := metric(t, e.reg, "strata_httpboot_errors_total", "reason", "bad_request"); got != 4 {
		t.Errorf("bad requests: got %v, want 4", got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	nodes := &fakeNodes{}
	arts := httpboot.ArtifactsFunc(nil)
	ok := httpboot.Config{Nodes: nodes, Artifacts: arts, BaseURL: "http://h:1"}
	bad := map[string]func(*httpboot.Config){
		"no nodes":             func(c *httpboot.Config) { c.Nodes = nil },
		"no artifacts":         func(c *httpboot.Config) { c.Artifacts = nil },
		"no base":              func(c *httpboot.Config) { c.BaseURL = "" },
		"base not http":        func(c *httpboot.Config) { c.BaseURL = "tftp://h" },
		"base with query":      func(c *httpboot.Config) { c.BaseURL = "http://h/?a=b" },
		"base with a space":    func(c *httpboot.Config) { c.BaseURL = "http://h/a b" },
		"bad API URL":          func(c *httpboot.Config) { c.APIURL = "h:6385" },
		"API URL with $":       func(c *httpboot.Config) { c.APIURL = "http://h/${x}" },
		"bad deploy kernel":    func(c *httpboot.Config) { c.DeployKernel = "/boot/vmlinuz" },
		"discovery, no images": func(c *httpboot.Config) { c.Discovery = true },
		"bad kernel arg":       func(c *httpboot.Config) { c.KernelArgs = []string{"a b"} },
		"bad console":          func(c *httpboot.Config) { c.Console = "ttyS0 || shell" },
	}
	for name, change := range bad {
		c := ok
		change(&c)
		if _, err := httpboot.New(c); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := httpboot.New(ok); err != nil {
		t.Errorf("New: %v", err)
	}
}
