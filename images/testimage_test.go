package images

import (
	"os"
	"path/filepath"
	"testing"
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
			args := []string{"-drive", "file=" + disk + ",format=raw,if=virtio"}
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
			bootQemu(t, args, TestImageMarker)
		})
	}
}
