package httpboot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/httpboot"
)

func writeImage(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestImages checks ranges and validators with Go's client.
func TestImages(t *testing.T) {
	e := newEnv(t, nil)
	content := randomBytes(3<<20 + 17)
	writeImage(t, e.images, "deploy/vmlinuz", content)
	const path = "/images/deploy/vmlinuz"

	resp, body := e.get(t, "GET", path)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("GET: status %d, %d bytes", resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	lastMod := resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") || lastMod == "" {
		t.Fatalf("want a strong ETag and a Last-Modified, got %q, %q", etag, lastMod)
	}
	if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
		t.Errorf("Accept-Ranges %q", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q", got)
	}

	tests := []struct {
		name    string
		method  string
		header  []string
		status  int
		body    []byte // nil: not checked
		headers map[string]string
	}{
		{"head", "HEAD", nil, 200, []byte{}, map[string]string{"Content-Length": strconv.Itoa(len(content)), "ETag": etag}},
		{"range", "GET", []string{"Range", "bytes=100-199"}, 206, content[100:200],
			map[string]string{"Content-Range": fmt.Sprintf("bytes 100-199/%d", len(content))}},
		{"suffix range", "GET", []string{"Range", "bytes=-10"}, 206, content[len(content)-10:], nil},
		{"open range", "GET", []string{"Range", fmt.Sprintf("bytes=%d-", len(content)-5)}, 206, content[len(content)-5:], nil},
		{"unsatisfiable", "GET", []string{"Range", fmt.Sprintf("bytes=%d-", len(content)+5)}, 416, nil, nil},
		{"if-none-match", "GET", []string{"If-None-Match", etag}, 304, []byte{}, map[string]string{"ETag": etag}},
		{"if-none-match list", "GET", []string{"If-None-Match", `"other", ` + etag}, 304, []byte{}, nil},
		{"if-none-match star", "GET", []string{"If-None-Match", "*"}, 304, []byte{}, nil},
		{"if-none-match stale", "GET", []string{"If-None-Match", `"stale"`}, 200, content, nil},
		{"if-modified-since", "GET", []string{"If-Modified-Since", lastMod}, 304, []byte{}, nil},
		{"if-modified-since old", "GET", []string{"If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}, 200, content, nil},
		{"if-range matches", "GET", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, content[:10], nil},
		{"if-range stale", "GET", []string{"Range", "bytes=0-9", "If-Range", `"stale"`}, 200, content, nil},
		{"if-match stale", "GET", []string{"If-Match", `"stale"`}, 412, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, tc.method, path, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("got %d bytes, want %d", len(body), len(tc.body))
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("multiple ranges", func(t *testing.T) {
		resp, body := e.get(t, "GET", path, "Range", "bytes=0-1,10-11")
		if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Contains(body, content[0:2]) || !bytes.Contains(body, content[10:12]) {
			t.Error("the parts are not in the body")
		}
	})

	// A replaced file gets a new ETag: a client holding the old one gets
	// the new content.
	t.Run("replaced", func(t *testing.T) {
		next := randomBytes(1000)
		tmp := filepath.Join(e.images, "deploy", ".vmlinuz.new")
		if err := os.WriteFile(tmp, next, 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		os.Chtimes(tmp, later, later)
		if err := os.Rename(tmp, filepath.Join(e.images, "deploy", "vmlinuz")); err != nil {
			t.Fatal(err)
		}
		resp, body := e.get(t, "GET", path, "If-None-Match", etag)
		if resp.StatusCode != 200 || !bytes.Equal(body, next) || resp.Header.Get("ETag") == etag {
			t.Errorf("status %d, ETag %q (was %q)", resp.StatusCode, resp.Header.Get("ETag"), etag)
		}
	})
	if got := metric(t, e.reg, "strata_httpboot_sent_bytes_total", "route", "image"); got < float64(len(content)) {
		t.Errorf("image bytes sent: %v", got)
	}
	if got := metric(t, e.reg, "strata_httpboot_requests_total", "route", "image", "code", "304"); got != 4 {
		t.Errorf("304s: got %v, want 4", got)
	}
}

// TestImagesCurl checks the same with curl, an independent client: a
// range, a conditional request, and a download resumed from a partial file.
func TestImagesCurl(t *testing.T) {
	curl := tool(t, "curl", "curl")
	e := newEnv(t, nil)
	content := randomBytes(5<<20 + 3)
	writeImage(t, e.images, "disk.img", content)
	url := e.srv.URL + "/images/disk.img"
	dir := t.TempDir()

	part, _, err := run(t, curl, "-sS", "--fail", "-r", "1000-1999", url)
	if err != nil || !bytes.Equal(part, content[1000:2000]) {
		t.Fatalf("curl -r: %v, %d bytes", err, len(part))
	}

	headers, _, err := run(t, curl, "-sS", "--fail", "-D", "-", "-o", filepath.Join(dir, "full"), url)
	if err != nil {
		t.Fatal(err)
	}
	etag := header(string(headers), "ETag")
	if etag == "" {
		t.Fatalf("no ETag in\n%s", headers)
	}
	out, _, err := run(t, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: "+etag, url)
	if err != nil || string(out) != "304" {
		t.Errorf("If-None-Match: %v %s, want 304", err, out)
	}
	// curl's own conditional download: -z with a file newer than the image.
	newer := filepath.Join(dir, "newer")
	os.WriteFile(newer, nil, 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(newer, later, later)
	out, _, err = run(t, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-z", newer, url)
	if err != nil || string(out) != "304" {
		t.Errorf("-z: %v %s, want 304", err, out)
	}

	// Resume: the first 2 MiB are there, curl fetches the rest.
	resumed := filepath.Join(dir, "resumed")
	os.WriteFile(resumed, content[:2<<20], 0o644)
	_, stderr, err := run(t, curl, "-sS", "--fail", "-C", "-", "-o", resumed, url)
	if err != nil {
		t.Fatalf("curl -C -: %v\n%s", err, stderr)
	}
	got, _ := os.ReadFile(resumed)
	if sha256.Sum256(got) != sha256.Sum256(content) {
		t.Errorf("the resumed download differs (%d bytes)", len(got))
	}
	if got := metric(t, e.reg, "strata_httpboot_requests_total", "route", "image", "code", "206"); got != 2 {
		t.Errorf("206s: got %v, want 2", got)
	}
}

func header(headers, name string) string {
	for _, l := range strings.Split(headers, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestImageEscapes: nothing outside the artifacts directory is served,
// whatever the path.
func TestImageEscapes(t *testing.T) {
	curl := tool(t, "curl", "curl")
	e := newEnv(t, nil)
	outside := t.TempDir()
	const secret = "SECRET-OUTSIDE-THE-IMAGES"
	os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o644)
	writeImage(t, e.images, "ok.img", []byte("fine"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(e.images, "link-out"))
	os.Symlink(outside, filepath.Join(e.images, "dir-out"))
	os.Mkdir(filepath.Join(e.images, "sub"), 0o755)
	// The secret's path relative to the images directory.
	rel, _ := filepath.Rel(e.images, filepath.Join(outside, "secret"))

	paths := []string{
		"/images/" + rel,
		"/images/../../../../../../etc/passwd",
		"/images/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/images/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
		"/images/" + strings.ReplaceAll(rel, "/", "%2f"),
		"/images//etc/passwd",
		"/images/%2fetc%2fpasswd",
		"/images/link-out",
		"/images/dir-out/secret",
		"/images/sub",
		"/images/",
		"/images/ok.img/..",
		"/images/ok.img%00.txt",
	}
	for _, p := range paths {
		out, _, err := run(t, curl, "-sS", "-L", "--path-as-is", "-o", "-", "-w", "\n%{http_code}", e.srv.URL+p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		i := strings.LastIndex(string(out), "\n")
		body, code := string(out[:i]), string(out[i+1:])
		if strings.Contains(string(out), secret) || strings.Contains(string(out), "root:x:0:0") {
			t.Errorf("%s: served what is outside the images", p)
		}
		if code == "200" || code == "500" {
			t.Errorf("%s: %s %q", p, code, body)
		}
		t.Logf("%s: %s", p, code)
	}
	if got := metric(t, e.reg, "strata_httpboot_errors_total", "reason", "denied"); got < 2 {
		t.Errorf("denied: got %v, want at least 2 (the links)", got)
	}
	resp, body := e.get(t, "GET", "/images/ok.img")
	if resp.StatusCode != 200 || string(body) != "fine" {
		t.Errorf("ok.img: %d %q", resp.StatusCode, body)
	}
}

// TestArtifactsFunc serves from a function, as a content-addressed store
// would be plugged in, with its own ETag.
func TestArtifactsFunc(t *testing.T) {
	blob := []byte("content-addressed")
	digest := fmt.Sprintf(`"sha256:%x"`, sha256.Sum256(blob))
	e := newEnv(t, func(c *httpboot.Config, _ string) {
		c.Artifacts = httpboot.ArtifactsFunc(func(_ context.Context, name string) (*httpboot.Artifact, error) {
			if name != "blobs/x" {
				return nil, fs.ErrNotExist
			}
			return &httpboot.Artifact{Content: nopCloser{bytes.NewReader(blob)}, ETag: digest}, nil
		})
	})
	resp, body := e.get(t, "GET", "/images/blobs/x")
	if resp.StatusCode != 200 || !bytes.Equal(body, blob) || resp.Header.Get("ETag") != digest {
		t.Fatalf("%d %q %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	if resp, _ := e.get(t, "GET", "/images/blobs/x", "If-None-Match", digest); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, "GET", "/images/blobs/y"); resp.StatusCode != 404 {
		t.Errorf("missing: %d", resp.StatusCode)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

var _ io.ReadSeekCloser = nopCloser{}
