package roles

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// NodeConfig is a deployed node's part in its overcloud: who it is, where
// the undercloud is, which services to run from which images. The
// undercloud writes it into the node's config drive (vendor_data.json's
// ConfigDriveVendorKey member); the node runner reads it from there.
type NodeConfig struct {
	// Stack is the overcloud's name; Role and Hostname the node's.
	Stack    string `json:"stack"`
	Role     string `json:"role"`
	Hostname string `json:"hostname"`
	// Undercloud is the undercloud's API URL; Credential the node's own,
	// for its reports (never the undercloud's etcd credentials).
	Undercloud string `json:"undercloud"`
	Credential string `json:"credential,omitempty"`
	// Networks are the node's addresses on the overcloud's networks.
	Networks map[string]Address `json:"networks,omitempty"`
	// TLS is the node's certificate and key, and the overcloud's CA
	// (PEM), for the services that speak TLS (etcd, between its members
	// and to its clients).
	TLS *NodeTLS `json:"tls,omitempty"`
	// Services are started in the order their After allows.
	Services []NodeService `json:"services"`
}

// NodeTLS is a node's TLS identity, PEM-encoded.
type NodeTLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Placeholders in a service's Args and Env that the node runner replaces
// with the paths where it wrote the node's TLS files, and with its state
// directory.
const (
	PlaceholderTLSCA    = "{tls_ca}"
	PlaceholderTLSCert  = "{tls_cert}"
	PlaceholderTLSKey   = "{tls_key}"
	PlaceholderStateDir = "{state_dir}"
)

// NodeService is one service a node runs.
type NodeService struct {
	Name string `json:"name"`
	// Image is pinned by digest: REGISTRY/REPO@sha256:HEX.
	Image string `json:"image"`
	// Args and Env may hold the Placeholder* strings.
	Args  []string `json:"args,omitempty"`
	Env   []string `json:"env,omitempty"`
	After []string `json:"after,omitempty"`
	// HealthHTTP or HealthTCP say how to tell it is serving.
	HealthHTTP string `json:"health_http,omitempty"`
	HealthTCP  string `json:"health_tcp,omitempty"`
}

// ConfigDriveVendorKey is the member of a config drive's vendor_data.json
// that holds a node's NodeConfig.
const ConfigDriveVendorKey = "strata"

// Validate checks what a node needs to start its services.
func (c NodeConfig) Validate() error {
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
