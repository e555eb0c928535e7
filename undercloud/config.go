// Package undercloud is the undercloud daemon: it runs the Ironic-compatible
// API and the conductor over an etcd store, embedded or external.
package undercloud

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/stratacloud/strata/pxe/dhcp"
)

// Auth strategies of the API, as standalone Ironic offers them.
const (
	AuthNone      = "noauth"
	AuthHTTPBasic = "http_basic"
	AuthKeystone  = "keystone"
)

// Config is everything the daemon can be told. The command line sets the
// common fields; a YAML config file (Load) sets any of them.
type Config struct {
	// DataDir holds the embedded etcd's data and the daemon's run files.
	DataDir string `json:"data_dir"`
	// Listen is the API's address. Default 127.0.0.1:6385 (Ironic's port).
	Listen string `json:"listen"`
	// Auth is noauth (only allowed on a loopback address) or http_basic.
	Auth string `json:"auth"`
	// HTPasswd is the htpasswd file (bcrypt entries) for http_basic.
	HTPasswd string `json:"htpasswd"`
	// Keystone is the identity service that validates tokens, for auth
	// keystone.
	Keystone KeystoneConfig `json:"keystone"`

	Etcd      EtcdConfig      `json:"etcd"`
	Conductor ConductorConfig `json:"conductor"`
	// Provisioning, when its interface is set, runs the network-boot
	// services (DHCP, TFTP, HTTP boot) on that interface.
	Provisioning ProvisioningConfig `json:"provisioning"`
	// Registry is the OCI registry the overcloud's service images are
	// pushed to and pulled from.
	Registry RegistryConfig `json:"registry"`
	// ImageCache bounds the cache of deploy images (DATA_DIR/image-cache).
	ImageCache ImageCacheConfig `json:"image_cache"`

	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `json:"log_level"`
	// LogFormat is json or text. Default json.
	LogFormat string `json:"log_format"`
}

// EtcdConfig says which etcd the daemon keeps its state in.
type EtcdConfig struct {
	// Endpoints of an external etcd cluster. Empty: run an embedded
	// single-member etcd under DataDir, on loopback.
	Endpoints []string `json:"endpoints"`
	// CACert, Cert and Key are PEM files for TLS to the external cluster.
	CACert string `json:"cacert"`
	Cert   string `json:"cert"`
	Key    string `json:"key"`
	// Username and Password for etcd's own authentication, if enabled.
	Username string `json:"username"`
	Password string `json:"password"`
	// DialTimeout bounds connecting to the cluster. Default 10s.
	DialTimeout Duration `json:"dial_timeout"`
	// Prefix is the key prefix of the undercloud's records. Default
	// /strata/undercloud/.
	Prefix string `json:"prefix"`
	// ClientURL and PeerURL of the embedded member (loopback only).
	// Default: free ports on 127.0.0.1.
	ClientURL string `json:"client_url"`
	PeerURL   string `json:"peer_url"`
}

// KeystoneConfig says how the undercloud checks Keystone tokens: it logs
// in to the identity service as its own service user and asks it about
// each token (cached for a few seconds), as keystonemiddleware does.
type KeystoneConfig struct {
	// AuthURL is the identity service's versioned root, e.g.
	// http://192.168.24.1:5000/v3.
	AuthURL string `json:"auth_url"`
	// The service user, which needs the admin or service role.
	Username      string `json:"username"`
	Password      string `json:"password"`
	UserDomain    string `json:"user_domain"`
	Project       string `json:"project"`
	ProjectDomain string `json:"project_domain"`
	// CacheTTL bounds how long a validated token is trusted without asking
	// again (and so how long a revoked one still works). Default 10s.
	CacheTTL Duration `json:"cache_ttl"`
}

