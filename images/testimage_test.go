package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTestImageBoots builds the test image, MBR and GPT, and boots each
// from a virtio disk in qemu, with SeaBIOS and with OVMF, waiting for its
// marker. Two of the disks also carry a config drive in a partition that
// sfdisk adds behind the image: the test image's kernel must find it by
// its label, mount it and print its meta_data.json.
func TestTestImageBoots(t *testing.T) {
	k := testKernel(t)
	built := map[bool]string{}
	for _, gpt := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), TestImageName)
		if err := (TestImage{Kernel: k, Busybox: "/bin/busybox", GPT: gpt}).Build(path); err != nil {
			t.Fatal(err)
		}
		built[gpt] = path
	}
	cases := []struct {
		name, firmware string
		gpt, drive     bool
	}{
		{"mbr-bios", "bios", false, true},
		{"mbr-uefi", "uefi", false, false},
		{"gpt-bios", "bios", true, false},
		{"gpt-uefi", "uefi", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			disk := filepath.Join(t.TempDir(), "disk.raw")
			data, err := os.ReadFile(built[c.gpt])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(disk, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := TestImageNoConfigDrive
			meta := map[string]any{"uuid": "7b0c1c38-5a42-4f0b-a3a2-1d9d6c1b9e20", "hostname": "from-the-drive"}
			args := qemuDisk(disk)
			var spare string
			if c.drive {
				cd := ConfigDrive{MetaData: meta}
				want = TestImageConfigDrive
				if c.firmware == "bios" {
					// User data: fetch a blob over the network onto the
					// spare disk (as the lab's dd measurement does).
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(userDataBlob) }))
					defer srv.Close()
					_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
					cd.UserData = []byte("#!/bin/sh\necho drive $CONFIG_DRIVE\nwget -q -O - http://10.0.2.100/blob | dd of=/dev/vdb bs=64k conv=fsync\n")
					spare = filepath.Join(t.TempDir(), "spare.raw")
					os.WriteFile(spare, nil, 0o644)
					os.Truncate(spare, 8<<20)
					args = append(args, "-drive", "file="+spare+",format=raw,if=virtio",
						// The guest reaches nothing but the blob's server,
						// on loopback, through one forward.
						"-netdev", "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:"+port, "-device", "virtio-net-pci,netdev=n0")
					want = TestImageUserData + "exit"
				}
				addConfigDrive(t, disk, cd)
			}
			console := bootQemu(t, append(args, firmwareArgs(t, c.firmware)...), want)
			if !strings.Contains(strings.Join(console, "\n"), TestImageMarker) {
				t.Errorf("%q came without %q", want, TestImageMarker)
			}
			if spare != "" {
				text := strings.Join(console, "\n")
				got, _ := os.ReadFile(spare)
				if !strings.Contains(text, TestImageUserData+"exit 0") || !strings.Contains(text, "drive /dev/vda2") || !bytes.HasPrefix(got, userDataBlob) {
					t.Errorf("the user data did not copy the blob onto the spare disk:\n%s", text)
				}
				console = slices.DeleteFunc(console, func(l string) bool { return !strings.Contains(l, TestImageConfigDrive) })
			}
			if c.drive {
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

// TestTestImageReproducible: two builds of the GPT image are the same
// bytes (sgdisk is given every GUID).
func TestTestImageReproducible(t *testing.T) {
	k := testKernel(t)
	var sums []string
	for range 2 {
		path := filepath.Join(t.TempDir(), TestImageName)
		if err := (TestImage{Kernel: k, Busybox: "/bin/busybox", GPT: true}).Build(path); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		sums = append(sums, fmt.Sprintf("%x", sha256.Sum256(b)))
	}
	if sums[0] != sums[1] {
		t.Errorf("two GPT test images differ: %s, %s", sums[0], sums[1])
	}
}

func qemuDisk(path string) []string {
	return []string{"-drive", "file=" + path + ",format=raw,if=virtio"}
}

// firmwareArgs are qemu's arguments for a UEFI machine (OVMF, q35), or
// none for SeaBIOS.
func firmwareArgs(t *testing.T, firmware string) []string {
	if firmware != "uefi" {
		return nil
	}
	vars := filepath.Join(t.TempDir(), "vars.fd")
	b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Fatalf("%v (make deps installs ovmf)", err)
	}
	os.WriteFile(vars, b, 0o644)
	return []string{"-machine", "q35",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars}
}

// addConfigDrive grows the disk holding the test image to 256 MiB, has
// sfdisk (MBR) or sgdisk (GPT) add a partition at its end and writes the
// drive into it.
func addConfigDrive(t *testing.T, disk string, cd ConfigDrive) {
	t.Helper()
	iso, err := cd.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 520)
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	if string(head[512:520]) == "EFI PART" {
		// sgdisk moves the backup GPT to the new end first.
		if out, err := exec.Command("sgdisk", "-e", "-n", "2:393216:0", "-c", "2:config-2", disk).CombinedOutput(); err != nil {
			t.Fatalf("sgdisk: %v\n%s", err, out)
		}
	} else {
		cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--append", disk)
		cmd.Stdin = strings.NewReader("start=192MiB, type=83\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
	}
	f, err = os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(iso, 192<<20); err != nil {
		t.Fatal(err)
	}
}

// userDataBlob is what the test image's user data copies over the
// network onto a spare disk.
var userDataBlob = bytes.Repeat([]byte("strata user data "), 1<<15)
