package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return Algorithm + hex.EncodeToString(sum[:])
}

// noTemps fails the test if s left anything in its scratch directory.
func noTemps(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: tmp/%s", e.Name())
	}
}

func TestPutOpenListDelete(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	content := []byte("a disk image, or something like one\n")
	b, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	want := Blob{Digest: digestOf(content), Size: int64(len(content))}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Fatalf("Put (-want +got):\n%s", diff)
	}
	if b.Hex() != strings.TrimPrefix(want.Digest, "sha256:") {
		t.Errorf("Hex() = %s", b.Hex())
	}

	f, err := s.Open(b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Open read %q, %v; want %q", got, err, content)
	}
	p, err := s.Path(b.Digest)
	if err != nil || p != filepath.Join(s.Dir(), "sha256", b.Hex()) {
		t.Fatalf("Path = %q, %v", p, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("blob file: %v, %v; want mode 0444", fi.Mode(), err)
	}
	if st, err := s.Stat(b.Digest); err != nil || st != want {
		t.Errorf("Stat = %+v, %v", st, err)
	}
	if ok, err := s.Has(b.Digest); !ok || err != nil {
		t.Errorf("Has = %v, %v", ok, err)
	}
	other, err := s.Put(ctx, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" || other.Size != 0 {
		t.Errorf("empty blob: %+v", other)
	}
	// Strays in the blob directory are not blobs.
	os.WriteFile(filepath.Join(s.Dir(), "sha256", "README"), nil, 0o644)
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	wantList := []Blob{want, other}
	if wantList[0].Digest > wantList[1].Digest {
		wantList[0], wantList[1] = wantList[1], wantList[0]
	}
	// Allocated and ModTime are the filesystem's; Touch is tested below.
	if diff := cmp.Diff(wantList, list, cmpopts.IgnoreFields(Blob{}, "Allocated", "ModTime")); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	for _, b := range list {
		if b.ModTime.IsZero() || (b.Size > 0 && b.Allocated == 0) {
			t.Errorf("List: %+v has no modification time or allocation", b)
		}
	}
	old := list[0].ModTime
	time.Sleep(10 * time.Millisecond)
	if err := s.Touch(list[0].Digest); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.List(); !again[0].ModTime.After(old) {
		t.Errorf("Touch left the modification time at %v", again[0].ModTime)
	}
	if err := s.Touch(Algorithm + strings.Repeat("1", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch of a missing blob: %v", err)
	}

	if err := s.Delete(b.Digest); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Has(b.Digest); ok || err != nil {
		t.Errorf("Has after Delete = %v, %v", ok, err)
	}
	for name, err := range map[string]error{
		"Open":   func() error { _, err := s.Open(b.Digest); return err }(),
		"Path":   func() error { _, err := s.Path(b.Digest); return err }(),
		"Stat":   func() error { _, err := s.Stat(b.Digest); return err }(),
		"Delete": s.Delete(b.Digest),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), b.Digest) {
			t.Errorf("%s after Delete: %v; want ErrNotFound naming the digest", name, err)
		}
	}
	noTemps(t, s)
}

func TestPutExisting(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	first, err := s.Put(ctx, strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(first.Digest)
	before, _ := os.Stat(p)
	second, err := s.Put(ctx, strings.NewReader("same"))
	if err != nil || second != first {
		t.Fatalf("second Put = %+v, %v; want %+v", second, err, first)
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) {
		t.Error("the second Put replaced the stored file")
	}
	noTemps(t, s)
}

// TestPutSparse checks that runs of zeros become holes and read back as
// zeros.
func TestPutSparse(t *testing.T) {
	s := newStore(t)
	const size = 16 << 20
	content := make([]byte, size)
	copy(content[1<<20:], bytes.Repeat([]byte("data"), 1000))
	copy(content[size-100:], "the end")
	b, err := s.Put(context.Background(), bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(b.Digest)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, content) || b.Digest != digestOf(content) {
		t.Fatalf("read back %d bytes (%v), digest %s; want the content", len(got), err, b.Digest)
	}
	fi, _ := os.Stat(p)
	if allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512; allocated > 1<<20 {
		t.Errorf("%d bytes allocated for %d bytes of mostly zeros; want holes", allocated, size)
	}
}

func TestPutExpect(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	content := []byte("expected")
	wantHex := strings.TrimPrefix(digestOf(content), Algorithm)
	b, err := s.PutExpect(ctx, bytes.NewReader(content), wantHex)
	if err != nil || b.Digest != digestOf(content) {
		t.Fatalf("PutExpect = %+v, %v", b, err)
	}

	other := []byte("not what was expected")
	_, err = s.PutExpect(ctx, bytes.NewReader(other), strings.Repeat("0", 64))
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("PutExpect of other content: %v; want a *MismatchError", err)
	}
	if diff := cmp.Diff(MismatchError{Want: Algorithm + strings.Repeat("0", 64), Got: digestOf(other)}, *me); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	for _, d := range []string{me.Want, me.Got} {
		if !strings.Contains(err.Error(), d) {
			t.Errorf("error %q does not name %s", err, d)
		}
	}
	if ok, _ := s.Has(digestOf(other)); ok {
		t.Error("the mismatched content was stored")
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Errorf("List = %+v; want only the first blob", list)
	}
	noTemps(t, s)

	for _, bad := range []string{"", "sha256:" + wantHex, strings.ToUpper(wantHex), wantHex[:63], "../" + wantHex[3:]} {
		if _, err := s.PutExpect(ctx, strings.NewReader("x"), bad); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("PutExpect(%q): %v; want ErrInvalidDigest", bad, err)
		}
	}
	noTemps(t, s)
}

