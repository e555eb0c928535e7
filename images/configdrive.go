package images

import (
	"encoding/json"
	"fmt"
	"time"
)

// ConfigDriveLabel is a config drive's volume identifier, by which
// cloud-init and the overcloud's node runner find it.
const ConfigDriveLabel = "config-2"

// ConfigDrive is what an OpenStack config drive tells a deployed machine
// about itself, in the layout cloud-init reads (openstack/latest/).
type ConfigDrive struct {
	// MetaData is meta_data.json: uuid, name, hostname, public_keys, ...
	MetaData map[string]any
	// NetworkData is network_data.json (links, networks, services); an
	// empty one when nil.
	NetworkData map[string]any
	// VendorData is vendor_data.json; an empty object when nil.
	VendorData map[string]any
	// UserData is user_data, as given (a script, a #cloud-config, ...);
	// no file when nil.
	UserData []byte
}

// configDriveDir is where the files go; only "latest", which every
// reader looks for first (the dated directories beside it in Nova's
// drives name API versions no reader here needs).
const configDriveDir = "openstack/latest/"

// Build returns the config drive as an ISO 9660 image labelled
// config-2, its files stamped with mtime.
func (c ConfigDrive) Build(mtime time.Time) ([]byte, error) {
	network := c.NetworkData
	if network == nil {
		network = map[string]any{"links": []any{}, "networks": []any{}, "services": []any{}}
	}
	vendor := c.VendorData
	if vendor == nil {
		vendor = map[string]any{}
	}
	files := map[string][]byte{}
	for name, v := range map[string]map[string]any{"meta_data.json": c.MetaData, "network_data.json": network, "vendor_data.json": vendor} {
		if v == nil {
			v = map[string]any{}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("config drive: %s: %w", name, err)
		}
		files[configDriveDir+name] = b
	}
	if c.UserData != nil {
		files[configDriveDir+"user_data"] = c.UserData
	}
	return BuildISO9660(ConfigDriveLabel, files, mtime)
}
