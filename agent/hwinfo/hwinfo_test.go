package hwinfo_test

import (
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/inventory"
)

// The fixtures under testdata are the /proc and /sys files of two
// machines, as Linux shows them, trimmed to what matters and a little
// more that must not matter.

const qemuFlags = "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 " +
	"syscall nx lm rep_good nopl cpuid extd_apicid tsc_known_freq pni cx16 x2apic hypervisor lahf_lm cmp_legacy " +
	"3dnowprefetch vmmcall"

// qemuUEFI is a QEMU q35 virtual machine booted by OVMF, with 2 vCPUs,
// 4 GiB, two virtio disks with serials, a virtio NIC and an empty CD-ROM
// drive, on a kernel without /proc/sys/kernel/arch.
var qemuUEFI = inventory.Hardware{
	CPU: inventory.CPU{
		ModelName:    "QEMU Virtual CPU version 2.5+",
		Frequency:    "2095.076",
		Count:        2,
		Architecture: "x86_64",
		Flags:        strings.Fields(qemuFlags),
	},
	Memory: inventory.Memory{Total: 4010536 << 10, PhysicalMB: 4096},
	Disks: []inventory.Disk{
		{Name: "/dev/vda", Size: 20 << 30, Rotational: true, Serial: "strata-root-0", Vendor: "0x1af4"},
		{Name: "/dev/vdb", Size: 8 << 30, Rotational: true, Serial: "strata-data-1", Vendor: "0x1af4"},
	},
	Interfaces: []inventory.Interface{
		{Name: "enp1s0", MACAddress: "52:54:00:a1:b2:c3", HasCarrier: true, Vendor: "0x1af4", Product: "0x0001", Driver: "virtio_net"},
	},
	SystemVendor: inventory.SystemVendor{
		ProductName:  "Standard PC (Q35 + ICH9, 2009)",
		Manufacturer: "QEMU",
		UUID:         "6f0e4b9c-2d7a-4f51-9a43-0c1d2e3f4a5b",
		Firmware:     inventory.Firmware{Vendor: "EDK II", Version: "2024.02-2", BuildDate: "03/01/2024"},
	},
	Boot: inventory.Boot{CurrentBootMode: "uefi"},
	// The kernel's "(none)": no one named the machine.
	Hostname: "",
}

const serverFlags = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr " +
	"sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology " +
	"nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid " +
	"sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault " +
	"epb invpcid_single pti ssbd ibrs ibpb stibp tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle " +
	"avx2 smep bmi2 erms invpcid rtm mpx rdseed adx smap clflushopt intel_pt xsaveopt xsavec xgetbv1 xsaves dtherm ida arat " +
	"pln pts hwp hwp_notify hwp_act_window hwp_epp md_clear flush_l1d arch_capabilities"

// server is a Dell PowerEdge R240 in legacy BIOS mode: 12 threads with
// cpufreq, 64 GiB in two of four DIMM slots (and the iDRAC's flash, which
// is not system memory; the 2 GiB memory blocks say 66 GiB), a SATA SSD
// with partitions, a PERC virtual disk, an NVMe SSD, an SD card reader
// without a card, a loop device and a device mapper volume; two NICs, the
// second without link, and a bond.
var server = inventory.Hardware{
	CPU: inventory.CPU{
		ModelName:    "Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz",
		Frequency:    "4800",
		Count:        12,
		Architecture: "x86_64",
		Flags:        strings.Fields(serverFlags),
	},
	Memory: inventory.Memory{Total: 65635812 << 10, PhysicalMB: 65536},
	Disks: []inventory.Disk{
		{Name: "/dev/nvme0n1", Model: "SAMSUNG MZQL21T9HCJR-00A07", Size: 3750748848 * 512,
			WWN: "eui.0025384b91b2c3d4", Serial: "S64GNE0R123456"},
		{Name: "/dev/sda", Model: "SAMSUNG MZ7LH960", Vendor: "ATA", Size: 1875385008 * 512,
			WWN: "0x5002538e40a1b2c3", WWNWithExtension: "0x5002538e40a1b2c3", Serial: "S45NNE0M123456", HCTL: "1:0:0:0"},
		{Name: "/dev/sdb", Model: "PERC H330 Adp", Vendor: "DELL", Size: 7811891200 * 512, Rotational: true,
			WWN: "0x6d0946606d8a2c00", WWNWithExtension: "0x6d0946606d8a2c002a1b3c4d5e6f7a8b", WWNVendorExtension: "0x2a1b3c4d5e6f7a8b",
			Serial: "008b7a6f5e4d3c1b2a002c8a6d604609", HCTL: "0:2:0:0"},
	},
	Interfaces: []inventory.Interface{
		{Name: "eno1", MACAddress: "d0:94:66:1a:2b:3c", HasCarrier: true, SpeedMbps: 1000, Vendor: "0x14e4", Product: "0x165f", Driver: "tg3"},
		{Name: "eno2", MACAddress: "d0:94:66:1a:2b:3d", HasCarrier: false, Vendor: "0x14e4", Product: "0x165f", Driver: "tg3"},
	},
	SystemVendor: inventory.SystemVendor{
		ProductName:  "PowerEdge R240",
		SerialNumber: "7XQ9W53",
		Manufacturer: "Dell Inc.",
		UUID:         "4c4c4544-0058-5110-8039-b7c04f573533",
		Firmware:     inventory.Firmware{Vendor: "Dell Inc.", Version: "2.19.1", BuildDate: "06/13/2023"},
	},
	Boot:     inventory.Boot{CurrentBootMode: "bios"},
	Hostname: "r240-07",
}

