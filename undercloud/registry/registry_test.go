package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/stratacloud/strata/undercloud/registry"
)

func start(t *testing.T, authorize func(*http.Request) error) (string, string) {
	t.Helper()
	dir := t.TempDir()
	g, err := registry.New(registry.Config{Dir: dir, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), dir
}

// TestPushPullGoContainerRegistry pushes images and an index with
// go-containerregistry's client (chunked and monolithic uploads, mounts)
// and pulls them back by tag and by digest.
func TestPushPullGoContainerRegistry(t *testing.T) {
	host, _ := start(t, nil)
	img, err := random.Image(3<<20, 3) // three layers of 3 MiB
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/strata/identity:1.0", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, pushed %s", d, want)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc) // the client checks each layer's digest as it reads
		rc.Close()
		if err != nil || n == 0 {
			t.Errorf("layer: %d bytes, %v", n, err)
		}
	}
	byDigest, _ := name.ParseReference(host+"/strata/identity@"+want.String(), name.Insecure)
	if _, err := remote.Image(byDigest); err != nil {
		t.Errorf("by digest: %v", err)
	}

	// The same image in a second repository: its layers are mounted.
	other, _ := name.ParseReference(host+"/strata/compute:1.0", name.Insecure)
	if err := remote.Write(other, img); err != nil {
		t.Fatal(err)
	}
	// An index of two images.
	img2, _ := random.Image(1024, 1)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img}, mutate.IndexAddendum{Add: img2})
	idxRef, _ := name.ParseReference(host+"/strata/identity:multi", name.Insecure)
	if err := remote.WriteIndex(idxRef, idx); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Index(idxRef); err != nil {
		t.Errorf("index: %v", err)
	}
	tags, err := remote.List(ref.Context())
	if err != nil || strings.Join(tags, ",") != "1.0,multi" {
		t.Errorf("tags %v, %v", tags, err)
	}
	cat, err := remote.Catalog(t.Context(), ref.Context().Registry)
	if err != nil || strings.Join(cat, ",") != "strata/compute,strata/identity" {
		t.Errorf("catalog %v, %v", cat, err)
	}
	// Deleting a tag leaves the manifest, by digest.
	if err := remote.Delete(idxRef); err != nil {
		t.Fatal(err)
	}
	if tags, _ := remote.List(ref.Context()); strings.Join(tags, ",") != "1.0" {
		t.Errorf("tags after the delete: %v", tags)
	}
}

// TestSkopeo copies an image into the registry and back out with skopeo,
// an independent client (Debian's, on containers/image).
func TestSkopeo(t *testing.T) {
	host, _ := start(t, nil)
	src := t.TempDir()
	img, _ := random.Image(1<<20, 2)
	layout := filepath.Join(src, "img")
	ref, _ := name.ParseReference(host+"/seed/img:1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	skopeo := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s (make deps installs skopeo)", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	skopeo("copy", "--src-tls-verify=false", "docker://"+host+"/seed/img:1", "dir:"+layout)
	skopeo("copy", "--dest-tls-verify=false", "dir:"+layout, "docker://"+host+"/copied/by-skopeo:v2")
	out := skopeo("inspect", "--tls-verify=false", "docker://"+host+"/copied/by-skopeo:v2")
	var info struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Layers) != 2 {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	tags := skopeo("list-tags", "--tls-verify=false", "docker://"+host+"/copied/by-skopeo")
	if !strings.Contains(tags, `"v2"`) {
		t.Errorf("list-tags: %s", tags)
	}
	pulled := filepath.Join(src, "back")
	skopeo("copy", "--src-tls-verify=false", "docker://"+host+"/copied/by-skopeo:v2", "dir:"+pulled)
	for _, l := range info.Layers {
		a, _ := os.ReadFile(filepath.Join(layout, strings.TrimPrefix(l, "sha256:")))
		b, _ := os.ReadFile(filepath.Join(pulled, strings.TrimPrefix(l, "sha256:")))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("layer %s did not round-trip", l)
		}
	}
}

