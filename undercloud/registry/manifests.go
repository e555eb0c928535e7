package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stratacloud/strata/images/blob"
)

var zeroTime time.Time

// The manifest media types this registry stores.
const (
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isIndex(mt string) bool { return mt == mediaOCIIndex || mt == mediaDockerList }

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type manifestBody struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
}

func (g *Registry) manifest(w http.ResponseWriter, r *http.Request, repo, ref string) *apiError {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return g.getManifest(w, r, repo, ref)
	case http.MethodPut:
		return g.putManifest(w, r, repo, ref)
	case http.MethodDelete:
		return g.deleteManifest(w, repo, ref)
	}
	return errorf(http.StatusMethodNotAllowed, codeUnsupported, "%s of a manifest", r.Method)
}

// Resolve returns the digest of the manifest that ref (a tag or a
// digest) names in repo, for those that pin images by digest; the error
// names what is missing.
func (g *Registry) Resolve(repo, ref string) (string, error) {
	if !repoName.MatchString(repo) {
		return "", fmt.Errorf("%q is not a repository name", repo)
	}
	digest, _, aerr := g.resolve(repo, ref)
	if aerr != nil {
		return "", errors.New(aerr.message)
	}
	return digest, nil
}

// resolve finds the digest a tag or digest reference names in repo.
func (g *Registry) resolve(repo, ref string) (digest, mediaType string, aerr *apiError) {
	digest = ref
	if !strings.HasPrefix(ref, blob.Algorithm) {
		if !tagName.MatchString(ref) {
			return "", "", errorf(http.StatusBadRequest, codeManifestInvalid, "%q is neither a tag nor a sha256 digest", ref)
		}
		b, err := os.ReadFile(g.tagFile(repo, ref))
		if err != nil {
			return "", "", errorf(http.StatusNotFound, codeManifestUnknown, "%s has no tag %s", repo, ref)
		}
		digest = strings.TrimSpace(string(b))
	}
	hex, aerr := parseDigest(digest)
	if aerr != nil {
		return "", "", aerr
	}
	mt, err := os.ReadFile(g.manifestFile(repo, hex))
	if err != nil {
		return "", "", errorf(http.StatusNotFound, codeManifestUnknown, "%s has no manifest %s", repo, digest)
	}
	return digest, string(mt), nil
}

func (g *Registry) getManifest(w http.ResponseWriter, r *http.Request, repo, ref string) *apiError {
	digest, mt, aerr := g.resolve(repo, ref)
	if aerr != nil {
		return aerr
	}
	f, err := g.blobs.Open(digest)
	if err != nil {
		return errorf(http.StatusNotFound, codeManifestUnknown, "manifest %s: %v", digest, err)
	}
	defer f.Close()
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("ETag", `"`+digest+`"`)
	http.ServeContent(w, r, "", zeroTime, f)
	return nil
}

