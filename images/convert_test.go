package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/images/blob"
)

// qemuImg runs the real qemu-img to make test images.
func qemuImg(t testing.TB, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("%v (make deps installs qemu-utils)", err)
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// patternDisk writes a raw disk of size bytes to path: zeros but for a
// boot sector, a run at 1 MiB, an unaligned run in the middle and the
// last 4 KiB, each a different pattern; size is at least 2 MiB. It
// returns the content.
func patternDisk(t testing.TB, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	fill := func(off, n int, seed byte) {
		for i := range n {
			b[off+i] = byte(i*31+i>>8) ^ seed
		}
	}
	fill(0, 512, 0x55)
	fill(1<<20, 300<<10, 0x12)
	fill(size/2+12345, 70000, 0x34)
	fill(size-4096, 4096, 0x56)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(b)
}

func newBlobStore(t testing.TB) *blob.Store {
	t.Helper()
	s, err := blob.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeHolds fails the test unless s holds exactly want (digests), and
// nothing in its scratch directory.
func storeHolds(t *testing.T, s *blob.Store, want ...string) {
	t.Helper()
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range list {
		got = append(got, b.Digest)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blobs (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	for _, e := range entries {
		t.Errorf("left behind: tmp/%s", e.Name())
	}
}

// countingQemuImg returns a qemu-img command that runs the real one and
// logs each subcommand, and a function returning the log.
func countingQemuImg(t *testing.T) (string, func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := filepath.Join(dir, "qemu-img")
	body := "#!/bin/sh\necho \"$1\" >> '" + log + "'\nexec qemu-img \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, func() []string {
		b, err := os.ReadFile(log)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(b))
	}
}

func convertFile(ctx context.Context, c *Converter, path, format, want string) (blob.Blob, error) {
	f, err := os.Open(path)
	if err != nil {
		return blob.Blob{}, err
	}
	defer f.Close()
	return c.ToRaw(ctx, f, format, want)
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		name, header, want string
	}{
		{"qcow2", "QFI\xfb\x00\x00\x00\x03", FormatQcow2},
		{"magic only", "QFI\xfb", FormatQcow2},
		{"short", "QFI", FormatRaw},
		{"empty", "", FormatRaw},
		{"MBR", "\xeb\x63\x90\x10", FormatRaw},
		{"qcow v1", "QFI\xfa", FormatRaw},
		{"vmdk", "KDMV", FormatRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectFormat([]byte(tc.header)); got != tc.want {
				t.Errorf("DetectFormat(%q) = %s; want %s", tc.header, got, tc.want)
			}
		})
	}
}

// TestConvertToRaw makes qcow2 images of a known raw disk with qemu-img
// and converts them back.
func TestConvertToRaw(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	const size = 8 << 20
	content := patternDisk(t, raw, size)
	want := blob.Blob{Digest: blob.Algorithm + sha256Hex(content), Size: size}
	for _, tc := range []struct {
		name   string
		make   func(t *testing.T, img string)
		format string
	}{
		{"qcow2", func(t *testing.T, img string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", img, "8M")
			qemuImg(t, "convert", "-n", "-f", "raw", "-O", "qcow2", raw, img)
		}, FormatQcow2},
		{"qcow2 version 2", func(t *testing.T, img string) {
			qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "8M")
			qemuImg(t, "convert", "-n", "-f", "raw", "-O", "qcow2", raw, img)
		}, FormatQcow2},
		{"compressed", func(t *testing.T, img string) {
			qemuImg(t, "convert", "-c", "-f", "raw", "-O", "qcow2", raw, img)
		}, FormatQcow2},
		{"detected", func(t *testing.T, img string) {
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, img)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.qcow2")
			tc.make(t, img)
			s := newBlobStore(t)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := ConvertToRaw(context.Background(), s, f, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, b); diff != "" {
				t.Fatalf("blob (-want +got):\n%s", diff)
			}
			bf, err := s.Open(b.Digest)
			if err != nil {
				t.Fatal(err)
			}
			defer bf.Close()
			got, err := io.ReadAll(bf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("the raw image differs from the disk the qcow2 was made of")
			}
			storeHolds(t, s, want.Digest)
		})
	}
}

