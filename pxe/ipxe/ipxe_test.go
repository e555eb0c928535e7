package ipxe_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/pxe/ipxe"
	"github.com/stratacloud/strata/pxe/ipxe/ipxetest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestRenderGolden(t *testing.T) {
	ramdisk := ipxe.Script{
		Action: ipxe.Ramdisk,
		Title:  "Strata: node 1be26c0b-03f2-4d2e-ae87-c02d7f33c123 (52:54:00:12:34:56) is deploying: booting the deploy ramdisk",
		Kernel: "http://192.0.2.1:8080/images/deploy.kernel",
		Initrd: "http://192.0.2.1:8080/images/deploy.initramfs",
		Args: []string{
			"BOOTIF=01-52-54-00-12-34-56",
			"strata.api=http://192.0.2.1:6385",
			"strata.node=1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
			"console=tty0", "console=ttyS0,115200n8",
		},
	}
	withTimeout := ramdisk
	withTimeout.Attempts = 3
	withTimeout.Timeout = 30000
	tests := []struct {
		name   string
		script ipxe.Script
	}{
		{"ramdisk", ramdisk},
		{"ramdisk-timeout", withTimeout},
		{"local-disk-bios", ipxe.Script{Action: ipxe.LocalDisk, Title: "Strata: node n1 is active: booting from the local disk", BootMode: ipxe.BIOS}},
		{"local-disk-uefi", ipxe.Script{Action: ipxe.LocalDisk, Title: "Strata: node n1 is active: booting from the local disk", BootMode: ipxe.UEFI}},
		{"exit", ipxe.Script{Action: ipxe.Exit, Title: "Strata: node n1 is available: nothing to boot"}},
		{"chain", ipxe.Script{Action: ipxe.Chain, Title: "Strata: fetching the script of this machine by the MAC it booted from", URL: "http://192.0.2.1:8080/boot/${mac:hexhyp}.ipxe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ipxe.Bytes(tc.script)
			if err != nil {
				t.Fatal(err)
			}
			if err := ipxetest.Check(got); err != nil {
				t.Errorf("not a valid iPXE script: %v\n%s", err, got)
			}
			golden := filepath.Join("testdata", tc.name+".ipxe")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestRenderRefusesUnsafeValues(t *testing.T) {
	ok := ipxe.Script{Action: ipxe.Ramdisk, Title: "t", Kernel: "http://h/k", Initrd: "http://h/i"}
	tests := []struct {
		name   string
		change func(*ipxe.Script)
	}{
		{"title with a line break", func(s *ipxe.Script) { s.Title = "a\nchain http://evil/x" }},
		{"title expanding a setting", func(s *ipxe.Script) { s.Title = "${password}" }},
		{"title with an operator", func(s *ipxe.Script) { s.Title = "a || shell" }},
		{"arg with a space", func(s *ipxe.Script) { s.Args = []string{"a b"} }},
		{"empty arg", func(s *ipxe.Script) { s.Args = []string{""} }},
		{"arg expanding a setting", func(s *ipxe.Script) { s.Args = []string{"x=${ip}"} }},
		{"arg with a line break", func(s *ipxe.Script) { s.Args = []string{"x\nshell"} }},
		{"kernel not a URL", func(s *ipxe.Script) { s.Kernel = "/images/k" }},
		{"kernel with a space", func(s *ipxe.Script) { s.Kernel = "http://h/k shell" }},
		{"initrd of a file URL", func(s *ipxe.Script) { s.Initrd = "file:///etc/passwd" }},
		{"initrd empty", func(s *ipxe.Script) { s.Initrd = "" }},
		{"negative attempts", func(s *ipxe.Script) { s.Attempts = -1 }},
		{"negative timeout", func(s *ipxe.Script) { s.Timeout = -1 }},
		{"unknown action", func(s *ipxe.Script) { s.Action = 42 }},
		{"unknown boot mode", func(s *ipxe.Script) { s.Action = ipxe.LocalDisk; s.BootMode = "efi" }},
		{"chain with a broken setting", func(s *ipxe.Script) { s.Action = ipxe.Chain; s.URL = "http://h/${mac" }},
		{"chain with an odd setting", func(s *ipxe.Script) { s.Action = ipxe.Chain; s.URL = "http://h/${a b}" }},
		{"chain without a host", func(s *ipxe.Script) { s.Action = ipxe.Chain; s.URL = "http:///x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.change(&s)
			_, err := ipxe.Bytes(s)
			if !errors.Is(err, ipxe.ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid", err)
			}
		})
	}
	if _, err := ipxe.Bytes(ok); err != nil {
		t.Fatalf("the unchanged script: %v", err)
	}
}

// TestCheck makes sure the checker itself catches what it is meant to.
func TestCheck(t *testing.T) {
	bad := map[string]string{
		"no shebang":         "echo hi\n",
		"unknown command":    "#!ipxe\nfrobnicate\n",
		"missing label":      "#!ipxe\ngoto nowhere\n",
		"unhandled fetch":    "#!ipxe\nkernel http://h/k\nboot || exit\n",
		"unbalanced setting": "#!ipxe\necho ${a\n",
		"duplicate label":    "#!ipxe\n:a\n:a\nexit\n",
		"dangling operator":  "#!ipxe\nkernel http://h/k ||\n",
	}
	for name, script := range bad {
		if err := ipxetest.Check([]byte(script)); err == nil {
			t.Errorf("%s: Check accepted\n%s", name, script)
		}
	}
	good := "#!ipxe\n# c\n:a\nkernel http://h/k || goto a\niseq ${x} 1 && goto a ||\nboot || exit\n"
	if err := ipxetest.Check([]byte(good)); err != nil {
		t.Errorf("Check refused a good script: %v", err)
	}
}
