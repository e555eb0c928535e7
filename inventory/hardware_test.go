package inventory_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

const gib = inventory.GiB

// testDisks are a server's disks, in the order the agent reports them.
var testDisks = []inventory.Disk{
	{Name: "/dev/nvme0n1", Model: "SAMSUNG MZQL21T9HCJR-00A07", Size: 1920383410176, Serial: "S64GNE0R123456", WWN: "eui.0025388b91b2c3d4"},
	{Name: "/dev/sda", Model: "SAMSUNG MZ7LH960", Vendor: "ATA", Size: 960197124096, Serial: "S45NNE0M123456",
		WWN: "0x5002538e40a1b2c3", WWNWithExtension: "0x5002538e40a1b2c3", HCTL: "0:0:0:0"},
	{Name: "/dev/sdb", Model: "ST4000NM0295", Vendor: "SEAGATE", Size: 4000787030016, Rotational: true, Serial: "ZC1ABCDE",
		WWN: "0x6000c2993e4b5b8a", WWNWithExtension: "0x6000c2993e4b5b8a1d3e8b0e7f6a5c4d", WWNVendorExtension: "0x1d3e8b0e7f6a5c4d", HCTL: "1:0:0:0"},
	{Name: "/dev/sdc", Model: "Ultra Fit", Vendor: "SanDisk", Size: 2 * gib, Rotational: false, Serial: "4C530001"},
	{Name: "/dev/sdd", Model: "Ultra Fit", Vendor: "SanDisk", Size: 32*gib + 12345, Serial: "4C530002"},
}

func TestMatchRootDevice(t *testing.T) {
	tests := []struct {
		name  string
		disks []inventory.Disk
		hints map[string]any
		want  string // the disk's name; "" for ErrNotFound
	}{
		{"default is the smallest of at least 4 GiB", testDisks, nil, "/dev/sdd"},
		{"default with empty hints", testDisks, map[string]any{}, "/dev/sdd"},
		{"default: exactly 4 GiB qualifies", []inventory.Disk{{Name: "/dev/vda", Size: 8 * gib}, {Name: "/dev/vdb", Size: 4 * gib}}, nil, "/dev/vdb"},
		{"default: the first of equals", []inventory.Disk{{Name: "/dev/vda", Size: 8 * gib}, {Name: "/dev/vdb", Size: 8 * gib}}, nil, "/dev/vda"},
		{"default: all too small", []inventory.Disk{{Name: "/dev/vda", Size: 4*gib - 1}}, nil, ""},
		{"default: no disks", nil, nil, ""},

		{"name", testDisks, map[string]any{"name": "/dev/sdb"}, "/dev/sdb"},
		{"name without /dev/", testDisks, map[string]any{"name": "sdb"}, "/dev/sdb"},
		{"name that is not there", testDisks, map[string]any{"name": "/dev/sdz"}, ""},
		{"name beats the 4 GiB floor", testDisks, map[string]any{"name": "sdc"}, "/dev/sdc"},

		{"size as int", testDisks, map[string]any{"size": 32}, "/dev/sdd"},
		{"size as float64 from JSON", testDisks, map[string]any{"size": 894.0}, "/dev/sda"},
		{"size as json.Number", testDisks, map[string]any{"size": json.Number("3726")}, "/dev/sdb"},
		{"size as string", testDisks, map[string]any{"size": "2"}, "/dev/sdc"},
		{"size ==", testDisks, map[string]any{"size": "== 2"}, "/dev/sdc"},
		{"size >=", testDisks, map[string]any{"size": ">= 1000"}, "/dev/nvme0n1"},
		{"size >= without space", testDisks, map[string]any{"size": ">=2000"}, "/dev/sdb"},
		{"size <=", testDisks, map[string]any{"size": "<= 100"}, "/dev/sdc"},
		{"size rounds down", testDisks, map[string]any{"size": 33}, ""},
		{"size and rotational", testDisks, map[string]any{"size": ">= 100", "rotational": false}, "/dev/nvme0n1"},

		{"rotational true", testDisks, map[string]any{"rotational": true}, "/dev/sdb"},
		{"rotational as string", testDisks, map[string]any{"rotational": "yes"}, "/dev/sdb"},
		{"rotational as 0", testDisks, map[string]any{"rotational": 0}, "/dev/nvme0n1"},

		{"model", testDisks, map[string]any{"model": "ST4000NM0295"}, "/dev/sdb"},
		{"model ignores case and space", testDisks, map[string]any{"model": "  ultra fit "}, "/dev/sdc"},
		{"model with s==", testDisks, map[string]any{"model": "s== Ultra Fit"}, "/dev/sdc"},
		{"vendor", testDisks, map[string]any{"vendor": "ata"}, "/dev/sda"},
		{"serial", testDisks, map[string]any{"serial": "4C530002"}, "/dev/sdd"},
		{"wwn", testDisks, map[string]any{"wwn": "0x5002538E40A1B2C3"}, "/dev/sda"},
		{"wwn of NVMe", testDisks, map[string]any{"wwn": "eui.0025388b91b2c3d4"}, "/dev/nvme0n1"},
		{"wwn_with_extension", testDisks, map[string]any{"wwn_with_extension": "0x6000c2993e4b5b8a1d3e8b0e7f6a5c4d"}, "/dev/sdb"},
		{"wwn_vendor_extension", testDisks, map[string]any{"wwn_vendor_extension": "0x1d3e8b0e7f6a5c4d"}, "/dev/sdb"},
		{"hctl", testDisks, map[string]any{"hctl": "1:0:0:0"}, "/dev/sdb"},
		{"by_path never matches", testDisks, map[string]any{"by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"}, ""},
		{"all hints must match", testDisks, map[string]any{"model": "Ultra Fit", "size": 32}, "/dev/sdd"},
		{"one hint fails", testDisks, map[string]any{"model": "Ultra Fit", "serial": "S45NNE0M123456"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventory.MatchRootDevice(tt.disks, tt.hints)
			if tt.want == "" {
				if !errors.Is(err, inventory.ErrNotFound) {
					t.Fatalf("MatchRootDevice = %s, %v; want ErrNotFound", got.Name, err)
				}
				checkMessage(t, err)
				return
			}
			if err != nil {
				t.Fatalf("MatchRootDevice: %v", err)
			}
			if got.Name != tt.want {
				t.Errorf("MatchRootDevice = %s, want %s", got.Name, tt.want)
			}
		})
	}
}

