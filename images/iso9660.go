package images

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
)

// An ISO 9660 filesystem (ECMA-119) is what a config drive holds: the
// kernel's isofs driver reads it everywhere, and cloud-init finds it by
// its volume identifier. This writer makes the plain format only, with
// no Rock Ridge or Joliet extensions: names are kept to d-characters
// (A-Z, 0-9, _) plus one dot, which Linux shows in lower case without
// the ";1" version, so META_DATA.JSON;1 is read as meta_data.json.

const (
	isoSector      = 2048
	isoFirstSector = 16 // the first 32 KiB are the system area, unused here
	isoMaxDepth    = 8  // ECMA-119 6.8.2.1
	isoMaxName     = 30 // name and extension, without the version
)

// isoDir is a directory of the image being built.
type isoDir struct {
	name    string // as recorded, upper case; "" for the root
	parent  *isoDir
	dirs    []*isoDir
	files   []*isoFile
	number  int    // 1-based, in path table order
	extent  uint32 // first sector
	sectors uint32
}

type isoFile struct {
	name   string // as recorded, with ";1"
	data   []byte
	extent uint32
}

// BuildISO9660 returns an ISO 9660 image with the volume identifier
// volume that holds files, keyed by slash-separated path (directories are
// made as needed), each stamped with mtime. The same arguments give the
// same bytes. Names may use letters, digits, underscores and one dot in
// the last component; anything else is refused rather than mangled, so a
// file is never found under a name other than the one it was given.
func BuildISO9660(volume string, files map[string][]byte, mtime time.Time) ([]byte, error) {
	if len(volume) > 32 {
		return nil, fmt.Errorf("iso9660: volume identifier %q is longer than 32 characters", volume)
	}
	root := &isoDir{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if err := root.add(p, files[p]); err != nil {
			return nil, err
		}
	}

	// Directories in path-table order: by level, then parent, then name.
	dirs := []*isoDir{root}
	for i := 0; i < len(dirs); i++ {
		d := dirs[i]
		d.number = i + 1
		slices.SortFunc(d.dirs, func(a, b *isoDir) int { return strings.Compare(a.name, b.name) })
		slices.SortFunc(d.files, func(a, b *isoFile) int { return strings.Compare(a.name, b.name) })
		dirs = append(dirs, d.dirs...)
	}

	pathTable := func(order binary.ByteOrder) []byte {
		var t []byte
		for _, d := range dirs {
			id := []byte(d.name)
			if d.parent == nil {
				id = []byte{0}
			}
			rec := make([]byte, 8+len(id)+len(id)%2)
			rec[0] = byte(len(id))
			order.PutUint32(rec[2:], d.extent)
			parent := 1
			if d.parent != nil {
				parent = d.parent.number
			}
			order.PutUint16(rec[6:], uint16(parent))
			copy(rec[8:], id)
			t = append(t, rec...)
		}
		return t
	}
	ptSize := len(pathTable(binary.LittleEndian))
	ptSectors := uint32(sectorsFor(ptSize))

	// Lay out: descriptors, both path tables, directories, file data.
	next := uint32(isoFirstSector + 2)
	lTable, mTable := next, next+ptSectors
	next += 2 * ptSectors
	for _, d := range dirs {
		d.extent, d.sectors = next, d.size()
		next += d.sectors
	}
	for _, d := range dirs {
		for _, f := range d.files {
			f.extent = next
			next += uint32(sectorsFor(len(f.data)))
		}
	}

	img := make([]byte, int(next)*isoSector)
	stamp := isoRecordTime(mtime)
	pvd := img[isoFirstSector*isoSector:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	putPadded(pvd[8:40], "LINUX")
	putPadded(pvd[40:72], volume)
	putBoth32(pvd[80:], next)
	putBoth16(pvd[120:], 1)
	putBoth16(pvd[124:], 1)
	putBoth16(pvd[128:], isoSector)
	putBoth32(pvd[132:], uint32(ptSize))
	binary.LittleEndian.PutUint32(pvd[140:], lTable)
	binary.BigEndian.PutUint32(pvd[148:], mTable)
	copy(pvd[156:190], isoRecord([]byte{0}, root.extent, root.sectors*isoSector, true, stamp))
	for _, f := range [][2]int{{190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}} {
		putPadded(pvd[f[0]:f[1]], "")
	}
	putPadded(pvd[574:702], "STRATA")
	created := isoVolumeTime(mtime)
	copy(pvd[813:], created)
	copy(pvd[830:], created)
	copy(pvd[847:], "0000000000000000")
	copy(pvd[864:], created)
	pvd[881] = 1

	term := img[(isoFirstSector+1)*isoSector:]
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1

	copy(img[int(lTable)*isoSector:], pathTable(binary.LittleEndian))
	copy(img[int(mTable)*isoSector:], pathTable(binary.BigEndian))
	for _, d := range dirs {
		d.write(img[int(d.extent)*isoSector:], stamp)
		for _, f := range d.files {
			copy(img[int(f.extent)*isoSector:], f.data)
		}
	}
	return img, nil
}

// add puts a file at path p below d.
func (d *isoDir) add(p string, data []byte) error {
	parts := strings.Split(p, "/")
	if len(parts) > isoMaxDepth {
		return fmt.Errorf("iso9660: %q is more than %d directories deep", p, isoMaxDepth)
	}
	for i, part := range parts {
		last := i == len(parts)-1
		name, err := isoName(part, last)
		if err != nil {
			return fmt.Errorf("iso9660: %q: %w", p, err)
		}
		if last {
			for _, f := range d.files {
				if f.name == name {
					return fmt.Errorf("iso9660: %q: two files have this name", p)
				}
			}
			d.files = append(d.files, &isoFile{name: name, data: data})
			return nil
		}
		var sub *isoDir
		for _, c := range d.dirs {
			if c.name == name {
				sub = c
			}
		}
		if sub == nil {
			sub = &isoDir{name: name, parent: d}
			d.dirs = append(d.dirs, sub)
		}
		d = sub
	}
	return nil
}

// isoName is the recorded name of a path component: upper case, a file's
// with its extension's dot and the version ";1".
func isoName(part string, file bool) (string, error) {
	if part == "" {
		return "", fmt.Errorf("empty path component")
	}
	up := strings.ToUpper(part)
	dots := strings.Count(up, ".")
	if len(up) > isoMaxName || (!file && dots > 0) || dots > 1 {
		return "", fmt.Errorf("%q is not an ISO 9660 name (at most %d characters, one dot, in a file's name only)", part, isoMaxName)
	}
	for _, r := range up {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return "", fmt.Errorf("%q is not an ISO 9660 name: %q is not a letter, a digit or _", part, r)
		}
	}
	if !file {
		return up, nil
	}
	if dots == 0 {
		up += "."
	}
	return up + ";1", nil
}

