package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// anyDrive boots from the first bootable disk.
const anyDrive = -1

const sectorSize = 512

// Partition types the firmware looks for.
const (
	mbrProtective = 0xee // the MBR of a GPT disk
	mbrESP        = 0xef
	gptESP        = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// gptLegacyBootable is the GPT attribute bit that BIOS boot code
	// (syslinux's gptmbr) looks for.
	gptLegacyBootable = 1 << 2
)

// partition is an entry of a disk's partition table.
type partition struct {
	// number is the kernel's: vda1 is 1.
	number      int
	start, size int64 // in sectors
	mbrType     byte
	gptType     string
	// bootable is an MBR entry's active flag, or a GPT entry's legacy
	// BIOS bootable attribute.
	bootable bool
}

func (p partition) esp() bool { return p.mbrType == mbrESP || p.gptType == gptESP }

// table is a disk's partition table as firmware and Linux read it.
type table struct {
	// kind is "mbr", "gpt" or "" (none).
	kind  string
	parts []partition
	// bootCode reports whether the MBR holds boot code at all.
	bootCode bool
}

// readTable reads the partition table of a disk of size bytes: an MBR, or
// the GPT it protects (the primary one, else the backup at the disk's
// end, each checked against its CRCs as Linux does).
func readTable(r io.ReaderAt, size int64) (table, error) {
	mbr := make([]byte, sectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return table{}, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return table{}, nil
	}
	t := table{kind: "mbr", bootCode: !bytes.Equal(mbr[:440], make([]byte, 440))}
	protective := false
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		n := int64(binary.LittleEndian.Uint32(e[12:]))
		if typ == 0 || n == 0 {
			continue
		}
		if typ == mbrProtective {
			protective = true
			continue
		}
		t.parts = append(t.parts, partition{number: i + 1, start: start, size: n, mbrType: typ, bootable: e[0] == 0x80})
	}
	if !protective {
		return t, nil
	}
	parts, err := readGPT(r, 1, size)
	if err != nil {
		var backupErr error
		if parts, backupErr = readGPT(r, size/sectorSize-1, size); backupErr != nil {
			return table{}, fmt.Errorf("GPT: %w; backup GPT: %w", err, backupErr)
		}
	}
	t.kind, t.parts = "gpt", parts
	return t, nil
}

// readGPT reads the GPT whose header is at sector lba.
func readGPT(r io.ReaderAt, lba, size int64) ([]partition, error) {
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, lba*sectorSize); err != nil {
		return nil, err
	}
	if string(h[:8]) != "EFI PART" {
		return nil, errors.New("no header")
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || hsize > sectorSize {
		return nil, fmt.Errorf("header size %d", hsize)
	}
	hdr := bytes.Clone(h[:hsize])
	want := binary.LittleEndian.Uint32(hdr[16:])
	clear(hdr[16:20])
	if crc32.ChecksumIEEE(hdr) != want {
		return nil, errors.New("bad header CRC")
	}
	entriesLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	count := int64(binary.LittleEndian.Uint32(h[80:]))
	esize := int64(binary.LittleEndian.Uint32(h[84:]))
	if esize < 128 || count > 1024 || entriesLBA*sectorSize+count*esize > size {
		return nil, fmt.Errorf("%d entries of %d bytes at sector %d do not fit", count, esize, entriesLBA)
	}
	entries := make([]byte, count*esize)
	if _, err := r.ReadAt(entries, entriesLBA*sectorSize); err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(entries) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, errors.New("bad partition entries CRC")
	}
	var parts []partition
	for i := range count {
		e := entries[i*esize : (i+1)*esize]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		attrs := binary.LittleEndian.Uint64(e[48:])
		parts = append(parts, partition{
			number: int(i) + 1, start: first, size: last - first + 1,
			gptType: guidString(e[:16]), bootable: attrs&gptLegacyBootable != 0,
		})
	}
	return parts, nil
}

// guidString writes a GUID stored in GPT's mixed-endian layout.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// bootEntry is what a boot loader's configuration boots.
type bootEntry struct {
	label   string
	kernel  string
	initrds []string
	append  string
}

// fat reads files from the FAT filesystem of a partition, through
// mtools, which reads the disk file at the partition's offset and writes
// nothing to it.
type fat struct {
	disk   string
	offset int64
}

func (f fat) image() string { return f.disk + "@@" + strconv.FormatInt(f.offset, 10) }

// mtoolsEnv keeps the host's mtools configuration out of it.
var mtoolsEnv = []string{"MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null", "PATH=" + os.Getenv("PATH")}

// validFATPath refuses names that mtools would take for patterns.
func validFATPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "*?[]\x00\n") {
		return fmt.Errorf("%q is not a path this firmware can read", p)
	}
	return nil
}

// read returns a file of at most limit bytes.
func (f fat) read(ctx context.Context, p string, limit int64) ([]byte, error) {
	if err := validFATPath(p); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "mcopy", "-i", f.image(), "::"+p, "-")
	cmd.Env = mtoolsEnv
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &capped{w: &out, limit: limit}, &stderr
	if err := cmd.Run(); err != nil {
		return nil, mtoolsError(p, err, stderr.Bytes())
	}
	return out.Bytes(), nil
}

