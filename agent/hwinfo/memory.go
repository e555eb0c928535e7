package hwinfo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// smbiosTable is the raw SMBIOS (DMI) structure table.
const smbiosTable = "sys/firmware/dmi/tables/DMI"

func readMemory(fsys fs.FS) (inventory.Memory, error) {
	b, err := fs.ReadFile(fsys, "proc/meminfo")
	if err != nil {
		return inventory.Memory{}, err
	}
	var mem inventory.Memory
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		var kb int64
		if len(f) == 2 && f[1] == "kB" {
			kb, err = strconv.ParseInt(f[0], 10, 64)
		}
		if len(f) != 2 || f[1] != "kB" || err != nil || kb <= 0 {
			return inventory.Memory{}, fmt.Errorf("proc/meminfo: bad MemTotal line %q", strings.TrimSpace(line))
		}
		mem.Total = kb << 10
		break
	}
	if mem.Total == 0 {
		return inventory.Memory{}, errors.New("proc/meminfo: no MemTotal")
	}
	mem.PhysicalMB = smbiosMemoryMB(fsys)
	if mem.PhysicalMB == 0 {
		mem.PhysicalMB = memoryBlocksMB(fsys)
	}
	return mem, nil
}

// SMBIOS structure types and fields that the installed memory is read
// from (DMTF DSP0134).
const (
	smbiosMemoryArray  = 16   // Physical Memory Array
	smbiosMemoryDevice = 17   // Memory Device
	smbiosEndOfTable   = 127  // End-of-Table
	arrayUse           = 0x05 // Physical Memory Array: what the array is for
	arrayUseSystem     = 0x03 //   system memory
	deviceArray        = 0x04 // Memory Device: handle of its array
	deviceSize         = 0x0c // Memory Device: size (WORD)
	deviceExtendedSize = 0x1c // Memory Device: size in MiB when Size is 0x7fff (DWORD, SMBIOS 2.7)
)

// smbiosMemoryMB is the sum of the sizes of the memory devices (DIMMs)
// installed in the system memory arrays of the SMBIOS table; 0 when there
// is no table or it lists none.
func smbiosMemoryMB(fsys fs.FS) int64 {
	b, err := fs.ReadFile(fsys, smbiosTable)
	if err != nil {
		return 0
	}
	systemArrays := map[uint16]bool{}
	arrays := 0
	type device struct {
		array uint16
		mb    int64
	}
	var devices []device
	for s := range smbiosStructures(b) {
		switch {
		case s[0] == smbiosMemoryArray && len(s) > arrayUse:
			arrays++
			systemArrays[binary.LittleEndian.Uint16(s[2:])] = s[arrayUse] == arrayUseSystem
		case s[0] == smbiosMemoryDevice && len(s) >= deviceSize+2:
			devices = append(devices, device{binary.LittleEndian.Uint16(s[deviceArray:]), memoryDeviceMB(s)})
		}
	}
	var mb int64
	for _, d := range devices {
		// Without arrays in the table, every device counts.
		if arrays == 0 || systemArrays[d.array] {
			mb += d.mb
		}
	}
	return mb
}

// memoryDeviceMB is the size of a Memory Device structure's module in MiB:
// 0 when no module is installed or its size is unknown.
func memoryDeviceMB(s []byte) int64 {
	size := binary.LittleEndian.Uint16(s[deviceSize:])
	switch {
	case size == 0 || size == 0xffff:
		return 0
	case size == 0x7fff && len(s) >= deviceExtendedSize+4:
		return int64(binary.LittleEndian.Uint32(s[deviceExtendedSize:]) & 0x7fffffff)
	case size&0x8000 != 0: // in KiB
		return int64(size&0x7fff) >> 10
	}
	return int64(size)
}

// smbiosStructures yields the formatted area of each structure of an
// SMBIOS table, up to its End-of-Table structure or the first malformed
// one. A structure is a 4-byte header (type, length, handle), the rest of
// its formatted area, and a set of strings ending with two NULs.
func smbiosStructures(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) >= 4 {
			n := int(b[1])
			if n < 4 || n > len(b) {
				return
			}
			s := b[:n]
			if !yield(s) || s[0] == smbiosEndOfTable {
				return
			}
			end := bytes.Index(b[n:], []byte{0, 0})
			if end < 0 {
				return
			}
			b = b[n+end+2:]
		}
	}
}

// smbiosMemoryTableFor is an SMBIOS table with one system memory array
// holding mb MiB in modules of up to 16 GiB, as QEMU describes a virtual
// machine's memory.
func smbiosMemoryTableFor(mb int64) []byte {
	const moduleMB = 16 << 10
	var t []byte
	// Physical Memory Array (SMBIOS 2.1 layout): location other, use
	// system memory, no ECC, maximum capacity in KiB, no error
	// information, the number of devices.
	modules := (mb + moduleMB - 1) / moduleMB
	array := []byte{smbiosMemoryArray, 0x0f, 0x00, 0x10, 0x01, arrayUseSystem, 0x03, 0, 0, 0, 0, 0xfe, 0xff, 0, 0}
	binary.LittleEndian.PutUint32(array[0x07:], uint32(min(mb<<10, 0x7fffffff)))
	binary.LittleEndian.PutUint16(array[0x0d:], uint16(modules))
	t = append(t, array...)
	t = append(t, 0, 0)
	for i := range modules {
		size := min(moduleMB, mb-i*moduleMB)
		// Memory Device (SMBIOS 2.7 layout): in array 0x1000, form factor
		// DIMM, type RAM, its locator and manufacturer strings.
		dev := make([]byte, 0x22)
		dev[0], dev[1] = smbiosMemoryDevice, byte(len(dev))
		binary.LittleEndian.PutUint16(dev[2:], uint16(0x1100+i))
		binary.LittleEndian.PutUint16(dev[deviceArray:], 0x1000)
		binary.LittleEndian.PutUint16(dev[0x06:], 0xfffe)
		binary.LittleEndian.PutUint16(dev[0x08:], 64)
		binary.LittleEndian.PutUint16(dev[0x0a:], 64)
		if size < 0x7fff {
			binary.LittleEndian.PutUint16(dev[deviceSize:], uint16(size))
		} else {
			binary.LittleEndian.PutUint16(dev[deviceSize:], 0x7fff)
			binary.LittleEndian.PutUint32(dev[deviceExtendedSize:], uint32(size))
		}
		dev[0x0e] = 0x09 // DIMM
		dev[0x10] = 1    // device locator: string 1
		dev[0x12] = 0x07 // RAM
		dev[0x17] = 2    // manufacturer: string 2
		t = append(t, dev...)
		t = append(t, fmt.Sprintf("DIMM %d\x00Strata\x00\x00", i)...)
	}
	return append(t, smbiosEndOfTable, 4, 0xff, 0xfe, 0, 0)
}

var memoryBlockRE = regexp.MustCompile(`^memory[0-9]+$`)

// memoryBlocksMB is the installed memory as the kernel's memory blocks
// count it: every block, online or not, of block_size_bytes (hexadecimal)
// each. Blocks that are partly RAM count whole, so this can be more than
// what is installed by up to a block at each hole in the memory map. 0
// when the kernel does not show them.
func memoryBlocksMB(fsys fs.FS) int64 {
	const dir = "sys/devices/system/memory"
	b, err := fs.ReadFile(fsys, path.Join(dir, "block_size_bytes"))
	if err != nil {
		return 0
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(b)), 16, 64)
	if err != nil || size <= 0 {
		return 0
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if memoryBlockRE.MatchString(e.Name()) {
			n++
		}
	}
	return n * size >> 20
}
