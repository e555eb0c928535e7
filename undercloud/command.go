package undercloud

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand returns the `undercloud` command line.
func NewCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "undercloud",
		Short: "The Strata undercloud daemon: bare-metal inventory and provisioning",
		Long: `The undercloud owns a datacenter's machines: it keeps their inventory in
etcd, serves an Ironic v1-compatible API on it (so both 'strata node ...' and
'openstack baremetal ...' work), and moves nodes through Ironic's provision
states with its conductor.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newInstallCommand())
	return root
}

type runOptions struct {
	configFile string
	cfg        Config
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the undercloud daemon until SIGTERM or SIGINT",
		Long: `Run the undercloud: the Ironic-compatible API and a conductor.

By default the state lives in an embedded single-member etcd under
--data-dir, listening on loopback only. --etcd-endpoints uses an external
etcd cluster instead (with --etcd-cacert, --etcd-cert and --etcd-key for
TLS); several undercloud daemons, each with its own --conductor-name, can
share one cluster.

Authentication is "noauth" (allowed only on a loopback --listen address),
"http_basic" with an Apache htpasswd file of bcrypt entries
(htpasswd -B -c FILE USER), as standalone Ironic offers, or "keystone":
requests carry a token from Strata's identity service (or any Keystone v3),
which the undercloud validates as its own service user; reading needs the
reader, member or admin role, changing anything needs admin.

Everything else is set in a YAML config file (--config), for example:

  listen: 127.0.0.1:6385
  auth: http_basic
  htpasswd: /etc/strata/htpasswd
  keystone:               # for auth: keystone
    auth_url: http://192.168.24.1:5000/v3
    username: ironic
    password: secret
    project: service
    cache_ttl: 10s
  etcd:
    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]
    cacert: /etc/strata/etcd-ca.pem
  conductor:
    name: uc-1
    workers: 100          # concurrent operations; more are refused with 503
    lease_ttl: 10s        # how long reservations outlive a dead conductor
    takeover_interval: 10s
    shutdown_grace: 30s
    fake_step_delay: 0s   # time each fake-hardware operation takes
    power_sync_interval: 60s  # read every node's power state from its BMC
    power_sync_workers: 8
    inspect_wait_timeout: 30m     # how long a node waits for its agent when
    clean_callback_timeout: 30m   # inspecting, cleaning and deploying, before
    deploy_callback_timeout: 30m  # it fails and is powered off
    max_concurrent_inspect: 50    # nodes inspecting, cleaning and deploying
    max_concurrent_clean: 50      # at once (each boots the deploy ramdisk);
    max_concurrent_deploy: 250    # more are refused with 503
  provisioning:           # network boot: DHCP, TFTP and HTTP boot (iPXE)
    interface: eth1       # the provisioning network; empty: none of them run
    netns: ""             # namespace path of the interface (lab; DHCP, TFTP and HTTP all served there)
    address: 192.168.24.1/24  # the undercloud's address on it (required)
    dhcp_range: 192.168.24.100-192.168.24.200  # default .100-.200 of the subnet
    dhcp_mode: managed    # or proxy, beside another DHCP server
    http_port: 8088       # boot scripts and images, on address only
    tftp_root: /var/lib/strata/tftpboot  # default DATA_DIR/tftpboot
    images_dir: /var/lib/strata/images   # default DATA_DIR/images, at /images/
    kernel_args: []       # added to the deploy ramdisk's kernel command line
    router_advertisements: true  # answer IPv6 router solicitations with an empty RA, so
                          # firmware does not wait ~13 s for IPv6 (false: a router does)
    deploy_kernel: deploy.kernel      # under images_dir (strata image build ramdisk)
    deploy_ramdisk: deploy.initramfs
  image_cache:            # deploy images, fetched once and converted to raw
    max_size_mb: 20480    # the least recently used go first
    max_concurrent_fetches: 4
  registry:               # the OCI registry for the overcloud's service images
    listen: 192.168.24.1:8787   # empty: none; pulls are open, pushes need the
                                # API's credentials (noauth: this host only)
  log_level: info
  log_format: json

With provisioning.interface set (or --provisioning-interface), the
daemon serves network boot on that interface only, bound to the
provisioning address: DHCP (managed: addresses from dhcp_range, leases in
etcd; proxy: boot options only), TFTP on port 69 with Debian's iPXE
loaders (copied from /usr/lib/ipxe into tftp_root at start), and HTTP on
http_port with the per-node iPXE scripts (/boot.ipxe, /boot/MAC.ipxe) and
the files of images_dir (/images/). It refuses to start in managed mode if
another DHCP server answers on the interface.