// copy copies a file to dst.
func (f fat) copy(ctx context.Context, p, dst string) error {
	if err := validFATPath(p); err != nil {
		return err
	}
	os.Remove(dst)
	cmd := exec.CommandContext(ctx, "mcopy", "-n", "-i", f.image(), "::"+p, dst)
	cmd.Env = mtoolsEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return mtoolsError(p, err, out)
	}
	return nil
}

func mtoolsError(p string, err error, out []byte) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("mtools (make deps installs it): %w", err)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "not found") {
		return fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	return fmt.Errorf("%s: %s", p, msg)
}

// capped is a writer that fails past its limit.
type capped struct {
	w     io.Writer
	n     int64
	limit int64
}

func (c *capped) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.limit {
		return 0, errTooLarge
	}
	c.n += int64(len(p))
	return c.w.Write(p)
}

// Where syslinux looks for its configuration when BIOS boots it, in
// order; syslinux.efi reads the one beside itself.
var (
	biosConfigs = []string{"/boot/syslinux/syslinux.cfg", "/syslinux/syslinux.cfg", "/syslinux.cfg",
		"/boot/syslinux/extlinux.conf", "/syslinux/extlinux.conf", "/extlinux.conf"}
	uefiLoader = "/EFI/BOOT/BOOTX64.EFI"
	uefiConfig = "/EFI/BOOT/syslinux.cfg"
)

// diskboot boots from disk drive (0 is vda), or from the first bootable
// one. It returns nil when no disk is bootable.
func (fw *firmware) diskboot(ctx context.Context, drive int) (*target, error) {
	drives := make([]int, 0, len(fw.m.cfg.Disks))
	switch {
	case drive == anyDrive:
		for i := range fw.m.cfg.Disks {
			drives = append(drives, i)
		}
	case drive >= 0 && drive < len(fw.m.cfg.Disks):
		drives = append(drives, drive)
	default:
		return nil, fmt.Errorf("no disk %d", drive)
	}
	for _, i := range drives {
		if fw.uefi() {
			fw.con.Printf("BdsDxe: loading Boot%04X \"UEFI Misc Device %d\"\n", i+1, i)
		} else {
			fw.con.Printf("Booting from Hard Disk %d...\n", i)
		}
		e, p, err := fw.bootEntry(ctx, i)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fw.con.Printf("%s: not bootable: %v\n", diskName(i), err)
			continue
		}
		f := fat{disk: fw.m.DiskPath(i), offset: p.start * sectorSize}
		img, err := fw.load(ctx, f, e)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fw.con.Printf("%s: boot failed: %v\n", diskName(i), err)
			continue
		}
		return &target{action: actionRun, os: img}, nil
	}
	return nil, nil
}

// bootEntry finds what the firmware would boot on disk i, and the
// partition it is in: on BIOS, the MBR's boot code, which loads syslinux
// from the active partition (the legacy-BIOS-bootable one of a GPT); on
// UEFI, \EFI\BOOT\BOOTX64.EFI of an EFI system partition, which must be
// syslinux.efi with its configuration beside it.
func (fw *firmware) bootEntry(ctx context.Context, i int) (bootEntry, partition, error) {
	f, err := os.Open(fw.m.DiskPath(i))
	if err != nil {
		return bootEntry{}, partition{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return bootEntry{}, partition{}, err
	}
	t, err := readTable(f, st.Size())
	if err != nil {
		return bootEntry{}, partition{}, err
	}
	if t.kind == "" {
		return bootEntry{}, partition{}, errors.New("no partition table")
	}
	if !fw.uefi() {
		if !t.bootCode {
			return bootEntry{}, partition{}, errors.New("no boot code in its MBR")
		}
		for _, p := range t.parts {
			if !p.bootable {
				continue
			}
			fs := fat{disk: fw.m.DiskPath(i), offset: p.start * sectorSize}
			for _, cfg := range biosConfigs {
				text, err := fs.read(ctx, cfg, maxScript)
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err != nil {
					return bootEntry{}, partition{}, err
				}
				fw.con.Printf("SYSLINUX (simulated by the Strata lab): %s on partition %d\n", cfg, p.number)
				e, err := parseSyslinux(string(text), path.Dir(cfg))
				return e, p, err
			}
			return bootEntry{}, partition{}, fmt.Errorf("partition %d is active, but holds no syslinux configuration", p.number)
		}
		return bootEntry{}, partition{}, fmt.Errorf("no active partition in its %s", strings.ToUpper(t.kind))
	}
	for _, p := range t.parts {
		if !p.esp() {
			continue
		}
		fs := fat{disk: fw.m.DiskPath(i), offset: p.start * sectorSize}
		loader, err := fs.read(ctx, uefiLoader, maxLoader)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return bootEntry{}, partition{}, err
		}
		if len(loader) < 2 || string(loader[:2]) != "MZ" {
			return bootEntry{}, partition{}, fmt.Errorf("%s is not an EFI application", uefiLoader)
		}
		text, err := fs.read(ctx, uefiConfig, maxScript)
		if errors.Is(err, os.ErrNotExist) {
			return bootEntry{}, partition{}, fmt.Errorf("%s is a boot loader this firmware can not follow (only syslinux.efi, with %s)", uefiLoader, uefiConfig)
		}
		if err != nil {
			return bootEntry{}, partition{}, err
		}
		fw.con.Printf("BdsDxe: starting %s\nSYSLINUX (simulated by the Strata lab): %s on partition %d\n", uefiLoader, uefiConfig, p.number)
		e, err := parseSyslinux(string(text), path.Dir(uefiConfig))
		return e, p, err
	}
	return bootEntry{}, partition{}, errors.New("no EFI system partition with " + uefiLoader)
}