// ConductorConfig tunes the conductor.
type ConductorConfig struct {
	// Name must be unique per cluster. Default: the hostname.
	Name string `json:"name"`
	// Workers bounds concurrent operations. Default 100.
	Workers int `json:"workers"`
	// LeaseTTL is how long the conductor's reservations outlive it. Default 10s.
	LeaseTTL Duration `json:"lease_ttl"`
	// TakeoverInterval is how often nodes of dead conductors are looked
	// for. Default 10s.
	TakeoverInterval Duration `json:"takeover_interval"`
	// ShutdownGrace is how long a clean stop waits for operations in
	// progress. Default 30s.
	ShutdownGrace Duration `json:"shutdown_grace"`
	// FakeStepDelay makes each fake-hardware operation take this long.
	FakeStepDelay Duration `json:"fake_step_delay"`
	// PowerSyncInterval is how often every node's power state is read from
	// its BMC. Default 60s; negative disables it.
	PowerSyncInterval Duration `json:"power_sync_interval"`
	// PowerSyncWorkers bounds the BMCs read at once. Default 8.
	PowerSyncWorkers int `json:"power_sync_workers"`
	// InspectWaitTimeout, CleanCallbackTimeout and DeployCallbackTimeout
	// bound how long a node waits for its deploy ramdisk's agent in
	// inspect wait, clean wait and wait call-back. Default 30m each.
	InspectWaitTimeout    Duration `json:"inspect_wait_timeout"`
	CleanCallbackTimeout  Duration `json:"clean_callback_timeout"`
	DeployCallbackTimeout Duration `json:"deploy_callback_timeout"`
	// MaxConcurrentInspect, MaxConcurrentClean and MaxConcurrentDeploy
	// bound the nodes in each phase at once; more are refused with 503.
	// Defaults 50, 50 and 250.
	MaxConcurrentInspect int `json:"max_concurrent_inspect"`
	MaxConcurrentClean   int `json:"max_concurrent_clean"`
	MaxConcurrentDeploy  int `json:"max_concurrent_deploy"`
}

// ImageCacheConfig bounds the deploy image cache.
type ImageCacheConfig struct {
	// MaxSizeMB is the disk it may take, in MiB; the images used least
	// recently go first. Default 20480 (Ironic's image_cache_size).
	MaxSizeMB int64 `json:"max_size_mb"`
	// MaxConcurrentFetches bounds the images downloaded (and converted)
	// at once. Default 4.
	MaxConcurrentFetches int `json:"max_concurrent_fetches"`
}

// RegistryConfig configures the undercloud's OCI registry.
type RegistryConfig struct {
	// Listen is its address, ADDR:PORT (TripleO's is the provisioning
	// address, port 8787); empty runs no registry.
	Listen string `json:"listen"`
}

// Duration is a time.Duration written as "10s" in config files.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like \"10s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads a YAML (or JSON) config file. Unknown keys are an error.
func Load(path string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:6385"
	}
	if c.Auth == "" {
		c.Auth = AuthNone
	}
	if c.Etcd.Prefix == "" {
		c.Etcd.Prefix = "/strata/undercloud/"
	}
	if c.Etcd.DialTimeout == 0 {
		c.Etcd.DialTimeout = Duration(10 * time.Second)
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	c.Provisioning.setDefaults(c.DataDir)
}