type fixture struct {
	name string
	want inventory.Hardware
	// linkDown are files that, read on the real machine, fail with EINVAL
	// because their NIC is down.
	linkDown []string
	// links and dirs are the symbolic links (path: target) and the
	// directories with a colon in their name that the tree has but git
	// or a module zip would not keep; fixtureRoot adds them.
	links map[string]string
	dirs  []string
}

var fixtures = []fixture{
	{
		name: "qemu-uefi",
		want: qemuUEFI,
		links: map[string]string{
			"sys/block/vda/device/driver":        "../../../../bus/virtio/drivers/virtio_blk",
			"sys/block/vdb/device/driver":        "../../../../bus/virtio/drivers/virtio_blk",
			"sys/class/net/enp1s0/device/driver": "../../../../bus/virtio/drivers/virtio_net",
		},
		dirs: []string{"sys/block/sr0/device/scsi_device/0:0:0:0"},
	},
	{
		name:     "server",
		want:     server,
		linkDown: []string{"sys/class/net/eno2/carrier", "sys/class/net/eno2/speed"},
		links: map[string]string{
			"sys/block/sda/device/driver":      "../../../../../../bus/scsi/drivers/sd",
			"sys/block/sdb/device/driver":      "../../../../../../bus/scsi/drivers/sd",
			"sys/class/net/eno1/device/driver": "../../../../bus/pci/drivers/tg3",
			"sys/class/net/eno2/device/driver": "../../../../bus/pci/drivers/tg3",
		},
		dirs: []string{
			"sys/block/sda/device/scsi_device/1:0:0:0",
			"sys/block/sdb/device/scsi_device/0:2:0:0",
			"sys/block/sdc/device/scsi_device/6:0:0:0",
		},
	},
}

// fixtureRoot is a copy of the fixture's tree, completed with its links
// and directories.
func fixtureRoot(t *testing.T, fx fixture) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", fx.name))); err != nil {
		t.Fatal(err)
	}
	for _, dir := range fx.dirs {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range fx.links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// cmpOpts compare netip.Addr values by value.
var cmpOpts = cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

func TestCollectFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			root := fixtureRoot(t, fx)
			got, err := hwinfo.Collect(root)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fx.want, got, cmpOpts); diff != "" {
				t.Errorf("Collect(%s) (-want +got):\n%s", fx.name, diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the collected inventory is not valid: %v", err)
			}

			// The same when the down NIC's files fail to read, as the
			// kernel's do.
			got, err = hwinfo.CollectFS(faultFS{os.DirFS(root).(linkFS), fx.linkDown, syscall.EINVAL})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fx.want, got, cmpOpts); diff != "" {
				t.Errorf("Collect(%s) with %v failing with EINVAL (-want +got):\n%s", fx.name, fx.linkDown, diff)
			}
		})
	}
}

