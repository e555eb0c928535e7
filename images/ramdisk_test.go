package images

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

// testKernel is the kernel `make deps` unpacked.
func testKernel(t *testing.T) Kernel {
	t.Helper()
	k, err := FindKernel("")
	if err != nil {
		t.Fatalf("%v (the test needs `make deps`)", err)
	}
	return k
}

var agentOnce struct {
	sync.Once
	path string
	err  error
}

// testAgent builds strata-agent, static, once per test binary.
func testAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-agent-")
		if err != nil {
			agentOnce.err = err
			return
		}
		agentOnce.path = filepath.Join(dir, "strata-agent")
		cmd := exec.Command("go", "build", "-o", agentOnce.path, "github.com/stratacloud/strata/cmd/strata-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentOnce.err = err
			agentOnce.path = string(out)
		}
	})
	if agentOnce.err != nil {
		t.Fatalf("building strata-agent: %v\n%s", agentOnce.err, agentOnce.path)
	}
	return agentOnce.path
}

func TestModuleClosure(t *testing.T) {
	k := testKernel(t)
	mods, err := k.ModuleClosure([]string{"virtio_net", "vfat", "virtio-blk"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	for _, m := range mods {
		for _, d := range m.Depends {
			if p, ok := pos[d]; ok && p > pos[m.Name] {
				t.Errorf("%s comes before its dependency %s", m.Name, d)
			}
		}
	}
	for _, want := range []string{"virtio_net", "net_failover", "failover", "vfat", "fat", "virtio_blk"} {
		if _, ok := pos[want]; !ok {
			t.Errorf("%s missing from %v", want, mods)
		}
	}
	// A built-in is no module to load; an unknown name is an error that
	// names it.
	if mods, err := k.ModuleClosure([]string{"unix"}); err != nil || len(mods) != 0 {
		t.Errorf("built-in unix: %v, %v", mods, err)
	}
	if _, err := k.ModuleClosure([]string{"no_such_driver"}); err == nil || !strings.Contains(err.Error(), "no_such_driver") {
		t.Errorf("unknown module: %v", err)
	}
}

func TestFindKernel(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindKernel(dir); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("empty cache: %v", err)
	}
	for _, r := range []string{"6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-10-amd64"} {
		if err := os.MkdirAll(filepath.Join(dir, r, "boot"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, r, "boot", "vmlinuz-"+r), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "6.1.0-99-amd64.partial", "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	k, err := FindKernel(dir)
	if err != nil || k.Release != "6.1.0-56-amd64" {
		t.Errorf("got %+v, %v; want the newest complete release", k, err)
	}
}

func TestRamdiskReproducible(t *testing.T) {
	k := testKernel(t)
	r := Ramdisk{Kernel: k, Init: testAgent(t)}
	var a, b bytes.Buffer
	if err := r.Build(&a); err != nil {
		t.Fatal(err)
	}
	if err := r.Build(&b); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(a.Bytes()) != sha256.Sum256(b.Bytes()) {
		t.Fatal("two builds of the same ramdisk differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]cpio.Record{}
	for _, rec := range recs {
		names[rec.Name] = rec
	}
	agent, _ := os.ReadFile(r.Init)
	init, ok := names["init"]
	if !ok || init.Mode&0o111 == 0 || init.FileSize != uint64(len(agent)) {
		t.Errorf("init: %+v", init.Info)
	}
	if c := names["dev/console"]; c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console: %+v", c.Info)
	}
	// Every listed module is in the archive, and every module in the
	// archive is listed.
	list, _ := io.ReadAll(io.NewSectionReader(names[ModuleListPath], 0, int64(names[ModuleListPath].FileSize)))
	var listed []string
	for l := range strings.Lines(string(list)) {
		p := "lib/modules/" + k.Release + "/" + strings.TrimSpace(l)
		listed = append(listed, p)
		if _, ok := names[p]; !ok {
			t.Errorf("listed module %s not in the archive", p)
		}
	}
	for n, rec := range names {
		if strings.HasSuffix(n, ".ko") && !slices.Contains(listed, n) {
			t.Errorf("module %s in the archive but not listed", n)
		}
		if rec.MTime != 0 || rec.UID != 0 {
			t.Errorf("%s: mtime %d uid %d", n, rec.MTime, rec.UID)
		}
	}
	t.Logf("ramdisk: %d bytes compressed, %d uncompressed, %d modules", a.Len(), len(raw), len(listed))
}

// TestRamdiskBoots boots the Debian kernel with the ramdisk in qemu and
// waits for the agent to come up and lease an address from qemu's own
// DHCP server (user networking with restrict=on: nothing leaves qemu).
func TestRamdiskBoots(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("%v (the test needs `make deps`)", err)
	}
	k := testKernel(t)
	rd := filepath.Join(t.TempDir(), "ramdisk")
	f, err := os.Create(rd)
	if err != nil {
		t.Fatal(err)
	}
	if err := (Ramdisk{Kernel: k, Init: testAgent(t)}).Build(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	console := bootQemu(t, []string{"-kernel", k.Vmlinuz(), "-initrd", rd,
		"-append", "console=ttyS0 BOOTIF=01-52-54-00-12-34-56 strata.api=http://10.0.2.2:9 quiet panic=-1",
		"-nic", "user,restrict=on,model=virtio-net-pci,mac=52:54:00:12:34:56"},
		"(52:54:00:12:34:56) is 10.0.2.15/24, leased from 10.0.2.2")
	started := slices.IndexFunc(console, func(l string) bool { return strings.Contains(l, "strata-agent: started") })
	if started < 0 { // the lease line is the last one
		t.Errorf("no banner before the lease:\n%s", strings.Join(console, "\n"))
	}
}

// bootQemu runs qemu (TCG, 512 MiB, the serial console on stdout) with
// args until a console line contains marker, and returns the console so
// far; it fails the test when qemu ends first or after three minutes.
func bootQemu(t *testing.T, args []string, marker string) []string {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("%v (the test needs `make deps`)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"-accel", "tcg", "-cpu", "max", "-m", "512", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(base, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var console []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		console = append(console, sc.Text())
		if strings.Contains(sc.Text(), marker) {
			return console
		}
	}
	t.Fatalf("no %q on the console:\n%s", marker, strings.Join(console, "\n"))
	return nil
}