func TestMatchRootDeviceBadHints(t *testing.T) {
	tests := []struct {
		name  string
		hints map[string]any
		field string
	}{
		{"unknown hint", map[string]any{"colour": "red"}, "root_device.colour"},
		{"size not a number", map[string]any{"size": "big"}, "root_device.size"},
		{"size with an unknown operator", map[string]any{"size": "> 10"}, "root_device.size"},
		{"size with two operators", map[string]any{"size": ">= <= 10"}, "root_device.size"},
		{"size not whole", map[string]any{"size": 1.5}, "root_device.size"},
		{"size negative", map[string]any{"size": -1}, "root_device.size"},
		{"size a bool", map[string]any{"size": true}, "root_device.size"},
		{"rotational not a bool", map[string]any{"rotational": "maybe"}, "root_device.rotational"},
		{"rotational 2", map[string]any{"rotational": 2}, "root_device.rotational"},
		{"name empty", map[string]any{"name": " "}, "root_device.name"},
		{"name a number", map[string]any{"name": 3}, "root_device.name"},
		{"model empty", map[string]any{"model": ""}, "root_device.model"},
		{"model a list", map[string]any{"model": []any{"a"}}, "root_device.model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inventory.MatchRootDevice(testDisks, tt.hints)
			if err == nil {
				t.Fatal("no error")
			}
			checkInvalid(t, err, tt.field)
			checkMessage(t, err)
		})
	}
}