func TestCollectMissingRequiredFiles(t *testing.T) {
	for _, name := range []string{"proc/cpuinfo", "proc/meminfo", "sys/block/sda/size", "sys/class/net/eno1/address"} {
		t.Run(name, func(t *testing.T) {
			fsys := faultFS{os.DirFS(fixtureRoot(t, fixtures[1])).(linkFS), []string{name}, syscall.EIO}
			if _, err := hwinfo.CollectFS(fsys); !errors.Is(err, syscall.EIO) {
				t.Errorf("Collect with %s unreadable: err = %v, want EIO", name, err)
			}
		})
	}
	if _, err := hwinfo.Collect(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Collect(empty dir): err = %v, want ErrNotExist", err)
	}
}

// TestRenderRoundTrip checks that Collect reads back what Render wrote:
// for the fixtures, and for machines that differ from them where the
// tree's layout differs.
func TestRenderRoundTrip(t *testing.T) {
	cases := map[string]inventory.Hardware{}
	for _, fx := range fixtures {
		hw, err := hwinfo.Collect(fixtureRoot(t, fx))
		if err != nil {
			t.Fatal(err)
		}
		cases[fx.name] = hw
	}
	cases["arm64, no DMI, odd memory"] = inventory.Hardware{
		CPU:    inventory.CPU{Count: 4, Architecture: "aarch64", Flags: []string{"fp", "asimd", "evtstrm", "aes", "crc32"}},
		Memory: inventory.Memory{Total: 3 << 30, PhysicalMB: 3*1024 + 96},
		Disks: []inventory.Disk{
			{Name: "/dev/mmcblk0", Size: 29 << 30, Serial: "0x1a2b3c4d"},
			{Name: "/dev/xvda", Size: 1 << 30},
		},
		Interfaces: []inventory.Interface{},
		Boot:       inventory.Boot{CurrentBootMode: "uefi"},
	}
	cases["big machine, nothing optional"] = inventory.Hardware{
		CPU:    inventory.CPU{Count: 192, Architecture: "x86_64", Flags: []string{}},
		Memory: inventory.Memory{Total: 1 << 40, PhysicalMB: 1 << 20},
		Disks: []inventory.Disk{
			{Name: "/dev/nvme1n1", Size: 15362991415296, WWN: "nvme.1344-3230-4d54-4641-2d5a", Model: "MTFDKCC15T3TGP-1BK1DABYY"},
			{Name: "/dev/sdaa", Size: 512, Rotational: true},
		},
		Interfaces: []inventory.Interface{
			{Name: "ens1f0np0", MACAddress: "0c:42:a1:00:00:01", HasCarrier: true, SpeedMbps: 100000, Driver: "mlx5_core"},
			{Name: "ib0", MACAddress: "80:00:02:08:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:00:00:02"},
		},
		Boot: inventory.Boot{CurrentBootMode: "bios"},
	}

	for name, hw := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := hwinfo.Render(root, hw); err != nil {
				t.Fatalf("Render: %v", err)
			}
			got, err := hwinfo.Collect(root)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if diff := cmp.Diff(hw, got, cmpOpts); diff != "" {
				t.Errorf("Collect(Render(hw)) (-hw +got):\n%s", diff)
			}
		})
	}
}

