package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"unicode/utf16"

	"github.com/google/uuid"
)

// The config drive goes into a partition that the agent adds at the end
// of the root disk, after the image is written, to the partition table
// the image brought (MBR or GPT), as Ironic's agent does for whole-disk
// images. Sectors are 512 bytes (4Kn disks are not handled).

const (
	sector      = 512
	alignment   = 2048 // sectors: partitions start and end on 1 MiB
	mbrEntries  = 446  // offset of the four primary entries
	mbrTypeGPT  = 0xee // the protective MBR's one partition
	mbrTypeData = 0x83 // Linux
)

// gptLinuxData is the Linux filesystem data partition type,
// 0FC63DAF-8483-4772-8E79-3D69D8477DE4, as GPT stores it (the first
// three fields little-endian).
var gptLinuxData = guidBytes(uuid.MustParse("0fc63daf-8483-4772-8e79-3d69d8477de4"))

// errNoPartitionTable is the answer for a disk whose image has no MBR
// or GPT: there is nowhere to record a new partition.
var errNoPartitionTable = errors.New("the image on the disk has no partition table (MBR or GPT)")

// addEndPartition adds a partition of size bytes (rounded up to 1 MiB),
// named name on GPT, ending at the last 1 MiB boundary of the disk (of
// diskSize bytes) that the table can address, and returns its offset in
// bytes. A GPT is first stretched to the whole disk: an image's backup
// header sits at the image's end, not the disk's.
func addEndPartition(f *os.File, diskSize, size int64, name string) (int64, error) {
	var mbr [sector]byte
	if _, err := f.ReadAt(mbr[:], 0); err != nil {
		return 0, fmt.Errorf("reading the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return 0, errNoPartitionTable
	}
	sectors := (size + alignment*sector - 1) / (alignment * sector) * alignment
	for i := range 4 {
		if mbr[mbrEntries+16*i+4] == mbrTypeGPT {
			return addGPTPartition(f, mbr, diskSize/sector, sectors, name)
		}
	}
	return addMBRPartition(f, mbr, diskSize/sector, sectors)
}

func addMBRPartition(f *os.File, mbr [sector]byte, diskSectors, sectors int64) (int64, error) {
	limit := min(diskSectors, 1<<32-1) // an MBR entry's 32-bit LBAs
	end := limit / alignment * alignment
	start := end - sectors
	free := -1
	for i := range 4 {
		e := mbr[mbrEntries+16*i:]
		first, count := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		if e[4] == 0 || count == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		if first+count > start {
			return 0, fmt.Errorf("no room for a %d MiB partition at the end of the disk: partition %d ends at sector %d, past %d", sectors/alignment, i+1, first+count, start)
		}
	}
	if free < 0 {
		return 0, errors.New("the MBR's four primary partitions are all in use")
	}
	if start <= 0 {
		return 0, fmt.Errorf("the disk is too small for a %d MiB partition", sectors/alignment)
	}
	e := mbr[mbrEntries+16*free : mbrEntries+16*free+16]
	copy(e, []byte{0, 0xfe, 0xff, 0xff, mbrTypeData, 0xfe, 0xff, 0xff}) // CHS unused: LBA only
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(sectors))
	if _, err := f.WriteAt(e, int64(mbrEntries+16*free)); err != nil {
		return 0, err
	}
	return start * sector, nil
}

// GPT header fields (UEFI 2.10, 5.3.2).
const (
	gptHeaderSizeOff  = 12
	gptHeaderCRCOff   = 16
	gptMyLBAOff       = 24
	gptAlternateOff   = 32
	gptFirstUsableOff = 40
	gptLastUsableOff  = 48
	gptEntriesLBAOff  = 72
	gptNumEntriesOff  = 80
	gptEntrySizeOff   = 84
	gptEntriesCRCOff  = 88
)