func TestProperties(t *testing.T) {
	hw := inventory.Hardware{
		CPU:    inventory.CPU{Count: 16, Architecture: "x86_64"},
		Memory: inventory.Memory{Total: 131754128 << 10, PhysicalMB: 131072},
		Disks:  testDisks,
		Boot:   inventory.Boot{CurrentBootMode: inventory.BootModeUEFI},
	}
	noPhysical := hw
	noPhysical.Memory.PhysicalMB = 0
	noDisks := hw
	noDisks.Disks = []inventory.Disk{{Name: "/dev/vda", Size: gib}}

	tests := []struct {
		name  string
		hw    inventory.Hardware
		hints map[string]any
		want  map[string]any
	}{
		{"default root disk", hw, nil,
			map[string]any{"cpus": 16, "memory_mb": 131072, "local_gb": 32, "cpu_arch": "x86_64"}},
		{"hinted root disk", hw, map[string]any{"rotational": true},
			map[string]any{"cpus": 16, "memory_mb": 131072, "local_gb": 3726, "cpu_arch": "x86_64"}},
		{"memory from the kernel's total", noPhysical, nil,
			map[string]any{"cpus": 16, "memory_mb": 128666, "local_gb": 32, "cpu_arch": "x86_64"}},
		{"no disk big enough", noDisks, nil,
			map[string]any{"cpus": 16, "memory_mb": 131072, "local_gb": 0, "cpu_arch": "x86_64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.hw.Properties(tt.hints)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Properties (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("hints that match nothing", func(t *testing.T) {
		_, err := hw.Properties(map[string]any{"serial": "nope"})
		if !errors.Is(err, inventory.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("bad hints", func(t *testing.T) {
		_, err := hw.Properties(map[string]any{"size": "lots"})
		checkInvalid(t, err, "root_device.size")
	})
}

func TestCapabilities(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want map[string]string
	}{
		{"uefi", map[string]string{"boot_mode": "uefi"}},
		{"bios", map[string]string{"boot_mode": "bios"}},
		{"", map[string]string{}},
	} {
		hw := inventory.Hardware{Boot: inventory.Boot{CurrentBootMode: tt.mode}}
		if diff := cmp.Diff(tt.want, hw.Capabilities()); diff != "" {
			t.Errorf("Capabilities with boot mode %q (-want +got):\n%s", tt.mode, diff)
		}
	}
}

func TestSummary(t *testing.T) {
	hw := inventory.Hardware{
		CPU:        inventory.CPU{Count: 2, Architecture: "x86_64"},
		Memory:     inventory.Memory{Total: 4028440 << 10, PhysicalMB: 4096},
		Disks:      []inventory.Disk{{Name: "/dev/vda", Size: 20 * gib}, {Name: "/dev/vdb", Size: 8*gib + 1}},
		Interfaces: []inventory.Interface{{Name: "enp1s0", MACAddress: "52:54:00:12:34:56"}},
		Boot:       inventory.Boot{CurrentBootMode: "uefi"},
	}
	if got, want := hw.Summary(), "2 x86_64 CPUs, 4096 MiB, 2 disks (20 GiB, 8 GiB), 1 NIC, uefi"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	one := inventory.Hardware{CPU: inventory.CPU{Count: 1}, Memory: inventory.Memory{Total: 512 << 20}, Boot: inventory.Boot{CurrentBootMode: "bios"}}
	if got, want := one.Summary(), "1 CPU, 512 MiB, 0 disks, 0 NICs, bios"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

func TestSetBootInterface(t *testing.T) {
	base := inventory.Hardware{Interfaces: []inventory.Interface{
		{Name: "eno1", MACAddress: "b4:96:91:aa:bb:01"},
		{Name: "eno2", MACAddress: "b4:96:91:aa:bb:02"},
	}}
	mac, _ := net.ParseMAC("B4:96:91:AA:BB:02")

	tests := []struct {
		name string
		addr netip.Addr
		want netip.Addr
	}{
		{"IPv4", netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.10")},
		{"no address", netip.Addr{}, netip.Addr{}},
		{"IPv6 is not an ipv4_address", netip.MustParseAddr("2001:db8::10"), netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw := base
			hw.Interfaces = append([]inventory.Interface(nil), base.Interfaces...)
			if err := hw.SetBootInterface(mac, tt.addr); err != nil {
				t.Fatal(err)
			}
			if hw.Boot.PXEInterface != "b4:96:91:aa:bb:02" {
				t.Errorf("pxe_interface = %q", hw.Boot.PXEInterface)
			}
			if hw.Interfaces[1].IPv4Address != tt.want || hw.Interfaces[0].IPv4Address.IsValid() {
				t.Errorf("addresses = %v, %v; want -, %v", hw.Interfaces[0].IPv4Address, hw.Interfaces[1].IPv4Address, tt.want)
			}
		})
	}
	t.Run("unknown MAC", func(t *testing.T) {
		hw := base
		other, _ := net.ParseMAC("52:54:00:00:00:01")
		if err := hw.SetBootInterface(other, netip.Addr{}); !errors.Is(err, inventory.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		if hw.Boot.PXEInterface != "" {
			t.Errorf("pxe_interface = %q, want none", hw.Boot.PXEInterface)
		}
	})
}

func validHardware() inventory.Hardware {
	return inventory.Hardware{
		CPU:        inventory.CPU{Count: 2, Architecture: "x86_64"},
		Memory:     inventory.Memory{Total: 4 << 30},
		Disks:      []inventory.Disk{{Name: "/dev/vda", Size: 20 * gib}},
		Interfaces: []inventory.Interface{{Name: "enp1s0", MACAddress: "52:54:00:12:34:56"}},
		Boot:       inventory.Boot{CurrentBootMode: "bios"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*inventory.Hardware)
		field  string // "" when valid
	}{
		{"valid", func(*inventory.Hardware) {}, ""},
		{"no disks, no NICs", func(h *inventory.Hardware) { h.Disks, h.Interfaces = nil, nil }, ""},
		{"no CPUs", func(h *inventory.Hardware) { h.CPU.Count = 0 }, "cpu.count"},
		{"no memory", func(h *inventory.Hardware) { h.Memory.Total = 0 }, "memory.total"},
		{"negative physical memory", func(h *inventory.Hardware) { h.Memory.PhysicalMB = -1 }, "memory.physical_mb"},
		{"disk without /dev", func(h *inventory.Hardware) { h.Disks[0].Name = "vda" }, "disks[0].name"},
		{"disk named /dev/", func(h *inventory.Hardware) { h.Disks[0].Name = "/dev/" }, "disks[0].name"},
		{"negative size", func(h *inventory.Hardware) { h.Disks[0].Size = -1 }, "disks[0].size"},
		{"NIC without name", func(h *inventory.Hardware) { h.Interfaces[0].Name = "" }, "interfaces[0].name"},
		{"bad MAC", func(h *inventory.Hardware) { h.Interfaces[0].MACAddress = "52:54:00" }, "interfaces[0].mac_address"},
		{"IPv6 as ipv4_address", func(h *inventory.Hardware) { h.Interfaces[0].IPv4Address = netip.MustParseAddr("::1") }, "interfaces[0].ipv4_address"},
		{"no boot mode", func(h *inventory.Hardware) { h.Boot.CurrentBootMode = "" }, "boot.current_boot_mode"},
		{"odd boot mode", func(h *inventory.Hardware) { h.Boot.CurrentBootMode = "UEFI" }, "boot.current_boot_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw := validHardware()
			tt.change(&hw)
			err := hw.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: no error")
			}
			checkInvalid(t, err, tt.field)
			checkMessage(t, err)
		})
	}
}

// TestHardwareJSON pins the wire form: ironic-python-agent's inventory
// keys, with unknown values left out.
func TestHardwareJSON(t *testing.T) {
	hw := inventory.Hardware{
		CPU:    inventory.CPU{ModelName: "AMD EPYC", Frequency: "2596.146", Count: 2, Architecture: "x86_64", Flags: []string{"fpu", "lm"}},
		Memory: inventory.Memory{Total: 25276502016, PhysicalMB: 24576},
		Disks: []inventory.Disk{
			{Name: "/dev/vda", Size: 274877906944, Rotational: true, Serial: "root", Vendor: "0x1af4"},
		},
		Interfaces: []inventory.Interface{
			{Name: "eth0", MACAddress: "02:fc:00:00:00:01", IPv4Address: netip.MustParseAddr("192.0.2.5"), HasCarrier: true, Vendor: "0x1af4", Product: "0x0001", Driver: "virtio_net"},
			{Name: "eno2", MACAddress: "b4:96:91:aa:bb:02", SpeedMbps: 1000},
		},
		SystemVendor: inventory.SystemVendor{ProductName: "KVM", Manufacturer: "QEMU", UUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
			Firmware: inventory.Firmware{Vendor: "EDK II", Version: "2024.02-2", BuildDate: "03/01/2024"}},
		Boot:     inventory.Boot{CurrentBootMode: "uefi", PXEInterface: "02:fc:00:00:00:01"},
		Hostname: "localhost",
	}
	want := `{
	  "cpu": {"model_name": "AMD EPYC", "frequency": "2596.146", "count": 2, "architecture": "x86_64", "flags": ["fpu", "lm"]},
	  "memory": {"total": 25276502016, "physical_mb": 24576},
	  "disks": [{"name": "/dev/vda", "model": "", "size": 274877906944, "rotational": true, "serial": "root", "vendor": "0x1af4"}],
	  "interfaces": [
	    {"name": "eth0", "mac_address": "02:fc:00:00:00:01", "ipv4_address": "192.0.2.5", "has_carrier": true,
	     "vendor": "0x1af4", "product": "0x0001", "driver": "virtio_net"},
	    {"name": "eno2", "mac_address": "b4:96:91:aa:bb:02", "has_carrier": false, "speed_mbps": 1000}
	  ],
	  "system_vendor": {"product_name": "KVM", "serial_number": "", "manufacturer": "QEMU",
	    "uuid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
	    "firmware": {"vendor": "EDK II", "version": "2024.02-2", "build_date": "03/01/2024"}},
	  "boot": {"current_boot_mode": "uefi", "pxe_interface": "02:fc:00:00:00:01"},
	  "hostname": "localhost"
	}`
	got, err := json.Marshal(hw)
	if err != nil {
		t.Fatal(err)
	}
	var wantV, gotV any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantV, gotV); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}

	var back inventory.Hardware
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hw, back, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// TestHardwareFromIPA reads an inventory in the form ironic-python-agent
// sends, nulls included.
func TestHardwareFromIPA(t *testing.T) {
	ipa := `{
	  "interfaces": [{"name": "eth0", "mac_address": "52:54:00:5e:09:ff", "ipv4_address": "192.168.122.164",
	    "ipv6_address": "fe80::5054:ff:fe5e:9ff", "has_carrier": true, "lldp": null, "vendor": "0x1af4",
	    "product": "0x0001", "client_id": null, "biosdevname": null, "speed_mbps": null}],
	  "cpu": {"model_name": "Intel Xeon Processor (Cascadelake)", "frequency": "", "count": 4, "architecture": "x86_64", "flags": ["fpu"]},
	  "disks": [{"name": "/dev/sda", "model": "QEMU HARDDISK", "size": 21474836480, "rotational": true, "wwn": null,
	    "serial": "QM00001", "uuid": null, "vendor": "ATA", "wwn_with_extension": null, "wwn_vendor_extension": null,
	    "hctl": "0:0:0:0", "by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"}],
	  "memory": {"total": 4108926976, "physical_mb": 4096},
	  "bmc_address": "0.0.0.0",
	  "bmc_v6address": "::/0",
	  "system_vendor": {"product_name": "KVM (9.2.0)", "serial_number": "", "manufacturer": "Red Hat",
	    "firmware": {"vendor": "EDK II", "version": "edk2-20221207gitfff6d81270b5-7.el9", "build_date": "12/07/2022"}},
	  "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:5e:09:ff"},
	  "hostname": "localhost.localdomain"
	}`
	var hw inventory.Hardware
	if err := json.Unmarshal([]byte(ipa), &hw); err != nil {
		t.Fatal(err)
	}
	if err := hw.Validate(); err != nil {
		t.Fatal(err)
	}
	want := inventory.Hardware{
		CPU:    inventory.CPU{ModelName: "Intel Xeon Processor (Cascadelake)", Count: 4, Architecture: "x86_64", Flags: []string{"fpu"}},
		Memory: inventory.Memory{Total: 4108926976, PhysicalMB: 4096},
		Disks: []inventory.Disk{{Name: "/dev/sda", Model: "QEMU HARDDISK", Size: 20 * gib, Rotational: true,
			Serial: "QM00001", Vendor: "ATA", HCTL: "0:0:0:0"}},
		Interfaces: []inventory.Interface{{Name: "eth0", MACAddress: "52:54:00:5e:09:ff", IPv4Address: netip.MustParseAddr("192.168.122.164"),
			HasCarrier: true, Vendor: "0x1af4", Product: "0x0001"}},
		SystemVendor: inventory.SystemVendor{ProductName: "KVM (9.2.0)", Manufacturer: "Red Hat",
			Firmware: inventory.Firmware{Vendor: "EDK II", Version: "edk2-20221207gitfff6d81270b5-7.el9", BuildDate: "12/07/2022"}},
		Boot:       inventory.Boot{CurrentBootMode: "uefi", PXEInterface: "52:54:00:5e:09:ff"},
		BMCAddress: netip.MustParseAddr("0.0.0.0"),
		Hostname:   "localhost.localdomain",
	}
	if diff := cmp.Diff(want, hw, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s := hw.Summary(); !strings.Contains(s, "4096 MiB") {
		t.Errorf("Summary = %q", s)
	}
}