// TestConvertCached converts the same source twice and checks that
// qemu-img ran once; then again after the blob is deleted.
func TestConvertCached(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	content := patternDisk(t, raw, 4<<20)
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, img)
	bin, runs := countingQemuImg(t)
	c := &Converter{Store: newBlobStore(t), QemuImg: bin}
	ctx := context.Background()

	first, err := convertFile(ctx, c, img, FormatQcow2, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != blob.Algorithm+sha256Hex(content) {
		t.Fatalf("digest %s; want the raw disk's", first.Digest)
	}
	second, err := convertFile(ctx, c, img, FormatQcow2, "")
	if err != nil || second != first {
		t.Fatalf("second conversion = %+v, %v; want %+v", second, err, first)
	}
	if diff := cmp.Diff([]string{"info", "convert"}, runs()); diff != "" {
		t.Errorf("qemu-img runs (-want +got):\n%s", diff)
	}
	ref, err := os.ReadFile(filepath.Join(c.Store.Dir(), "refs", convertedRef, fileSHA256(t, img)))
	if err != nil || string(ref) != first.Digest+"\n" {
		t.Errorf("the record of the conversion: %q, %v", ref, err)
	}

	// The blob is gone (garbage-collected, say): convert again.
	if err := c.Store.Delete(first.Digest); err != nil {
		t.Fatal(err)
	}
	third, err := convertFile(ctx, c, img, FormatQcow2, "")
	if err != nil || third != first {
		t.Fatalf("conversion after Delete = %+v, %v; want %+v", third, err, first)
	}
	if n := len(runs()); n != 4 {
		t.Errorf("qemu-img ran %d times; want 4 (info and convert, twice)", n)
	}
	storeHolds(t, c.Store, first.Digest)
}

// TestConvertConcurrent converts the same image from several goroutines
// at once (run it with -race).
func TestConvertConcurrent(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	content := patternDisk(t, raw, 4<<20)
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, img)
	c := &Converter{Store: newBlobStore(t)}
	want := blob.Algorithm + sha256Hex(content)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			b, err := convertFile(context.Background(), c, img, FormatQcow2, "")
			if err != nil || b.Digest != want {
				t.Errorf("ToRaw = %+v, %v; want %s", b, err, want)
			}
		})
	}
	wg.Wait()
	storeHolds(t, c.Store, want)
	if b, err := c.Store.Ref(convertedRef, fileSHA256(t, img)); err != nil || b.Digest != want {
		t.Errorf("the record of the conversion: %+v, %v", b, err)
	}
}

// TestConvertRaw stores a raw image as it is, without qemu-img.
func TestConvertRaw(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "disk.raw")
	content := patternDisk(t, raw, 2<<20)
	sum := sha256Hex(content)
	bin, runs := countingQemuImg(t)
	c := &Converter{Store: newBlobStore(t), QemuImg: bin}
	ctx := context.Background()
	for _, format := range []string{FormatRaw, ""} {
		b, err := convertFile(ctx, c, raw, format, sum)
		if err != nil || b.Digest != blob.Algorithm+sum || b.Size != int64(len(content)) {
			t.Errorf("format %q: %+v, %v", format, b, err)
		}
	}
	_, err := convertFile(ctx, c, raw, FormatRaw, strings.Repeat("0", 64))
	var me *blob.MismatchError
	if !errors.As(err, &me) || me.Got != blob.Algorithm+sum {
		t.Errorf("raw image with the wrong checksum: %v; want a *blob.MismatchError", err)
	}
	if r := runs(); len(r) != 0 {
		t.Errorf("qemu-img ran: %v", r)
	}
	storeHolds(t, c.Store, blob.Algorithm+sum)
}

