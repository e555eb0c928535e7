package sim

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/httpboot"
)

// TestScriptsOfHTTPBoot runs the entry script of the undercloud's HTTP
// boot handler (pxe/httpboot, on loopback) and what it chains to, for
// nodes in the states that boot the ramdisk, the disk, or nothing, as
// BIOS and UEFI firmware.
func TestScriptsOfHTTPBoot(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:01")
	ramdisk := makeCpio(t, map[string]cpio.Record{"init": cpio.StaticFile("", "#!/bin/sh\n", 0o755)}, true)
	images := t.TempDir()
	os.WriteFile(filepath.Join(images, "deploy.kernel"), fakeKernel(), 0o644)
	os.WriteFile(filepath.Join(images, "deploy.initramfs"), ramdisk, 0o644)
	node := &inventory.Node{UUID: "6c1f6a4e-36b8-4a4f-8a8e-1d2b3c4d5e6f", Name: "n0"}
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := httpboot.New(httpboot.Config{
			Nodes: httpboot.NodesFunc(func(_ context.Context, m net.HardwareAddr) (*inventory.Node, error) {
				if !bytes.Equal(m, mac) {
					return nil, inventory.ErrNotFound
				}
				c := *node
				return &c, nil
			}),
			Artifacts:     httpboot.FS(os.DirFS(images)),
			BaseURL:       base,
			APIURL:        "http://192.0.2.1:6385",
			DeployKernel:  "deploy.kernel",
			DeployRamdisk: "deploy.initramfs",
		})
		if err != nil {
			t.Error(err)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	base = srv.URL
	entry, _ := url.Parse(srv.URL + "/boot.ipxe")

	for _, tc := range []struct {
		name, firmware, state string
		ramdisk               bool
		console               []string
	}{
		{"inspect wait", FirmwareBIOS, inventory.StateInspectWait, true, []string{"/boot.ipxe... ok", "/images/deploy.kernel... ok", "/images/deploy.initramfs... ok", "is inspect wait: booting the deploy ramdisk"}},
		{"clean wait uefi", FirmwareUEFI, inventory.StateCleanWait, true, []string{"?platform=efi... ok", "is clean wait"}},
		{"active bios", FirmwareBIOS, inventory.StateActive, false, []string{"Booting from SAN device 0x80", "Booting the local disk failed: leaving it to the firmware"}},
		{"active uefi", FirmwareUEFI, inventory.StateActive, false, []string{"Leaving the network boot to the UEFI boot manager"}},
		{"available", FirmwareBIOS, inventory.StateAvailable, false, []string{"is available: nothing to boot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node.ProvisionState = tc.state
			m := testMachine(t, Config{Firmware: tc.firmware})
			fw, console := testFirmware(t, m)
			ip := &interp{
				fw:       fw,
				vars:     fw.settings(NIC{Name: "eth0", MAC: mac}, lease{}),
				fetchers: &fetchers{dir: m.bootDir()},
			}
			defer ip.fetchers.close()
			got, err := ip.chainURL(context.Background(), entry, 0)
			if err != nil {
				t.Fatalf("%v\n%s", err, console())
			}
			if !tc.ramdisk {
				if got != nil {
					t.Errorf("booted %+v, want the script to end", got)
				}
			} else {
				if got == nil || got.action != actionRun || got.os.kind != osRamdisk || len(got.os.initrds) != 1 {
					t.Fatalf("booted %+v, want the deploy ramdisk\n%s", got, console())
				}
				for _, want := range []string{"BOOTIF=01-52-54-00-aa-bb-01", "strata.api=http://192.0.2.1:6385", "strata.node=" + node.UUID} {
					if !strings.Contains(got.os.cmdline, want) {
						t.Errorf("command line %q lacks %q", got.os.cmdline, want)
					}
				}
				if b, _ := os.ReadFile(got.os.initrds[0]); !bytes.Equal(b, ramdisk) {
					t.Error("the initrd fetched is not the ramdisk")
				}
			}
			if missing := contains(console(), tc.console...); len(missing) > 0 {
				t.Errorf("the console lacks %q:\n%s", missing, console())
			}
		})
	}
}

// TestScriptLanguage runs scripts that use what the undercloud's do not:
// loops, settings, relative chains, failures caught and not.
func TestScriptLanguage(t *testing.T) {
	scripts := map[string]string{
		"/loop.ipxe": `#!ipxe
set n:int32 0
:again
inc n
iseq ${n} 3 && goto done ||
goto again
:done
echo n=${n} mac=${net0/mac:hexhyp} platform=${platform} unset=[${nothing}]
chain sub/next.ipxe || goto nope
echo not reached
:nope
echo the chain failed: ok
chain sub/exit.ipxe
echo after exit
exit
`,
		"/sub/next.ipxe": "#!ipxe\necho in next\nnosuchcommand\necho not reached\n",
		"/sub/exit.ipxe": "#!ipxe\necho in exit\nexit\necho not reached\n",
		"/fail.ipxe":     "#!ipxe\nechox\n",
		"/kernel.ipxe":   "#!ipxe\nchain --autofree k quiet BOOTIF=x\n",
		"/k":             string(fakeKernel()),
		"/notascript":    "hello\n",
		"/off.ipxe":      "#!ipxe\nimgfree\npoweroff || exit\n",
		"/badlabel.ipxe": "#!ipxe\ngoto nowhere\n",
		"/noboot.ipxe":   "#!ipxe\nboot || echo no kernel\nboot\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := scripts[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(s))
	}))
	defer srv.Close()
	mac, _ := net.ParseMAC("52:54:00:aa:bb:02")
	for _, tc := range []struct {
		path    string
		wantErr string
		action  int
		console []string
	}{
		{"/loop.ipxe", "", 0, []string{"n=3 mac=52-54-00-aa-bb-02 platform=pcbios unset=[]", "in next", "the chain failed: ok", "in exit", "after exit"}},
		{"/fail.ipxe", "echox: command not supported", 0, nil},
		{"/kernel.ipxe", "", actionRun, []string{"/k... ok", "quiet BOOTIF=x"}},
		{"/notascript", "not an iPXE script", 0, nil},
		{"/missing.ipxe", "404", 0, []string{"/missing.ipxe... HTTP 404"}},
		{"/off.ipxe", "", actionPowerOff, nil},
		{"/badlabel.ipxe", "no such label", 0, nil},
		{"/noboot.ipxe", "no kernel selected", 0, []string{"no kernel"}},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			m := testMachine(t, Config{})
			fw, console := testFirmware(t, m)
			ip := &interp{fw: fw, vars: fw.settings(NIC{Name: "eth0", MAC: mac}, lease{}), fetchers: &fetchers{dir: m.bootDir()}}
			defer ip.fetchers.close()
			u, _ := url.Parse(srv.URL + tc.path)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := ip.chainURL(ctx, u, 0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one saying %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Errorf("%v\n%s", err, console())
			}
			action := 0
			if got != nil {
				action = got.action
			}
			if action != tc.action {
				t.Errorf("ended in %+v, want action %d", got, tc.action)
			}
			if missing := contains(console(), tc.console...); len(missing) > 0 {
				t.Errorf("the console lacks %q:\n%s", missing, console())
			}
			if strings.Contains(console(), "not reached") {
				t.Errorf("the script went on past its end:\n%s", console())
			}
		})
	}
}

func TestSplitAndExpand(t *testing.T) {
	ip := &interp{vars: map[string]string{"mac": "52:54:00:01:02:03", "try": "2"}}
	got := ip.expand("chain http://x/${mac:hexhyp}.ipxe?p=${platform} ${net0/mac} ${try:int32} ${mac:hexraw}")
	want := "chain http://x/52-54-00-01-02-03.ipxe?p= 52:54:00:01:02:03 2 525400010203"
	if got != want {
		t.Errorf("expand: %q, want %q", got, want)
	}
	cmds, ops := splitLine("iseq a b && goto x ||")
	if len(cmds) != 3 || len(ops) != 2 || strings.Join(cmds[0], " ") != "iseq a b" || len(cmds[2]) != 0 || ops[0] != "&&" || ops[1] != "||" {
		t.Errorf("splitLine: %q %q", cmds, ops)
	}
}
