package node

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratacloud/strata/roles"
)

// RunnerConfig configures the node runner.
type RunnerConfig struct {
	// StateDir holds the unpacked images (images/HEX/rootfs) and the
	// services' logs (logs/NAME.log).
	StateDir   string
	Supervisor SupervisorConfig
	Logger     *slog.Logger
	// ReportInterval is how often the services are reported to the
	// undercloud (when the config names one and a credential). Default
	// DefaultReportInterval.
	ReportInterval time.Duration
}

// Run pulls each service's image by its digest (once: an image unpacked
// before is used as it is), then supervises the services until ctx
// ends. A service runs its image's entrypoint, from the unpacked tree,
// with its args.
func Run(ctx context.Context, c Config, rc RunnerConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	log := rc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(rc.StateDir, "logs"), 0o755); err != nil {
		return err
	}
	expand, err := writeTLS(c, rc.StateDir)
	if err != nil {
		return err
	}
	var services []Service
	for _, s := range c.Services {
		root, entrypoint, err := pull(ctx, s.Image, filepath.Join(rc.StateDir, "images"))
		if err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		if len(entrypoint) == 0 {
			return fmt.Errorf("service %s: image %s has no entrypoint", s.Name, s.Image)
		}
		logf, err := os.OpenFile(filepath.Join(rc.StateDir, "logs", s.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := append([]string{filepath.Join(root, entrypoint[0])}, entrypoint[1:]...)
		services = append(services, Service{
			Name: s.Name, Command: append(cmd, expandAll(expand, s.Args)...), Env: expandAll(expand, s.Env), After: s.After, Log: logf,
			Health: Health{HTTP: s.HealthHTTP, TCP: s.HealthTCP},
		})
		log.Info("service image ready", "service", s.Name, "image", s.Image)
	}
	scfg := rc.Supervisor
	scfg.Logger = log
	sup, err := New(scfg, services)
	if err != nil {
		return err
	}
	if c.Undercloud != "" && c.Credential != "" {
		interval := rc.ReportInterval
		if interval <= 0 {
			interval = DefaultReportInterval
		}
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go reportLoop(rctx, c, sup, interval, log)
	}
	return sup.Run(ctx)
}

// pull unpacks the image ref (pinned by digest) under dir/HEX/rootfs,
// unless it is there already, and returns the tree and the entrypoint.
func pull(ctx context.Context, ref, dir string) (string, []string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", nil, fmt.Errorf("image %q: %w", ref, err)
	}
	d, ok := r.(name.Digest)
	if !ok {
		return "", nil, fmt.Errorf("image %q is not pinned by digest", ref)
	}
	hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
	root := filepath.Join(dir, hex, "rootfs")
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return "", nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	entrypoint := append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...)
	if _, err := os.Stat(root); err == nil {
		return root, entrypoint, nil
	}
	tmp := filepath.Join(dir, hex, "rootfs.partial")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", nil, err
	}
	rc := mutate.Extract(img) // layers flattened; the registry's digests are checked as they are read
	defer rc.Close()
	if err := untar(rc, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("unpacking %s: %w", ref, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", nil, err
	}
	return root, entrypoint, nil
}

// untar writes the regular files, directories and symlinks of a tar
// under dir; a name that would land outside dir is refused.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%q would be written outside the image's tree", h.Name)
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), h.Linkname)) {
				return fmt.Errorf("symlink %q points outside the image's tree", h.Name)
			}
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		}
	}
}

// writeTLS writes the node's TLS files (when its config has them) under
// STATE_DIR/tls, the key readable by root alone, and returns the
// replacer of the placeholders services' args and env may hold.
func writeTLS(c Config, stateDir string) (*strings.Replacer, error) {
	dir := filepath.Join(stateDir, "tls")
	paths := map[string]string{"ca": filepath.Join(dir, "ca.pem"), "cert": filepath.Join(dir, "cert.pem"), "key": filepath.Join(dir, "key.pem")}
	r := strings.NewReplacer(roles.PlaceholderTLSCA, paths["ca"], roles.PlaceholderTLSCert, paths["cert"],
		roles.PlaceholderTLSKey, paths["key"], roles.PlaceholderStateDir, stateDir)
	if c.TLS == nil {
		return r, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for name, data := range map[string]string{"ca": c.TLS.CA, "cert": c.TLS.Cert, "key": c.TLS.Key} {
		if err := os.WriteFile(paths[name], []byte(data), 0o600); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	return r, nil
}

func expandAll(r *strings.Replacer, in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = r.Replace(s)
	}
	return out
}
