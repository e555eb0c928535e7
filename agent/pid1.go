package agent

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stratacloud/strata/images"
)

// mounts are the filesystems an initramfs starts without.
var mounts = []struct{ source, target, fstype string }{
	{"proc", "/proc", "proc"},
	{"sysfs", "/sys", "sysfs"},
	{"devtmpfs", "/dev", "devtmpfs"},
	{"tmpfs", "/run", "tmpfs"},
	{"tmpfs", "/tmp", "tmpfs"},
}

// setupPID1 mounts what the kernel leaves to init. A filesystem that is
// already mounted is fine.
func setupPID1() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.source, m.target, m.fstype, unix.MS_NOSUID, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// loadModules loads the modules the ramdisk lists, in its order. A module
// that fails to load (no such hardware is fine: most drivers load anyway)
// is logged, not fatal: the agent may still find its NIC.
func loadModules(root string, log *slog.Logger) (loaded int, err error) {
	release, err := os.ReadFile(filepath.Join(root, images.ReleasePath))
	if err != nil {
		return 0, fmt.Errorf("modules: %w", err)
	}
	f, err := os.Open(filepath.Join(root, images.ModuleListPath))
	if err != nil {
		return 0, fmt.Errorf("modules: %w", err)
	}
	defer f.Close()
	dir := filepath.Join(root, "lib/modules", strings.TrimSpace(string(release)))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rel := strings.TrimSpace(sc.Text())
		if rel == "" {
			continue
		}
		if err := loadModule(filepath.Join(dir, rel)); err != nil {
			log.Warn("module not loaded", "module", images.ModuleName(rel), "err", err)
			continue
		}
		loaded++
	}
	return loaded, sc.Err()
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
