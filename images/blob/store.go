// Package blob is a content-addressed store of files on disk: each blob
// is named by the SHA-256 of its content and never changes once stored,
// so it can be served, cached and verified by that name alone.
//
// A store's directory holds:
//
//	sha256/HEX    the blobs, read-only
//	refs/NS/KEY   a digest: another name for a blob (see SetRef)
//	tmp/          files being written (see RemoveTemps)
//
// Every operation is safe for concurrent use, by goroutines and by
// processes sharing the directory: a blob appears under its name whole,
// by a link from a synced temporary file, or not at all.
package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotFound is wrapped by the errors for blobs (and refs) the store does
// not have.
var ErrNotFound = errors.New("blob not found")

// Blob is a stored blob.
type Blob struct {
	// Digest is "sha256:" and the content's SHA-256 in lower-case hex.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Allocated is the disk space it takes (less than Size for a sparse
	// raw disk) and ModTime when it was stored or last Touched; List
	// fills them in.
	Allocated int64     `json:"-"`
	ModTime   time.Time `json:"-"`
}

// Hex is the SHA-256 of the blob's content in hex: its name under
// DIR/sha256/, and in URLs such as /images/blobs/sha256/HEX.
func (b Blob) Hex() string { return strings.TrimPrefix(b.Digest, Algorithm) }

// Store is a blob store in a directory.
type Store struct {
	dir string
}

// New returns the store in dir, creating its layout if needed.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("blob store: directory is required")
	}
	s := &Store{dir: dir}
	for _, d := range []string{s.blobDir(), s.tmpDir(), filepath.Join(dir, "refs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string            { return filepath.Join(s.dir, "sha256") }
func (s *Store) tmpDir() string             { return filepath.Join(s.dir, "tmp") }
func (s *Store) blobPath(hex string) string { return filepath.Join(s.dir, "sha256", hex) }

// Put stores what r yields and returns its blob. The content streams to a
// temporary file, hashed on the way and written sparse (runs of zeros
// become holes, as disk images are mostly zeros), is synced, then linked
// into place; if the store has the blob already, the copy is dropped.
func (s *Store) Put(ctx context.Context, r io.Reader) (Blob, error) {
	return s.put(ctx, r, "")
}

// PutExpect is Put for content whose SHA-256 the caller knows, in hex
// (64 lower-case digits). If the content's differs, nothing is stored and
// the error is a *MismatchError naming both digests.
func (s *Store) PutExpect(ctx context.Context, r io.Reader, wantSHA256 string) (Blob, error) {
	if _, err := FromHex(wantSHA256); err != nil {
		return Blob{}, err
	}
	return s.put(ctx, r, wantSHA256)
}

func (s *Store) put(ctx context.Context, r io.Reader, want string) (Blob, error) {
	f, err := os.CreateTemp(s.tmpDir(), "put-*")
	if err != nil {
		return Blob{}, err
	}
	// Once committed, the blob has its own name: this only drops ours.
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := copySparse(ctx, f, r, h)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Blob{}, err
	}
	return s.commit(f.Name(), hex.EncodeToString(h.Sum(nil)), n, want)
}

// PutTemp stores the file at path, which must be under a directory from
// MkdirTemp, by linking it into place: nothing is copied, and its holes
// stay holes (and are hashed without being read). The caller must not
// write the file afterwards (it becomes the blob, read-only); removing it,
// or its directory, is fine.
func (s *Store) PutTemp(ctx context.Context, path string) (Blob, error) {
	return s.putTemp(ctx, path, "")
}

// PutTempExpect is PutTemp of a file whose SHA-256 must be wantSHA256
// (hex): a file with another is not stored, and the error is a
// *MismatchError.
func (s *Store) PutTempExpect(ctx context.Context, path, wantSHA256 string) (Blob, error) {
	return s.putTemp(ctx, path, wantSHA256)
}

func (s *Store) putTemp(ctx context.Context, path, want string) (Blob, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Blob{}, err
	}
	tmp, err := filepath.Abs(s.tmpDir())
	if err != nil {
		return Blob{}, err
	}
	if rel, err := filepath.Rel(tmp, abs); err != nil || rel == "." || !filepath.IsLocal(rel) {
		return Blob{}, fmt.Errorf("blob store: %s is not under %s", path, tmp)
	}
	f, err := os.Open(abs)
	if err != nil {
		return Blob{}, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return Blob{}, err
	} else if !fi.Mode().IsRegular() {
		return Blob{}, fmt.Errorf("blob store: %s is not a regular file", path)
	}
	// Synced first, so that the filesystem knows where the holes are.
	if err := f.Sync(); err != nil {
		return Blob{}, err
	}
	h := sha256.New()
	n, err := hashFile(ctx, f, h)
	if err != nil {
		return Blob{}, err
	}
	return s.commit(abs, hex.EncodeToString(h.Sum(nil)), n, want)
}

// commit gives the synced file tmp, of the given content, its name.
func (s *Store) commit(tmp, sum string, size int64, want string) (Blob, error) {
	if want != "" && sum != want {
		return Blob{}, &MismatchError{Want: Algorithm + want, Got: Algorithm + sum}
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return Blob{}, err
	}
	b := Blob{Digest: Algorithm + sum, Size: size}
	// A link, not a rename: it never replaces a blob another Put stored
	// meanwhile (whose readers may hold it open), and tells us it exists.
	err := os.Link(tmp, s.blobPath(sum))
	if errors.Is(err, fs.ErrExist) {
		return b, nil
	}
	if err != nil {
		return Blob{}, err
	}
	return b, syncDir(s.blobDir())
}