// putManifest stores a manifest once everything it refers to is here:
// an image's config and layers, an index's manifests (in repo).
func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) *apiError {
	isDigest := strings.HasPrefix(ref, blob.Algorithm)
	if !isDigest && !tagName.MatchString(ref) {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "%q is neither a tag nor a sha256 digest", ref)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "%v", err)
	}
	if len(data) > maxManifest {
		return errorf(http.StatusRequestEntityTooLarge, codeSizeInvalid, "a manifest may be at most %d bytes", maxManifest)
	}
	var m manifestBody
	if err := json.Unmarshal(data, &m); err != nil {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "not JSON: %v", err)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mt := m.MediaType
	if mt == "" {
		mt = ct
	}
	if m.MediaType != "" && ct != "" && ct != m.MediaType {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "Content-Type %s is not the manifest's mediaType %s", ct, m.MediaType)
	}
	if m.SchemaVersion != 2 {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "schemaVersion %d: only 2 is supported", m.SchemaVersion)
	}
	switch mt {
	case mediaOCIManifest, mediaDockerManifest:
		if m.Config == nil {
			return errorf(http.StatusBadRequest, codeManifestInvalid, "an image manifest needs a config")
		}
		for _, d := range append([]descriptor{*m.Config}, m.Layers...) {
			if aerr := g.checkBlob(d); aerr != nil {
				return aerr
			}
		}
	case mediaOCIIndex, mediaDockerList:
		for _, d := range m.Manifests {
			hex, aerr := parseDigest(d.Digest)
			if aerr != nil {
				return errorf(http.StatusBadRequest, codeManifestInvalid, "manifests: %s", aerr.message)
			}
			if _, err := os.Stat(g.manifestFile(repo, hex)); err != nil {
				return errorf(http.StatusBadRequest, codeManifestBlobUnknown, "the index names manifest %s, which %s does not have: push it first", d.Digest, repo)
			}
		}
	default:
		return errorf(http.StatusBadRequest, codeManifestInvalid, "media type %q is not one of %s, %s, %s, %s", mt, mediaOCIManifest, mediaOCIIndex, mediaDockerManifest, mediaDockerList)
	}

	b, err := g.blobs.Put(r.Context(), bytes.NewReader(data))
	if err != nil {
		return errorf(http.StatusInternalServerError, codeManifestInvalid, "%v", err)
	}
	if isDigest && ref != b.Digest {
		return errorf(http.StatusBadRequest, codeDigestInvalid, "the manifest is %s, not %s", b.Digest, ref)
	}
	g.repoMu.Lock()
	defer g.repoMu.Unlock()
	if err := blob.WriteFileSync(g.manifestFile(repo, b.Hex()), []byte(mt)); err != nil {
		return errorf(http.StatusInternalServerError, codeManifestInvalid, "%v", err)
	}
	if !isDigest {
		if err := blob.WriteFileSync(g.tagFile(repo, ref), []byte(b.Digest+"\n")); err != nil {
			return errorf(http.StatusInternalServerError, codeManifestInvalid, "%v", err)
		}
	}
	g.log.Info("manifest pushed", "repository", repo, "reference", ref, "digest", b.Digest, "media_type", mt)
	w.Header().Set("Location", "/v2/"+repo+"/manifests/"+b.Digest)
	w.Header().Set("Docker-Content-Digest", b.Digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkBlob checks that a manifest's config or layer is here, with the
// size the manifest says.
func (g *Registry) checkBlob(d descriptor) *apiError {
	if _, aerr := parseDigest(d.Digest); aerr != nil {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "a descriptor's digest: %s", aerr.message)
	}
	b, err := g.blobs.Stat(d.Digest)
	if errors.Is(err, blob.ErrNotFound) {
		return errorf(http.StatusBadRequest, codeManifestBlobUnknown, "blob %s is not in this registry: push it before the manifest", d.Digest)
	}
	if err != nil {
		return errorf(http.StatusInternalServerError, codeManifestInvalid, "%v", err)
	}
	if b.Size != d.Size {
		return errorf(http.StatusBadRequest, codeSizeInvalid, "blob %s is %d bytes, the manifest says %d", d.Digest, b.Size, d.Size)
	}
	return nil
}

// deleteManifest removes a tag, or a manifest (by digest) with every tag
// that names it. The blobs stay: other manifests may share them.
func (g *Registry) deleteManifest(w http.ResponseWriter, repo, ref string) *apiError {
	g.repoMu.Lock()
	defer g.repoMu.Unlock()
	digest, _, aerr := g.resolve(repo, ref)
	if aerr != nil {
		return aerr
	}
	if !strings.HasPrefix(ref, blob.Algorithm) {
		if err := os.Remove(g.tagFile(repo, ref)); err != nil {
			return errorf(http.StatusInternalServerError, codeManifestUnknown, "%v", err)
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	entries, _ := os.ReadDir(g.tagFile(repo, "."))
	for _, e := range entries {
		if b, err := os.ReadFile(g.tagFile(repo, e.Name())); err == nil && strings.TrimSpace(string(b)) == digest {
			os.Remove(g.tagFile(repo, e.Name()))
		}
	}
	hex, _ := parseDigest(digest)
	if err := os.Remove(g.manifestFile(repo, hex)); err != nil {
		return errorf(http.StatusInternalServerError, codeManifestUnknown, "%v", err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
