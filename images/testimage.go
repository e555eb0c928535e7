package images

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// TestImageMarker is what the test image prints on its serial console
// when it has come up from disk.
const TestImageMarker = "STRATA-TEST-IMAGE: up from disk"

// TestImageName is the test image's file name in an images directory.
const TestImageName = "test-image.raw"

// Where Debian's syslinux packages put what the test image boots with.
var (
	syslinuxMBR     = "/usr/lib/syslinux/mbr/mbr.bin"
	syslinuxGPTMBR  = "/usr/lib/syslinux/mbr/gptmbr.bin"
	syslinuxEFI     = "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi"
	syslinuxLDLinux = "/usr/lib/syslinux/modules/efi64/ldlinux.e64"
)

// Layout of the test image.
const (
	testImageSize   = 64 << 20
	partitionStart  = 2048 // sectors: 1 MiB, aligned
	sectorBytes     = 512
	partitionTypeEF = 0xef // EFI system partition, in an MBR
)

// TestImage is a small whole-disk image that boots with BIOS and with
// UEFI into the Debian kernel and a busybox initramfs, whose /init prints
// TestImageMarker on the serial console. It is one FAT32 partition
// (marked active, of the EFI system partition's type) holding the kernel,
// the initramfs and syslinux's configuration: BIOS firmware runs
// syslinux's MBR code and ldlinux.sys; UEFI firmware runs
// /EFI/BOOT/BOOTX64.EFI, which is syslinux.efi.
type TestImage struct {
	Kernel Kernel
	// Busybox is a static busybox (Debian's busybox-static).
	Busybox string
	// GPT partitions the image with a GUID partition table instead of an
	// MBR, as whole-disk cloud images are: the partition is an EFI system
	// partition marked legacy-BIOS-bootable, and the MBR's boot code is
	// syslinux's gptmbr, so it still boots both ways.
	GPT bool
}

// Fixed GUIDs make two GPT builds byte-identical.
const (
	testImageDiskGUID = "5354524D-5445-5354-4449-534B00000001"
	testImagePartGUID = "5354524D-5445-5354-4553-503000000001"
)

