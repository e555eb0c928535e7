package conductor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/inventory"
)

// maxConfigDriveImage bounds a config drive image, decoded or fetched
// (Ironic's bound: the partition the agent makes is 64 MiB).
const maxConfigDriveImage = 64 << 20

// isoMagic is where every ISO 9660 image says what it is.
const (
	isoMagicOffset = 32769
	isoMagic       = "CD001"
)

// ConfigDriveImage returns the config drive the deploy of n asked for
// (instance_info's configdrive) as an ISO 9660 image, or nil when it
// asked for none. The request gave it in one of three forms: an object
// (meta_data, network_data, user_data, vendor_data) that the undercloud
// builds the drive from, a URL to fetch the image from, or the image
// itself, gzipped and base64-encoded.
func ConfigDriveImage(ctx context.Context, n *inventory.Node, fetch *http.Client) ([]byte, error) {
	switch cd := n.InstanceInfo["configdrive"].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return buildConfigDrive(n, cd)
	case string:
		if cd == "" {
			return nil, nil
		}
		if strings.Contains(cd, "://") {
			return fetchConfigDrive(ctx, cd, fetch)
		}
		return decodeConfigDrive(cd)
	default:
		return nil, inventory.Invalid("instance_info.configdrive", "is %T, not an object, a URL or base64 data", cd)
	}
}

// buildConfigDrive makes the drive from its parts. As Ironic does, the
// node's uuid and name fill meta_data's uuid and name when the request
// leaves them out; the name is the hostname too, unless given.
func buildConfigDrive(n *inventory.Node, cd map[string]any) ([]byte, error) {
	meta := map[string]any{}
	if m, ok := cd["meta_data"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	setDefault := func(k, v string) {
		if _, ok := meta[k]; !ok && v != "" {
			meta[k] = v
		}
	}
	setDefault("uuid", n.UUID)
	setDefault("name", n.Name)
	setDefault("hostname", n.Name)
	drive := images.ConfigDrive{MetaData: meta}
	drive.NetworkData, _ = cd["network_data"].(map[string]any)
	drive.VendorData, _ = cd["vendor_data"].(map[string]any)
	switch u := cd["user_data"].(type) {
	case nil:
	case string:
		drive.UserData = []byte(u)
	default: // an object or an array: cloud-init reads JSON user data
		b, err := json.Marshal(u)
		if err != nil {
			return nil, inventory.Invalid("instance_info.configdrive.user_data", "not encodable: %v", err)
		}
		drive.UserData = b
	}
	stamp := time.Unix(0, 0)
	if n.ProvisionUpdatedAt != nil {
		stamp = *n.ProvisionUpdatedAt
	}
	iso, err := drive.Build(stamp)
	if err != nil {
		return nil, inventory.Invalid("instance_info.configdrive", "%v", err)
	}
	return iso, nil
}

// decodeConfigDrive reads a base64 config drive image, gzipped or not.
func decodeConfigDrive(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, inventory.Invalid("instance_info.configdrive", "is not valid base64: %v", err)
	}
	if raw, err = gunzip(raw); err != nil {
		return nil, inventory.Invalid("instance_info.configdrive", "is not valid gzip: %v", err)
	}
	return checkISO(raw, "instance_info.configdrive")
}

// gunzip returns b uncompressed if it is gzipped (as Ironic takes config
// drives), else as it is.
func gunzip(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, maxConfigDriveImage+1))
}

func fetchConfigDrive(ctx context.Context, url string, client *http.Client) ([]byte, error) {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, inventory.Invalid("instance_info.configdrive", "%q is not a URL: %v", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the config drive: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the config drive from %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigDriveImage+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the config drive from %s: %w", url, err)
	}
	if data, err = gunzip(data); err != nil {
		return nil, inventory.Invalid("instance_info.configdrive", "the config drive at %s is not valid gzip: %v", url, err)
	}
	return checkISO(data, "the config drive at "+url)
}

func checkISO(b []byte, what string) ([]byte, error) {
	if len(b) > maxConfigDriveImage {
		return nil, inventory.Invalid(what, "is larger than %d bytes", maxConfigDriveImage)
	}
	if len(b) < isoMagicOffset+len(isoMagic) || string(b[isoMagicOffset:isoMagicOffset+len(isoMagic)]) != isoMagic {
		return nil, inventory.Invalid(what, "is not an ISO 9660 image")
	}
	return b, nil
}

// AgentConfigDrive checks an agent's token and returns the config drive
// of the node it deploys, nil for none.
func (c *Conductor) AgentConfigDrive(ctx context.Context, node, token string) ([]byte, error) {
	n, _, err := c.nodes.GetNode(ctx, node)
	if err != nil {
		return nil, err
	}
	if err := checkAgentToken(n, token); err != nil {
		return nil, err
	}
	if n.ProvisionState != inventory.StateWaitCallback {
		return nil, fmt.Errorf("node %s is %s, not being deployed: %w", n.UUID, n.ProvisionState, inventory.ErrInvalidState)
	}
	iso, err := ConfigDriveImage(ctx, n, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfigDrive, err)
	}
	return iso, nil
}

// ErrConfigDrive is a config drive that can not be made: bad data in
// instance_info, or a URL that does not give an image.
var ErrConfigDrive = errors.New("the node's config drive can not be prepared")
