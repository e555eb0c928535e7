package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ServiceImage is an overcloud service as an OCI image: one layer with
// the static overcloud binary, run as `overcloud run SERVICE`. Every
// service of a version shares that layer, so a node pulls the binary
// once whatever its role runs.
type ServiceImage struct {
	// Service is the overcloud service ("identity", ...).
	Service string
	// Binary is the static overcloud binary.
	Binary string
	// Version tags the image and is its version label.
	Version string
}

// ServiceBinaryPath is where a service image holds the overcloud binary.
const ServiceBinaryPath = "/usr/bin/overcloud"

// serviceEpoch stamps every file and the image itself: the same binary
// and version give the same digest.
var serviceEpoch = time.Unix(0, 0).UTC()

// Build returns the image.
func (s ServiceImage) Build() (v1.Image, error) {
	if s.Service == "" || s.Version == "" {
		return nil, fmt.Errorf("service image: a service and a version are required")
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("service image: the overcloud binary: %w", err)
	}
	layerTar, err := binaryLayer(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: serviceEpoch}, CreatedBy: "strata container image build", Comment: "the overcloud binary",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: serviceEpoch}
	cfg.Config = v1.Config{
		Entrypoint: []string{ServiceBinaryPath, "run", s.Service},
		Env:        []string{"PATH=/usr/bin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "strata-" + s.Service,
			"org.opencontainers.image.version": s.Version,
			ServiceLabel:                       s.Service,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// ServiceLabel names the service an image runs.
const ServiceLabel = "org.stratacloud.service"

// binaryLayer is a tar of the binary at ServiceBinaryPath, with its
// directories, every header fixed.
func binaryLayer(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"usr/", "usr/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: serviceEpoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ServiceBinaryPath[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: serviceEpoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