// Build writes the image to path. It needs mtools and syslinux (make
// deps installs them).
func (t TestImage) Build(path string) error {
	initrd, err := t.initramfs()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "strata-test-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "syslinux.cfg")
	if err := os.WriteFile(cfg, []byte(syslinuxConfig), 0o644); err != nil {
		return err
	}
	rd := filepath.Join(dir, "initrd.gz")
	if err := os.WriteFile(rd, initrd, 0o644); err != nil {
		return err
	}
	tmp := path + ".partial"
	mbrCode := syslinuxMBR
	if t.GPT {
		mbrCode = syslinuxGPTMBR
		err = writeGPT(tmp)
	} else {
		err = writePartitionTable(tmp)
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	img := tmp + "@@" + strconv.Itoa(partitionStart*sectorBytes)
	steps := [][]string{
		{"mformat", "-i", img, "-F", "-N", "53545241", "-v", "STRATATEST", "::"},
		{"mmd", "-i", img, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", img, t.Kernel.Vmlinuz(), "::/vmlinuz"},
		{"mcopy", "-i", img, rd, "::/initrd.gz"},
		{"mcopy", "-i", img, cfg, "::/syslinux.cfg"},
		{"mcopy", "-i", img, cfg, "::/EFI/BOOT/syslinux.cfg"},
		{"mcopy", "-i", img, syslinuxEFI, "::/EFI/BOOT/BOOTX64.EFI"},
		{"mcopy", "-i", img, syslinuxLDLinux, "::/EFI/BOOT/ldlinux.e64"},
		{"syslinux", "--offset", strconv.Itoa(partitionStart * sectorBytes), "--install", tmp},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "SOURCE_DATE_EPOCH=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("test image: %s: %v: %s (make deps installs mtools and syslinux)", s[0], err, bytes.TrimSpace(out))
		}
	}
	mbr, err := os.ReadFile(mbrCode)
	if err != nil {
		return fmt.Errorf("test image: %w (make deps installs syslinux-common)", err)
	}
	if len(mbr) > 440 {
		mbr = mbr[:440]
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(mbr, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

const syslinuxConfig = `DEFAULT test
PROMPT 0
TIMEOUT 0
SERIAL 0 115200
LABEL test
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200 quiet
`

// TestImageConfigDrive starts the line the test image prints after its
// marker when it finds a config drive: the device, a colon, and
// meta_data.json on one line. Without one it prints TestImageNoConfigDrive.
const (
	TestImageConfigDrive   = "STRATA-TEST-IMAGE: config drive "
	TestImageNoConfigDrive = "STRATA-TEST-IMAGE: no config drive"
)

// testImageModules are what the test image loads to read a config drive
// the way a deployed OS does (the virtio disk and the ISO 9660 driver),
// and to reach the network for its user data (virtio-net).
var testImageModules = []string{"virtio_pci", "virtio_blk", "isofs", "virtio_net"}

// TestImageUserData starts the lines the test image prints around its
// user data's run: "STRATA-TEST-IMAGE: user data: start" and "...: exit N".
const TestImageUserData = "STRATA-TEST-IMAGE: user data: "

// testInit prints the marker, then looks for the config drive by its
// label (as cloud-init does) and prints its meta_data.json; if the drive
// has user data that is a script, it brings the first NIC up with DHCP
// and runs it (as cloud-init runs a user's script), with CONFIG_DRIVE set
// to the drive's device. Modules are loaded only under the kernel they
// were built for.
const testInit = `#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb echo "` + TestImageMarker + `"
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /tmp /usr/bin /usr/sbin /sbin
$bb --install -s
if [ "$($bb uname -r)" = "$($bb cat /etc/release)" ]; then
	for m in $($bb cat /etc/modules); do $bb insmod "/lib/modules/$m" 2>/dev/null; done
fi
dev=""
for i in $($bb seq 50); do
	dev=$($bb findfs LABEL=config-2 2>/dev/null) && break
	$bb sleep 0.2
done
if [ -n "$dev" ] && $bb mount -t iso9660 -o ro "$dev" /mnt; then
	$bb echo "` + TestImageConfigDrive + `$dev: $($bb cat /mnt/openstack/latest/meta_data.json)"
	if [ "$($bb head -c 2 /mnt/openstack/latest/user_data 2>/dev/null)" = "#!" ]; then
		$bb cp /mnt/openstack/latest/user_data /tmp/user_data
		$bb chmod +x /tmp/user_data
		$bb ip link set eth0 up
		$bb udhcpc -q -n -t 10 -i eth0 -s /etc/udhcpc.script >/dev/null 2>&1
		$bb echo "` + TestImageUserData + `start"
		CONFIG_DRIVE="$dev" /tmp/user_data 2>&1
		$bb echo "` + TestImageUserData + `exit $?"
	fi
else
	$bb echo "` + TestImageNoConfigDrive + `"
fi
while true; do $bb sleep 3600; done
`

// udhcpcScript configures the address and default route udhcpc gets.
const udhcpcScript = `#!/bin/busybox sh
case "$1" in
bound|renew)
	/bin/busybox ip addr flush dev "$interface"
	/bin/busybox ip addr add "$ip/$mask" dev "$interface"
	[ -n "$router" ] && /bin/busybox ip route add default via "${router%% *}" dev "$interface"
	;;
esac
exit 0
`

// initramfs is the test image's initramfs: busybox, the modules, and an
// /init that prints the marker, reads the config drive and stays up.
func (t TestImage) initramfs() ([]byte, error) {
	bb, err := os.ReadFile(t.Busybox)
	if err != nil {
		return nil, fmt.Errorf("test image: busybox: %w (make deps installs busybox-static)", err)
	}
	files := map[string]cpio.Record{
		"init":              cpio.StaticFile("", testInit, 0o755),
		"bin/busybox":       cpio.StaticRecord(bb, cpio.Info{Mode: cpio.S_IFREG | 0o755}),
		"dev/console":       cpio.CharDev("", 0o600, 5, 1),
		"etc/release":       cpio.StaticFile("", t.Kernel.Release+"\n", 0o644),
		"etc/udhcpc.script": cpio.StaticFile("", udhcpcScript, 0o755),
	}
	for _, d := range []string{"proc", "sys", "mnt"} {
		files[d] = cpio.Directory("", 0o755)
	}
	mods, err := t.Kernel.ModuleClosure(testImageModules)
	if err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	var list strings.Builder
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(t.Kernel.ModulesDir(), m.Path))
		if err != nil {
			return nil, fmt.Errorf("test image: module %s: %w", m.Name, err)
		}
		files["lib/modules/"+m.Path] = cpio.StaticRecord(data, cpio.Info{Mode: cpio.S_IFREG | 0o644})
		list.WriteString(m.Path + "\n")
	}
	files["etc/modules"] = cpio.StaticFile("", list.String(), 0o644)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := writeArchive(zw, files); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writePartitionTable makes a sparse file of testImageSize bytes whose
// MBR has one active partition of the EFI system partition's type from
// partitionStart to the end.
func writePartitionTable(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(testImageSize); err != nil {
		return err
	}
	var entry [16]byte
	entry[0] = 0x80                            // active
	copy(entry[1:4], []byte{0xfe, 0xff, 0xff}) // CHS: use the LBA fields
	entry[4] = partitionTypeEF
	copy(entry[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(entry[8:], partitionStart)
	binary.LittleEndian.PutUint32(entry[12:], testImageSize/sectorBytes-partitionStart)
	if _, err := f.WriteAt(entry[:], 446); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte{0x55, 0xaa}, 510)
	return err
}

// writeGPT makes a sparse file of testImageSize bytes partitioned by
// sgdisk: one EFI system partition from partitionStart to the end, with
// the legacy BIOS bootable attribute (bit 2) that gptmbr looks for.
func writeGPT(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(testImageSize); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := exec.Command("sgdisk", "-o", "-U", testImageDiskGUID,
		"-n", fmt.Sprintf("1:%d:0", partitionStart), "-t", "1:EF00", "-c", "1:ESP", "-u", "1:"+testImagePartGUID,
		"-A", "1:set:2", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("test image: sgdisk: %v: %s (make deps installs gdisk)", err, bytes.TrimSpace(out))
	}
	return nil
}

// InstallTestImage builds the test image into dir and returns what it
// wrote.
func InstallTestImage(dir string, k Kernel, busybox string) (Artifact, error) {
	return TestImage{Kernel: k, Busybox: busybox}.Install(dir)
}

// TestImageGPTName is the GPT test image's file name in an images
// directory.
const TestImageGPTName = "test-image-gpt.raw"

// Install builds the image into dir, as TestImageName or, GPT,
// TestImageGPTName, and returns what it wrote.
func (t TestImage) Install(dir string) (Artifact, error) {
	name := TestImageName
	if t.GPT {
		name = TestImageGPTName
	}
	tmp := filepath.Join(dir, "."+name+".build")
	if err := t.Build(tmp); err != nil {
		return Artifact{}, err
	}
	defer os.Remove(tmp)
	return writeArtifact(dir, name, func(w io.Writer) error {
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}
