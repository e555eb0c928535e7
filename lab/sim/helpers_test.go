package sim

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/stratacloud/strata/images"
)

// fakeKernel is the start of a bzImage: enough for the firmware's check.
func fakeKernel() []byte {
	b := make([]byte, 4096)
	b[bootFlagOffset], b[bootFlagOffset+1] = 0x55, 0xaa
	copy(b[headerOffset:], headerMagic)
	return b
}

// makeCpio writes a newc archive of the records, in name order, gzip'd
// or not.
func makeCpio(t *testing.T, files map[string]cpio.Record, gz bool) []byte {
	t.Helper()
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		r := files[n]
		r.Name = n
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return raw.Bytes()
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// writeTemp writes data into a file of the test's.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testMachine is a machine for the firmware's parts that need no
// namespace: its config with defaults, and its directories.
func testMachine(t *testing.T, cfg Config) *Machine {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "t"
	}
	if cfg.Firmware == "" {
		cfg.Firmware = FirmwareBIOS
	}
	cfg.Dir = t.TempDir()
	m := &Machine{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	for _, d := range []string{filepath.Join(m.root(), "dev"), m.bootDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range cfg.Disks {
		if err := sparseFile(m.DiskPath(i), d.SizeBytes); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// testFirmware is the machine's firmware with its console in a file.
func testFirmware(t *testing.T, m *Machine) (*firmware, func() string) {
	t.Helper()
	path := filepath.Join(m.cfg.Dir, "console.log")
	con, err := openConsole(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	return &firmware{m: m, con: con}, func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// The test images, built once per run: MBR and GPT.
var (
	testImagesOnce sync.Once
	testImages     map[bool]string
	testImagesErr  error
)

// testImage returns the path of a built test image (images.TestImage),
// MBR or GPT; the caller copies it before writing to it.
func testImage(t *testing.T, gpt bool) string {
	t.Helper()
	testImagesOnce.Do(func() {
		k, err := images.FindKernel("")
		if err != nil {
			testImagesErr = err
			return
		}
		dir, err := os.MkdirTemp("", "strata-sim-images-")
		if err != nil {
			testImagesErr = err
			return
		}
		testImages = map[bool]string{}
		for _, g := range []bool{false, true} {
			p := filepath.Join(dir, map[bool]string{false: "mbr.raw", true: "gpt.raw"}[g])
			if err := (images.TestImage{Kernel: k, Busybox: "/bin/busybox", GPT: g}).Build(p); err != nil {
				testImagesErr = err
				return
			}
			testImages[g] = p
		}
	})
	if testImagesErr != nil {
		t.Fatalf("building the test image (make deps installs the kernel, mtools, syslinux, gdisk, busybox-static): %v", testImagesErr)
	}
	return testImages[gpt]
}

// putImage writes the image at path onto the start of the disk file.
func putImage(t *testing.T, image, disk string) {
	t.Helper()
	data, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
}

func contains(s string, subs ...string) (missing []string) {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			missing = append(missing, sub)
		}
	}
	return missing
}
