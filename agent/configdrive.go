package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/stratacloud/strata/inventory"
)

// configDriveLabel names the config drive's GPT partition; the ISO's own
// volume identifier is the same, and is what readers look for.
const configDriveLabel = "config-2"

// configDrivePartition is the config drive partition's smallest size, as
// Ironic makes it, so that a rebuild with a larger drive fits.
const configDrivePartition = 64 << 20

// writeConfigDrive writes the node's config drive, if its deploy asked
// for one, into a new partition at the end of disk, behind the image the
// agent has just written there.
func writeConfigDrive(ctx context.Context, root string, disk inventory.Disk, c *client, out io.Writer) error {
	iso, err := c.configDrive(ctx)
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if iso == nil {
		return nil
	}
	if len(iso) > maxConfigDrive {
		return fmt.Errorf("config drive: larger than %d bytes", maxConfigDrive)
	}
	f, err := os.OpenFile(filepath.Join(root, disk.Name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := addEndPartition(f, disk.Size, max(int64(len(iso)), configDrivePartition), configDriveLabel)
	if err != nil {
		return fmt.Errorf("config drive partition on %s: %w", disk.Name, err)
	}
	if _, err := io.Copy(io.NewOffsetWriter(f, off), bytes.NewReader(iso)); err != nil {
		return fmt.Errorf("writing the config drive onto %s: %w", disk.Name, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := rereadPartitions(f); err != nil {
		return fmt.Errorf("%s: the kernel did not reread the partition table: %w", disk.Name, err)
	}
	fmt.Fprintf(out, "strata-agent: wrote the config drive (%d bytes) at %d MiB of %s\n", len(iso), off>>20, disk.Name)
	return nil
}

// rereadPartitions has the kernel read f's new partition table, when f is
// a block device (a simulated disk is a plain file).
func rereadPartitions(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeDevice == 0 {
		return err
	}
	return unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
}