// TestConvertChecksum checks the source's SHA-256 before qemu-img runs.
func TestConvertChecksum(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	content := patternDisk(t, raw, 2<<20)
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, img)
	bin, runs := countingQemuImg(t)
	c := &Converter{Store: newBlobStore(t), QemuImg: bin}
	ctx := context.Background()

	wrong := sha256Hex(content) // the raw disk's, not the qcow2's
	_, err := convertFile(ctx, c, img, FormatQcow2, wrong)
	var me *blob.MismatchError
	if !errors.As(err, &me) || me.Want != blob.Algorithm+wrong || me.Got != blob.Algorithm+fileSHA256(t, img) {
		t.Fatalf("wrong checksum: %v; want a *blob.MismatchError", err)
	}
	if r := runs(); len(r) != 0 {
		t.Errorf("qemu-img ran on an image that failed its checksum: %v", r)
	}
	storeHolds(t, c.Store)

	if _, err := convertFile(ctx, c, img, FormatQcow2, strings.ToUpper(wrong)); !errors.Is(err, blob.ErrInvalidDigest) {
		t.Errorf("malformed checksum: %v; want blob.ErrInvalidDigest", err)
	}
	b, err := convertFile(ctx, c, img, FormatQcow2, fileSHA256(t, img))
	if err != nil || b.Digest != blob.Algorithm+sha256Hex(content) {
		t.Errorf("right checksum: %+v, %v", b, err)
	}
}

