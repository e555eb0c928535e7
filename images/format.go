package images

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// The disk image formats the undercloud takes.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// qcow2Magic starts every qcow2 image.
var qcow2Magic = []byte("QFI\xfb")

// DetectFormat returns the format of the image that starts with header
// (its first 4 bytes are enough): FormatQcow2 for qcow2's magic, else
// FormatRaw. Other formats (vmdk, vhd, iso) count as raw: the undercloud
// converts only qcow2.
func DetectFormat(header []byte) string {
	if bytes.HasPrefix(header, qcow2Magic) {
		return FormatQcow2
	}
	return FormatRaw
}

// Fields of the qcow2 header (docs/interop/qcow2.txt in QEMU), big-endian.
const (
	qcow2VersionOff       = 4  // uint32: 2 or 3
	qcow2BackingOffsetOff = 8  // uint64: the backing file's name, 0 for none
	qcow2BackingSizeOff   = 16 // uint32: its length
	qcow2IncompatOff      = 72 // uint64, version 3: incompatible features
	qcow2HeaderV3         = 104
	// The incompatible feature bit of an external data file: the
	// guest's data is in another file, named in a header extension.
	qcow2ExternalDataFile = 1 << 2
	maxBackingName        = 1023 // as QEMU limits it
)

// checkQcow2Header refuses a qcow2 image whose header names another file
// that opening it would read: a backing file or an external data file.
// qemu-img runs only on images that pass, so a hostile image cannot make
// it read, say, /etc/shadow into a disk the undercloud then serves. What
// is not a version QEMU opens is left for qemu-img to reject.
func checkQcow2Header(r io.ReaderAt) error {
	var h [qcow2HeaderV3]byte
	n, err := r.ReadAt(h[:], 0)
	if err != nil && err != io.EOF {
		return err
	}
	if n < qcow2IncompatOff || !bytes.HasPrefix(h[:], qcow2Magic) {
		return nil
	}
	version := binary.BigEndian.Uint32(h[qcow2VersionOff:])
	if version != 2 && version != 3 {
		return nil
	}
	if off := binary.BigEndian.Uint64(h[qcow2BackingOffsetOff:]); off != 0 {
		size := min(binary.BigEndian.Uint32(h[qcow2BackingSizeOff:]), maxBackingName)
		name := make([]byte, size)
		if off < 1<<62 {
			n, _ := r.ReadAt(name, int64(off))
			name = name[:n]
		}
		return fmt.Errorf("%w: qcow2 image has a backing file %q: converting it would read that file from the undercloud's own disk", ErrUnsafeImage, name)
	}
	if version == 3 && n >= qcow2IncompatOff+8 && binary.BigEndian.Uint64(h[qcow2IncompatOff:])&qcow2ExternalDataFile != 0 {
		return fmt.Errorf("%w: qcow2 image has an external data file: converting it would read that file from the undercloud's own disk", ErrUnsafeImage)
	}
	return nil
}
