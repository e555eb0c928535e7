package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/inventory"
)

// What the lab's qemu VMs show as their SMBIOS system (lab/vm), which a
// simulated machine shows too.
const (
	Manufacturer = "QEMU"
	Product      = "Strata lab VM"
)

// The CPU a lab VM shows under TCG (qemu's -cpu max), and the flags of it
// that matter to an inventory.
const (
	cpuModel = "QEMU TCG CPU version 2.5+"
	cpuFlags = "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 " +
		"syscall nx lm nopl cpuid pni cx16 x2apic hypervisor lahf_lm"
)

// virtio devices' PCI vendor, and the virtio device ID of a NIC, as sysfs
// shows them on the virtio bus.
const (
	virtioVendor = "0x1af4"
	virtioNet    = "0x0001"
)

// Inventory is the hardware the machine shows its OS: what the deploy
// ramdisk's kernel shows of a lab VM with the same config. Its CPUs, its
// installed memory (SMBIOS), its virtio disks with their sizes and
// serials, its virtio NICs with their MACs, QEMU's SMBIOS system with the
// machine's UUID and serial, and the boot mode of its firmware are the
// VM's; the CPU flags, the memory total that the kernel leaves, and the
// firmware's version string can only be alike.
func (m *Machine) Inventory() inventory.Hardware {
	c := m.cfg
	hw := inventory.Hardware{
		CPU: inventory.CPU{
			Count:        c.CPUs,
			Architecture: "x86_64",
			ModelName:    cpuModel,
			Flags:        strings.Fields(cpuFlags),
		},
		Memory: inventory.Memory{
			// What firmware and kernel keep of a small VM's memory: about
			// 1/16.
			Total:      int64(c.MemoryMiB) << 20 / 16 * 15 &^ 1023,
			PhysicalMB: int64(c.MemoryMiB),
		},
		Disks:      []inventory.Disk{},
		Interfaces: []inventory.Interface{},
		SystemVendor: inventory.SystemVendor{
			Manufacturer: Manufacturer,
			ProductName:  Product,
			SerialNumber: c.Serial,
			UUID:         strings.ToLower(c.UUID),
		},
		Boot: inventory.Boot{CurrentBootMode: inventory.BootModeBIOS},
	}
	if c.Firmware == FirmwareUEFI {
		hw.Boot.CurrentBootMode = inventory.BootModeUEFI
		hw.SystemVendor.Firmware = inventory.Firmware{Vendor: "EDK II", Version: "strata-lab-sim"}
	} else {
		hw.SystemVendor.Firmware = inventory.Firmware{Vendor: "SeaBIOS", Version: "strata-lab-sim"}
	}
	for i, d := range c.Disks {
		hw.Disks = append(hw.Disks, inventory.Disk{
			Name: "/dev/" + diskName(i), Size: d.SizeBytes, Serial: d.Serial, Rotational: true, Vendor: virtioVendor,
		})
	}
	for _, n := range c.NICs {
		hw.Interfaces = append(hw.Interfaces, inventory.Interface{
			Name: n.Name, MACAddress: n.MAC.String(), HasCarrier: true,
			Vendor: virtioVendor, Product: virtioNet, Driver: "virtio_net",
		})
	}
	return hw
}

// renderRoot writes the machine's hardware view for a boot with this
// kernel command line: proc and sys afresh, with the partitions the
// kernel finds on the disks now; dev keeps the disks.
func (m *Machine) renderRoot(cmdline string) error {
	root := m.root()
	for _, d := range []string{"proc", "sys"} {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return err
		}
	}
	if err := hwinfo.Render(root, m.Inventory()); err != nil {
		return fmt.Errorf("hardware view: %w", err)
	}
	for i := range m.cfg.Disks {
		if err := m.renderPartitions(i); err != nil {
			return fmt.Errorf("%s: %w", diskName(i), err)
		}
	}
	return os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte(cmdline+"\n"), 0o644)
}

// renderPartitions shows disk i's partitions as sysfs does:
// sys/block/vda/vda1/{partition,start,size}.
func (m *Machine) renderPartitions(i int) error {
	f, err := os.Open(m.DiskPath(i))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	t, err := readTable(f, st.Size())
	if err != nil {
		// Linux shows a disk whose table it can not read without
		// partitions.
		return nil
	}
	name := diskName(i)
	for _, p := range t.parts {
		dir := filepath.Join(m.root(), "sys/block", name, fmt.Sprintf("%s%d", name, p.number))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for file, v := range map[string]int64{"partition": int64(p.number), "start": p.start, "size": p.size} {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprintf("%d\n", v)), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
