package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/roles"
)

// Config is what the undercloud tells a node it deploys, in the
// "strata" member of its config drive's vendor_data.json (roles.NodeConfig:
// the undercloud writes it, the node reads it).
type Config = roles.NodeConfig

// NetworkConfig is a node's place on one isolated network.
type NetworkConfig = roles.Address

// ServiceConfig is one service a node runs.
type ServiceConfig = roles.NodeService

// ConfigDriveVendorKey is the member of vendor_data.json that holds a
// node's Config.
const ConfigDriveVendorKey = roles.ConfigDriveVendorKey

// maxDriveFile bounds each file read from a config drive.
const maxDriveFile = 16 << 20

// ReadConfigDrive reads a node's Config from the config drive at path
// (the partition, or an image of it).
func ReadConfigDrive(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	vol, files, err := images.ReadISO9660(f, maxDriveFile)
	if err != nil {
		return Config{}, fmt.Errorf("config drive %s: %w", path, err)
	}
	if vol != images.ConfigDriveLabel {
		return Config{}, fmt.Errorf("config drive %s: its label is %q, not %s", path, vol, images.ConfigDriveLabel)
	}
	var vendor map[string]json.RawMessage
	if err := json.Unmarshal(files["openstack/latest/vendor_data.json"], &vendor); err != nil {
		return Config{}, fmt.Errorf("config drive %s: vendor_data.json: %w", path, err)
	}
	raw, ok := vendor[ConfigDriveVendorKey]
	if !ok {
		return Config{}, fmt.Errorf("config drive %s: vendor_data.json has no %q member: the node was not deployed by a Strata overcloud deploy", path, ConfigDriveVendorKey)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("config drive %s: vendor_data.json %s: %w", path, ConfigDriveVendorKey, err)
	}
	return c, c.Validate()
}

// FindConfigDrive returns the block device labelled config-2, as udev
// names it under /dev/disk/by-label, or by reading each partition the
// kernel lists (where there is no udev).
func FindConfigDrive(root string) (string, error) {
	if p, err := filepath.EvalSymlinks(filepath.Join(root, "dev/disk/by-label", images.ConfigDriveLabel)); err == nil {
		return p, nil
	}
	entries, err := os.ReadDir(filepath.Join(root, "sys/class/block"))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		dev := filepath.Join(root, "dev", e.Name())
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		pvd := make([]byte, 72)
		_, err = f.ReadAt(pvd, 16*2048)
		f.Close()
		if err == nil && string(pvd[1:6]) == "CD001" && strings.TrimRight(string(pvd[40:72]), " ") == images.ConfigDriveLabel {
			return dev, nil
		}
	}
	return "", fmt.Errorf("no config drive: no block device is labelled %s", images.ConfigDriveLabel)
}