func TestPutCanceled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context: %v", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("List = %+v", list)
	}
	noTemps(t, s)
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPutReadError(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), &failingReader{n: 3 << 20}); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Put of a failing reader: %v", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("List = %+v", list)
	}
	noTemps(t, s)
}

func TestDigestValidation(t *testing.T) {
	s := newStore(t)
	hex64 := strings.Repeat("ab", 32)
	// A file beside the store that a traversal would reach.
	outside := filepath.Join(filepath.Dir(s.Dir()), "victim")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, digest string }{
		{"empty", ""},
		{"algorithm only", "sha256:"},
		{"no algorithm", hex64},
		{"other algorithm", "md5:" + hex64},
		{"upper-case algorithm", "SHA256:" + hex64},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex64)},
		{"short", "sha256:" + hex64[:63]},
		{"long", "sha256:" + hex64 + "a"},
		{"not hex", "sha256:" + strings.Repeat("g", 64)},
		{"parent", "sha256:../../victim"},
		{"parent, padded to length", "sha256:../../victim" + strings.Repeat("a", 52)},
		{"separator", "sha256:" + hex64[:32] + "/" + hex64[33:]},
		{"absolute", "sha256:/etc/passwd"},
		{"newline", "sha256:" + hex64[:63] + "\n"},
		{"NUL", "sha256:" + hex64[:63] + "\x00"},
		{"very long", "sha256:" + strings.Repeat("../", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := fmt.Sprintf("%q", tc.digest)
			if len(tc.digest) > 100 {
				want = fmt.Sprintf("%q...", tc.digest[:100])
			}
			for op, err := range map[string]error{
				"ParseDigest": func() error { _, err := ParseDigest(tc.digest); return err }(),
				"Open":        func() error { _, err := s.Open(tc.digest); return err }(),
				"Path":        func() error { _, err := s.Path(tc.digest); return err }(),
				"Stat":        func() error { _, err := s.Stat(tc.digest); return err }(),
				"Has":         func() error { _, err := s.Has(tc.digest); return err }(),
				"Delete":      s.Delete(tc.digest),
				"SetRef":      s.SetRef("test", "key", tc.digest),
			} {
				if !errors.Is(err, ErrInvalidDigest) || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v; want ErrInvalidDigest naming %s", op, err, want)
				}
			}
		})
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the file outside the store: %v", err)
	}
	if d, err := FromHex(hex64); err != nil || d != "sha256:"+hex64 {
		t.Errorf("FromHex = %q, %v", d, err)
	}
}