// records returns d's directory records, "." and ".." first.
func (d *isoDir) records(stamp [7]byte) [][]byte {
	parent := d
	if d.parent != nil {
		parent = d.parent
	}
	recs := [][]byte{
		isoRecord([]byte{0}, d.extent, d.sectors*isoSector, true, stamp),
		isoRecord([]byte{1}, parent.extent, parent.sectors*isoSector, true, stamp),
	}
	// Children in name order, directories and files together.
	type child struct {
		name string
		rec  []byte
	}
	var cs []child
	for _, c := range d.dirs {
		cs = append(cs, child{c.name, isoRecord([]byte(c.name), c.extent, c.sectors*isoSector, true, stamp)})
	}
	for _, f := range d.files {
		cs = append(cs, child{f.name, isoRecord([]byte(f.name), f.extent, uint32(len(f.data)), false, stamp)})
	}
	slices.SortFunc(cs, func(a, b child) int { return strings.Compare(a.name, b.name) })
	for _, c := range cs {
		recs = append(recs, c.rec)
	}
	return recs
}

// size is how many sectors d's records take: a record never crosses a
// sector boundary. The sizes in the records do not change the count.
func (d *isoDir) size() uint32 {
	sectors, used := uint32(1), 0
	for _, r := range d.records([7]byte{}) {
		if used+len(r) > isoSector {
			sectors, used = sectors+1, 0
		}
		used += len(r)
	}
	return sectors
}

// write puts d's records into buf, which starts at d's extent.
func (d *isoDir) write(buf []byte, stamp [7]byte) {
	off := 0
	for _, r := range d.records(stamp) {
		if off%isoSector+len(r) > isoSector {
			off += isoSector - off%isoSector
		}
		copy(buf[off:], r)
		off += len(r)
	}
}

// isoRecord is a directory record (ECMA-119 9.1).
func isoRecord(name []byte, extent, size uint32, dir bool, stamp [7]byte) []byte {
	r := make([]byte, 33+len(name)+(len(name)+1)%2)
	r[0] = byte(len(r))
	putBoth32(r[2:], extent)
	putBoth32(r[10:], size)
	copy(r[18:25], stamp[:])
	if dir {
		r[25] = 2
	}
	putBoth16(r[28:], 1)
	r[32] = byte(len(name))
	copy(r[33:], name)
	return r
}

func isoRecordTime(t time.Time) [7]byte {
	t = t.UTC()
	return [7]byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

func isoVolumeTime(t time.Time) []byte {
	t = t.UTC()
	return append([]byte(t.Format("20060102150405")+"00"), 0)
}

func sectorsFor(n int) int { return (n + isoSector - 1) / isoSector }

func putPadded(dst []byte, s string) {
	n := copy(dst, s)
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}

func putBoth16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func putBoth32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}
