package images

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultKernelCache is where `make deps` (scripts/kernel.sh) unpacks the
// Debian kernel package: one directory per release, each the package's
// tree (boot/vmlinuz-RELEASE, lib/modules/RELEASE/…).
const DefaultKernelCache = "/var/cache/strata/kernel"

// ErrNoKernel means the cache holds no unpacked kernel.
var ErrNoKernel = errors.New("no Debian kernel unpacked")

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	// Root is the directory the package was unpacked into.
	Root string
	// Release is the kernel release, such as "6.1.0-56-amd64".
	Release string
}

// FindKernel returns the newest kernel release unpacked under cache
// (DefaultKernelCache when empty).
func FindKernel(cache string) (Kernel, error) {
	if cache == "" {
		cache = DefaultKernelCache
	}
	entries, err := os.ReadDir(cache)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	var found []Kernel
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".partial") {
			continue
		}
		k := Kernel{Root: filepath.Join(cache, e.Name()), Release: e.Name()}
		if _, err := os.Stat(k.Vmlinuz()); err == nil {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return Kernel{}, fmt.Errorf("%w under %s: run `make deps` (scripts/kernel.sh fetches one)", ErrNoKernel, cache)
	}
	slices.SortFunc(found, func(a, b Kernel) int { return compareReleases(a.Release, b.Release) })
	return found[len(found)-1], nil
}

// Vmlinuz is the path of the kernel image.
func (k Kernel) Vmlinuz() string {
	return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Release)
}

// ModulesDir is the directory of the kernel's modules.
func (k Kernel) ModulesDir() string {
	return filepath.Join(k.Root, "lib", "modules", k.Release)
}

// compareReleases orders releases by their numeric fields, so that
// 6.1.0-56 sorts after 6.1.0-9.
func compareReleases(a, b string) int {
	fa, fb := releaseFields(a), releaseFields(b)
	for i := 0; i < len(fa) && i < len(fb); i++ {
		na, ea := strconv.Atoi(fa[i])
		nb, eb := strconv.Atoi(fb[i])
		if ea == nil && eb == nil {
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(fa[i], fb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(fa), len(fb))
}

func releaseFields(r string) []string {
	return strings.FieldsFunc(r, func(c rune) bool { return c == '.' || c == '-' })
}
