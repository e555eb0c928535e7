package inventory

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Boot modes, as inventories and the boot_mode capability name them.
const (
	BootModeUEFI = "uefi"
	BootModeBIOS = "bios"
)

// GiB is a gibibyte, the unit of local_gb and of the size root device
// hint.
const GiB = 1 << 30

// MinRootDiskSize is the smallest disk chosen as the root disk when no
// root device hints are given (ironic-python-agent's default).
const MinRootDiskSize = 4 * GiB

// Hardware is a machine's hardware inventory as the deploy agent collects
// it during inspection. Its JSON form is the "inventory" object that
// ironic-python-agent sends: the same keys, units and value types, so that
// tools reading Ironic inventories read Strata's. A few keys are Strata's
// additions (marked below); Ironic ignores unknown keys.
type Hardware struct {
	CPU          CPU          `json:"cpu"`
	Memory       Memory       `json:"memory"`
	Disks        []Disk       `json:"disks"`
	Interfaces   []Interface  `json:"interfaces"`
	SystemVendor SystemVendor `json:"system_vendor"`
	Boot         Boot         `json:"boot"`
	// BMCAddress is the IPv4 address of the machine's BMC, when the agent
	// could learn it.
	BMCAddress netip.Addr `json:"bmc_address,omitzero"`
	Hostname   string     `json:"hostname"`
}

// CPU describes the machine's processors.
type CPU struct {
	ModelName string `json:"model_name"`
	// Frequency is in MHz, as a decimal string ("2400" or "2596.146").
	Frequency string `json:"frequency"`
	// Count is the number of logical CPUs the kernel runs.
	Count int `json:"count"`
	// Architecture is the kernel's machine name (uname -m): x86_64,
	// aarch64, ...
	Architecture string   `json:"architecture"`
	Flags        []string `json:"flags"`
}

// Memory is the machine's RAM.
type Memory struct {
	// Total is the memory the kernel manages, in bytes.
	Total int64 `json:"total"`
	// PhysicalMB is the memory installed, in MiB; a little larger than
	// Total, which lacks what the firmware and the kernel image reserve.
	// 0 when unknown.
	PhysicalMB int64 `json:"physical_mb,omitempty"`
}

// Disk is a whole block device: never a partition, a loop, RAM, device
// mapper or optical device.
type Disk struct {
	// Name is the device's path: /dev/sda, /dev/nvme0n1, /dev/vda.
	Name  string `json:"name"`
	Model string `json:"model"`
	// Size is in bytes.
	Size       int64 `json:"size"`
	Rotational bool  `json:"rotational"`
	// WWN is the World Wide Name in udev's form: 0x followed by 16 hex
	// digits for a SCSI or SATA disk's NAA identifier, the kernel's wwid
	// (eui.…, nvme.…) for NVMe.
	WWN                string `json:"wwn,omitempty"`
	WWNWithExtension   string `json:"wwn_with_extension,omitempty"`
	WWNVendorExtension string `json:"wwn_vendor_extension,omitempty"`
	Serial             string `json:"serial,omitempty"`
	Vendor             string `json:"vendor,omitempty"`
	// HCTL is the SCSI address (host:channel:target:lun) of SCSI and SATA
	// disks.
	HCTL string `json:"hctl,omitempty"`
}

// Interface is a physical network interface.
type Interface struct {
	Name string `json:"name"`
	// MACAddress is in lower-case colon form.
	MACAddress string `json:"mac_address"`
	// IPv4Address is the address the agent configured on the NIC, if any
	// (see SetBootInterface).
	IPv4Address netip.Addr `json:"ipv4_address,omitzero"`
	HasCarrier  bool       `json:"has_carrier"`
	// SpeedMbps is the link speed; 0 when unknown (no link, or a driver
	// that does not say, like virtio).
	SpeedMbps int `json:"speed_mbps,omitempty"`
	// Vendor and Product are the device's bus IDs ("0x8086", "0x1521").
	Vendor  string `json:"vendor,omitempty"`
	Product string `json:"product,omitempty"`
	// Driver is the kernel driver bound to the NIC (Strata's addition).
	Driver string `json:"driver,omitempty"`
}

