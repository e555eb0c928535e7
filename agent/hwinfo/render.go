package hwinfo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// Render writes under root, which should be an empty directory, the /proc
// and /sys files that Collect reads, laid out as Linux shows them, so that
// Collect(root) returns hw. It is how a simulated machine gets hardware.
//
// The fields the kernel does not show are not written and come back
// empty: the NICs' ipv4_address, boot.pxe_interface and bmc_address. A
// value that Collect could never return is an error: no CPUs or no
// architecture, a memory total that is not a whole number of KiB, a disk
// size that is not a whole number of 512-byte sectors, names that are not
// a disk's or a NIC's, duplicates, an upper-case MAC address, WWN fields
// that do not fit together as Collect derives them, a boot mode other
// than uefi and bios. Such errors are *inventory.InvalidError values,
// joined.
func Render(root string, hw inventory.Hardware) error {
	if err := check(hw); err != nil {
		return err
	}
	w := &treeWriter{root: root}
	renderCPU(w, hw.CPU)
	renderMemory(w, hw.Memory)
	for _, d := range hw.Disks {
		renderDisk(w, d)
	}
	for _, nic := range hw.Interfaces {
		renderNIC(w, nic)
	}
	renderSystemVendor(w, hw.SystemVendor)
	if hw.Boot.CurrentBootMode == inventory.BootModeUEFI {
		w.dir("sys/firmware/efi")
		w.file("sys/firmware/efi/fw_platform_size", "64\n")
	}
	if hw.Hostname != "" {
		w.file("proc/sys/kernel/hostname", hw.Hostname+"\n")
	}
	return w.err
}

// check rejects what Render can not write so that Collect reads it back.
func check(hw inventory.Hardware) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, inventory.Invalid(field, format, args...))
	}
	if hw.CPU.Count < 1 {
		bad("cpu.count", "must be at least 1, not %d", hw.CPU.Count)
	}
	if hw.CPU.Architecture == "" {
		bad("cpu.architecture", "is empty")
	}
	if hw.Memory.Total <= 0 || hw.Memory.Total%1024 != 0 {
		bad("memory.total", "%d is not a positive whole number of KiB", hw.Memory.Total)
	}
	if hw.Memory.PhysicalMB < 0 {
		bad("memory.physical_mb", "is negative")
	}
	seen := map[string]bool{}
	for i, d := range hw.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		name, ok := strings.CutPrefix(d.Name, "/dev/")
		switch {
		case !ok || !isFileName(name) || notDisk.MatchString(name):
			bad(field+".name", "%q is not a disk's device path", d.Name)
		case seen[name]:
			bad(field+".name", "%s is given twice", d.Name)
		}
		seen[name] = true
		if d.Size <= 0 || d.Size%sectorSize != 0 {
			bad(field+".size", "%d is not a positive whole number of %d-byte sectors", d.Size, sectorSize)
		}
		if d.HCTL != "" && !isFileName(d.HCTL) {
			bad(field+".hctl", "%q is not a SCSI address", d.HCTL)
		}
		w, we, ve := wwnFromWWID(wwidFromWWN(d))
		if w != d.WWN || we != d.WWNWithExtension || ve != d.WWNVendorExtension {
			bad(field+".wwn", "%q, %q, %q are not the WWN fields of one wwid", d.WWN, d.WWNWithExtension, d.WWNVendorExtension)
		}
	}
	seen = map[string]bool{}
	for i, nic := range hw.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		switch {
		case !isFileName(nic.Name) || nic.Name == "lo":
			bad(field+".name", "%q is not a NIC's name", nic.Name)
		case seen[nic.Name]:
			bad(field+".name", "%s is given twice", nic.Name)
		}
		seen[nic.Name] = true
		if nic.MACAddress == "" || nic.MACAddress != strings.ToLower(nic.MACAddress) || strings.ContainsAny(nic.MACAddress, " \n") {
			bad(field+".mac_address", "%q is not a lower-case MAC address", nic.MACAddress)
		}
		if nic.SpeedMbps < 0 {
			bad(field+".speed_mbps", "is negative")
		}
		if nic.Driver != "" && !isFileName(nic.Driver) {
			bad(field+".driver", "%q is not a driver's name", nic.Driver)
		}
	}
	switch hw.Boot.CurrentBootMode {
	case inventory.BootModeUEFI, inventory.BootModeBIOS:
	default:
		bad("boot.current_boot_mode", "%q is neither uefi nor bios", hw.Boot.CurrentBootMode)
	}
	return errors.Join(errs...)
}

// isFileName reports whether s can be one element of a path.
func isFileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00\n")
}