// TestConcurrentPuts puts the same and different content from many
// goroutines at once (run it with -race).
func TestConcurrentPuts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const distinct, copies = 8, 6
	contents := make([][]byte, distinct)
	for i := range contents {
		// Big enough that the writes overlap; some zeros, to take holes.
		contents[i] = bytes.Repeat([]byte(fmt.Sprintf("content %d ", i)), 40000)
		contents[i] = append(contents[i], make([]byte, 200<<10)...)
	}
	var wg sync.WaitGroup
	got := make([][]Blob, distinct)
	errs := make(chan error, distinct*copies)
	for i := range contents {
		got[i] = make([]Blob, copies)
		for j := range copies {
			wg.Go(func() {
				b, err := s.Put(ctx, bytes.NewReader(contents[i]))
				if err != nil {
					errs <- err
				}
				got[i][j] = b
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []Blob
	for i, c := range contents {
		b := Blob{Digest: digestOf(c), Size: int64(len(c))}
		want = append(want, b)
		for j := range copies {
			if got[i][j] != b {
				t.Errorf("Put %d/%d = %+v; want %+v", i, j, got[i][j], b)
			}
		}
		f, err := s.Open(b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(data, c) {
			t.Errorf("blob %d reads back wrong", i)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != distinct {
		t.Errorf("List has %d blobs; want %d", len(list), distinct)
	}
	noTemps(t, s)
}

func TestPutTemp(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	dir, err := s.MkdirTemp("test-*")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "disk.raw")
	content := []byte("made in place")
	os.WriteFile(p, content, 0o600)
	b, err := s.PutTemp(ctx, p)
	if err != nil || b.Digest != digestOf(content) || b.Size != int64(len(content)) {
		t.Fatalf("PutTemp = %+v, %v", b, err)
	}
	os.RemoveAll(dir)
	f, err := s.Open(b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(data, content) {
		t.Errorf("read back %q", data)
	}

	elsewhere := filepath.Join(t.TempDir(), "disk.raw")
	os.WriteFile(elsewhere, content, 0o600)
	for _, p := range []string{elsewhere, s.tmpDir(), filepath.Join(s.tmpDir(), "..", "sha256", b.Hex())} {
		if _, err := s.PutTemp(ctx, p); err == nil || !strings.Contains(err.Error(), "is not under") {
			t.Errorf("PutTemp(%s): %v; want refused", p, err)
		}
	}
	noTemps(t, s)
}

// TestPutTempSparse hashes files with holes in different places: what
// PutTemp skips reading must hash as the zeros it reads as.
func TestPutTempSparse(t *testing.T) {
	const size = 5<<20 + 777
	for _, tc := range []struct {
		name string
		data [][2]int // offset, length of non-zero runs
	}{
		{"empty", nil},
		{"all holes", nil},
		{"no holes", [][2]int{{0, size}}},
		{"data at the start", [][2]int{{0, 5000}}},
		{"data at the end", [][2]int{{size - 5000, 5000}}},
		{"data in the middle, unaligned", [][2]int{{1<<20 + 3, 70001}, {3<<20 - 1, 2<<20 + 5}}},
		{"many small runs", func() (r [][2]int) {
			for off := 4096; off+100 < size; off += 200 << 10 {
				r = append(r, [2]int{off, 100})
			}
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			dir, _ := s.MkdirTemp("test-*")
			p := filepath.Join(dir, "disk.raw")
			n := size
			if tc.name == "empty" {
				n = 0
			}
			content := make([]byte, n)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(int64(n))
			for i, d := range tc.data {
				for j := d[0]; j < d[0]+d[1]; j++ {
					content[j] = byte(j%251) | 1
				}
				content[d[0]] = byte(i) | 0x80
				if _, err := f.WriteAt(content[d[0]:d[0]+d[1]], int64(d[0])); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			b, err := s.PutTemp(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if want := (Blob{Digest: digestOf(content), Size: int64(n)}); b != want {
				t.Errorf("PutTemp = %+v; want %+v", b, want)
			}
		})
	}
}

func TestRemoveTemps(t *testing.T) {
	s := newStore(t)
	dir, _ := s.MkdirTemp("crashed-*")
	os.WriteFile(filepath.Join(dir, "half"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.tmpDir(), "put-123"), []byte("x"), 0o600)
	if err := s.RemoveTemps(); err != nil {
		t.Fatal(err)
	}
	noTemps(t, s)
}

func TestRefs(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	b, err := s.Put(ctx, strings.NewReader("raw"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("0f", 32)
	if _, err := s.Ref("converted", key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Ref before SetRef: %v; want ErrNotFound", err)
	}
	if err := s.SetRef("converted", key, b.Digest); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Ref("converted", key); err != nil || got != b {
		t.Errorf("Ref = %+v, %v; want %+v", got, err, b)
	}
	if err := s.Delete(b.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ref("converted", key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Ref to a deleted blob: %v; want ErrNotFound", err)
	}
	os.WriteFile(filepath.Join(s.Dir(), "refs", "converted", "junk"), []byte("../../x\n"), 0o644)
	if _, err := s.Ref("converted", "junk"); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("Ref holding junk: %v; want ErrInvalidDigest", err)
	}
	for _, tc := range []struct{ ns, key string }{
		{"", key}, {"../x", key}, {"Converted", key}, {"1st", key}, {strings.Repeat("a", 33), key},
		{"converted", ""}, {"converted", ".."}, {"converted", "."}, {"converted", "a/b"},
		{"converted", ".hidden"}, {"converted", "UPPER"}, {"converted", strings.Repeat("a", 129)},
	} {
		err := s.SetRef(tc.ns, tc.key, b.Digest)
		_, err2 := s.Ref(tc.ns, tc.key)
		if !errors.Is(err, ErrInvalidRef) || !errors.Is(err2, ErrInvalidRef) {
			t.Errorf("SetRef/Ref(%q, %q): %v, %v; want ErrInvalidRef", tc.ns, tc.key, err, err2)
		}
	}
	noTemps(t, s)
}
