// Package registry is the undercloud's OCI registry (port 8787, as
// TripleO's): the overcloud's service images are pushed to it and its
// nodes pull them by digest. It speaks the OCI distribution API (the
// Docker registry v2 API): blobs (monolithic and chunked uploads,
// cross-repository mounts, range reads), manifests by tag and by digest
// (OCI image manifests and indexes, Docker schema 2 manifests and lists),
// tag lists and the catalog.
//
// Blobs live in a content-addressed store, shared by every repository;
// what a repository holds (its manifests and tags) is kept beside it in
// small files, each written atomically and synced before the request is
// answered. Reads need no credential; writes go through Config.Authorize.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacloud/strata/images/blob"
)

// Config configures a registry.
type Config struct {
	// Dir holds the blobs and the repositories. Required.
	Dir string
	// Authorize checks a request that writes (a push or a delete); nil
	// allows every write. Its error is answered with 401 and a
	// WWW-Authenticate challenge for HTTP basic credentials.
	Authorize func(*http.Request) error
	// Logger receives the registry's log; nil discards it.
	Logger *slog.Logger
	// UploadTimeout is how long a chunked upload may sit idle before it
	// is dropped with its data. Default DefaultUploadTimeout.
	UploadTimeout time.Duration
	// MaxUploads bounds the chunked uploads in progress. Default
	// DefaultMaxUploads.
	MaxUploads int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultUploadTimeout = time.Hour
	DefaultMaxUploads    = 256
)

// Registry serves the distribution API.
type Registry struct {
	cfg   Config
	blobs *blob.Store
	log   *slog.Logger

	mu      sync.Mutex
	uploads map[string]*upload
	// repoMu serializes the changes to one repository's tags.
	repoMu sync.Mutex
}

// upload is a blob being pushed in chunks: a file under the store's
// temporary directory that grows with each PATCH.
type upload struct {
	mu   sync.Mutex
	repo string
	dir  string
	path string
	size int64
	// touched is when a request last used the upload (under the
	// registry's mu).
	touched time.Time
}

// New opens (or creates) a registry in cfg.Dir. Uploads in progress when
// a previous registry stopped are dropped: clients start them again.
func New(cfg Config) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("registry: Dir is required")
	}
	store, err := blob.New(filepath.Join(cfg.Dir, "blobs"))
	if err != nil {
		return nil, err
	}
	if err := store.RemoveTemps(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Registry{cfg: cfg, blobs: store, log: log, uploads: map[string]*upload{}}, nil
}

// maxManifest bounds a manifest's size, as other registries do.
const maxManifest = 4 << 20