// Validate checks the config and names the first problem.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: required")
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not ADDR:PORT: %v", c.Listen, err)
	}
	switch c.Auth {
	case AuthNone:
		if !isLoopback(host) {
			return fmt.Errorf("auth: noauth is only allowed on a loopback address, not %q; use http_basic", c.Listen)
		}
	case AuthHTTPBasic:
		if c.HTPasswd == "" {
			return fmt.Errorf("htpasswd: required with auth http_basic")
		}
	case AuthKeystone:
		k := c.Keystone
		if k.AuthURL == "" || k.Username == "" || k.Password == "" || k.Project == "" {
			return fmt.Errorf("keystone: auth_url, username, password and project are required with auth keystone")
		}
		if !strings.HasPrefix(k.AuthURL, "http://") && !strings.HasPrefix(k.AuthURL, "https://") {
			return fmt.Errorf("keystone.auth_url: %q must start with http:// or https://", k.AuthURL)
		}
	default:
		return fmt.Errorf("auth: %q is not one of noauth, http_basic, keystone", c.Auth)
	}
	if (c.Etcd.Cert == "") != (c.Etcd.Key == "") {
		return fmt.Errorf("etcd: cert and key must be given together")
	}
	if len(c.Etcd.Endpoints) == 0 && (c.Etcd.CACert != "" || c.Etcd.Cert != "") {
		return fmt.Errorf("etcd: TLS options need etcd endpoints")
	}
	for _, ep := range c.Etcd.Endpoints {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return fmt.Errorf("etcd endpoints: %q must start with http:// or https://", ep)
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("log_format: %q is not json or text", c.LogFormat)
	}
	if c.Conductor.Workers < 0 {
		return fmt.Errorf("conductor.workers: must not be negative")
	}
	if c.ImageCache.MaxSizeMB < 0 || c.ImageCache.MaxConcurrentFetches < 0 {
		return fmt.Errorf("image_cache: max_size_mb and max_concurrent_fetches must not be negative")
	}
	if c.Registry.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Registry.Listen); err != nil {
			return fmt.Errorf("registry.listen: %q is not ADDR:PORT: %v", c.Registry.Listen, err)
		}
	}
	return c.Provisioning.validate()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ProvisioningConfig configures the network-boot services: DHCP, TFTP for
// the iPXE loaders and the HTTP boot server of iPXE scripts and images.
// They run only on Interface, and only when it is set.
type ProvisioningConfig struct {
	// Interface is the provisioning network's interface. Empty: no
	// network-boot services.
	Interface string `json:"interface"`
	// Netns is the path of the network namespace Interface lives in (e.g.
	// /run/netns/lab0, for the lab); empty is the daemon's own.
	Netns string `json:"netns"`
	// Address is the undercloud's address on Interface with its prefix,
	// e.g. 192.168.24.1/24. Required with Interface.
	Address string `json:"address"`
	// DHCPRange is the dynamic range, START-END. Default: .100 to .200 of
	// Address's subnet.
	DHCPRange string `json:"dhcp_range"`
	// DHCPMode is managed (hand out addresses; the default) or proxy
	// (boot options only, beside another DHCP server).
	DHCPMode string `json:"dhcp_mode"`
	// HTTPPort is the boot HTTP server's port on Address. Default 8088.
	HTTPPort int `json:"http_port"`
	// TFTPRoot is where the iPXE loaders are served from. Default
	// DATA_DIR/tftpboot.
	TFTPRoot string `json:"tftp_root"`
	// ImagesDir holds the kernels, ramdisks and images served at /images/.
	// Default DATA_DIR/images.
	ImagesDir string `json:"images_dir"`
	// DeployKernel and DeployRamdisk name the deploy ramdisk's files under
	// ImagesDir, for nodes whose driver_info names none.
	DeployKernel  string `json:"deploy_kernel"`
	DeployRamdisk string `json:"deploy_ramdisk"`
	// KernelArgs are added to the deploy ramdisk's kernel command line.
	KernelArgs []string `json:"kernel_args"`
	// RouterAdvertisements answers IPv6 router solicitations on Interface
	// with an advertisement that offers nothing (no prefix, not a default
	// router), so that network-boot firmware stops waiting for an IPv6
	// configuration no one gives (about 13 s per boot with iPXE).
	// Default true; set false where a real router advertises.
	RouterAdvertisements *bool `json:"router_advertisements"`
}

func (p ProvisioningConfig) routerAdvertisements() bool {
	return p.RouterAdvertisements == nil || *p.RouterAdvertisements
}

// DefaultHTTPBootPort is the boot HTTP server's default port.
const DefaultHTTPBootPort = 8088

func (p *ProvisioningConfig) setDefaults(dataDir string) {
	if p.Interface == "" {
		return
	}
	if p.DHCPMode == "" {
		p.DHCPMode = "managed"
	}
	if p.HTTPPort == 0 {
		p.HTTPPort = DefaultHTTPBootPort
	}
	if p.TFTPRoot == "" && dataDir != "" {
		p.TFTPRoot = filepath.Join(dataDir, "tftpboot")
	}
	if p.ImagesDir == "" && dataDir != "" {
		p.ImagesDir = filepath.Join(dataDir, "images")
	}
}