// SystemVendor is what the SMBIOS (DMI) tables say of the machine.
type SystemVendor struct {
	ProductName  string `json:"product_name"`
	SerialNumber string `json:"serial_number"`
	Manufacturer string `json:"manufacturer"`
	// UUID is the SMBIOS system UUID (Strata's addition).
	UUID     string   `json:"uuid,omitempty"`
	Firmware Firmware `json:"firmware"`
}

// Firmware is the machine's BIOS or UEFI firmware.
type Firmware struct {
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
	// BuildDate is as SMBIOS gives it, usually MM/DD/YYYY.
	BuildDate string `json:"build_date"`
}

// Boot is how the machine booted the agent.
type Boot struct {
	// CurrentBootMode is BootModeUEFI or BootModeBIOS.
	CurrentBootMode string `json:"current_boot_mode"`
	// PXEInterface is the MAC address, in lower-case colon form, of the
	// NIC the machine network-booted from (see SetBootInterface).
	PXEInterface string `json:"pxe_interface,omitempty"`
}

// SetBootInterface records that the machine booted from the NIC with MAC
// mac and that the agent configured it with addr (left unset when addr is
// not an IPv4 address). The agent knows both from its kernel command line
// and its DHCP lease; the hardware collector does not.
func (h *Hardware) SetBootInterface(mac net.HardwareAddr, addr netip.Addr) error {
	want := strings.ToLower(mac.String())
	for i := range h.Interfaces {
		if !strings.EqualFold(h.Interfaces[i].MACAddress, want) {
			continue
		}
		if addr.Is4() {
			h.Interfaces[i].IPv4Address = addr
		}
		h.Boot.PXEInterface = want
		return nil
	}
	return fmt.Errorf("no interface has MAC address %s: %w", want, ErrNotFound)
}

// Validate checks what the undercloud relies on in an inventory a node
// sent: a CPU count, memory, named disks with sizes, NICs with MAC
// addresses, and a known boot mode.
func (h Hardware) Validate() error {
	if h.CPU.Count < 1 {
		return Invalid("cpu.count", "must be at least 1, not %d", h.CPU.Count)
	}
	if h.Memory.Total <= 0 {
		return Invalid("memory.total", "must be positive, not %d", h.Memory.Total)
	}
	if h.Memory.PhysicalMB < 0 {
		return Invalid("memory.physical_mb", "must not be negative")
	}
	for i, d := range h.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if !strings.HasPrefix(d.Name, "/dev/") || len(d.Name) == len("/dev/") {
			return Invalid(field+".name", "%q is not a device path like /dev/sda", d.Name)
		}
		if d.Size < 0 {
			return Invalid(field+".size", "must not be negative")
		}
	}
	for i, nic := range h.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		if nic.Name == "" {
			return Invalid(field+".name", "is empty")
		}
		if _, err := ParseMAC(nic.MACAddress); err != nil {
			return Invalid(field+".mac_address", "%q is not a MAC address", nic.MACAddress)
		}
		if nic.IPv4Address.IsValid() && !nic.IPv4Address.Is4() {
			return Invalid(field+".ipv4_address", "%s is not an IPv4 address", nic.IPv4Address)
		}
	}
	switch h.Boot.CurrentBootMode {
	case BootModeUEFI, BootModeBIOS:
	default:
		return Invalid("boot.current_boot_mode", "%q is neither %s nor %s", h.Boot.CurrentBootMode, BootModeUEFI, BootModeBIOS)
	}
	return nil
}

// Properties are the node properties an inspection sets: cpus, memory_mb
// (the installed memory, or the kernel's total when that is unknown),
// local_gb (the root disk's size in GiB, rounded down) and cpu_arch. The
// root disk is the one rootHints select (see MatchRootDevice); with no
// hints it is the smallest disk of at least MinRootDiskSize, and local_gb
// is 0 when there is none. The boot mode is a capability, not a property:
// see Capabilities.
func (h Hardware) Properties(rootHints map[string]any) (map[string]any, error) {
	var localGB int64
	root, err := MatchRootDevice(h.Disks, rootHints)
	switch {
	case err == nil:
		localGB = root.Size / GiB
	case len(rootHints) > 0:
		return nil, err
	}
	return map[string]any{
		"cpus":      h.CPU.Count,
		"memory_mb": int(h.memoryMB()),
		"local_gb":  int(localGB),
		"cpu_arch":  h.CPU.Architecture,
	}, nil
}