var (
	// A repository name: path components of lower-case letters and
	// digits, separated by '.', '_', "__" or dashes.
	repoName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagName  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// ServeHTTP routes /v2/ requests. Repository names contain slashes, so
// the path is split at its last "/blobs/", "/manifests/" or "/tags/list".
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok && r.URL.Path != "/v2" {
		writeError(w, r, errorf(http.StatusNotFound, codeUnsupported, "%s is not a registry path (they start with /v2/)", r.URL.Path))
		return
	}
	if write := r.Method != http.MethodGet && r.Method != http.MethodHead; write && g.cfg.Authorize != nil {
		if err := g.cfg.Authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="strata registry"`)
			writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized, "%v", err))
			return
		}
	}
	var err *apiError
	switch {
	case rest == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s /v2/", r.Method)
			break
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	case rest == "_catalog":
		err = g.catalog(w, r)
	case strings.HasSuffix(rest, "/tags/list"):
		err = g.withRepo(strings.TrimSuffix(rest, "/tags/list"), func(repo string) *apiError { return g.tags(w, r, repo) })
	case strings.Contains(rest, "/blobs/uploads/") || strings.HasSuffix(rest, "/blobs/uploads"):
		i := strings.LastIndex(rest+"/", "/blobs/uploads/")
		id := strings.TrimPrefix(strings.TrimPrefix(rest[i:], "/blobs/uploads"), "/")
		err = g.withRepo(rest[:i], func(repo string) *apiError { return g.uploadRequest(w, r, repo, id) })
	case strings.Contains(rest, "/blobs/"):
		i := strings.LastIndex(rest, "/blobs/")
		err = g.withRepo(rest[:i], func(repo string) *apiError { return g.blob(w, r, repo, rest[i+len("/blobs/"):]) })
	case strings.Contains(rest, "/manifests/"):
		i := strings.LastIndex(rest, "/manifests/")
		err = g.withRepo(rest[:i], func(repo string) *apiError { return g.manifest(w, r, repo, rest[i+len("/manifests/"):]) })
	default:
		err = errorf(http.StatusNotFound, codeUnsupported, "/v2/%s is not a registry path", rest)
	}
	if err != nil {
		g.log.Debug("registry request refused", "method", r.Method, "path", r.URL.Path, "code", err.code, "err", err.message)
		writeError(w, r, err)
	}
}

func (g *Registry) withRepo(name string, fn func(string) *apiError) *apiError {
	if len(name) > 255 || !repoName.MatchString(name) {
		return errorf(http.StatusBadRequest, codeNameInvalid, "%q is not a repository name (lower-case letters and digits in path components, separated by '.', '_' or '-')", name)
	}
	return fn(name)
}

// ---- blobs

func parseDigest(d string) (string, *apiError) {
	hex, err := blob.ParseDigest(d)
	if err != nil {
		return "", errorf(http.StatusBadRequest, codeDigestInvalid, "%q is not a sha256 digest", d)
	}
	return hex, nil
}

func (g *Registry) blob(w http.ResponseWriter, r *http.Request, repo, digest string) *apiError {
	if _, err := parseDigest(digest); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete:
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "blobs are shared by every repository here and are not deleted one by one")
	default:
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of a blob", r.Method)
	}
	f, err := g.blobs.Open(digest)
	if errors.Is(err, blob.ErrNotFound) {
		return errorf(http.StatusNotFound, codeBlobUnknown, "blob %s is not in this registry", digest)
	}
	if err != nil {
		return errorf(http.StatusInternalServerError, codeUnsupported, "%v", err)
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+digest+`"`)
	w.Header().Set("Cache-Control", "max-age=31536000") // content-addressed
	http.ServeContent(w, r, "", zeroTime, f)
	return nil
}

func (g *Registry) uploadRequest(w http.ResponseWriter, r *http.Request, repo, id string) *apiError {
	if id == "" {
		if r.Method != http.MethodPost {
			return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of the uploads endpoint (POST starts an upload)", r.Method)
		}
		return g.startUpload(w, r, repo)
	}
	g.mu.Lock()
	up := g.uploads[id]
	if up != nil {
		up.touched = g.cfg.Now()
	}
	g.mu.Unlock()
	if up == nil || up.repo != repo {
		return errorf(http.StatusNotFound, codeBlobUploadUnknown, "no upload %q in progress for %s", id, repo)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		g.uploadStatus(w, repo, id, up, http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if cr := r.Header.Get("Content-Range"); cr != "" {
			start, _, ok := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
			if n, err := strconv.ParseInt(start, 10, 64); !ok || err != nil || n != up.size {
				w.Header().Set("Range", uploadRange(up.size))
				return errorf(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "the chunk's Content-Range %q does not start at %d, where the upload is", cr, up.size)
			}
		}
		if err := up.append(r.Body); err != nil {
			return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
		}
		g.uploadStatus(w, repo, id, up, http.StatusAccepted)
		return nil
	case http.MethodPut:
		if err := up.append(r.Body); err != nil {
			return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
		}
		defer g.dropUpload(id)
		return g.commit(w, r, repo, up.path)
	case http.MethodDelete:
		g.dropUpload(id)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of an upload", r.Method)
}

func (g *Registry) startUpload(w http.ResponseWriter, r *http.Request, repo string) *apiError {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		// Blobs are shared: a mount of a blob this registry has is done.
		if _, err := parseDigest(mount); err == nil {
			if ok, _ := g.blobs.Has(mount); ok {
				w.Header().Set("Location", "/v2/"+repo+"/blobs/"+mount)
				w.Header().Set("Docker-Content-Digest", mount)
				w.WriteHeader(http.StatusCreated)
				return nil
			}
		}
	}
	monolithic := q.Get("digest") != ""
	if !monolithic && !g.roomForUpload() {
		return errorf(http.StatusTooManyRequests, codeTooManyRequests, "%d uploads are in progress, the most this registry takes; try again later", g.cfg.MaxUploads)
	}
	dir, err := g.blobs.MkdirTemp("upload-")
	if err != nil {
		return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
	}
	up := &upload{repo: repo, dir: dir, path: filepath.Join(dir, "data"), touched: g.cfg.Now()}
	f, err := os.Create(up.path)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		os.RemoveAll(dir)
		return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
	}
	if monolithic { // the whole blob in this request
		defer os.RemoveAll(dir)
		if err := up.append(r.Body); err != nil {
			return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
		}
		return g.commit(w, r, repo, up.path)
	}
	id := randomID()
	g.mu.Lock()
	g.uploads[id] = up
	g.mu.Unlock()
	g.uploadStatus(w, repo, id, up, http.StatusAccepted)
	return nil
}

// commit stores the uploaded file as the blob the request's digest names.
func (g *Registry) commit(w http.ResponseWriter, r *http.Request, repo, path string) *apiError {
	digest := r.URL.Query().Get("digest")
	hex, aerr := parseDigest(digest)
	if aerr != nil {
		return aerr
	}
	b, err := g.blobs.PutTempExpect(r.Context(), path, hex)
	var mismatch *blob.MismatchError
	switch {
	case errors.As(err, &mismatch):
		return errorf(http.StatusBadRequest, codeDigestInvalid, "the uploaded content is %s, not %s", mismatch.Got, digest)
	case err != nil:
		return errorf(http.StatusInternalServerError, codeBlobUploadInvalid, "%v", err)
	}
	g.log.Info("blob pushed", "repository", repo, "digest", b.Digest, "size", b.Size)
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+b.Digest)
	w.Header().Set("Docker-Content-Digest", b.Digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (g *Registry) uploadStatus(w http.ResponseWriter, repo, id string, up *upload, status int) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", uploadRange(up.size))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func uploadRange(size int64) string { return fmt.Sprintf("0-%d", max(size-1, 0)) }

// roomForUpload drops the uploads idle for longer than UploadTimeout
// (their clients are gone) and reports whether another may start.
func (g *Registry) roomForUpload() bool {
	now := g.cfg.Now()
	g.mu.Lock()
	var stale []*upload
	for id, up := range g.uploads {
		if now.Sub(up.touched) > g.cfg.UploadTimeout {
			stale = append(stale, up)
			delete(g.uploads, id)
		}
	}
	room := len(g.uploads) < g.cfg.MaxUploads
	g.mu.Unlock()
	for _, up := range stale {
		up.mu.Lock() // a request in flight on it finishes first
		os.RemoveAll(up.dir)
		up.mu.Unlock()
		g.log.Info("upload dropped: idle too long", "repository", up.repo, "bytes", up.size)
	}
	return room
}

func (g *Registry) dropUpload(id string) {
	g.mu.Lock()
	up := g.uploads[id]
	delete(g.uploads, id)
	g.mu.Unlock()
	if up != nil {
		os.RemoveAll(up.dir)
	}
}

func (u *upload) append(body io.Reader) error {
	f, err := os.OpenFile(u.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, body)
	u.size += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- repositories: manifests and tags on disk

func (g *Registry) repoDir(repo string) string {
	return filepath.Join(g.cfg.Dir, "repos", filepath.FromSlash(repo))
}

// The files of a repository: _manifests/HEX holds a manifest's media
// type, _tags/TAG the digest it names. The leading underscore keeps them
// apart from nested repositories, whose components can not start with one.
func (g *Registry) manifestFile(repo, hex string) string {
	return filepath.Join(g.repoDir(repo), "_manifests", hex)
}

func (g *Registry) tagFile(repo, tag string) string {
	return filepath.Join(g.repoDir(repo), "_tags", tag)
}

func (g *Registry) tags(w http.ResponseWriter, r *http.Request, repo string) *apiError {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of a tag list", r.Method)
	}
	if _, err := os.Stat(filepath.Join(g.repoDir(repo), "_manifests")); err != nil {
		return errorf(http.StatusNotFound, codeNameUnknown, "repository %s is not in this registry", repo)
	}
	entries, _ := os.ReadDir(filepath.Join(g.repoDir(repo), "_tags"))
	var tags []string
	for _, e := range entries {
		if tagName.MatchString(e.Name()) {
			tags = append(tags, e.Name())
		}
	}
	return page(w, r, "/v2/"+repo+"/tags/list", tags, func(items []string) any {
		return map[string]any{"name": repo, "tags": items}
	})
}

func (g *Registry) catalog(w http.ResponseWriter, r *http.Request) *apiError {
	if r.Method != http.MethodGet {
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of the catalog", r.Method)
	}
	root := filepath.Join(g.cfg.Dir, "repos")
	var repos []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == "_manifests" {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			repos = append(repos, filepath.ToSlash(rel))
			return filepath.SkipDir
		}
		if strings.HasPrefix(d.Name(), "_") {
			return filepath.SkipDir
		}
		return nil
	})
	return page(w, r, "/v2/_catalog", repos, func(items []string) any {
		return map[string]any{"repositories": items}
	})
}

// page answers with the sorted items after ?last=, at most ?n= of them,
// and a Link header to the next page when there is one.
func page(w http.ResponseWriter, r *http.Request, path string, items []string, body func([]string) any) *apiError {
	sort.Strings(items)
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(items, last)
		for i < len(items) && items[i] <= last {
			i++
		}
		items = items[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, codeUnsupported, "n=%q is not a count", ns)
		}
		if n < len(items) {
			items = items[:n]
			if n > 0 {
				w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d&last=%s>; rel="next"`, path, n, items[n-1]))
			}
		}
	}
	if items == nil {
		items = []string{}
	}
	writeJSON(w, body(items))
	return nil
}
