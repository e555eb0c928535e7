package undercloud

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratacloud/strata/images"
)

func TestInstall(t *testing.T) {
	t.Parallel() // two ramdisk builds: slow under the race detector
	dir := t.TempDir()
	cfg := Config{DataDir: filepath.Join(dir, "data"), Provisioning: ProvisioningConfig{Interface: "lo", Address: "192.168.24.1/24"}}
	o := InstallOptions{ConfigFile: filepath.Join(dir, "undercloud.yaml"), Agent: "/bin/busybox", Unit: filepath.Join(dir, "systemd", "strata-undercloud.service"), Binary: "/usr/local/bin/undercloud"}
	var out bytes.Buffer
	if err := Install(cfg, o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"check the config", "network boot on lo", "build the deploy kernel and ramdisk", "deploy.initramfs", "write the systemd unit", "systemctl enable --now strata-undercloud.service"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output has no %q:\n%s", want, out.String())
		}
	}
	images1, err := os.ReadFile(filepath.Join(dir, "data", "images", images.DeployRamdiskName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "tftpboot")); err != nil {
		t.Error(err)
	}
	unit, _ := os.ReadFile(o.Unit)
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/undercloud run --config "+o.ConfigFile+"\n") || !strings.Contains(string(unit), "Restart=on-failure") {
		t.Errorf("unit:\n%s", unit)
	}

	// Again: the same bytes, the unit unchanged.
	out.Reset()
	if err := Install(cfg, o, &out); err != nil {
		t.Fatal(err)
	}
	images2, _ := os.ReadFile(filepath.Join(dir, "data", "images", images.DeployRamdiskName))
	if !bytes.Equal(images1, images2) || !strings.Contains(out.String(), "(unchanged)") {
		t.Errorf("a second install changed things:\n%s", out.String())
	}
}

func TestInstallRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		prov ProvisioningConfig
		want string
	}{
		{"no such interface", ProvisioningConfig{Interface: "nosuch0", Address: "192.168.24.1/24"}, `provisioning.interface: "nosuch0"`},
		{"other ramdisk name", ProvisioningConfig{Interface: "lo", Address: "192.168.24.1/24", DeployRamdisk: "mine.img"}, "provisioning.deploy_ramdisk: install builds deploy.initramfs"},
		{"bad address", ProvisioningConfig{Interface: "lo", Address: "192.168.24.1"}, "address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{DataDir: filepath.Join(dir, "data"), Provisioning: c.prov}
			err := Install(cfg, InstallOptions{ConfigFile: "x.yaml", Agent: "/bin/busybox", Unit: filepath.Join(dir, "unit")}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused install wrote %v", entries)
			}
		})
	}
}