// Open opens the blob d for reading.
func (s *Store) Open(d string) (*os.File, error) {
	hex, err := ParseDigest(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return f, err
}

// Path returns the file of the blob d, which the caller must only read.
func (s *Store) Path(d string) (string, error) {
	if _, err := s.Stat(d); err != nil {
		return "", err
	}
	hex, _ := ParseDigest(d)
	return s.blobPath(hex), nil
}

// Stat returns the blob d.
func (s *Store) Stat(d string) (Blob, error) {
	hex, err := ParseDigest(d)
	if err != nil {
		return Blob{}, err
	}
	fi, err := os.Lstat(s.blobPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return Blob{}, err
	}
	if !fi.Mode().IsRegular() {
		return Blob{}, fmt.Errorf("blob %s: not a regular file", d)
	}
	return Blob{Digest: d, Size: fi.Size()}, nil
}

// Has reports whether the store has the blob d.
func (s *Store) Has(d string) (bool, error) {
	_, err := s.Stat(d)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes the blob d. Readers that have it open keep reading it;
// refs to it dangle (Ref reports them as not found).
func (s *Store) Delete(d string) error {
	hex, err := ParseDigest(d)
	if err != nil {
		return err
	}
	err = os.Remove(s.blobPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return err
}

// List returns the store's blobs, ordered by digest.
func (s *Store) List() ([]Blob, error) {
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		return nil, err
	}
	var blobs []Blob
	for _, e := range entries {
		if !e.Type().IsRegular() || !isHex64(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) { // deleted meanwhile
			continue
		}
		if err != nil {
			return nil, err
		}
		b := Blob{Digest: Algorithm + e.Name(), Size: fi.Size(), Allocated: fi.Size(), ModTime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			b.Allocated = st.Blocks * 512
		}
		blobs = append(blobs, b)
	}
	return blobs, nil
}

// Touch marks the blob d as used now, for a cache that evicts the least
// recently used.
func (s *Store) Touch(d string) error {
	hex, err := ParseDigest(d)
	if err != nil {
		return err
	}
	now := time.Now()
	err = os.Chtimes(s.blobPath(hex), now, now)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return err
}

// MkdirTemp makes a new directory for scratch files on the store's
// filesystem (for large files that should not go to /tmp, and for
// PutTemp), named by pattern as os.MkdirTemp names it. The caller removes
// it.
func (s *Store) MkdirTemp(pattern string) (string, error) {
	return os.MkdirTemp(s.tmpDir(), pattern)
}

// RemoveTemps removes everything under DIR/tmp: what a crash left behind.
// Call it only when no other Store (in any process) is writing to DIR,
// e.g. when the one service that owns it starts.
func (s *Store) RemoveTemps() error {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return err
		}
	}
	return nil
}

const (
	copyBuffer = 1 << 20
	// holeBlock is the unit Put checks for zeros: a run of them that
	// long is skipped, not written.
	holeBlock = 64 << 10
)

var zeros [copyBuffer]byte

// copySparse copies r to the empty file f, hashing everything into h and
// writing only the blocks that are not all zeros; it returns the size.
func copySparse(ctx context.Context, f *os.File, r io.Reader, h hash.Hash) (int64, error) {
	buf := make([]byte, copyBuffer)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			p := buf[:n]
			h.Write(p)
			if err := writeSparse(f, p, off); err != nil {
				return off, err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	// The size, including a hole at the end.
	return off, f.Truncate(off)
}

// writeSparse writes p at off in f, except for its all-zero blocks.
func writeSparse(f *os.File, p []byte, off int64) error {
	start := -1 // of the run of blocks to write
	for i := 0; i < len(p); i += holeBlock {
		b := p[i:min(i+holeBlock, len(p))]
		zero := bytes.Equal(b, zeros[:len(b)])
		switch {
		case !zero && start < 0:
			start = i
		case zero && start >= 0:
			if _, err := f.WriteAt(p[start:i], off+int64(start)); err != nil {
				return err
			}
			start = -1
		}
	}
	if start >= 0 {
		_, err := f.WriteAt(p[start:], off+int64(start))
		return err
	}
	return nil
}

// hashFile hashes the content of f, which must not change meanwhile, and
// returns its size. Holes, which the filesystem reports through
// SEEK_DATA and SEEK_HOLE, are hashed as the zeros they read as, without
// reading them: most of a converted disk image is holes.
func hashFile(ctx context.Context, f *os.File, h hash.Hash) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, copyBuffer)
	for off := int64(0); off < size; {
		data, err := f.Seek(off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // only a hole from off
			data = size
		case err != nil: // no hole support: read it all
			data = off
		}
		hole := size
		if data < size {
			if hole, err = f.Seek(data, unix.SEEK_HOLE); err != nil {
				hole = size
			}
		}
		for off < hole {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			n := int(min(hole-off, copyBuffer))
			if off < data {
				n = int(min(data-off, copyBuffer))
				h.Write(zeros[:n])
			} else if _, err := f.ReadAt(buf[:n], off); err != nil {
				return 0, err // io.EOF too: the file shrank
			} else {
				h.Write(buf[:n])
			}
			off += int64(n)
		}
	}
	return size, nil
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