func addGPTPartition(f *os.File, mbr [sector]byte, diskSectors, sectors int64, name string) (int64, error) {
	hdr := make([]byte, sector)
	if _, err := f.ReadAt(hdr, sector); err != nil {
		return 0, fmt.Errorf("reading the GPT header: %w", err)
	}
	le := binary.LittleEndian
	hsize := le.Uint32(hdr[gptHeaderSizeOff:])
	if !bytes.HasPrefix(hdr, []byte("EFI PART")) || hsize < 92 || hsize > sector {
		return 0, errors.New("the protective MBR names a GPT, but LBA 1 holds no GPT header")
	}
	h := hdr[:hsize]
	if headerCRC(h) != le.Uint32(h[gptHeaderCRCOff:]) {
		return 0, errors.New("the GPT header's CRC does not match")
	}
	num, esize := int64(le.Uint32(h[gptNumEntriesOff:])), int64(le.Uint32(h[gptEntrySizeOff:]))
	if esize < 128 || esize%8 != 0 || num < 1 || num*esize > 1<<20 {
		return 0, fmt.Errorf("the GPT's entry array (%d entries of %d bytes) is not one this agent handles", num, esize)
	}
	entries := make([]byte, num*esize)
	if _, err := f.ReadAt(entries, int64(le.Uint64(h[gptEntriesLBAOff:]))*sector); err != nil {
		return 0, fmt.Errorf("reading the GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(entries) != le.Uint32(h[gptEntriesCRCOff:]) {
		return 0, errors.New("the GPT entries' CRC does not match")
	}

	last := diskSectors - 1
	entrySectors := (num*esize + sector - 1) / sector
	backupEntries := last - entrySectors
	lastUsable := backupEntries - 1
	end := (lastUsable + 1) / alignment * alignment
	start := end - sectors
	if start < int64(le.Uint64(h[gptFirstUsableOff:])) {
		return 0, fmt.Errorf("the disk is too small for a %d MiB partition", sectors/alignment)
	}
	free := -1
	for i := range num {
		e := entries[i*esize : (i+1)*esize]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if lastLBA := int64(le.Uint64(e[40:])); lastLBA >= start {
			return 0, fmt.Errorf("no room for a %d MiB partition at the end of the disk: partition %d ends at sector %d, past %d", sectors/alignment, i+1, lastLBA, start-1)
		}
	}
	if free < 0 {
		return 0, fmt.Errorf("the GPT's %d entries are all in use", num)
	}
	e := entries[int64(free)*esize : int64(free+1)*esize]
	copy(e, gptLinuxData)
	copy(e[16:], guidBytes(uuid.New()))
	le.PutUint64(e[32:], uint64(start))
	le.PutUint64(e[40:], uint64(end-1))
	for i, u := range utf16.Encode([]rune(name)) {
		if 56+2*i+2 <= len(e) {
			le.PutUint16(e[56+2*i:], u)
		}
	}

	oldBackup := int64(le.Uint64(h[gptAlternateOff:]))
	le.PutUint64(h[gptAlternateOff:], uint64(last))
	le.PutUint64(h[gptLastUsableOff:], uint64(lastUsable))
	le.PutUint32(h[gptEntriesCRCOff:], crc32.ChecksumIEEE(entries))
	le.PutUint32(h[gptHeaderCRCOff:], headerCRC(h))
	backup := bytes.Clone(hdr)
	b := backup[:hsize]
	le.PutUint64(b[gptMyLBAOff:], uint64(last))
	le.PutUint64(b[gptAlternateOff:], 1)
	le.PutUint64(b[gptEntriesLBAOff:], uint64(backupEntries))
	le.PutUint32(b[gptHeaderCRCOff:], headerCRC(b))

	// The protective MBR covers the whole disk (or as much as it can).
	pm := mbrEntries
	for i := range 4 {
		if mbr[mbrEntries+16*i+4] == mbrTypeGPT {
			pm = mbrEntries + 16*i
		}
	}
	le.PutUint32(mbr[pm+12:], uint32(min(diskSectors-1, 1<<32-1)))

	// Backup first, primary last: until the primary header is written,
	// the disk still reads as the image's own table.
	writes := []struct {
		data []byte
		lba  int64
	}{
		{entries, backupEntries},
		{backup, last},
		{entries, int64(le.Uint64(h[gptEntriesLBAOff:]))},
		{hdr, 1},
		{mbr[:], 0},
	}
	if oldBackup != last && oldBackup > 1 && oldBackup < start {
		writes = append(writes, struct {
			data []byte
			lba  int64
		}{make([]byte, sector), oldBackup})
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.data, w.lba*sector); err != nil {
			return 0, err
		}
	}
	return start * sector, nil
}

// headerCRC is a GPT header's CRC32, computed with its own field zeroed.
func headerCRC(h []byte) uint32 {
	c := bytes.Clone(h)
	binary.LittleEndian.PutUint32(c[gptHeaderCRCOff:], 0)
	return crc32.ChecksumIEEE(c)
}

// guidBytes is u as GPT stores a GUID: the first three fields
// little-endian, the rest as is.
func guidBytes(u uuid.UUID) []byte {
	b := u[:]
	return []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]}
}