// Capabilities are the node capabilities an inspection sets: boot_mode,
// when the inventory names one. They are merged into the node's
// capabilities string, keeping the others.
func (h Hardware) Capabilities() map[string]string {
	if h.Boot.CurrentBootMode == "" {
		return map[string]string{}
	}
	return map[string]string{"boot_mode": h.Boot.CurrentBootMode}
}

// Summary is a one-line description for a node's history:
// "2 x86_64 CPUs, 4096 MiB, 2 disks (20 GiB, 8 GiB), 1 NIC, uefi".
func (h Hardware) Summary() string {
	sizes := make([]string, len(h.Disks))
	for i, d := range h.Disks {
		sizes[i] = fmt.Sprintf("%d GiB", d.Size/GiB)
	}
	disks := plural(len(h.Disks), "disk")
	if len(sizes) > 0 {
		disks += " (" + strings.Join(sizes, ", ") + ")"
	}
	return fmt.Sprintf("%s, %d MiB, %s, %s, %s",
		plural(h.CPU.Count, strings.TrimSpace(h.CPU.Architecture+" CPU")),
		h.memoryMB(), disks, plural(len(h.Interfaces), "NIC"), h.Boot.CurrentBootMode)
}

// memoryMB is the installed memory, or the kernel's total when that is
// unknown, in MiB.
func (h Hardware) memoryMB() int64 {
	if h.Memory.PhysicalMB > 0 {
		return h.Memory.PhysicalMB
	}
	return h.Memory.Total >> 20
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// MatchRootDevice picks the disk to deploy onto. With hints, it is the
// first disk, in the order given, that matches every hint, as Ironic's
// root device hints work:
//
//   - name: the device path; "sda" means "/dev/sda";
//   - size: GiB, rounded down, as a number ("100") or a string with one
//     of the operators ==, >= and <= (">= 100");
//   - model, vendor, serial, wwn, wwn_with_extension, wwn_vendor_extension,
//     hctl: equal, ignoring case and surrounding space; "s== value" is
//     the same as "value";
//   - rotational: true or false (also "true", "yes", "1", ...);
//   - by_path is accepted but never matches: the agent does not collect
//     disks' by-path names.
//
// Without hints it is the smallest disk of at least MinRootDiskSize, the
// first of those when several have that size. A hint that is unknown or
// has an unusable value is an *InvalidError for the field
// root_device.<hint>; when no disk fits, the error wraps ErrNotFound.
func MatchRootDevice(disks []Disk, hints map[string]any) (Disk, error) {
	if len(hints) == 0 {
		var best *Disk
		for i := range disks {
			if disks[i].Size >= MinRootDiskSize && (best == nil || disks[i].Size < best.Size) {
				best = &disks[i]
			}
		}
		if best == nil {
			return Disk{}, fmt.Errorf("no disk of at least %d GiB: %w", MinRootDiskSize/GiB, ErrNotFound)
		}
		return *best, nil
	}
	matchers := make([]func(Disk) bool, 0, len(hints))
	for _, k := range sortedKeys(hints) {
		m, err := hintMatcher(k, hints[k])
		if err != nil {
			return Disk{}, err
		}
		matchers = append(matchers, m)
	}
	for _, d := range disks {
		if !slices.ContainsFunc(matchers, func(m func(Disk) bool) bool { return !m(d) }) {
			return d, nil
		}
	}
	return Disk{}, fmt.Errorf("no disk matches the root device hints %s: %w", formatHints(hints), ErrNotFound)
}

// diskStrings are the string-valued root device hints and the disk field
// each compares.
var diskStrings = map[string]func(Disk) string{
	"model":                func(d Disk) string { return d.Model },
	"vendor":               func(d Disk) string { return d.Vendor },
	"serial":               func(d Disk) string { return d.Serial },
	"wwn":                  func(d Disk) string { return d.WWN },
	"wwn_with_extension":   func(d Disk) string { return d.WWNWithExtension },
	"wwn_vendor_extension": func(d Disk) string { return d.WWNVendorExtension },
	"hctl":                 func(d Disk) string { return d.HCTL },
	"by_path":              func(Disk) string { return "" },
}

func hintMatcher(key string, v any) (func(Disk) bool, error) {
	field := "root_device." + key
	switch key {
	case "size":
		op, gib, err := sizeHint(v)
		if err != nil {
			return nil, Invalid(field, "%v", err)
		}
		return func(d Disk) bool { return compareSize(op, d.Size/GiB, gib) }, nil
	case "rotational":
		want, ok := boolHint(v)
		if !ok {
			return nil, Invalid(field, "%s is not true or false", formatHint(v))
		}
		return func(d Disk) bool { return d.Rotational == want }, nil
	case "name":
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, Invalid(field, "must be a device name like /dev/sda, not %s", formatHint(v))
		}
		s = stringHint(s)
		if !strings.HasPrefix(s, "/dev/") {
			s = "/dev/" + s
		}
		return func(d Disk) bool { return d.Name == s }, nil
	}
	get, ok := diskStrings[key]
	if !ok {
		return nil, Invalid(field, "is not a root device hint: use one of %s", strings.Join(rootDeviceHints, ", "))
	}
	var want string
	switch x := v.(type) {
	case string:
		want = stringHint(x)
	case json.Number:
		want = x.String()
	case int, int64, float64:
		want = fmt.Sprint(x)
	default:
		return nil, Invalid(field, "must be a string, not %s", formatHint(v))
	}
	if want == "" {
		return nil, Invalid(field, "is empty")
	}
	return func(d Disk) bool { return strings.EqualFold(strings.TrimSpace(get(d)), want) }, nil
}

