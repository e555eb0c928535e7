package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stratacloud/strata/agent/hwinfo"
)

// eraseSpan is how much is zeroed at the start and at the end of each
// disk and partition: it covers the MBR, both GPT headers and tables
// (the backup ones sit in the last 33 sectors), and the signatures
// of the common filesystems, LVM and md RAID (ext2/3/4 at 1 KiB, XFS at
// 0, btrfs at 64 KiB, LVM in the second sector, md 1.1/1.2 at 0 and 4
// KiB, md 0.9/1.0 in the last 64-128 KiB).
const eraseSpan = 1 << 20

// eraseDevicesMetadata erases the partition tables and the filesystem,
// LVM and RAID signatures of every disk, as Ironic's
// erase_devices_metadata clean step does, without erasing the data in
// between. It returns what it erased, for the log.
func eraseDevicesMetadata(root string) ([]string, error) {
	hw, err := hwinfo.Collect(root)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, d := range hw.Disks {
		name := filepath.Base(d.Name)
		spans := [][2]int64{{0, d.Size}}
		parts, err := partitions(root, name)
		if err != nil {
			return done, err
		}
		spans = append(spans, parts...)
		if err := eraseSpans(filepath.Join(root, d.Name), spans); err != nil {
			return done, fmt.Errorf("%s: %w", d.Name, err)
		}
		done = append(done, fmt.Sprintf("%s (%d partitions)", d.Name, len(parts)))
	}
	return done, nil
}

// partitions lists the (offset, length) in bytes of a disk's partitions,
// as /sys/block/DISK/PART/{start,size} give them in 512-byte sectors.
func partitions(root, disk string) ([][2]int64, error) {
	dir := filepath.Join(root, "sys/block", disk)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out [][2]int64
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), disk) {
			continue
		}
		start, err1 := readSectors(filepath.Join(dir, e.Name(), "start"))
		size, err2 := readSectors(filepath.Join(dir, e.Name(), "size"))
		if errors.Is(err1, os.ErrNotExist) {
			continue // not a partition
		}
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("partition %s: %w", e.Name(), err)
		}
		out = append(out, [2]int64{start * 512, size * 512})
	}
	return out, nil
}

func readSectors(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// eraseSpans zeroes the first and last eraseSpan bytes of each span of
// the device (all of a span shorter than twice that), syncs, and asks the
// kernel to read the (now empty) partition table again.
func eraseSpans(dev string, spans [][2]int64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	zero := make([]byte, eraseSpan)
	for _, s := range spans {
		off, n := s[0], s[1]
		if n <= 2*eraseSpan {
			if err := zeroAt(f, zero, off, n); err != nil {
				return err
			}
			continue
		}
		if err := zeroAt(f, zero, off, eraseSpan); err != nil {
			return err
		}
		if err := zeroAt(f, zero, off+n-eraseSpan, eraseSpan); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	// A block device re-reads its partition table; a file (a simulated
	// disk) has none to re-read.
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	return nil
}

func zeroAt(f *os.File, zero []byte, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zero)))
		if _, err := f.WriteAt(zero[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// clean runs the clean steps and reports how they went.
func clean(ctx context.Context, root string, steps []step, c *client, out io.Writer) error {
	var failure string
	for _, s := range steps {
		fmt.Fprintf(out, "strata-agent: clean step %s.%s\n", s.Interface, s.Step)
		switch s.Step {
		case "erase_devices_metadata":
			erased, err := eraseDevicesMetadata(root)
			if err != nil {
				failure = fmt.Sprintf("clean step %s: %v", s.Step, err)
			} else {
				fmt.Fprintf(out, "strata-agent: erased the metadata of %s\n", strings.Join(erased, ", "))
			}
		default:
			failure = fmt.Sprintf("clean step %s.%s is not one strata-agent knows", s.Interface, s.Step)
		}
		if failure != "" {
			break
		}
	}
	err := retryConflict(ctx, func() error { return c.continueCleaning(ctx, failure) })
	if err != nil {
		return err
	}
	if failure != "" {
		return errors.New(failure)
	}
	fmt.Fprintln(out, "strata-agent: cleaning done")
	return nil
}
