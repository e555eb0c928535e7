package hwinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// sectorSize is the unit of /sys/block/*/size, whatever the disk's own
// sector size.
const sectorSize = 512

// notDisk matches the names of block devices that are never disks to
// deploy onto: loop, RAM and compressed-RAM disks, device mapper, software
// RAID, network block devices, optical and floppy drives, and eMMC boot
// and RPMB areas.
var notDisk = regexp.MustCompile(`^(loop|ram|zram|dm-|md|nbd|sr|fd)[0-9]|^mmcblk[0-9]+(boot[0-9]+|rpmb)$`)

// readDisks lists the machine's disks, in name order. /sys/block holds
// whole block devices only (partitions are directories inside their
// disk's), and among them the disks are those with a device behind them
// that are not hidden (NVMe multipath paths are), not named by notDisk,
// and have a medium (a size).
func readDisks(fsys fs.FS) ([]inventory.Disk, error) {
	entries, err := fs.ReadDir(fsys, "sys/block")
	if errors.Is(err, fs.ErrNotExist) {
		return []inventory.Disk{}, nil
	}
	if err != nil {
		return nil, err
	}
	disks := []inventory.Disk{}
	for _, e := range entries {
		name := e.Name()
		dir := path.Join("sys/block", name)
		if notDisk.MatchString(name) || !exists(fsys, path.Join(dir, "device")) ||
			exists(fsys, path.Join(dir, "partition")) || readString(fsys, path.Join(dir, "hidden")) == "1" {
			continue
		}
		d, err := readDisk(fsys, name)
		if err != nil {
			return nil, err
		}
		if d.Size > 0 {
			disks = append(disks, d)
		}
	}
	return disks, nil
}

func readDisk(fsys fs.FS, name string) (inventory.Disk, error) {
	dir := path.Join("sys/block", name)
	sectors, err := readInt(fsys, path.Join(dir, "size"))
	if err != nil {
		return inventory.Disk{}, fmt.Errorf("disk %s: %w", name, err)
	}
	d := inventory.Disk{
		Name:       "/dev/" + name,
		Size:       sectors * sectorSize,
		Rotational: readString(fsys, path.Join(dir, "queue/rotational")) == "1",
		Model:      readString(fsys, path.Join(dir, "device/model")),
		Vendor:     readString(fsys, path.Join(dir, "device/vendor")),
	}
	// virtio-blk shows the serial on the disk, NVMe on the controller,
	// SCSI and SATA in the Unit Serial Number VPD page.
	d.Serial = firstNonEmpty(
		readString(fsys, path.Join(dir, "serial")),
		readString(fsys, path.Join(dir, "device/serial")),
		vpdSerial(fsys, path.Join(dir, "device/vpd_pg80")),
	)
	// NVMe shows the namespace's ID on the disk, SCSI on the device.
	wwid := firstNonEmpty(
		readString(fsys, path.Join(dir, "wwid")),
		readString(fsys, path.Join(dir, "device/wwid")),
	)
	d.WWN, d.WWNWithExtension, d.WWNVendorExtension = wwnFromWWID(wwid)
	if hctl, err := fs.ReadDir(fsys, path.Join(dir, "device/scsi_device")); err == nil && len(hctl) > 0 {
		d.HCTL = hctl[0].Name()
	}
	return d, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// vpdSerial reads the serial number out of a SCSI Unit Serial Number VPD
// page (0x80): a 4-byte header whose last two bytes are the length of the
// ASCII serial that follows, often padded with spaces.
func vpdSerial(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	return strings.Trim(string(b), " \x00")
}

// vpdPage80 is the Unit Serial Number VPD page of a disk with that serial.
func vpdPage80(serial string) []byte {
	b := []byte{0x00, 0x80, byte(len(serial) >> 8), byte(len(serial))}
	return append(b, serial...)
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// wwnFromWWID turns the kernel's wwid of a disk into the WWN fields as
// udev names them (ID_WWN, ID_WWN_WITH_EXTENSION, ID_WWN_VENDOR_EXTENSION),
// which is what root device hints are written against. An NAA identifier
// (naa.<hex>) becomes 0x and its first 16 hex digits, the rest being the
// vendor extension; an NVMe wwid (eui.…, nvme.…) is kept as it is; a T10
// vendor identifier (t10.…) is a vendor and serial, not a WWN.
func wwnFromWWID(wwid string) (wwn, withExtension, vendorExtension string) {
	if h, ok := strings.CutPrefix(wwid, "naa."); ok && len(h) >= 16 && hexRE.MatchString(h) {
		h = strings.ToLower(h)
		if len(h) > 16 {
			vendorExtension = "0x" + h[16:]
		}
		return "0x" + h[:16], "0x" + h, vendorExtension
	}
	if wwid == "" || strings.HasPrefix(wwid, "t10.") {
		return "", "", ""
	}
	return wwid, "", ""
}

// wwidFromWWN is the inverse of wwnFromWWID.
func wwidFromWWN(d inventory.Disk) string {
	full := firstNonEmpty(d.WWNWithExtension, d.WWN)
	if h, ok := strings.CutPrefix(full, "0x"); ok {
		return "naa." + h
	}
	return full
}
