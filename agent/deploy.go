package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/inventory"
)

// writeBuffer is the size of the writes to the disk.
const writeBuffer = 4 << 20

// deploy writes the node's image onto its root disk and reports how it
// went.
func deploy(ctx context.Context, root string, n node, c *client, out io.Writer) error {
	failure := ""
	disk, err := writeImage(ctx, root, n, c, out)
	if err == nil {
		err = writeConfigDrive(ctx, root, disk, c, out)
	}
	if err != nil {
		failure = err.Error()
	}
	if err := retryConflict(ctx, func() error { return c.continueDeploy(ctx, failure) }); err != nil {
		return err
	}
	if failure != "" {
		return fmt.Errorf("%s", failure)
	}
	fmt.Fprintln(out, "strata-agent: deploy done; the undercloud boots the node from its disk")
	return nil
}

// writeImage streams the node's image, as a raw disk from the
// undercloud's image cache, onto the root disk (by the node's root_device
// hints, else the smallest disk of at least 4 GiB), hashing what it
// writes, and fails unless the SHA-256 is the one the undercloud gives.
// It returns the disk it wrote.
func writeImage(ctx context.Context, root string, n node, c *client, out io.Writer) (disk inventory.Disk, err error) {
	src, _ := n.InstanceInfo["image_source"].(string)
	hw, err := hwinfo.Collect(root)
	if err != nil {
		return disk, err
	}
	hints, _ := n.Properties["root_device"].(map[string]any)
	disk, err = inventory.MatchRootDevice(hw.Disks, hints)
	if err != nil {
		return disk, fmt.Errorf("root device: %w", err)
	}
	resp, err := c.image(ctx)
	if err != nil {
		return disk, err
	}
	defer resp.Body.Close()
	want := resp.Header.Get("X-Image-SHA256")
	if want == "" {
		return disk, fmt.Errorf("the undercloud sent the image without its SHA-256")
	}
	if resp.ContentLength > disk.Size {
		return disk, fmt.Errorf("image %s is %d bytes, larger than %s (%d bytes)", src, resp.ContentLength, disk.Name, disk.Size)
	}
	fmt.Fprintf(out, "strata-agent: writing %s onto %s (%d bytes)\n", src, disk.Name, resp.ContentLength)
	f, err := os.OpenFile(filepath.Join(root, disk.Name), os.O_WRONLY, 0)
	if err != nil {
		return disk, err
	}
	defer f.Close()
	start := time.Now()
	h := sha256.New()
	n64, err := copyHashed(f, io.LimitReader(resp.Body, disk.Size+1), h)
	if err == nil && n64 > disk.Size {
		err = fmt.Errorf("the image is larger than %s (%d bytes)", disk.Name, disk.Size)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return disk, fmt.Errorf("writing the image onto %s: %w", disk.Name, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return disk, fmt.Errorf("the image's SHA-256 is %s, not %s as the undercloud says: the image on %s is not the one asked for", got, want, disk.Name)
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(out, "strata-agent: wrote %d bytes onto %s in %.1fs (%.1f MB/s), sha256 %s\n", n64, disk.Name, secs, float64(n64)/1e6/max(secs, 1e-3), got)
	return disk, nil
}

// copyHashed copies src to dst, and into h, in chunks of writeBuffer:
// while one chunk is hashed and written (at once), the next is read. On
// an emulated CPU, hashing costs as much time as the disk; in turn
// neither waits for the other, nor for the network.
func copyHashed(dst io.Writer, src io.Reader, h hash.Hash) (int64, error) {
	bufs := [2][]byte{make([]byte, writeBuffer), make([]byte, writeBuffer)}
	var total int64
	var pending chan error // the chunk in flight
	wait := func() error {
		if pending == nil {
			return nil
		}
		err := <-pending
		pending = nil
		return err
	}
	for i := 0; ; i ^= 1 {
		n, rerr := io.ReadFull(src, bufs[i])
		if err := wait(); err != nil {
			return total, err
		}
		if n > 0 {
			chunk := bufs[i][:n]
			pending = make(chan error, 1)
			go func(done chan<- error) {
				hashed := make(chan struct{})
				go func() { h.Write(chunk); close(hashed) }()
				_, err := dst.Write(chunk)
				<-hashed
				done <- err
			}(pending)
			total += int64(n)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return total, wait()
		case rerr != nil:
			wait()
			return total, rerr
		}
	}
}
