package images

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// ReadISO9660 reads every file of an ISO 9660 filesystem (its primary
// volume: plain names, as the kernel shows them without extensions:
// lower case, without ";1" or a trailing dot) and returns them by
// slash-separated path, with the volume identifier. It is how a node
// reads its config drive where the kernel has no isofs, and reads
// drives made by other tools (genisoimage) as well as BuildISO9660's.
// Files larger than maxFile are refused.
func ReadISO9660(r io.ReaderAt, maxFile int64) (volume string, files map[string][]byte, err error) {
	pvd := make([]byte, isoSector)
	if _, err := r.ReadAt(pvd, isoFirstSector*isoSector); err != nil {
		return "", nil, fmt.Errorf("iso9660: reading the volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return "", nil, fmt.Errorf("iso9660: no primary volume descriptor at sector %d", isoFirstSector)
	}
	if bs := binary.LittleEndian.Uint16(pvd[128:]); bs != isoSector {
		return "", nil, fmt.Errorf("iso9660: logical block size %d is not %d", bs, isoSector)
	}
	volume = strings.TrimRight(string(pvd[40:72]), " ")
	root := pvd[156:190]
	files = map[string][]byte{}
	seen := map[uint32]bool{}
	var walk func(extent, size uint32, prefix string, depth int) error
	walk = func(extent, size uint32, prefix string, depth int) error {
		if depth > isoMaxDepth || seen[extent] || size > 16<<20 {
			return fmt.Errorf("iso9660: directory at sector %d: too deep, looped or too large", extent)
		}
		seen[extent] = true
		dir := make([]byte, size)
		if _, err := r.ReadAt(dir, int64(extent)*isoSector); err != nil {
			return fmt.Errorf("iso9660: directory at sector %d: %w", extent, err)
		}
		for off := 0; off < len(dir); {
			n := int(dir[off])
			if n == 0 { // the rest of this sector is padding
				off = (off/isoSector + 1) * isoSector
				continue
			}
			if n < 34 || off+n > len(dir) {
				return fmt.Errorf("iso9660: a bad directory record at sector %d", extent)
			}
			rec := dir[off : off+n]
			off += n
			nameLen := int(rec[32])
			if 33+nameLen > len(rec) {
				return fmt.Errorf("iso9660: a bad name in the directory at sector %d", extent)
			}
			id := rec[33 : 33+nameLen]
			if nameLen == 1 && (id[0] == 0 || id[0] == 1) {
				continue // "." and ".."
			}
			childExtent := binary.LittleEndian.Uint32(rec[2:])
			childSize := binary.LittleEndian.Uint32(rec[10:])
			name := isoDisplayName(string(id))
			if rec[25]&2 != 0 {
				if err := walk(childExtent, childSize, prefix+name+"/", depth+1); err != nil {
					return err
				}
				continue
			}
			if int64(childSize) > maxFile {
				return fmt.Errorf("iso9660: %s is %d bytes, more than %d", prefix+name, childSize, maxFile)
			}
			data := make([]byte, childSize)
			if _, err := r.ReadAt(data, int64(childExtent)*isoSector); err != nil && !(err == io.EOF && childSize == 0) {
				return fmt.Errorf("iso9660: %s: %w", prefix+name, err)
			}
			files[prefix+name] = data
		}
		return nil
	}
	if err := walk(binary.LittleEndian.Uint32(root[2:]), binary.LittleEndian.Uint32(root[10:]), "", 0); err != nil {
		return "", nil, err
	}
	return volume, files, nil
}

// isoDisplayName is a recorded name as Linux shows it by default: lower
// case, without the version and a trailing dot.
func isoDisplayName(id string) string {
	if i := strings.IndexByte(id, ';'); i >= 0 {
		id = id[:i]
	}
	return strings.ToLower(strings.TrimSuffix(id, "."))
}
