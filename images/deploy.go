package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The names of the deploy kernel and ramdisk in an images directory, as
// the undercloud's provisioning.deploy_kernel and deploy_ramdisk name them.
const (
	DeployKernelName  = "deploy.kernel"
	DeployRamdiskName = "deploy.initramfs"
)

// Artifact is a file written to an images directory.
type Artifact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// InstallDeploy writes the deploy kernel (the Debian kernel as it is) and
// the deploy ramdisk built from k's modules and the agent into dir, each
// replaced atomically, so that a machine booting meanwhile gets the old
// file or the new one, never half of one.
func InstallDeploy(dir string, k Kernel, agent string) (kernel, ramdisk Artifact, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Artifact{}, Artifact{}, err
	}
	kernel, err = writeArtifact(dir, DeployKernelName, func(w io.Writer) error {
		f, err := os.Open(k.Vmlinuz())
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err != nil {
		return Artifact{}, Artifact{}, err
	}
	ramdisk, err = writeArtifact(dir, DeployRamdiskName, Ramdisk{Kernel: k, Init: agent}.Build)
	return kernel, ramdisk, err
}

// writeArtifact writes dir/name through a temporary file and a rename,
// hashing what it writes.
func writeArtifact(dir, name string, write func(io.Writer) error) (Artifact, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return Artifact{}, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := write(cw); err != nil {
		tmp.Close()
		return Artifact{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Artifact{}, err
	}
	if err := tmp.Close(); err != nil {
		return Artifact{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return Artifact{}, err
	}
	return Artifact{Name: name, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
