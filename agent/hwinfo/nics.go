package hwinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// readNICs lists the machine's physical NICs, in name order: those of
// sys/class/net with a device behind them (which leaves out lo, bridges,
// bonds, VLANs, veths, tunnels and the like) and a hardware address.
func readNICs(fsys fs.FS) ([]inventory.Interface, error) {
	entries, err := fs.ReadDir(fsys, "sys/class/net")
	if errors.Is(err, fs.ErrNotExist) {
		return []inventory.Interface{}, nil
	}
	if err != nil {
		return nil, err
	}
	nics := []inventory.Interface{}
	for _, e := range entries {
		name := e.Name()
		dir := path.Join("sys/class/net", name)
		if name == "lo" || !exists(fsys, path.Join(dir, "device")) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, "address"))
		if err != nil {
			return nil, fmt.Errorf("nic %s: %w", name, err)
		}
		mac := strings.ToLower(strings.TrimSpace(string(b)))
		if mac == "" {
			continue
		}
		nics = append(nics, inventory.Interface{
			Name:       name,
			MACAddress: mac,
			HasCarrier: readString(fsys, path.Join(dir, "carrier")) == "1",
			SpeedMbps:  readSpeed(fsys, path.Join(dir, "speed")),
			Vendor:     readString(fsys, path.Join(dir, "device/vendor")),
			Product:    readString(fsys, path.Join(dir, "device/device")),
			Driver:     linkBase(fsys, path.Join(dir, "device/driver")),
		})
	}
	return nics, nil
}

// Reading carrier or speed fails with EINVAL while the NIC is down, which
// readString and readSpeed take as no carrier and unknown speed.

// readSpeed is the link speed in Mbps, or 0 when unknown: the file is
// missing, unreadable (the NIC is down), or says -1 (no link, or a driver
// that does not tell).
func readSpeed(fsys fs.FS, name string) int {
	n, err := readInt(fsys, name)
	if err != nil || n <= 0 || n > 1<<31-1 {
		return 0
	}
	return int(n)
}

// linkBase is the last element of a symbolic link's target: the driver's
// name for a device's driver link. "" when name is not a link.
func linkBase(fsys fs.FS, name string) string {
	target, err := fs.ReadLink(fsys, name)
	if err != nil {
		return ""
	}
	return path.Base(target)
}
