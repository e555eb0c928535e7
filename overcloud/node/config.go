package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratacloud/strata/images"
)

// Config is what the undercloud tells a node it deploys, in the
// "strata" member of its config drive's vendor_data.json: who the node
// is, where the undercloud is, which services to run from which images.
type Config struct {
	// Stack is the overcloud's name; Role and Hostname the node's.
	Stack    string `json:"stack"`
	Role     string `json:"role"`
	Hostname string `json:"hostname"`
	// Undercloud is the undercloud's API URL; Credential the node's own,
	// for its reports (never the undercloud's etcd credentials).
	Undercloud string `json:"undercloud"`
	Credential string `json:"credential,omitempty"`
	// Networks are the node's addresses on the overcloud's networks.
	Networks map[string]NetworkConfig `json:"networks,omitempty"`
	// Services are started in the order their After allows.
	Services []ServiceConfig `json:"services"`
}

// NetworkConfig is a node's place on one isolated network.
type NetworkConfig struct {
	Address string `json:"address"` // CIDR
	VLAN    int    `json:"vlan,omitempty"`
	MTU     int    `json:"mtu,omitempty"`
}

// ServiceConfig is one service a node runs.
type ServiceConfig struct {
	Name string `json:"name"`
	// Image is pinned by digest: REGISTRY/REPO@sha256:HEX.
	Image string   `json:"image"`
	Args  []string `json:"args,omitempty"`
	Env   []string `json:"env,omitempty"`
	After []string `json:"after,omitempty"`
	// HealthHTTP or HealthTCP say how to tell it is serving.
	HealthHTTP string `json:"health_http,omitempty"`
	HealthTCP  string `json:"health_tcp,omitempty"`
}

// ConfigDriveVendorKey is the member of vendor_data.json that holds a
// node's Config.
const ConfigDriveVendorKey = "strata"

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

// Validate checks what a node needs to start its services.
func (c Config) Validate() error {
	var errs []error
	if c.Hostname == "" || c.Role == "" {
		errs = append(errs, errors.New("hostname and role are required"))
	}
	for name, n := range c.Networks {
		if _, err := netip.ParsePrefix(n.Address); err != nil {
			errs = append(errs, fmt.Errorf("networks.%s.address: %q is not an address/length", name, n.Address))
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Services {
		if s.Name == "" || seen[s.Name] {
			errs = append(errs, fmt.Errorf("services[%d]: a missing or repeated name %q", i, s.Name))
		}
		seen[s.Name] = true
		if _, digest, ok := strings.Cut(s.Image, "@"); !ok || !strings.HasPrefix(digest, "sha256:") {
			errs = append(errs, fmt.Errorf("services.%s.image: %q is not pinned by digest (REGISTRY/REPO@sha256:...)", s.Name, s.Image))
		}
	}
	return errors.Join(errs...)
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