// TestRenderLeavesOutWhatTheKernelDoesNotShow: the addresses the agent
// adds itself do not survive a round trip.
func TestRenderLeavesOutWhatTheKernelDoesNotShow(t *testing.T) {
	hw := qemuUEFI
	hw.Interfaces = slices.Clone(qemuUEFI.Interfaces)
	hw.Interfaces[0].IPv4Address = netip.MustParseAddr("192.0.2.20")
	hw.Boot.PXEInterface = "52:54:00:a1:b2:c3"
	hw.BMCAddress = netip.MustParseAddr("192.0.2.200")
	root := t.TempDir()
	if err := hwinfo.Render(root, hw); err != nil {
		t.Fatal(err)
	}
	got, err := hwinfo.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(qemuUEFI, got, cmpOpts); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*inventory.Hardware)
		field  string
	}{
		{"no CPUs", func(h *inventory.Hardware) { h.CPU.Count = 0 }, "cpu.count"},
		{"no architecture", func(h *inventory.Hardware) { h.CPU.Architecture = "" }, "cpu.architecture"},
		{"memory not in KiB", func(h *inventory.Hardware) { h.Memory.Total++ }, "memory.total"},
		{"no memory", func(h *inventory.Hardware) { h.Memory.Total = 0 }, "memory.total"},
		{"negative physical memory", func(h *inventory.Hardware) { h.Memory.PhysicalMB = -1 }, "memory.physical_mb"},
		{"disk size not in sectors", func(h *inventory.Hardware) { h.Disks[0].Size += 100 }, "disks[0].size"},
		{"disk without size", func(h *inventory.Hardware) { h.Disks[0].Size = 0 }, "disks[0].size"},
		{"disk name without /dev", func(h *inventory.Hardware) { h.Disks[0].Name = "vda" }, "disks[0].name"},
		{"disk name with a path", func(h *inventory.Hardware) { h.Disks[0].Name = "/dev/disk/by-id/x" }, "disks[0].name"},
		{"loop device", func(h *inventory.Hardware) { h.Disks[0].Name = "/dev/loop0" }, "disks[0].name"},
		{"duplicate disk", func(h *inventory.Hardware) { h.Disks[1].Name = h.Disks[0].Name }, "disks[1].name"},
		{"bad hctl", func(h *inventory.Hardware) { h.Disks[0].HCTL = "../x" }, "disks[0].hctl"},
		{"WWN without its extension", func(h *inventory.Hardware) { h.Disks[0].WWN = "0x5002538e40a1b2c3" }, "disks[0].wwn"},
		{"T10 identifier as WWN", func(h *inventory.Hardware) { h.Disks[0].WWN = "t10.ATA SAMSUNG" }, "disks[0].wwn"},
		{"NIC named lo", func(h *inventory.Hardware) { h.Interfaces[0].Name = "lo" }, "interfaces[0].name"},
		{"NIC name with a slash", func(h *inventory.Hardware) { h.Interfaces[0].Name = "a/b" }, "interfaces[0].name"},
		{"duplicate NIC", func(h *inventory.Hardware) {
			h.Interfaces = append(h.Interfaces, h.Interfaces[0])
		}, "interfaces[1].name"},
		{"upper-case MAC", func(h *inventory.Hardware) { h.Interfaces[0].MACAddress = "52:54:00:A1:B2:C3" }, "interfaces[0].mac_address"},
		{"no MAC", func(h *inventory.Hardware) { h.Interfaces[0].MACAddress = "" }, "interfaces[0].mac_address"},
		{"negative speed", func(h *inventory.Hardware) { h.Interfaces[0].SpeedMbps = -1 }, "interfaces[0].speed_mbps"},
		{"driver with a slash", func(h *inventory.Hardware) { h.Interfaces[0].Driver = "../tg3" }, "interfaces[0].driver"},
		{"no boot mode", func(h *inventory.Hardware) { h.Boot.CurrentBootMode = "" }, "boot.current_boot_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw := qemuUEFI
			hw.Disks = slices.Clone(qemuUEFI.Disks)
			hw.Interfaces = slices.Clone(qemuUEFI.Interfaces)
			tt.change(&hw)
			root := t.TempDir()
			err := hwinfo.Render(root, hw)
			if err == nil {
				t.Fatal("Render: no error")
			}
			var ie *inventory.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Errorf("Render: %v; want an invalid %s", err, tt.field)
			}
			if entries, _ := os.ReadDir(root); len(entries) > 0 {
				t.Errorf("Render wrote %d entries before failing", len(entries))
			}
		})
	}
}

// linkFS is what os.DirFS gives.
type linkFS interface {
	fs.FS
	fs.ReadLinkFS
}

// faultFS is a file system whose files named in fail are opened but fail
// to read with err, as the kernel's carrier and speed files do with
// EINVAL while their NIC is down.
type faultFS struct {
	linkFS
	fail []string
	err  error
}

func (f faultFS) Open(name string) (fs.File, error) {
	file, err := f.linkFS.Open(name)
	if err != nil || !slices.Contains(f.fail, name) {
		return file, err
	}
	return faultFile{file, &fs.PathError{Op: "read", Path: name, Err: f.err}}, nil
}

type faultFile struct {
	fs.File
	err error
}

func (f faultFile) Read([]byte) (int, error) { return 0, f.err }

var _ io.Reader = faultFile{}
