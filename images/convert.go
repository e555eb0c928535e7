package images

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/stratacloud/strata/images/blob"
)

// Errors of image conversion, for errors.Is. Both are the image's fault:
// a deploy that names such an image fails, and retrying will not help.
var (
	// ErrUnsafeImage: the image names files on the undercloud (a qcow2
	// backing file or external data file), which converting it would
	// read.
	ErrUnsafeImage = errors.New("unsafe image")
	// ErrInvalidImage: the image is not what its format says, of a format
	// the undercloud does not take, too large, or qemu-img cannot open it.
	ErrInvalidImage = errors.New("invalid image")
)

// DefaultMaxVirtualSize is the largest disk a qcow2 image may describe,
// unless a Converter says otherwise: a small qcow2 can claim exabytes.
const DefaultMaxVirtualSize = 256 << 30

// convertedRef is the blob store's ref namespace that maps a source
// image's SHA-256 to the raw image converted from it.
const convertedRef = "converted"

// infoTimeout bounds qemu-img info, which reads only the image's metadata.
const infoTimeout = time.Minute

// Converter turns disk images into raw ones in a blob store, which is what
// the deploy agent writes to disk. It remembers what it converted: the
// same source, by its SHA-256, gives the stored raw image without running
// qemu-img again. It is safe for concurrent use (two conversions of the
// same source at once both run, and store the same blob).
type Converter struct {
	// Store holds the raw images, the record of conversions and the
	// scratch files (source and raw image while qemu-img works: put it on
	// a filesystem with room for them).
	Store *blob.Store
	// QemuImg is the qemu-img command; "qemu-img", from PATH, when empty
	// (Debian's qemu-utils; make deps installs it).
	QemuImg string
	// MaxVirtualSize is the largest disk, in bytes, that a qcow2 image
	// may describe; DefaultMaxVirtualSize when 0.
	MaxVirtualSize int64
}

// ConvertToRaw stores src as a raw image in store, converting it from
// qcow2 when it is one. It is a Converter's ToRaw with its defaults and no
// expected checksum.
func ConvertToRaw(ctx context.Context, store *blob.Store, src io.Reader, format string) (blob.Blob, error) {
	return (&Converter{Store: store}).ToRaw(ctx, src, format, "")
}

// ToRaw reads an image from src and returns the raw image made from it,
// in the store. format is the image's declared format, FormatRaw or
// FormatQcow2, or empty to go by DetectFormat; a declared format the
// content contradicts is an error (a qcow2 written to disk as it is does
// not boot). wantSHA256, when not empty, is the source's SHA-256 in hex
// (an Ironic image_checksum): other content is refused with a
// *blob.MismatchError before anything runs on it.
//
// A raw image is stored as it is. A qcow2 image is written to a scratch
// file, checked (no backing file, no external data file, a virtual size
// within MaxVirtualSize), converted by qemu-img, and the result stored.
func (c *Converter) ToRaw(ctx context.Context, src io.Reader, format, wantSHA256 string) (blob.Blob, error) {
	switch format {
	case "", FormatRaw, FormatQcow2:
	default:
		return blob.Blob{}, fmt.Errorf("%w: format %q: want %s or %s", ErrInvalidImage, format, FormatRaw, FormatQcow2)
	}
	if wantSHA256 != "" {
		if _, err := blob.FromHex(wantSHA256); err != nil {
			return blob.Blob{}, err
		}
	}
	br := bufio.NewReaderSize(src, 64<<10)
	head, err := br.Peek(len(qcow2Magic))
	if err != nil && err != io.EOF {
		return blob.Blob{}, err
	}
	detected := DetectFormat(head)
	if format != "" && format != detected {
		return blob.Blob{}, fmt.Errorf("%w: declared %s, but the content is %s", ErrInvalidImage, format, detected)
	}
	if detected == FormatRaw {
		if wantSHA256 != "" {
			return c.Store.PutExpect(ctx, br, wantSHA256)
		}
		return c.Store.Put(ctx, br)
	}
	return c.qcow2ToRaw(ctx, br, wantSHA256)
}