func do(t *testing.T, method, url string, body io.Reader, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func code(t *testing.T, resp *http.Response) string {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code + ": " + e.Errors[0].Message
}

// TestBadInput: each refusal carries the specification's code and a
// message, and stores nothing.
func TestBadInput(t *testing.T) {
	host, dir := start(t, nil)
	base := "http://" + host
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     string
	}{
		{"bad name", "GET", "/v2/Bad_Name/tags/list", "", nil, 400, "NAME_INVALID"},
		{"unknown repo", "GET", "/v2/nope/tags/list", "", nil, 404, "NAME_UNKNOWN"},
		{"unknown blob", "GET", "/v2/x/blobs/sha256:" + strings.Repeat("0", 64), "", nil, 404, "BLOB_UNKNOWN"},
		{"bad digest", "GET", "/v2/x/blobs/md5:abc", "", nil, 400, "DIGEST_INVALID"},
		{"wrong digest", "POST", "/v2/x/blobs/uploads/?digest=sha256:" + strings.Repeat("0", 64), "data", nil, 400, "DIGEST_INVALID"},
		{"unknown upload", "PATCH", "/v2/x/blobs/uploads/nope", "data", nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"manifest not JSON", "PUT", "/v2/x/manifests/1", "{", []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "MANIFEST_INVALID"},
		{"manifest's blob missing", "PUT", "/v2/x/manifests/1", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2},"layers":[]}`, []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"schema 1", "PUT", "/v2/x/manifests/1", `{"schemaVersion":1}`, []string{"Content-Type", "application/vnd.docker.distribution.manifest.v1+json"}, 400, "MANIFEST_INVALID"},
		{"bad tag", "PUT", "/v2/x/manifests/-tag", `{}`, nil, 400, "MANIFEST_INVALID"},
		{"unknown manifest", "GET", "/v2/x/manifests/latest", "", nil, 404, "MANIFEST_UNKNOWN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, c.method, base+c.path, strings.NewReader(c.body), c.header...)
			if got := code(t, resp); resp.StatusCode != c.status || !strings.HasPrefix(got, c.want) {
				t.Errorf("%d %q, want %d %s", resp.StatusCode, got, c.status, c.want)
			}
		})
	}
	// A chunk that does not start where the upload is.
	resp := do(t, "POST", base+"/v2/x/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, loc)
	}
	do(t, "PATCH", base+loc, strings.NewReader("abc"), "Content-Range", "0-2")
	resp = do(t, "PATCH", base+loc, strings.NewReader("def"), "Content-Range", "10-12")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Range") != "0-2" {
		t.Errorf("an out-of-order chunk: %d, Range %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) != 0 {
		t.Errorf("refused requests stored %d blobs", len(entries))
	}
}

func TestWritesNeedCredentials(t *testing.T) {
	host, _ := start(t, func(r *http.Request) error {
		if u, p, ok := r.BasicAuth(); ok && u == "admin" && p == "secret" {
			return nil
		}
		return errors.New("pushing needs the registry's credentials")
	})
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(host+"/a/b:1", name.Insecure)
	err := remote.Write(ref, img)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an anonymous push: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	// Pulls are open.
	if _, err := remote.Image(ref); err != nil {
		t.Error(err)
	}
	var _ v1.Image = img
}

// TestAbandonedUploads: an upload left idle past UploadTimeout is dropped
// with its data when another starts, and no more than MaxUploads are in
// progress at once.
func TestAbandonedUploads(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g, err := registry.New(registry.Config{Dir: dir, UploadTimeout: time.Hour, MaxUploads: 2, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	startUpload := func() *http.Response { return do(t, "POST", srv.URL+"/v2/x/blobs/uploads/", nil) }
	first := startUpload()
	do(t, "PATCH", srv.URL+first.Header.Get("Location"), strings.NewReader("abandoned data"))
	second := startUpload()
	if first.StatusCode != 202 || second.StatusCode != 202 {
		t.Fatalf("starts: %d %d", first.StatusCode, second.StatusCode)
	}
	// Full: a third is refused, naming the limit.
	if resp := startUpload(); resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(code(t, resp), "TOOMANYREQUESTS") {
		t.Errorf("a third upload: %d", resp.StatusCode)
	}
	temps := func() int {
		n := 0
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "upload-") {
				n++
			}
			return nil
		})
		return n
	}
	if n := temps(); n != 2 {
		t.Fatalf("%d upload directories, want 2", n)
	}
	// The second is used 40 minutes later; at 70 minutes the first has
	// been idle too long and goes, the second stays.
	mu.Lock()
	now = now.Add(40 * time.Minute)
	mu.Unlock()
	do(t, "PATCH", srv.URL+second.Header.Get("Location"), strings.NewReader("alive"))
	mu.Lock()
	now = now.Add(30 * time.Minute)
	mu.Unlock()
	if resp := startUpload(); resp.StatusCode != 202 {
		t.Fatalf("an upload after the first expired: %d", resp.StatusCode)
	}
	if n := temps(); n != 2 {
		t.Errorf("%d upload directories after the sweep, want 2 (the second and the new one)", n)
	}
	if resp := do(t, "GET", srv.URL+first.Header.Get("Location"), nil); resp.StatusCode != 404 {
		t.Errorf("the expired upload: %d", resp.StatusCode)
	}
	if resp := do(t, "GET", srv.URL+second.Header.Get("Location"), nil); resp.StatusCode != 204 || resp.Header.Get("Range") != "0-4" {
		t.Errorf("the live upload: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
}
