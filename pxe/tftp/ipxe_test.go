package tftp_test

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/tftp"
)

// TestIPXE boots Debian's iPXE (ipxe.lkrn) in qemu with user networking,
// where the host's loopback is 10.0.2.2, and has it fetch a per-node
// script from the server over TFTP and then a 1 MiB file, the way a
// machine in the datacenter does after its PXE ROM.
func TestIPXE(t *testing.T) {
	qemu := tool(t, "qemu-system-x86_64", "qemu-system-x86")
	const lkrn = "/usr/lib/ipxe/ipxe.lkrn"
	if _, err := os.Stat(lkrn); err != nil {
		t.Fatalf("%v: run `make deps` (Debian package ipxe)", err)
	}
	var (
		mu      sync.Mutex
		port    uint16
		remotes []netip.Addr
	)
	script := func() string {
		return fmt.Sprintf(`#!ipxe
echo STRATA-SCRIPT for ${mac:hexhyp}
imgfetch --name big tftp://10.0.2.2:%d/big.bin && echo STRATA-FETCHED || echo STRATA-FETCH-FAILED
imgstat
imgfetch --name escape tftp://10.0.2.2:%d/../secret && echo STRATA-ESCAPED || echo STRATA-REFUSED
echo STRATA-DONE
exit
`, port, port)
	}
	s := newServer(t, func(c *tftp.Config) {
		c.Virtual = func(path string, remote netip.Addr) (io.ReadSeekCloser, int64, bool) {
			if path != "boot/52-54-00-12-34-56.ipxe" {
				return nil, 0, false
			}
			mu.Lock()
			defer mu.Unlock()
			remotes = append(remotes, remote)
			b := []byte(script())
			return nopCloser{bytes.NewReader(b)}, int64(len(b)), true
		}
	})
	mu.Lock()
	port = s.Addr().Port()
	mu.Unlock()
	want := writeRandom(t, s.root, "big.bin", 1<<20+99)

	vm := start(t, qemu, "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
		"-kernel", lkrn, "-append", fmt.Sprintf("dhcp && chain tftp://10.0.2.2:%d/boot/${mac:hexhyp}.ipxe", port),
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=")
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(vm.out.String(), "STRATA-DONE") {
		select {
		case <-vm.exited:
			t.Fatalf("qemu ended: %v\n%s", vm.err, vm.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("iPXE did not get through the script:\n%s", vm.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := vm.out.String()
	t.Logf("iPXE's console:\n%s", out)
	for _, line := range []string{
		"STRATA-SCRIPT for 52-54-00-12-34-56",
		"STRATA-FETCHED",
		fmt.Sprintf("big : %d bytes", len(want)),
		"STRATA-REFUSED",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("iPXE's console lacks %q", line)
		}
	}
	if strings.Contains(out, "STRATA-ESCAPED") {
		t.Error("iPXE fetched a file out of the root")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 1 || remotes[0] != loopback {
		t.Errorf("Virtual saw clients %v, want one from %v (qemu's user network)", remotes, loopback)
	}
	if got := metric(t, s.reg, "strata_tftp_transfer_duration_seconds", "result", "ok"); got != 2 {
		t.Errorf("transfers ok: got %v, want 2 (the script and big.bin)", got)
	}
	if got := metric(t, s.reg, "strata_tftp_errors_total", "reason", "denied"); got != 1 {
		t.Errorf("refusals: got %v, want 1 (../secret)", got)
	}
}
