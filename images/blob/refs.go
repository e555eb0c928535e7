package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrInvalidRef is wrapped by the errors for malformed ref names.
var ErrInvalidRef = errors.New("invalid ref")

// SetRef records that the ref key, in the namespace ns, names the blob d:
// the file DIR/refs/NS/KEY holds d, replaced atomically. A namespace is a
// lower-case word (letters, digits, '-'; at most 32); a key is at most 128
// lower-case letters, digits, '.', '_' and '-', not starting with '.'.
// Refs let a caller find a blob by something other than its content, e.g.
// the raw image converted from a source whose SHA-256 is KEY.
func (s *Store) SetRef(ns, key, d string) error {
	if err := checkRef(ns, key); err != nil {
		return err
	}
	if _, err := ParseDigest(d); err != nil {
		return err
	}
	return WriteFileSync(filepath.Join(s.dir, "refs", ns, key), []byte(d+"\n"))
}

// WriteFileSync replaces the file at path with data, atomically (a
// temporary file beside it, renamed) and durably (the file and its
// directory synced) before it returns; it makes the directory if needed.
func WriteFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// Ref returns the blob that the ref key in namespace ns names. The error
// wraps ErrNotFound when there is no such ref or its blob is gone.
func (s *Store) Ref(ns, key string) (Blob, error) {
	if err := checkRef(ns, key); err != nil {
		return Blob{}, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "refs", ns, key))
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, fmt.Errorf("%w: ref %s/%s", ErrNotFound, ns, key)
	}
	if err != nil {
		return Blob{}, err
	}
	d := strings.TrimSuffix(string(b), "\n")
	if _, err := ParseDigest(d); err != nil {
		return Blob{}, fmt.Errorf("ref %s/%s: %w", ns, key, err)
	}
	return s.Stat(d)
}

func checkRef(ns, key string) error {
	if !validName(ns, 32, "-") || ns[0] < 'a' || ns[0] > 'z' {
		return fmt.Errorf("%w namespace %s: want a lower-case word of letters, digits and '-', starting with a letter, at most 32", ErrInvalidRef, quote(ns))
	}
	if !validName(key, 128, "._-") || key[0] == '.' {
		return fmt.Errorf("%w key %s: want at most 128 lower-case letters, digits, '.', '_' and '-', not starting with '.'", ErrInvalidRef, quote(key))
	}
	return nil
}

func validName(s string, maxLen int, punct string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && !strings.ContainsRune(punct, rune(c)) {
			return false
		}
	}
	return true
}
