package images

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTestImageBoots builds the test image and boots it from a virtio
// disk in qemu, with SeaBIOS and with OVMF, waiting for its marker. The
// BIOS disk also carries a config drive in a partition that sfdisk adds
// behind the image: the test image's kernel must find it by its label,
// mount it and print its meta_data.json.
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
			t.Parallel()
			disk := filepath.Join(t.TempDir(), "disk.raw")
			data, err := os.ReadFile(filepath.Join(dir, TestImageName))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(disk, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := TestImageNoConfigDrive
			meta := map[string]any{"uuid": "7b0c1c38-5a42-4f0b-a3a2-1d9d6c1b9e20", "hostname": "from-the-drive"}
			if firmware == "bios" {
				addConfigDrive(t, disk, ConfigDrive{MetaData: meta})
				want = TestImageConfigDrive
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
			console := bootQemu(t, args, want)
			if !strings.Contains(strings.Join(console, "\n"), TestImageMarker) {
				t.Errorf("%q came without %q", want, TestImageMarker)
			}
			if firmware == "bios" {
				line := console[len(console)-1]
				_, js, _ := strings.Cut(line[strings.Index(line, TestImageConfigDrive)+len(TestImageConfigDrive):], ": ")
				var got map[string]any
				if err := json.Unmarshal([]byte(js), &got); err != nil || got["uuid"] != meta["uuid"] || got["hostname"] != meta["hostname"] {
					t.Errorf("the test image read %q from its config drive (%v), want %v", js, err, meta)
				}
			}
		})
	}
}

// addConfigDrive grows the disk holding the test image to 256 MiB, has
// sfdisk append a partition at its end and writes the drive into it.
func addConfigDrive(t *testing.T, disk string, cd ConfigDrive) {
	t.Helper()
	iso, err := cd.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--append", disk)
	cmd.Stdin = strings.NewReader("start=192MiB, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(iso, 192<<20); err != nil {
		t.Fatal(err)
	}
}
