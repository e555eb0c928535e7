package undercloud

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/images"
)

// InstallOptions are what `undercloud install` needs besides the config.
type InstallOptions struct {
	// ConfigFile is the config the daemon will run with (absolute in the
	// unit file).
	ConfigFile string
	// Agent is the static strata-agent binary for the deploy ramdisk.
	Agent string
	// KernelCache is where `make deps` unpacked the Debian kernel.
	KernelCache string
	// Unit is the systemd unit file to write; empty writes none.
	Unit string
	// Binary is the undercloud binary the unit runs.
	Binary string
}

// Install prepares this host to run the undercloud with cfg, as TripleO's
// `openstack undercloud install` does: it checks the config (and that the
// provisioning interface exists), makes the data, TFTP and images
// directories, builds the deploy kernel and ramdisk into the images
// directory under the names the config gives them, and writes a systemd
// unit that runs `undercloud run --config`. Running it again rebuilds
// the same bytes and changes nothing else. Each step is reported to out.
func Install(cfg Config, o InstallOptions, out io.Writer) error {
	step := func(what string, fn func() (string, error)) error {
		start := time.Now()
		detail, err := fn()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(out, "%-40s %6s  %s\n", what, time.Since(start).Round(time.Millisecond), detail)
		return nil
	}
	cfg.setDefaults()
	if err := step("check the config", func() (string, error) {
		if err := cfg.Validate(); err != nil {
			return "", err
		}
		p := cfg.Provisioning
		if p.Interface == "" {
			return "no provisioning interface: no network boot", nil
		}
		if p.Netns == "" { // in a namespace (the lab), the daemon checks it at start
			if _, err := net.InterfaceByName(p.Interface); err != nil {
				return "", fmt.Errorf("provisioning.interface: %q: %v", p.Interface, err)
			}
		}
		for field, name := range map[string]string{"deploy_kernel": p.DeployKernel, "deploy_ramdisk": p.DeployRamdisk} {
			want := map[string]string{"deploy_kernel": images.DeployKernelName, "deploy_ramdisk": images.DeployRamdiskName}[field]
			if name != "" && name != want {
				return "", fmt.Errorf("provisioning.%s: install builds %s; name it (or leave it unset), or build %q yourself and run undercloud run", field, want, name)
			}
		}
		return fmt.Sprintf("network boot on %s, %s", p.Interface, p.Address), nil
	}); err != nil {
		return err
	}
	dirs := []string{cfg.DataDir}
	if p := cfg.Provisioning; p.Interface != "" {
		dirs = append(dirs, p.TFTPRoot, p.ImagesDir)
	}
	if err := step("make the directories", func() (string, error) {
		for _, d := range dirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", err
			}
		}
		return strings.Join(dirs, ", "), nil
	}); err != nil {
		return err
	}
	if cfg.Provisioning.Interface != "" {
		if err := step("build the deploy kernel and ramdisk", func() (string, error) {
			k, err := images.FindKernel(o.KernelCache)
			if err != nil {
				return "", err
			}
			if _, err := os.Stat(o.Agent); err != nil {
				return "", fmt.Errorf("the agent: %w", err)
			}
			kernel, ramdisk, err := images.InstallDeploy(cfg.Provisioning.ImagesDir, k, o.Agent)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s %d bytes, %s %d bytes sha256 %.12s (kernel %s)", kernel.Name, kernel.Size, ramdisk.Name, ramdisk.Size, ramdisk.SHA256, k.Release), nil
		}); err != nil {
			return err
		}
	}
	if o.Unit == "" {
		return nil
	}
	return step("write the systemd unit", func() (string, error) {
		unit, err := systemdUnit(o)
		if err != nil {
			return "", err
		}
		if old, err := os.ReadFile(o.Unit); err == nil && bytes.Equal(old, unit) {
			return o.Unit + " (unchanged)", nil
		}
		if err := os.MkdirAll(filepath.Dir(o.Unit), 0o755); err != nil {
			return "", err
		}
		tmp := o.Unit + ".tmp"
		if err := os.WriteFile(tmp, unit, 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, o.Unit); err != nil {
			return "", err
		}
		return o.Unit + "; start it with: systemctl daemon-reload && systemctl enable --now " + filepath.Base(o.Unit), nil
	})
}

// systemdUnit runs the daemon with the config, restarting it when it
// dies: its state is in etcd, and a restart takes its nodes back.
func systemdUnit(o InstallOptions) ([]byte, error) {
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	conf, err := filepath.Abs(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	return []byte(`[Unit]
Description=Strata undercloud: bare-metal inventory and provisioning
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=` + bin + ` run --config ` + conf + `
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`), nil
}

func newInstallCommand() *cobra.Command {
	o := InstallOptions{}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Prepare this host to run the undercloud",
		Long: `Prepare this host to run the undercloud with a config file, as TripleO's
"openstack undercloud install" does with undercloud.conf: check the config
(and that the provisioning interface exists), make the data, TFTP and
images directories, build the deploy kernel and ramdisk into the images
directory (the Debian kernel that "make deps" unpacks, and strata-agent
from beside this binary), and write a systemd unit that runs
"undercloud run --config FILE". Each step prints its time. Running it
again rebuilds the same bytes and leaves the rest as it is; nothing is
started.`,
		Example: `  undercloud install --config /etc/strata/undercloud.yaml
  undercloud install --config undercloud.yaml --unit ""   # no systemd unit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigFile == "" {
				return fmt.Errorf("--config: required (see undercloud run --help for its keys)")
			}
			cfg, err := Load(o.ConfigFile)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = exe
			if o.Agent == "" {
				o.Agent = filepath.Join(filepath.Dir(exe), "strata-agent")
			}
			return Install(cfg, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigFile, "config", "", "the YAML config file the daemon will run with (required)")
	f.StringVar(&o.Agent, "agent", "", `static strata-agent binary (default: "strata-agent" beside undercloud)`)
	f.StringVar(&o.KernelCache, "kernel-cache", images.DefaultKernelCache, "where make deps unpacked the Debian kernel")
	f.StringVar(&o.Unit, "unit", "/etc/systemd/system/strata-undercloud.service", `systemd unit file to write ("" for none)`)
	return cmd
}