func TestConvertFormat(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	patternDisk(t, raw, 2<<20)
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, img)
	bin, runs := countingQemuImg(t)
	c := &Converter{Store: newBlobStore(t), QemuImg: bin}
	for _, tc := range []struct {
		name, path, format, want string
	}{
		{"qcow2 declared raw", img, FormatRaw, "declared raw, but the content is qcow2"},
		{"raw declared qcow2", raw, FormatQcow2, "declared qcow2, but the content is raw"},
		{"unknown format", raw, "vmdk", `format "vmdk": want raw or qcow2`},
		{"format in capitals", img, "QCOW2", `format "QCOW2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertFile(context.Background(), c, tc.path, tc.format, "")
			if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want ErrInvalidImage saying %q", err, tc.want)
			}
		})
	}
	if r := runs(); len(r) != 0 {
		t.Errorf("qemu-img ran: %v", r)
	}
	storeHolds(t, c.Store)
}

// unsafeImages makes qcow2 images that name a file on the machine that
// converts them, which holds a secret.
func unsafeImages(t *testing.T) (secret string, images map[string]string) {
	dir := t.TempDir()
	secret = filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("SECRET! "), 1<<17), 0o600); err != nil {
		t.Fatal(err)
	}
	images = map[string]string{}
	for name, opts := range map[string][]string{
		"backing file":              {"-b", secret, "-F", "raw"},
		"backing file, version 2":   {"-o", "compat=0.10", "-b", secret, "-F", "raw"},
		"backing file, relative":    {"-b", "secret", "-F", "raw"},
		"backing file, no format":   {"-b", secret, "-F", "raw"},
		"external data file":        {"-o", "data_file=" + filepath.Join(dir, "data.raw")},
		"external data file, taken": {"-o", "data_file=" + filepath.Join(dir, "data2.raw")},
	} {
		img := filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "").Replace(name)+".qcow2")
		qemuImg(t, append(append([]string{"create", "-q", "-f", "qcow2"}, opts...), img, "1M")...)
		images[name] = img
	}
	// Point the second data-file image's data file at the secret,
	// which qemu-img create would have overwritten.
	patchDataFile(t, images["external data file, taken"], secret)
	// Drop the backing format (as images from older qemu-img lack it),
	// which leaves qemu to probe the backing file's format: end the
	// header extensions where that one is.
	img := images["backing file, no format"]
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[:4096], []byte{0xe2, 0x79, 0x2a, 0xca})
	if i < 0 {
		t.Fatal("no backing format header extension")
	}
	patch(t, img, int64(i), make([]byte, 4))
	return secret, images
}

// patchDataFile rewrites the external data file name in a qcow2 header
// extension to name, which must be no longer than the old one.
func patchDataFile(t *testing.T, img, name string) {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte{'D', 'A', 'T', 'A'})
	if i < 0 {
		t.Fatal("no data file header extension")
	}
	old := int(binary.BigEndian.Uint32(b[i+4:]))
	if len(name) > old {
		t.Fatalf("%s is longer than the name it replaces", name)
	}
	binary.BigEndian.PutUint32(b[i+4:], uint32(len(name)))
	copy(b[i+8:i+8+old], append([]byte(name), make([]byte, old-len(name))...))
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConvertRefusesOtherFiles refuses qcow2 images with a backing file
// or an external data file, before qemu-img runs on them.
func TestConvertRefusesOtherFiles(t *testing.T) {
	secret, images := unsafeImages(t)
	for name, img := range images {
		t.Run(name, func(t *testing.T) {
			bin, runs := countingQemuImg(t)
			c := &Converter{Store: newBlobStore(t), QemuImg: bin}
			_, err := convertFile(context.Background(), c, img, FormatQcow2, "")
			if !errors.Is(err, ErrUnsafeImage) {
				t.Fatalf("error %v; want ErrUnsafeImage", err)
			}
			want := "backing file"
			if strings.Contains(name, "data file") {
				want = "external data file"
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "undercloud") {
				t.Errorf("error %q does not say why", err)
			}
			if strings.HasPrefix(name, "backing file") && !strings.Contains(err.Error(), filepath.Base(secret)) {
				t.Errorf("error %q does not name the backing file", err)
			}
			if r := runs(); len(r) != 0 {
				t.Errorf("qemu-img ran on it: %v", r)
			}
			storeHolds(t, c.Store)
		})
	}
}

// TestQemuImgLayers checks the two defences behind checkQcow2Header on
// their own: qemu-img info's report, and the json: spec that keeps
// qemu-img from opening a backing file at all.
func TestQemuImgLayers(t *testing.T) {
	_, images := unsafeImages(t)
	ctx := context.Background()
	c := &Converter{}
	for name, img := range images {
		t.Run(name, func(t *testing.T) {
			info, err := c.info(ctx, qemuSpec(img))
			if err != nil {
				t.Fatal(err)
			}
			if err := info.check(DefaultMaxVirtualSize); !errors.Is(err, ErrUnsafeImage) {
				t.Errorf("qemu-img info's report passes the check: %v", err)
			}
			if !strings.HasPrefix(name, "backing file") {
				return
			}
			out := filepath.Join(t.TempDir(), "out.raw")
			if _, err := c.run(ctx, "", "convert", "-O", "raw", qemuSpec(img), out); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("SECRET")) {
				t.Error("qemu-img convert read the backing file")
			}
		})
	}
}

// TestConvertCorrupt converts images that are qcow2 by their magic but
// broken, and expects qemu-img's word for it.
func TestConvertCorrupt(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.qcow2")
	os.WriteFile(garbage, append([]byte("QFI\xfb"), bytes.Repeat([]byte("garbage!"), 1000)...), 0o644)

	badCluster := filepath.Join(dir, "bad-cluster.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", badCluster, "1M")
	patch(t, badCluster, 20, binary.BigEndian.AppendUint32(nil, 99)) // cluster_bits

	// Info reads only the header; the conversion meets a data cluster at
	// an unaligned offset.
	data := filepath.Join(dir, "data.raw")
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rand.IntN(256))
	}
	os.WriteFile(data, random, 0o644)
	unaligned := filepath.Join(dir, "unaligned.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", data, unaligned)
	b, _ := os.ReadFile(unaligned)
	l1 := binary.BigEndian.Uint64(b[40:])
	l2 := binary.BigEndian.Uint64(b[l1:]) & 0x00ff_ffff_ffff_fe00
	entry := binary.BigEndian.Uint64(b[l2:])
	patch(t, unaligned, int64(l2), binary.BigEndian.AppendUint64(nil, entry+512))

	for _, tc := range []struct {
		name, img string
		invalid   bool // ErrInvalidImage: qemu-img cannot open it
		want      []string
	}{
		{"garbage after the magic", garbage, true, []string{"qemu-img info", "Could not open 'source.qcow2'", "Unsupported qcow2 version"}},
		{"bad cluster size", badCluster, true, []string{"qemu-img info", "Unsupported cluster size"}},
		{"unaligned data cluster", unaligned, false, []string{"qemu-img convert", "Image is corrupt", "unaligned"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Converter{Store: newBlobStore(t)}
			_, err := convertFile(context.Background(), c, tc.img, "", "")
			if err == nil {
				t.Fatal("converted")
			}
			if errors.Is(err, ErrInvalidImage) != tc.invalid {
				t.Errorf("errors.Is(%v, ErrInvalidImage) = %v", err, !tc.invalid)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "json:") {
				t.Errorf("error %q shows qemu-img's spec", err)
			}
			storeHolds(t, c.Store)
			if refs, _ := os.ReadDir(filepath.Join(c.Store.Dir(), "refs", convertedRef)); len(refs) != 0 {
				t.Errorf("a failed conversion was recorded")
			}
		})
	}
}

func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestConvertTooLarge(t *testing.T) {
	img := filepath.Join(t.TempDir(), "huge.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", img, "1P")
	bin, runs := countingQemuImg(t)
	for _, tc := range []struct {
		name string
		max  int64
	}{{"default limit", 0}, {"1 GiB limit", 1 << 30}} {
		c := &Converter{Store: newBlobStore(t), QemuImg: bin, MaxVirtualSize: tc.max}
		_, err := convertFile(context.Background(), c, img, FormatQcow2, "")
		if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "virtual size") {
			t.Errorf("%s: %v; want ErrInvalidImage for the virtual size", tc.name, err)
		}
		storeHolds(t, c.Store)
	}
	if diff := cmp.Diff([]string{"info", "info"}, runs()); diff != "" {
		t.Errorf("qemu-img runs (-want +got):\n%s", diff)
	}
}

func TestConvertMissingQemuImg(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", img, "1M")
	c := &Converter{Store: newBlobStore(t), QemuImg: filepath.Join(dir, "no-such-qemu-img")}
	_, err := convertFile(context.Background(), c, img, "", "")
	if err == nil || errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "no-such-qemu-img") {
		t.Errorf("error %v; want one naming the missing command, not blaming the image", err)
	}
	storeHolds(t, c.Store)
}

// BenchmarkConvertToRaw converts a 256 MiB qcow2 image (8 MiB of data,
// the rest zeros); MB/s is of the raw disk.
func BenchmarkConvertToRaw(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(size)
	chunk := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 32 {
		for j := range chunk {
			chunk[j] = byte(rng.Uint32())
		}
		f.WriteAt(chunk, int64(i)*(size/32))
	}
	f.Close()
	img := filepath.Join(dir, "disk.qcow2")
	qemuImg(b, "convert", "-f", "raw", "-O", "qcow2", raw, img)
	want := blob.Algorithm + fileSHA256(b, raw)
	os.Remove(raw)
	convert := func(b *testing.B, s *blob.Store) {
		f, err := os.Open(img)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		got, err := ConvertToRaw(context.Background(), s, f, FormatQcow2)
		if err != nil || got.Digest != want {
			b.Fatalf("ConvertToRaw = %+v, %v; want %s", got, err, want)
		}
	}

	b.Run("uncached", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			s, err := blob.New(filepath.Join(b.TempDir(), "blobs"))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			convert(b, s)
		}
	})
	b.Run("cached", func(b *testing.B) {
		s, err := blob.New(filepath.Join(b.TempDir(), "blobs"))
		if err != nil {
			b.Fatal(err)
		}
		convert(b, s)
		b.SetBytes(size)
		for b.Loop() {
			convert(b, s)
		}
	})
}