// stringHint strips the surrounding space and the optional "s==" operator
// of a string hint.
func stringHint(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "s=="); ok {
		s = strings.TrimSpace(rest)
	}
	return s
}

// sizeHint parses a size hint: a whole number of GiB, or a string "N" or
// "<op> N" with op one of ==, >=, <=.
func sizeHint(v any) (op string, gib int64, err error) {
	op = "=="
	switch x := v.(type) {
	case int:
		gib = int64(x)
	case int64:
		gib = x
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return "", 0, fmt.Errorf("%v is not a whole number of GiB", x)
		}
		gib = int64(x)
	case json.Number, string:
		s := strings.TrimSpace(fmt.Sprint(x))
		for _, o := range []string{"==", ">=", "<="} {
			if rest, ok := strings.CutPrefix(s, o); ok {
				op, s = o, strings.TrimSpace(rest)
				break
			}
		}
		if gib, err = strconv.ParseInt(s, 10, 64); err != nil {
			return "", 0, fmt.Errorf("%s is not a whole number of GiB, alone or after ==, >= or <=", formatHint(v))
		}
	default:
		return "", 0, fmt.Errorf("must be a number of GiB, not %s", formatHint(v))
	}
	if gib < 0 {
		return "", 0, fmt.Errorf("%d GiB is negative", gib)
	}
	return op, gib, nil
}

func compareSize(op string, have, want int64) bool {
	switch op {
	case ">=":
		return have >= want
	case "<=":
		return have <= want
	}
	return have == want
}

// boolHint reads a rotational hint the way Ironic does (oslo's
// bool_from_string, strictly).
func boolHint(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x == 1, x == 0 || x == 1
	case float64:
		return x == 1, x == 0 || x == 1
	case json.Number:
		return boolHint(x.String())
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}

func formatHint(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number, int, int64, float64, bool:
		return fmt.Sprint(x)
	}
	return kind(v)
}

func formatHints(hints map[string]any) string {
	parts := make([]string, 0, len(hints))
	for _, k := range sortedKeys(hints) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, hints[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}
