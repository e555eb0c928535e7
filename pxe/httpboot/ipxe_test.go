package httpboot_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/httpboot"
)

// TestIPXE boots Debian's iPXE (ipxe.lkrn) in qemu with user networking,
// where the host's loopback is 10.0.2.2, and lets it follow the scripts as
// a machine in the datacenter does: the entry script chains to the node's
// script, which fetches the deploy kernel (missing at first, so the retry
// loop runs) and ramdisk and boots them. The "kernel" is an iPXE script
// that shows what iPXE loaded, then asks for the node's script again once
// the node is active: that one tries the local disk (there is none) and
// gives the machine back to the firmware.
func TestIPXE(t *testing.T) {
	qemu := tool(t, "qemu-system-x86_64", "qemu-system-x86")
	const lkrn = "/usr/lib/ipxe/ipxe.lkrn"
	if _, err := os.Stat(lkrn); err != nil {
		t.Fatalf("%v: run `make deps` (Debian package ipxe)", err)
	}
	initrd := bytes.Repeat([]byte("initrd"), 100_000)
	var kernelAsked atomic.Int32
	var e *env
	var port string
	e = newEnv(t, func(c *httpboot.Config, srvURL string) {
		u, _ := url.Parse(srvURL)
		port = u.Port()
		c.BaseURL = "http://10.0.2.2:" + port
		disk := c.Artifacts
		c.Artifacts = httpboot.ArtifactsFunc(func(ctx context.Context, name string) (*httpboot.Artifact, error) {
			if name == "deploy/kernel" {
				switch kernelAsked.Add(1) {
				case 1:
					return nil, fs.ErrNotExist // the retry loop runs once
				case 2:
					// The deploy is done by the time the kernel boots.
					e.nodes.set("52:54:00:12:34:56", node(inventory.StateActive, nil))
				}
			}
			return disk.Open(ctx, name)
		})
	})
	writeImage(t, e.images, "deploy/kernel", []byte(`#!ipxe
echo STRATA-KERNEL-BOOTED
imgstat
chain http://10.0.2.2:`+port+`/boot/${mac:hexhyp}.ipxe?platform=${platform} || echo STRATA-CHAIN-FAILED
echo STRATA-DONE
`))
	writeImage(t, e.images, "deploy/initrd", initrd)
	e.nodes.set("52:54:00:12:34:56", node(inventory.StateDeploying, func(n *inventory.Node) {
		n.DriverInfo = map[string]any{"deploy_kernel": "deploy/kernel", "deploy_ramdisk": "deploy/initrd"}
	}))

	var out syncBuffer
	cmd := exec.Command(qemu, "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
		"-kernel", lkrn, "-append", "dhcp && chain http://10.0.2.2:"+port+"/boot.ipxe",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), "STRATA-DONE") {
		select {
		case err := <-exited:
			t.Fatalf("qemu ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("iPXE did not get through the scripts:\n%s\nrequests: %q", out.String(), e.requests())
		}
		time.Sleep(100 * time.Millisecond)
	}
	console := out.String()
	t.Logf("iPXE's console:\n%s", console)
	for _, line := range []string{
		"is deploying: booting the deploy ramdisk",
		"Attempt 1 of 10 failed, trying again in 1 s",
		"STRATA-KERNEL-BOOTED",
		fmt.Sprintf("ramdisk : %d bytes", len(initrd)),
		"is active: booting from the local disk",
		"Booting from SAN device 0x80",
		"Booting the local disk failed: leaving it to the firmware",
	} {
		if !strings.Contains(console, line) {
			t.Errorf("iPXE's console lacks %q", line)
		}
	}
	if strings.Contains(console, "STRATA-CHAIN-FAILED") {
		t.Error("iPXE could not chain to the node's script")
	}
	want := []string{
		"GET /boot.ipxe 200",
		"GET /boot/52-54-00-12-34-56.ipxe?platform=pcbios 200",
		"GET /images/deploy/kernel 404",
		"GET /images/deploy/kernel 200",
		"GET /images/deploy/initrd 200",
		"GET /boot/52-54-00-12-34-56.ipxe?platform=pcbios 200",
	}
	if got := e.requests(); !slices.Equal(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer that qemu writes to while the test reads.
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
