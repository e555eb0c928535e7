// Package hwinfo collects a machine's hardware inventory from the files
// Linux shows under /proc and /sys, as the deploy agent reports it to the
// undercloud during inspection; and renders such a tree from an inventory,
// for simulated machines.
//
// Collect reads only files under the root it is given, never the running
// system through system calls: pointed at a tree that Render wrote, it
// sees the machine Render described. What it reads:
//
//	proc/cpuinfo                     CPU count, model, flags, MHz
//	sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq
//	                                 CPU frequency, when the kernel knows it
//	proc/sys/kernel/arch             architecture (Linux 6.1 on; before, guessed from cpuinfo)
//	proc/meminfo                     memory total
//	sys/firmware/dmi/tables/DMI      installed memory (SMBIOS memory devices)
//	sys/devices/system/memory        installed memory without SMBIOS (memory blocks)
//	proc/sys/kernel/hostname         hostname
//	sys/block/*                      disks
//	sys/class/net/*                  NICs
//	sys/class/dmi/id/*               system vendor and firmware
//	sys/firmware/efi                 boot mode
//
// No file shows a NIC's IPv4 address, nor the NIC the machine booted
// from, so Collect leaves ipv4_address and boot.pxe_interface empty; the
// agent, which knows both from the kernel command line and its DHCP
// lease, fills them in with inventory.Hardware.SetBootInterface.
package hwinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// Collect reads the hardware inventory of the machine whose /proc and /sys
// are mounted under root ("/" on the machine itself). Missing optional
// files leave their fields empty; an unreadable /proc/cpuinfo or
// /proc/meminfo, or a disk or NIC whose size or address cannot be read, is
// an error.
func Collect(root string) (inventory.Hardware, error) {
	return collect(os.DirFS(root))
}

// collect reads the inventory from fsys, whose paths are relative to the
// machine's root directory.
func collect(fsys fs.FS) (inventory.Hardware, error) {
	var hw inventory.Hardware
	var err error
	if hw.CPU, err = readCPU(fsys); err != nil {
		return inventory.Hardware{}, err
	}
	if hw.Memory, err = readMemory(fsys); err != nil {
		return inventory.Hardware{}, err
	}
	if hw.Disks, err = readDisks(fsys); err != nil {
		return inventory.Hardware{}, err
	}
	if hw.Interfaces, err = readNICs(fsys); err != nil {
		return inventory.Hardware{}, err
	}
	hw.SystemVendor = readSystemVendor(fsys)
	hw.Boot.CurrentBootMode = inventory.BootModeBIOS
	if exists(fsys, "sys/firmware/efi") {
		hw.Boot.CurrentBootMode = inventory.BootModeUEFI
	}
	// "(none)" is the kernel's name for a machine no one named.
	if h := readString(fsys, "proc/sys/kernel/hostname"); h != "(none)" {
		hw.Hostname = h
	}
	return hw, nil
}

// readString is the content of an optional one-value file, trimmed of
// surrounding space and NULs; "" when it is missing or unreadable.
func readString(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.Trim(string(b), " \t\r\n\x00")
}

// readInt reads a file holding one decimal integer.
func readInt(fsys fs.FS, name string) (int64, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// exists reports whether name exists, following symbolic links.
func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// cpuinfo is the first processor's fields of /proc/cpuinfo, and how many
// processors it lists.
type cpuinfo struct {
	count  int
	fields map[string]string
}

func parseCPUInfo(b []byte) cpuinfo {
	ci := cpuinfo{fields: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "processor" {
			ci.count++
		}
		if _, seen := ci.fields[k]; !seen {
			ci.fields[k] = v
		}
	}
	return ci
}

func readCPU(fsys fs.FS) (inventory.CPU, error) {
	b, err := fs.ReadFile(fsys, "proc/cpuinfo")
	if err != nil {
		return inventory.CPU{}, err
	}
	ci := parseCPUInfo(b)
	cpu := inventory.CPU{
		ModelName:    ci.fields["model name"],
		Count:        ci.count,
		Architecture: readString(fsys, "proc/sys/kernel/arch"),
		Frequency:    ci.fields["cpu MHz"],
		Flags:        strings.Fields(ci.fields["flags"]),
	}
	if len(cpu.Flags) == 0 {
		cpu.Flags = strings.Fields(ci.fields["Features"]) // arm64
	}
	if cpu.Architecture == "" {
		cpu.Architecture = archFromCPUInfo(ci)
	}
	if khz, err := readInt(fsys, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"); err == nil && khz > 0 {
		cpu.Frequency = formatMHz(khz)
	}
	return cpu, nil
}

// formatMHz writes a frequency given in kHz in MHz, without trailing
// zeros: 3200000 is "3200", 2596146 is "2596.146".
func formatMHz(khz int64) string {
	return strconv.FormatFloat(float64(khz)/1000, 'f', -1, 64)
}

// archFromCPUInfo guesses uname -m from /proc/cpuinfo, for kernels older
// than 6.1, which lack /proc/sys/kernel/arch.
func archFromCPUInfo(ci cpuinfo) string {
	switch {
	case ci.fields["flags"] != "":
		if containsWord(ci.fields["flags"], "lm") {
			return "x86_64"
		}
		return "i686"
	case ci.fields["CPU architecture"] == "8":
		return "aarch64"
	case strings.HasPrefix(ci.fields["isa"], "rv64"):
		return "riscv64"
	}
	return ""
}

func containsWord(s, w string) bool {
	for f := range strings.FieldsSeq(s) {
		if f == w {
			return true
		}
	}
	return false
}

// dmiDir holds the SMBIOS strings the kernel shows.
const dmiDir = "sys/class/dmi/id"

func readSystemVendor(fsys fs.FS) inventory.SystemVendor {
	dmi := func(name string) string { return readString(fsys, path.Join(dmiDir, name)) }
	return inventory.SystemVendor{
		Manufacturer: dmi("sys_vendor"),
		ProductName:  dmi("product_name"),
		SerialNumber: dmi("product_serial"),
		UUID:         dmi("product_uuid"),
		Firmware: inventory.Firmware{
			Vendor:    dmi("bios_vendor"),
			Version:   dmi("bios_version"),
			BuildDate: dmi("bios_date"),
		},
	}
}
