package hwinfo

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

func TestWWNFromWWID(t *testing.T) {
	tests := []struct {
		name, wwid           string
		wwn, withExt, vendor string
	}{
		{"NAA 5", "naa.5002538e40a1b2c3", "0x5002538e40a1b2c3", "0x5002538e40a1b2c3", ""},
		{"NAA 6 with extension", "naa.6d0946606d8a2c002a1b3c4d5e6f7a8b",
			"0x6d0946606d8a2c00", "0x6d0946606d8a2c002a1b3c4d5e6f7a8b", "0x2a1b3c4d5e6f7a8b"},
		{"NAA in upper case", "naa.5000C500A1B2C3D4", "0x5000c500a1b2c3d4", "0x5000c500a1b2c3d4", ""},
		{"NVMe EUI-64", "eui.0025384b91b2c3d4", "eui.0025384b91b2c3d4", "", ""},
		{"NVMe without EUI", "nvme.1344-3230-4d54", "nvme.1344-3230-4d54", "", ""},
		{"T10 vendor ID", "t10.ATA     SAMSUNG MZ7LH960HAJR-00005              S45NNE0M123456", "", "", ""},
		{"short NAA is kept as is", "naa.5002", "naa.5002", "", ""},
		{"none", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, we, ve := wwnFromWWID(tt.wwid)
			if w != tt.wwn || we != tt.withExt || ve != tt.vendor {
				t.Errorf("wwnFromWWID(%q) = %q, %q, %q; want %q, %q, %q", tt.wwid, w, we, ve, tt.wwn, tt.withExt, tt.vendor)
			}
			d := inventory.Disk{WWN: w, WWNWithExtension: we, WWNVendorExtension: ve}
			if back := wwidFromWWN(d); w != "" && wwnOf(back) != [3]string{w, we, ve} {
				t.Errorf("wwidFromWWN gives %q, which reads as %v", back, wwnOf(back))
			}
		})
	}
}

func wwnOf(wwid string) [3]string {
	w, we, ve := wwnFromWWID(wwid)
	return [3]string{w, we, ve}
}