func renderCPU(w *treeWriter, cpu inventory.CPU) {
	var b strings.Builder
	for i := range cpu.Count {
		fmt.Fprintf(&b, "processor\t: %d\n", i)
		if cpu.ModelName != "" {
			fmt.Fprintf(&b, "model name\t: %s\n", cpu.ModelName)
		}
		if cpu.Frequency != "" {
			fmt.Fprintf(&b, "cpu MHz\t\t: %s\n", cpu.Frequency)
		}
		if len(cpu.Flags) > 0 {
			fmt.Fprintf(&b, "flags\t\t: %s\n", strings.Join(cpu.Flags, " "))
		}
		b.WriteString("\n")
	}
	w.file("proc/cpuinfo", b.String())
	w.file("proc/sys/kernel/arch", cpu.Architecture+"\n")
}

func renderMemory(w *treeWriter, mem inventory.Memory) {
	w.file("proc/meminfo", fmt.Sprintf("MemTotal:       %8d kB\n", mem.Total>>10))
	if mem.PhysicalMB > 0 {
		w.file(smbiosTable, string(smbiosMemoryTableFor(mem.PhysicalMB)))
	}
}

func renderDisk(w *treeWriter, d inventory.Disk) {
	name := strings.TrimPrefix(d.Name, "/dev/")
	dir := "sys/block/" + name
	w.file(dir+"/size", fmt.Sprintf("%d\n", d.Size/sectorSize))
	w.file(dir+"/queue/rotational", boolFile(d.Rotational))
	w.dir(dir + "/device")
	if d.Model != "" {
		w.file(dir+"/device/model", d.Model+"\n")
	}
	if d.Vendor != "" {
		w.file(dir+"/device/vendor", d.Vendor+"\n")
	}
	if d.HCTL != "" {
		w.dir(dir + "/device/scsi_device/" + d.HCTL)
	}
	// Where each kind of disk shows its serial and wwid; Collect looks in
	// all of these places.
	if d.Serial != "" {
		switch {
		case strings.HasPrefix(name, "vd"):
			w.file(dir+"/serial", d.Serial+"\n")
		case strings.HasPrefix(name, "sd"):
			w.file(dir+"/device/vpd_pg80", string(vpdPage80(d.Serial)))
		default:
			w.file(dir+"/device/serial", d.Serial+"\n")
		}
	}
	if wwid := wwidFromWWN(d); wwid != "" {
		if strings.HasPrefix(name, "nvme") {
			w.file(dir+"/wwid", wwid+"\n")
		} else {
			w.file(dir+"/device/wwid", wwid+"\n")
		}
	}
}

func renderNIC(w *treeWriter, nic inventory.Interface) {
	dir := "sys/class/net/" + nic.Name
	w.file(dir+"/address", nic.MACAddress+"\n")
	w.file(dir+"/carrier", boolFile(nic.HasCarrier))
	speed := nic.SpeedMbps
	if speed == 0 {
		speed = -1
	}
	w.file(dir+"/speed", fmt.Sprintf("%d\n", speed))
	w.dir(dir + "/device")
	if nic.Vendor != "" {
		w.file(dir+"/device/vendor", nic.Vendor+"\n")
	}
	if nic.Product != "" {
		w.file(dir+"/device/device", nic.Product+"\n")
	}
	if nic.Driver != "" {
		w.symlink(dir+"/device/driver", "../../../bus/pci/drivers/"+nic.Driver)
	}
}

func renderSystemVendor(w *treeWriter, sv inventory.SystemVendor) {
	for name, v := range map[string]string{
		"sys_vendor":     sv.Manufacturer,
		"product_name":   sv.ProductName,
		"product_serial": sv.SerialNumber,
		"product_uuid":   sv.UUID,
		"bios_vendor":    sv.Firmware.Vendor,
		"bios_version":   sv.Firmware.Version,
		"bios_date":      sv.Firmware.BuildDate,
	} {
		if v != "" {
			w.file(dmiDir+"/"+name, v+"\n")
		}
	}
}

func boolFile(b bool) string {
	if b {
		return "1\n"
	}
	return "0\n"
}

// treeWriter writes files under root, keeping the first error.
type treeWriter struct {
	root string
	err  error
}

func (w *treeWriter) dir(name string) {
	if w.err == nil {
		w.err = os.MkdirAll(filepath.Join(w.root, filepath.FromSlash(name)), 0o755)
	}
}

func (w *treeWriter) file(name, content string) {
	w.dir(filepath.ToSlash(filepath.Dir(filepath.FromSlash(name))))
	if w.err == nil {
		w.err = os.WriteFile(filepath.Join(w.root, filepath.FromSlash(name)), []byte(content), 0o644)
	}
}

func (w *treeWriter) symlink(name, target string) {
	w.dir(filepath.ToSlash(filepath.Dir(filepath.FromSlash(name))))
	if w.err == nil {
		w.err = os.Symlink(target, filepath.Join(w.root, filepath.FromSlash(name)))
	}
}