func (c *Converter) qcow2ToRaw(ctx context.Context, r io.Reader, want string) (blob.Blob, error) {
	dir, err := c.Store.MkdirTemp("convert-*")
	if err != nil {
		return blob.Blob{}, err
	}
	defer os.RemoveAll(dir)
	source := filepath.Join(dir, "source.qcow2")
	sum, err := writeHashed(ctx, source, r)
	if err != nil {
		return blob.Blob{}, err
	}
	if want != "" && sum != want {
		return blob.Blob{}, &blob.MismatchError{Want: blob.Algorithm + want, Got: blob.Algorithm + sum}
	}
	// Converted before, and the result still stored: done. (A ref that
	// is missing, dangling or unreadable means convert again.)
	if b, err := c.Store.Ref(convertedRef, sum); err == nil {
		return b, nil
	}
	if err := checkQcow2File(source); err != nil {
		return blob.Blob{}, err
	}
	spec := qemuSpec(source)
	info, err := c.info(ctx, spec)
	if err != nil {
		return blob.Blob{}, err
	}
	if err := info.check(c.maxVirtualSize()); err != nil {
		return blob.Blob{}, err
	}
	raw := filepath.Join(dir, "disk.raw")
	if _, err := c.run(ctx, spec, "convert", "-O", FormatRaw, spec, raw); err != nil {
		return blob.Blob{}, err
	}
	if fi, err := os.Stat(raw); err != nil {
		return blob.Blob{}, err
	} else if fi.Size() != info.VirtualSize {
		return blob.Blob{}, fmt.Errorf("qemu-img convert wrote %d bytes for a disk of %d", fi.Size(), info.VirtualSize)
	}
	// The source can go: PutTemp links the raw file into the store, holes
	// and all, so the disk never holds more than it and the source.
	if err := os.Remove(source); err != nil {
		return blob.Blob{}, err
	}
	b, err := c.Store.PutTemp(ctx, raw)
	if err != nil {
		return blob.Blob{}, err
	}
	if err := c.Store.SetRef(convertedRef, sum, b.Digest); err != nil {
		return blob.Blob{}, err
	}
	return b, nil
}

func (c *Converter) maxVirtualSize() int64 {
	if c.MaxVirtualSize > 0 {
		return c.MaxVirtualSize
	}
	return DefaultMaxVirtualSize
}

func checkQcow2File(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkQcow2Header(f)
}

// qemuSpec names the qcow2 file at path for qemu-img, in QEMU's json:
// syntax: the driver is given (no probing) and backing files are off, so
// that even an image checkQcow2Header missed could not make qemu-img
// open one.
func qemuSpec(path string) string {
	spec, _ := json.Marshal(map[string]any{
		"driver":  FormatQcow2,
		"file":    map[string]string{"driver": "file", "filename": path},
		"backing": nil,
	})
	return "json:" + string(spec)
}

// qemuImgInfo is what qemu-img info --output=json says of an image.
type qemuImgInfo struct {
	Format              string `json:"format"`
	VirtualSize         int64  `json:"virtual-size"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	FormatSpecific      struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

func (c *Converter) info(ctx context.Context, spec string) (qemuImgInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	out, err := c.run(ctx, spec, "info", "--output=json", spec)
	if err != nil {
		var qe *qemuImgError
		if errors.As(err, &qe) {
			return qemuImgInfo{}, fmt.Errorf("%w: %w", ErrInvalidImage, err)
		}
		return qemuImgInfo{}, err
	}
	var info qemuImgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return qemuImgInfo{}, fmt.Errorf("qemu-img info: %w", err)
	}
	return info, nil
}

// check refuses what the converter must not convert.
func (info qemuImgInfo) check(maxVirtualSize int64) error {
	if name := cmp.Or(info.BackingFilename, info.FullBackingFilename); name != "" {
		return fmt.Errorf("%w: qcow2 image has a backing file %q: converting it would read that file from the undercloud's own disk", ErrUnsafeImage, name)
	}
	if info.FormatSpecific.Data.DataFile != "" {
		return fmt.Errorf("%w: qcow2 image has an external data file %q: converting it would read that file from the undercloud's own disk", ErrUnsafeImage, info.FormatSpecific.Data.DataFile)
	}
	if info.Format != FormatQcow2 {
		return fmt.Errorf("%w: qemu-img reads it as %q, not qcow2", ErrInvalidImage, info.Format)
	}
	if info.VirtualSize < 0 || info.VirtualSize > maxVirtualSize {
		return fmt.Errorf("%w: virtual size %d bytes is over the limit of %d", ErrInvalidImage, info.VirtualSize, maxVirtualSize)
	}
	return nil
}

// qemuImgError is qemu-img's failure: its exit status and what it said.
type qemuImgError struct {
	op     string
	err    error
	stderr string
}

func (e *qemuImgError) Error() string {
	return fmt.Sprintf("qemu-img %s: %v: %s", e.op, e.err, e.stderr)
}

func (e *qemuImgError) Unwrap() error { return e.err }

// run runs qemu-img with args (args[0] is the subcommand) and returns
// its output. In what it says, the json: spec of the image reads as
// "source.qcow2".
func (c *Converter) run(ctx context.Context, spec string, args ...string) ([]byte, error) {
	bin := cmp.Or(c.QemuImg, "qemu-img")
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout := &capped{limit: 1 << 20}
	stderr := &capped{limit: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("qemu-img %s: %w", args[0], context.Cause(ctx))
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("%w (make deps installs qemu-utils)", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return nil, fmt.Errorf("qemu-img %s: %w", args[0], err)
	}
	msg := stderr.String()
	if spec != "" {
		msg = strings.ReplaceAll(msg, spec, "source.qcow2")
	}
	msg = strings.TrimSpace(msg)
	return nil, &qemuImgError{op: args[0], err: err, stderr: msg}
}

// writeHashed writes what r yields to a new file at path and returns its
// SHA-256 in hex.
func writeHashed(ctx context.Context, path string, r io.Reader) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader ends a read loop when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// capped keeps the first limit bytes written to it and drops the rest.
type capped struct {
	bytes.Buffer
	limit int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.limit - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
