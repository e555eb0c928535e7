package images

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTestImageBoots builds the test image and boots it from a virtio
// disk in qemu, with SeaBIOS and with OVMF, waiting for its marker.
func TestTestImageBoots(t *testing.T) {
	k := testKernel(t)
	dir := t.TempDir()
	art, err := InstallTestImage(dir, k, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test image: %d bytes, sha256 %s", art.Size, art.SHA256)
	for _, firmware := range []string{"bios", "uefi"} {
		t.Run(firmware, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.raw")
			data, err := os.ReadFile(filepath.Join(dir, TestImageName))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(disk, data, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-accel", "tcg", "-cpu", "max", "-m", "512", "-nographic", "-no-reboot", "-nodefaults",
				"-serial", "stdio", "-drive", "file=" + disk + ",format=raw,if=virtio"}
			if firmware == "uefi" {
				vars := filepath.Join(t.TempDir(), "vars.fd")
				b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
				if err != nil {
					t.Fatalf("%v (make deps installs ovmf)", err)
				}
				os.WriteFile(vars, b, 0o644)
				args = append(args, "-machine", "q35",
					"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
					"-drive", "if=pflash,format=raw,unit=1,file="+vars)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
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
				if strings.Contains(sc.Text(), TestImageMarker) {
					return
				}
			}
			t.Fatalf("no marker; console:\n%s", strings.Join(console, "\n"))
		})
	}
}