Flags given on the command line override the file. On start the daemon
writes the API's address to DATA_DIR/api.addr.`,
		Example: `  undercloud run --data-dir /var/lib/strata --listen 127.0.0.1:6385
  undercloud run --data-dir /var/lib/strata --listen 0.0.0.0:6385 --auth http_basic --htpasswd /etc/strata/htpasswd
  undercloud run --data-dir /var/lib/strata --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return o.run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "YAML config file")
	f.StringVar(&o.cfg.DataDir, "data-dir", "", "directory for the embedded etcd and run files (required)")
	f.StringVar(&o.cfg.Listen, "listen", "", "API address ADDR:PORT (default 127.0.0.1:6385)")
	f.StringVar(&o.cfg.Auth, "auth", "", "API auth: noauth (loopback only), http_basic or keystone (default noauth)")
	f.StringVar(&o.cfg.HTPasswd, "htpasswd", "", "htpasswd file with bcrypt entries, for --auth http_basic")
	f.StringSliceVar(&o.cfg.Etcd.Endpoints, "etcd-endpoints", nil, "external etcd cluster URLs, comma-separated (default: embedded etcd)")
	f.StringVar(&o.cfg.Etcd.CACert, "etcd-cacert", "", "CA bundle to verify the etcd cluster")
	f.StringVar(&o.cfg.Etcd.Cert, "etcd-cert", "", "client certificate for etcd")
	f.StringVar(&o.cfg.Etcd.Key, "etcd-key", "", "client key for etcd")
	f.StringVar(&o.cfg.Conductor.Name, "conductor-name", "", "conductor name, unique per etcd cluster (default: hostname)")
	f.StringVar(&o.cfg.Provisioning.Interface, "provisioning-interface", "", "interface to serve network boot (DHCP, TFTP, HTTP boot) on (default: none)")
	f.StringVar(&o.cfg.LogLevel, "log-level", "", "debug, info, warn or error (default info)")
	f.StringVar(&o.cfg.LogFormat, "log-format", "", "json or text (default json)")
	return cmd
}

// complete merges the config file under the flags that were set.
func (o *runOptions) complete(cmd *cobra.Command) error {
	if o.configFile == "" {
		return nil
	}
	file, err := Load(o.configFile)
	if err != nil {
		return err
	}
	f := cmd.Flags()
	set := func(name string, dst *string, v string) {
		if !f.Changed(name) {
			*dst = v
		}
	}
	set("data-dir", &o.cfg.DataDir, file.DataDir)
	set("listen", &o.cfg.Listen, file.Listen)
	set("auth", &o.cfg.Auth, file.Auth)
	set("htpasswd", &o.cfg.HTPasswd, file.HTPasswd)
	set("log-level", &o.cfg.LogLevel, file.LogLevel)
	set("log-format", &o.cfg.LogFormat, file.LogFormat)
	// Sections come from the file, with single flags laid over them.
	etcd, cond := file.Etcd, file.Conductor
	if f.Changed("etcd-endpoints") {
		etcd.Endpoints = o.cfg.Etcd.Endpoints
	}
	if f.Changed("etcd-cacert") {
		etcd.CACert = o.cfg.Etcd.CACert
	}
	if f.Changed("etcd-cert") {
		etcd.Cert = o.cfg.Etcd.Cert
	}
	if f.Changed("etcd-key") {
		etcd.Key = o.cfg.Etcd.Key
	}
	if f.Changed("conductor-name") {
		cond.Name = o.cfg.Conductor.Name
	}
	prov := file.Provisioning
	if f.Changed("provisioning-interface") {
		prov.Interface = o.cfg.Provisioning.Interface
	}
	o.cfg.Etcd, o.cfg.Conductor, o.cfg.Provisioning = etcd, cond, prov
	o.cfg.Registry, o.cfg.ImageCache = file.Registry, file.ImageCache
	return nil
}

func (o *runOptions) run(ctx context.Context) error {
	cfg := o.cfg
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := NewLogger(cfg, os.Stderr)
	if err != nil {
		return err
	}
	return Run(ctx, cfg, log, nil)
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string) int {
	cmd := NewCommand()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "undercloud:", err)
		return 1
	}
	return 0
}