// load copies the entry's kernel and initrds out of the filesystem and
// checks the kernel.
func (fw *firmware) load(ctx context.Context, f fat, e bootEntry) (*osImage, error) {
	dir := fw.m.bootDir()
	img := &osImage{kind: osDisk, kernel: filepath.Join(dir, "disk-kernel"), cmdline: e.append}
	fw.con.Printf("Loading %s...", e.kernel)
	if err := f.copy(ctx, e.kernel, img.kernel); err != nil {
		fw.con.Printf(" failed\n")
		return nil, err
	}
	if err := checkKernel(img.kernel); err != nil {
		fw.con.Printf(" failed\n")
		return nil, fmt.Errorf("%s: %w", e.kernel, err)
	}
	fw.con.Printf("ok\n")
	for i, rd := range e.initrds {
		dst := filepath.Join(dir, fmt.Sprintf("disk-initrd-%d", i))
		fw.con.Printf("Loading %s...", rd)
		if err := f.copy(ctx, rd, dst); err != nil {
			fw.con.Printf(" failed\n")
			return nil, err
		}
		fw.con.Printf("ok\n")
		img.initrds = append(img.initrds, dst)
	}
	if len(img.initrds) == 0 {
		return nil, fmt.Errorf("label %s boots %s without an initramfs: this machine can only run an initramfs's /init", e.label, e.kernel)
	}
	fw.con.Printf("Booting the kernel with %d initrd(s): %s\n", len(img.initrds), img.cmdline)
	return img, nil
}

// parseSyslinux reads a syslinux configuration and returns the entry it
// boots by default: the label DEFAULT names (else ONTIMEOUT's, else the
// first), or DEFAULT's own command line when it names no label. Relative
// paths are relative to dir, the configuration's directory.
func parseSyslinux(text, dir string) (bootEntry, error) {
	var labels []bootEntry
	var def, onTimeout string
	var cur *bootEntry
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '\t'); i >= 0 && (strings.IndexByte(line, ' ') < 0 || i < strings.IndexByte(line, ' ')) {
			kw, rest, _ = strings.Cut(line, "\t")
		}
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(kw) {
		case "default":
			def = rest
		case "ontimeout":
			onTimeout = rest
		case "label":
			labels = append(labels, bootEntry{label: rest})
			cur = &labels[len(labels)-1]
		case "kernel", "linux":
			if cur != nil {
				cur.kernel = rest
			}
		case "initrd":
			if cur != nil {
				cur.initrds = strings.Split(rest, ",")
			}
		case "append":
			if cur != nil {
				cur.append = rest
			}
		}
	}
	var e bootEntry
	found := false
	for _, name := range []string{def, onTimeout} {
		if name == "" || found {
			continue
		}
		for _, l := range labels {
			if l.label == name {
				e, found = l, true
				break
			}
		}
	}
	switch {
	case found:
	case def != "":
		k, a, _ := strings.Cut(def, " ")
		e = bootEntry{label: k, kernel: k, append: strings.TrimSpace(a)}
	case len(labels) > 0:
		e = labels[0]
	default:
		return bootEntry{}, errors.New("the configuration boots nothing")
	}
	// initrd= on the command line, when INITRD says nothing.
	var args []string
	for _, w := range strings.Fields(e.append) {
		if v, ok := strings.CutPrefix(w, "initrd="); ok && len(e.initrds) == 0 {
			e.initrds = strings.Split(v, ",")
			continue
		}
		args = append(args, w)
	}
	if e.append == "-" {
		args = nil
	}
	e.append = strings.Join(args, " ")
	if e.kernel == "" {
		return bootEntry{}, fmt.Errorf("label %s names no kernel", e.label)
	}
	if strings.HasSuffix(strings.ToLower(e.kernel), ".c32") {
		return bootEntry{}, fmt.Errorf("label %s runs the COM32 module %s, which this firmware can not", e.label, e.kernel)
	}
	abs := func(p string) string {
		if strings.HasPrefix(p, "/") {
			return path.Clean(p)
		}
		return path.Join(dir, p)
	}
	e.kernel = abs(e.kernel)
	for i, rd := range e.initrds {
		e.initrds[i] = abs(strings.TrimSpace(rd))
	}
	return e, nil
}