func TestVPDSerial(t *testing.T) {
	tests := []struct {
		name string
		page []byte
		want string
	}{
		{"padded", []byte("\x00\x80\x00\x14      S45NNE0M123456"), "S45NNE0M123456"},
		{"length shorter than the data", []byte("\x00\x80\x00\x04ABCDEFGH"), "ABCD"},
		{"length longer than the data", []byte("\x00\x80\x00\x40ABCD"), "ABCD"},
		{"NUL padded", []byte("\x00\x80\x00\x08ABCD\x00\x00\x00\x00"), "ABCD"},
		{"another page", []byte("\x00\x83\x00\x04ABCD"), ""},
		{"too short", []byte("\x00\x80"), ""},
		{"empty", nil, ""},
		{"made by vpdPage80", vpdPage80("ZC1ABCDE"), "ZC1ABCDE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"vpd_pg80": {Data: tt.page}}
			if got := vpdSerial(fsys, "vpd_pg80"); got != tt.want {
				t.Errorf("vpdSerial = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestArchFromCPUInfo(t *testing.T) {
	tests := []struct{ name, cpuinfo, want string }{
		{"x86_64", "processor\t: 0\nflags\t\t: fpu vme lm nx\n", "x86_64"},
		{"lm only as part of a flag", "processor\t: 0\nflags\t\t: fpu lahf_lm\n", "i686"},
		{"aarch64", "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm\nCPU implementer\t: 0x41\nCPU architecture: 8\n", "aarch64"},
		{"riscv64", "processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdc_zicsr\nmmu\t\t: sv39\n", "riscv64"},
		{"ppc64 can not be told", "processor\t: 0\ncpu\t\t: POWER9 (architected)\nplatform\t: pSeries\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := archFromCPUInfo(parseCPUInfo([]byte(tt.cpuinfo))); got != tt.want {
				t.Errorf("archFromCPUInfo = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadCPU(t *testing.T) {
	arm := "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU architecture: 8\n\n" +
		"processor\t: 1\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU architecture: 8\n\n"
	tests := []struct {
		name string
		fsys fstest.MapFS
		want inventory.CPU
	}{
		{"arm64 without arch file or frequency",
			fstest.MapFS{"proc/cpuinfo": {Data: []byte(arm)}},
			inventory.CPU{Count: 2, Architecture: "aarch64", Flags: []string{"fp", "asimd"}}},
		{"arch file wins over cpuinfo",
			fstest.MapFS{"proc/cpuinfo": {Data: []byte(arm)}, "proc/sys/kernel/arch": {Data: []byte("arm64be\n")}},
			inventory.CPU{Count: 2, Architecture: "arm64be", Flags: []string{"fp", "asimd"}}},
		{"cpufreq in kHz",
			fstest.MapFS{
				"proc/cpuinfo": {Data: []byte("processor\t: 0\ncpu MHz\t\t: 1200.000\nflags\t: lm\n")},
				"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": {Data: []byte("2596146\n")},
			},
			inventory.CPU{Count: 1, Architecture: "x86_64", Frequency: "2596.146", Flags: []string{"lm"}}},
		{"bad cpufreq is ignored",
			fstest.MapFS{
				"proc/cpuinfo": {Data: []byte("processor\t: 0\ncpu MHz\t\t: 1200.000\nflags\t: lm\n")},
				"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": {Data: []byte("<unknown>\n")},
			},
			inventory.CPU{Count: 1, Architecture: "x86_64", Frequency: "1200.000", Flags: []string{"lm"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readCPU(tt.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("readCPU (-want +got):\n%s", diff)
			}
		})
	}
}

// memoryDevice is a Memory Device structure (SMBIOS 2.7 layout) in array
// 0x1000 with the given Size and Extended Size fields, no strings.
func memoryDevice(array, size uint16, extended uint32) []byte {
	s := make([]byte, 0x22)
	s[0], s[1] = smbiosMemoryDevice, 0x22
	binary.LittleEndian.PutUint16(s[deviceArray:], array)
	binary.LittleEndian.PutUint16(s[deviceSize:], size)
	binary.LittleEndian.PutUint32(s[deviceExtendedSize:], extended)
	return append(s, 0, 0)
}

func memoryArray(handle uint16, use byte) []byte {
	s := []byte{smbiosMemoryArray, 0x0f, 0, 0, 0x03, use, 0x03, 0, 0, 0, 0, 0xfe, 0xff, 1, 0}
	binary.LittleEndian.PutUint16(s[2:], handle)
	return append(s, 0, 0)
}

var endOfTable = []byte{smbiosEndOfTable, 4, 0xff, 0xfe, 0, 0}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestSMBIOSMemoryMB(t *testing.T) {
	tests := []struct {
		name  string
		table []byte
		want  int64
	}{
		{"sizes in MiB", concat(memoryArray(0x1000, 3), memoryDevice(0x1000, 8192, 0), memoryDevice(0x1000, 8192, 0), endOfTable), 16384},
		{"extended size", concat(memoryArray(0x1000, 3), memoryDevice(0x1000, 0x7fff, 65536), endOfTable), 65536},
		{"size in KiB", concat(memoryDevice(0x1000, 0x8000|0x4000, 0), endOfTable), 16},
		{"empty slots and unknown sizes", concat(memoryDevice(0x1000, 0, 0), memoryDevice(0x1000, 0xffff, 0), memoryDevice(0x1000, 4096, 0), endOfTable), 4096},
		{"only system memory arrays count", concat(memoryArray(0x1000, 3), memoryArray(0x2000, 4),
			memoryDevice(0x1000, 4096, 0), memoryDevice(0x2000, 512, 0), endOfTable), 4096},
		{"without arrays every device counts", concat(memoryDevice(0x1000, 4096, 0), memoryDevice(0x2000, 512, 0), endOfTable), 4608},
		{"nothing after the end", concat(memoryDevice(0x1000, 4096, 0), endOfTable, memoryDevice(0x1000, 4096, 0)), 4096},
		{"no end of table", concat(memoryDevice(0x1000, 4096, 0)), 4096},
		{"strings", concat([]byte{1, 4, 0, 1}, []byte("QEMU\x00Standard PC\x00\x00"), memoryDevice(0x1000, 2048, 0), endOfTable), 2048},
		{"cut short in the strings", concat(memoryDevice(0x1000, 2048, 0)[:0x22], []byte("DIMM 0\x00")), 2048},
		{"a length shorter than a header", concat([]byte{17, 2, 0, 0, 0, 0}, memoryDevice(0x1000, 2048, 0)), 0},
		{"a length past the end", []byte{17, 0x22, 0, 0, 0, 0}, 0},
		{"a device too short to have a size", concat([]byte{17, 0x0c, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}, endOfTable), 0},
		{"made by smbiosMemoryTableFor", smbiosMemoryTableFor(40 << 10), 40 << 10},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{smbiosTable: {Data: tt.table}}
			if got := smbiosMemoryMB(fsys); got != tt.want {
				t.Errorf("smbiosMemoryMB = %d, want %d", got, tt.want)
			}
		})
	}
}

func FuzzSMBIOSMemoryMB(f *testing.F) {
	f.Add(smbiosMemoryTableFor(4096))
	f.Add(concat(memoryArray(0x1000, 3), memoryDevice(0x1000, 0x7fff, 65536), endOfTable))
	f.Fuzz(func(t *testing.T, table []byte) {
		if mb := smbiosMemoryMB(fstest.MapFS{smbiosTable: {Data: table}}); mb < 0 {
			t.Errorf("smbiosMemoryMB = %d", mb)
		}
	})
}

func TestMemoryBlocks(t *testing.T) {
	blocks := func(size string, n int) fstest.MapFS {
		fsys := fstest.MapFS{
			"proc/meminfo": {Data: []byte("MemTotal:        3930000 kB\nMemFree:         3000000 kB\n")},
			"sys/devices/system/memory/block_size_bytes":   {Data: []byte(size + "\n")},
			"sys/devices/system/memory/auto_online_blocks": {Data: []byte("online\n")},
			"sys/devices/system/memory/uevent":             {Data: nil},
		}
		for i := range n {
			fsys["sys/devices/system/memory/memory"+strconv.Itoa(i*3)+"/online"] = &fstest.MapFile{Data: []byte("1\n")}
		}
		return fsys
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want inventory.Memory
	}{
		{"128 MiB blocks", blocks("8000000", 32), inventory.Memory{Total: 3930000 << 10, PhysicalMB: 4096}},
		{"2 GiB blocks", blocks("80000000", 3), inventory.Memory{Total: 3930000 << 10, PhysicalMB: 6144}},
		{"bad block size", blocks("lots", 3), inventory.Memory{Total: 3930000 << 10}},
		{"SMBIOS first", func() fstest.MapFS {
			fsys := blocks("80000000", 3)
			fsys[smbiosTable] = &fstest.MapFile{Data: smbiosMemoryTableFor(4096)}
			return fsys
		}(), inventory.Memory{Total: 3930000 << 10, PhysicalMB: 4096}},
		{"neither", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 1024 kB\n")}}, inventory.Memory{Total: 1 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readMemory(tt.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("readMemory = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadMemoryErrors(t *testing.T) {
	for _, meminfo := range []string{
		"MemFree: 1024 kB\n",
		"MemTotal: 1024\n",
		"MemTotal: lots kB\n",
		"MemTotal: 0 kB\n",
		"MemTotal:\n",
		"",
	} {
		if m, err := readMemory(fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}}); err == nil {
			t.Errorf("readMemory(%q) = %+v, want an error", meminfo, m)
		}
	}
}

func TestReadDisks(t *testing.T) {
	disk := func(fsys fstest.MapFS, name, size string) {
		fsys["sys/block/"+name+"/size"] = &fstest.MapFile{Data: []byte(size + "\n")}
		fsys["sys/block/"+name+"/device/uevent"] = &fstest.MapFile{}
	}
	fsys := fstest.MapFS{}
	disk(fsys, "mmcblk0", "61071360")
	disk(fsys, "mmcblk0boot0", "8192")
	disk(fsys, "mmcblk0rpmb", "8192")
	disk(fsys, "sr0", "2097152")
	disk(fsys, "md127", "2097152")
	disk(fsys, "nbd0", "2097152")
	disk(fsys, "sdb", "0")                                                    // no medium
	fsys["sys/block/drbd0/size"] = &fstest.MapFile{Data: []byte("2097152\n")} // no device
	disk(fsys, "nvme0c0n1", "2097152")
	fsys["sys/block/nvme0c0n1/hidden"] = &fstest.MapFile{Data: []byte("1\n")}
	disk(fsys, "sda1", "2097152")
	fsys["sys/block/sda1/partition"] = &fstest.MapFile{Data: []byte("1\n")}
	disk(fsys, "xvda", "2097152")
	fsys["sys/block/xvda/hidden"] = &fstest.MapFile{Data: []byte("0\n")}

	got, err := readDisks(fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.Disk{
		{Name: "/dev/mmcblk0", Size: 61071360 * 512},
		{Name: "/dev/xvda", Size: 1 << 30},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("readDisks (-want +got):\n%s", diff)
	}

	for _, size := range []string{"lots", ""} {
		bad := fstest.MapFS{}
		disk(bad, "sda", size)
		if d, err := readDisks(bad); err == nil {
			t.Errorf("readDisks with size %q = %+v, want an error", size, d)
		}
	}
	if d, err := readDisks(fstest.MapFS{}); err != nil || d == nil || len(d) != 0 {
		t.Errorf("readDisks without sys/block = %#v, %v; want an empty list", d, err)
	}
}

func TestReadNICs(t *testing.T) {
	fsys := fstest.MapFS{
		"sys/class/net/lo/address":         {Data: []byte("00:00:00:00:00:00\n")},
		"sys/class/net/lo/device/uevent":   {}, // never a NIC, whatever sysfs says
		"sys/class/net/br0/address":        {Data: []byte("52:54:00:00:00:01\n")},
		"sys/class/net/can0/address":       {Data: []byte("\n")},
		"sys/class/net/can0/device/uevent": {},
		"sys/class/net/eth0/address":       {Data: []byte("52:54:00:00:00:02\n")},
		"sys/class/net/eth0/speed":         {Data: []byte("25000\n")},
		"sys/class/net/eth0/carrier":       {Data: []byte("1\n")},
		"sys/class/net/eth0/device/uevent": {},
	}
	got, err := readNICs(fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.Interface{{Name: "eth0", MACAddress: "52:54:00:00:00:02", HasCarrier: true, SpeedMbps: 25000}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("readNICs (-want +got):\n%s", diff)
	}

	delete(fsys, "sys/class/net/eth0/address")
	if _, err := readNICs(fsys); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readNICs without eth0's address: err = %v, want ErrNotExist", err)
	}
}

func TestFormatMHz(t *testing.T) {
	for khz, want := range map[int64]string{3200000: "3200", 2596146: "2596.146", 800010: "800.01", 1: "0.001"} {
		if got := formatMHz(khz); got != want {
			t.Errorf("formatMHz(%d) = %q, want %q", khz, got, want)
		}
	}
}
