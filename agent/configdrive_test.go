package agent

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/images"
)

// TestConfigDriveBootsInQemu writes the GPT test image onto a larger
// disk, adds the config drive partition the way a deploy does (stretching
// the GPT to the disk), and boots the disk with OVMF: the Debian kernel
// must accept the table and the test image must find the drive by its
// label and read it. The MBR path is booted in the lab test.
func TestConfigDriveBootsInQemu(t *testing.T) {
	k, err := images.FindKernel("")
	if err != nil {
		t.Fatalf("%v (the test needs `make deps`)", err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	if err := (images.TestImage{Kernel: k, Busybox: "/bin/busybox", GPT: true}).Build(disk); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 512<<20); err != nil { // the image on a larger disk
		t.Fatal(err)
	}
	iso, err := images.ConfigDrive{MetaData: map[string]any{"uuid": "c0ffee00-0000-4000-8000-000000000001", "hostname": "gpt-vm"}}.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off, err := addEndPartition(f, 512<<20, configDrivePartition, configDriveLabel)
	if err == nil {
		_, err = f.WriteAt(iso, off)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out := command(t, "sgdisk", "--verify", disk); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk --verify:\n%s", out)
	}

	vars := filepath.Join(dir, "vars.fd")
	b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Fatalf("%v (make deps installs ovmf)", err)
	}
	os.WriteFile(vars, b, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512", "-nographic",
		"-no-reboot", "-nodefaults", "-serial", "stdio", "-machine", "q35",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "file="+disk+",format=raw,if=virtio")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v (make deps installs qemu)", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var console []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		console = append(console, line)
		if strings.Contains(line, images.TestImageNoConfigDrive) {
			break
		}
		if i := strings.Index(line, images.TestImageConfigDrive); i >= 0 {
			if !strings.Contains(line, "/dev/vda2: ") || !strings.Contains(line, `"hostname":"gpt-vm"`) {
				t.Errorf("the image read: %s", line[i:])
			}
			for _, l := range console {
				if strings.Contains(l, "GPT") && (strings.Contains(l, "invalid") || strings.Contains(l, "mismatch") || strings.Contains(l, "Alternate")) {
					t.Errorf("the kernel complains about the GPT: %s", l)
				}
			}
			return
		}
	}
	t.Fatalf("no config drive read on the console:\n%s", strings.Join(console, "\n"))
}