// provisioning is a checked ProvisioningConfig.
type provisioning struct {
	ProvisioningConfig
	addr netip.Prefix
	pool dhcp.Range
	mode dhcp.Mode
}

func (p ProvisioningConfig) validate() error {
	_, err := p.parse()
	return err
}

// parse checks the settings (with defaults filled in) and names the first
// bad field.
func (p ProvisioningConfig) parse() (provisioning, error) {
	r := provisioning{ProvisioningConfig: p}
	if p.Interface == "" {
		return r, nil
	}
	if strings.ContainsAny(p.Interface, "/ \t") || len(p.Interface) > 15 {
		return r, fmt.Errorf("provisioning.interface: %q is not an interface name", p.Interface)
	}
	if p.Netns != "" && !filepath.IsAbs(p.Netns) {
		return r, fmt.Errorf("provisioning.netns: %q is not an absolute path (e.g. /run/netns/lab0)", p.Netns)
	}
	if p.Address == "" {
		return r, fmt.Errorf("provisioning.address: required with provisioning.interface (e.g. 192.168.24.1/24)")
	}
	a, err := netip.ParsePrefix(p.Address)
	if err != nil || !a.Addr().Is4() || a.Bits() > 30 || a.Addr() == a.Masked().Addr() {
		return r, fmt.Errorf("provisioning.address: %q is not an IPv4 host address with a prefix of at most /30, such as 192.168.24.1/24", p.Address)
	}
	r.addr = a
	subnet := a.Masked()
	if p.DHCPRange == "" {
		start, end := subnet.Addr(), subnet.Addr()
		for range 100 {
			start = start.Next()
		}
		end = start
		for range 100 {
			end = end.Next()
		}
		if !subnet.Contains(start) || !subnet.Contains(end) {
			return r, fmt.Errorf("provisioning.dhcp_range: required: subnet %v has no .100-.200 for the default", subnet)
		}
		r.pool = dhcp.Range{Start: start, End: end}
	} else {
		s, e, ok := strings.Cut(p.DHCPRange, "-")
		start, err1 := netip.ParseAddr(strings.TrimSpace(s))
		end, err2 := netip.ParseAddr(strings.TrimSpace(e))
		if !ok || err1 != nil || err2 != nil || end.Less(start) {
			return r, fmt.Errorf("provisioning.dhcp_range: %q is not START-END, such as 192.168.24.100-192.168.24.200", p.DHCPRange)
		}
		r.pool = dhcp.Range{Start: start, End: end}
	}
	if !subnet.Contains(r.pool.Start) || !subnet.Contains(r.pool.End) {
		return r, fmt.Errorf("provisioning.dhcp_range: %v is not inside %v", r.pool, subnet)
	}
	if r.pool.Contains(a.Addr()) {
		return r, fmt.Errorf("provisioning.dhcp_range: %v contains the undercloud's own address %v", r.pool, a.Addr())
	}
	switch p.DHCPMode {
	case "", "managed":
		r.mode = dhcp.Managed
	case "proxy":
		r.mode = dhcp.Proxy
	default:
		return r, fmt.Errorf("provisioning.dhcp_mode: %q is not managed or proxy", p.DHCPMode)
	}
	if p.HTTPPort < 0 || p.HTTPPort > 65535 {
		return r, fmt.Errorf("provisioning.http_port: %d is not a port", p.HTTPPort)
	}
	if p.TFTPRoot == "" {
		return r, fmt.Errorf("provisioning.tftp_root: required")
	}
	if p.ImagesDir == "" {
		return r, fmt.Errorf("provisioning.images_dir: required")
	}
	for field, v := range map[string]string{"deploy_kernel": p.DeployKernel, "deploy_ramdisk": p.DeployRamdisk} {
		if v != "" && !fs.ValidPath(v) {
			return r, fmt.Errorf("provisioning.%s: %q is not a relative name under images_dir", field, v)
		}
	}
	return r, nil
}
