package sim

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/u-root/u-root/pkg/cpio"
)

// Kinds of OS a machine runs.
const (
	// osRamdisk is a network-booted kernel and ramdisk: the ramdisk's
	// /init runs against the machine's hardware view (--root).
	osRamdisk = iota + 1
	// osDisk is a kernel and initramfs from the machine's disk: the whole
	// initramfs is unpacked, and its /init runs chrooted into it.
	osDisk
)

// osImage is a kernel and its initrds, as a boot loader hands them over.
type osImage struct {
	kind    int
	kernel  string
	initrds []string
	cmdline string
}

// The Linux x86 boot protocol's marks in a bzImage: the boot sector's
// signature and the setup header's magic.
const (
	bootFlagOffset = 0x1fe
	headerOffset   = 0x202
	headerMagic    = "HdrS"
)

func isKernel(b []byte) bool {
	return len(b) >= headerOffset+len(headerMagic) && b[bootFlagOffset] == 0x55 && b[bootFlagOffset+1] == 0xaa &&
		string(b[headerOffset:headerOffset+len(headerMagic)]) == headerMagic
}

// checkKernel checks that the file is a Linux kernel the firmware could
// boot (a bzImage).
func checkKernel(path string) error {
	b, err := readHead(path, int64(headerOffset+len(headerMagic)))
	if err != nil {
		return err
	}
	if !isKernel(b) {
		return errors.New("not a Linux kernel (no bzImage setup header)")
	}
	return nil
}

// Bounds of what the machine's kernel unpacks.
const maxUnpacked = 4 << 30

// Modes of cpio entries.
const (
	modeType = 0o170000
	modeReg  = 0o100000
	modeDir  = 0o040000
	modeLink = 0o120000
)

// readCpio calls fn with each entry of the initramfs at path: a newc cpio
// archive, gzip'd or not, which must end with its trailer, as the kernel
// unpacks it. A gzip'd archive is unpacked into a file in scratch first.
func readCpio(path, scratch string, fn func(cpio.Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, 6)
	if _, err := io.ReadFull(f, magic); err != nil {
		return fmt.Errorf("%s: not an initramfs: %w", filepath.Base(path), err)
	}
	var archive io.ReaderAt = f
	var size int64
	switch {
	case magic[0] == 0x1f && magic[1] == 0x8b:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		tmp, err := os.CreateTemp(scratch, "initramfs-*.cpio")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		n, err := io.Copy(tmp, io.LimitReader(zr, maxUnpacked+1))
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", filepath.Base(path), err)
		}
		if n > maxUnpacked {
			return fmt.Errorf("%s: unpacks to more than %d bytes", filepath.Base(path), maxUnpacked)
		}
		archive, size = tmp, n
	case string(magic) == "070701":
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size = st.Size()
	default:
		return fmt.Errorf("%s: neither a newc cpio archive nor a gzip'd one", filepath.Base(path))
	}
	rr := cpio.Newc.Reader(archive)
	var next int64 // where the record after the last one read starts
	for {
		rec, err := rr.ReadRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		next = (rec.FilePos + int64(rec.FileSize) + 3) &^ 3
		if next > size {
			return fmt.Errorf("%s: %s: truncated", filepath.Base(path), rec.Name)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if !hasTrailer(archive, next) {
		return fmt.Errorf("%s: truncated: no TRAILER!!! after the last entry", filepath.Base(path))
	}
	return nil
}

// hasTrailer reports whether a newc trailer entry starts at off.
func hasTrailer(r io.ReaderAt, off int64) bool {
	const hdr = 110 // magic and 13 eight-digit hex fields
	b := make([]byte, hdr+len("TRAILER!!!"))
	if _, err := r.ReadAt(b, off); err != nil {
		return false
	}
	namesize, err := strconv.ParseUint(string(b[94:102]), 16, 32)
	return err == nil && string(b[:6]) == "070701" && namesize == uint64(len("TRAILER!!!")+1) &&
		string(b[hdr:]) == "TRAILER!!!"
}

// extractInit writes the /init of the initrds (the last one that has it
// wins, as the kernel unpacks them in order) to dst, and checks that it is
// an executable file.
func extractInit(initrds []string, scratch, dst string) error {
	found := false
	for _, rd := range initrds {
		err := readCpio(rd, scratch, func(rec cpio.Record) error {
			if rec.Name != "init" {
				return nil
			}
			if rec.Mode&modeType != modeReg {
				return fmt.Errorf("%s: /init is not a regular file (mode %#o)", filepath.Base(rd), rec.Mode)
			}
			if rec.Mode&0o111 == 0 {
				return fmt.Errorf("%s: /init is not executable (mode %#o)", filepath.Base(rd), rec.Mode)
			}
			found = true
			return writeFile(dst, io.NewSectionReader(rec, 0, int64(rec.FileSize)), 0o755)
		})
		if err != nil {
			return err
		}
	}
	if !found {
		return errors.New("the ramdisk has no /init")
	}
	return nil
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// unpackTree unpacks the initrds into dir, which it empties first, as the
// kernel unpacks an initramfs into its rootfs: directories, files and
// symbolic links, owned by uid and gid. Device nodes, FIFOs and sockets
// are left out: the machine gets none of the host's devices. Nothing is
// written outside dir, whatever the entries' names and links say.
func unpackTree(initrds []string, scratch, dir string, uid, gid int) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, rd := range initrds {
		err := readCpio(rd, scratch, func(rec cpio.Record) error {
			name := path.Clean(rec.Name)
			if name == "." || name == "TRAILER!!!" {
				return nil
			}
			if !fs.ValidPath(name) {
				return fmt.Errorf("%s: entry %q leaves the archive's root", filepath.Base(rd), rec.Name)
			}
			if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			perm := os.FileMode(rec.Mode & 0o777)
			switch rec.Mode & modeType {
			case modeDir:
				if err := root.MkdirAll(name, perm); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			case modeReg:
				root.Remove(name)
				f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				_, err = io.Copy(f, io.NewSectionReader(rec, 0, int64(rec.FileSize)))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			case modeLink:
				target, err := io.ReadAll(io.NewSectionReader(rec, 0, min(int64(rec.FileSize), 4096)))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				root.Remove(name)
				if err := root.Symlink(string(target), name); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			default:
				return nil
			}
			// The mode as the archive says, setuid bits included (the
			// machine's own root owns the tree), then the owner.
			if rec.Mode&modeType != modeLink {
				if err := root.Chmod(name, os.FileMode(rec.Mode&0o777)|setBits(rec.Mode)); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			return root.Lchown(name, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	// Directories made on the way to an entry are the tree's too.
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// setBits are the setuid, setgid and sticky bits of a cpio mode as Go's.
func setBits(mode uint64) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// checkInit checks that the unpacked tree has an executable /init.
func checkInit(dir string) error {
	st, err := os.Lstat(filepath.Join(dir, "init"))
	if err != nil {
		return errors.New("the initramfs has no /init")
	}
	if st.Mode().Type() == fs.ModeSymlink {
		return nil // resolved inside the tree when it runs
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("the initramfs's /init is not an executable file (%s)", st.Mode())
	}
	return nil
}
