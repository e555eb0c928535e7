package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestCopyHashed: every size around the chunk size arrives whole, hashed
// in order; errors on either side stop the copy and say so.
func TestCopyHashed(t *testing.T) {
	for _, size := range []int{0, 1, writeBuffer - 1, writeBuffer, writeBuffer + 1, 3*writeBuffer + 17} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i*7 + i/writeBuffer)
		}
		var dst bytes.Buffer
		h := sha256.New()
		n, err := copyHashed(&dst, iotest.HalfReader(bytes.NewReader(src)), h)
		want := sha256.Sum256(src)
		if err != nil || n != int64(size) || !bytes.Equal(dst.Bytes(), src) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("size %d: copied %d, err %v, content equal %v, hash equal %v", size, n, err, bytes.Equal(dst.Bytes(), src), bytes.Equal(h.Sum(nil), want[:]))
		}
	}
	boom := errors.New("boom")
	if _, err := copyHashed(io.Discard, iotest.ErrReader(boom), sha256.New()); !errors.Is(err, boom) {
		t.Errorf("a read error: %v", err)
	}
	if _, err := copyHashed(failWriter{boom}, bytes.NewReader(make([]byte, 3*writeBuffer)), sha256.New()); !errors.Is(err, boom) {
		t.Errorf("a write error: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }
