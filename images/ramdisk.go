package images

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// DeployModules are the drivers the deploy ramdisk carries: virtual and
// common physical NICs and disk controllers, and the filesystems of
// config drives and EFI system partitions.
var DeployModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "virtio_rng",
	"e1000", "e1000e", "igb", "ixgbe",
	"nvme", "ahci", "ata_piix", "sd_mod", "sr_mod",
	"vfat", "nls_cp437", "nls_ascii", "nls_utf8", "isofs",
}

// Paths inside the ramdisk that the agent reads.
const (
	// ModuleListPath lists the modules to load, in order, one path per
	// line, relative to /lib/modules/RELEASE.
	ModuleListPath = "etc/strata/modules"
	// ReleasePath holds the kernel release the modules are for.
	ReleasePath = "etc/strata/kernel-release"
)

// Ramdisk describes a deploy ramdisk.
type Ramdisk struct {
	// Kernel provides the modules.
	Kernel Kernel
	// Init is the path of the static binary that becomes /init.
	Init string
	// Modules names the modules to carry (with their dependencies);
	// DeployModules when nil.
	Modules []string
}

// Build writes the ramdisk, a gzip-compressed newc cpio archive, to w.
// Every header field that could vary between runs (times, owners, inode
// numbers) is fixed, so the same inputs give the same bytes.
func (r Ramdisk) Build(w io.Writer) error {
	names := r.Modules
	if names == nil {
		names = DeployModules
	}
	mods, err := r.Kernel.ModuleClosure(names)
	if err != nil {
		return err
	}
	init, err := os.ReadFile(r.Init)
	if err != nil {
		return fmt.Errorf("ramdisk init: %w", err)
	}

	files := map[string]cpio.Record{
		"init":        cpio.StaticRecord(init, cpio.Info{Mode: cpio.S_IFREG | 0o755}),
		"dev/console": cpio.CharDev("", 0o600, 5, 1),
		"dev/null":    cpio.CharDev("", 0o666, 1, 3),
	}
	var list strings.Builder
	for _, m := range mods {
		data, err := os.ReadFile(path.Join(r.Kernel.ModulesDir(), m.Path))
		if err != nil {
			return fmt.Errorf("module %s: %w", m.Name, err)
		}
		files[path.Join("lib/modules", r.Kernel.Release, m.Path)] = cpio.StaticRecord(data, cpio.Info{Mode: cpio.S_IFREG | 0o644})
		list.WriteString(m.Path + "\n")
	}
	files[ModuleListPath] = cpio.StaticFile("", list.String(), 0o644)
	files[ReleasePath] = cpio.StaticFile("", r.Kernel.Release+"\n", 0o644)
	for _, d := range []string{"proc", "sys", "run", "tmp", "mnt"} {
		files[d] = cpio.Directory("", 0o755)
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := writeArchive(zw, files); err != nil {
		return fmt.Errorf("ramdisk: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("ramdisk: %w", err)
	}
	return bw.Flush()
}

// writeArchive writes files (and the directories that lead to them, which
// the kernel does not make by itself) in name order, then the trailer.
func writeArchive(w io.Writer, files map[string]cpio.Record) error {
	for name := range files {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := files[dir]; !ok {
				files[dir] = cpio.Directory("", 0o755)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names) // a directory sorts before what is in it
	rw := cpio.Newc.Writer(w)
	for i, n := range names {
		rec := files[n]
		rec.Name = n
		rec = cpio.MakeReproducible(rec)
		rec.Ino = uint64(i + 1)
		rec.NLink = 1
		if rec.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			rec.NLink = 2
		}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return cpio.WriteTrailer(rw)
}
