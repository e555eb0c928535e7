package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/images"
)

// The container image commands talk to the undercloud's OCI registry
// (registry.listen in its config), named by --registry or
// STRATA_REGISTRY; pushes carry OS_USERNAME and OS_PASSWORD as HTTP basic
// credentials when they are set.

func newContainerCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("container", "The overcloud's service images in the undercloud's registry",
		`Every overcloud service runs from an OCI image that the undercloud's
registry (port 8787, as TripleO's) serves to the overcloud's nodes.`)
	img := groupCommand("image", "List, push and show service images", `The images in the undercloud's registry.

The registry is --registry HOST:PORT, or STRATA_REGISTRY. Pulls need no
credential; pushes send OS_USERNAME and OS_PASSWORD (HTTP basic) when set.`)
	img.PersistentFlags().StringVar(&g.Registry, "registry", "", "the undercloud's registry `HOST:PORT` (env: STRATA_REGISTRY)")
	img.AddCommand(newContainerListCommand(g), newContainerPushCommand(g), newContainerShowCommand(g), newContainerBuildCommand(g))
	cmd.AddCommand(img)
	return cmd
}

// registry returns the registry's host:port.
func (g *globalOptions) registry() (string, error) {
	r := g.Registry
	if r == "" {
		r = g.host.getenv("STRATA_REGISTRY")
	}
	if r == "" {
		return "", &usageError{msg: "--registry: name the undercloud's registry (HOST:PORT, its registry.listen), or set STRATA_REGISTRY"}
	}
	if strings.Contains(r, "/") {
		return "", &usageError{msg: fmt.Sprintf("--registry: %q is not HOST:PORT", r)}
	}
	return r, nil
}

func (g *globalOptions) registryOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if u, p := g.host.getenv("OS_USERNAME"), g.host.getenv("OS_PASSWORD"); u != "" && p != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: u, Password: p}))
	}
	return opts
}

// reference parses NAME[:TAG|@DIGEST] in the registry.
func (g *globalOptions) reference(arg string) (name.Reference, error) {
	reg, err := g.registry()
	if err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(reg+"/"+arg, name.Insecure, name.StrictValidation)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("IMAGE: %q is not NAME:TAG or NAME@sha256:DIGEST (%v)", arg, err)}
	}
	return ref, nil
}

// ---- list

type containerListOptions struct{ g *globalOptions }

func newContainerListCommand(g *globalOptions) *cobra.Command {
	o := &containerListOptions{g: g}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the images in the registry: each repository's tags and digests",
		Example: "  strata container image list --registry 192.168.24.1:8787",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *containerListOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *containerListOptions) Validate() error                         { _, err := o.g.registry(); return err }

func (o *containerListOptions) Run(ctx context.Context) error {
	reg, _ := o.g.registry()
	r, err := name.NewRegistry(reg, name.Insecure)
	if err != nil {
		return err
	}
	opts := o.g.registryOptions(ctx)
	repos, err := remote.Catalog(ctx, r, opts...)
	if err != nil {
		return fmt.Errorf("registry %s: %w", reg, err)
	}
	var rows []record
	for _, repo := range repos {
		rr := r.Repo(repo)
		tags, err := remote.List(rr, opts...)
		if err != nil {
			return fmt.Errorf("%s: %w", repo, err)
		}
		sort.Strings(tags)
		for _, tag := range tags {
			desc, err := remote.Head(rr.Tag(tag), opts...)
			if err != nil {
				return fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
			rows = append(rows, record{"repository": repo, "tag": tag, "digest": desc.Digest.String(), "media_type": string(desc.MediaType)})
		}
	}
	return o.g.printer().listAll([]column{{"repository", "Repository"}, {"tag", "Tag"}, {"digest", "Digest"}, {"media_type", "Media Type"}}, rows)
}

// ---- push

type containerPushOptions struct {
	g      *globalOptions
	source string
	target string
}

func newContainerPushCommand(g *globalOptions) *cobra.Command {
	o := &containerPushOptions{g: g}
	cmd := &cobra.Command{
		Use:   "push SOURCE NAME:TAG",
		Short: "Push an image from a file into the registry",
		Long: `Push an image into the undercloud's registry from SOURCE: a tarball
that "docker save" or "podman save" wrote (docker-archive), or an OCI
image layout directory (with one image). Prints the pushed digest, by
which nodes pull it.`,
		Example: `  strata container image push identity.tar strata/identity:1.0
  strata container image push ./oci-layout strata/compute-agent:1.0 -f value -c digest`,
		Args: exactArgs(2),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *containerPushOptions) Complete(_ *cobra.Command, args []string) error {
	o.source, o.target = args[0], args[1]
	return nil
}

func (o *containerPushOptions) Validate() error {
	if _, err := os.Stat(o.source); err != nil {
		return &usageError{msg: fmt.Sprintf("SOURCE: %v", err)}
	}
	_, err := o.g.reference(o.target)
	return err
}

func (o *containerPushOptions) Run(ctx context.Context) error {
	ref, _ := o.g.reference(o.target)
	img, err := loadImage(o.source)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, o.g.registryOptions(ctx)...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	size, _ := imageSize(img)
	return o.g.printer().show(record{"image": ref.String(), "digest": d.String(), "size": size})
}

// loadImage reads SOURCE: an OCI layout directory with one image, or a
// docker-archive tarball.
func loadImage(src string) (v1.Image, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		img, err := tarball.ImageFromPath(src, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: not a docker-archive tarball: %w", src, err)
		}
		return img, nil
	}
	p, err := layout.FromPath(src)
	if err != nil {
		return nil, fmt.Errorf("%s: not an OCI image layout: %w", src, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: the layout holds %d manifests; push one image at a time", src, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

func imageSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}

// ---- show

type containerShowOptions struct {
	g   *globalOptions
	ref string
}

func newContainerShowCommand(g *globalOptions) *cobra.Command {
	o := &containerShowOptions{g: g}
	cmd := &cobra.Command{
		Use:   "show NAME:TAG",
		Short: "Show an image: its digest, layers, size and how it runs",
		Example: `  strata container image show strata/identity:1.0
  strata container image show strata/identity@sha256:... -f json`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *containerShowOptions) Complete(_ *cobra.Command, args []string) error {
	o.ref = args[0]
	return nil
}

func (o *containerShowOptions) Validate() error { _, err := o.g.reference(o.ref); return err }

func (o *containerShowOptions) Run(ctx context.Context) error {
	ref, _ := o.g.reference(o.ref)
	img, err := remote.Image(ref, o.g.registryOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	d, _ := img.Digest()
	mt, _ := img.MediaType()
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, _ := img.Layers()
	size, _ := imageSize(img)
	rec := record{"image": ref.String(), "digest": d.String(), "media_type": string(mt), "layers": len(layers), "size": size,
		"architecture": cfg.Architecture, "os": cfg.OS, "created": cfg.Created.UTC().Format("2006-01-02T15:04:05Z")}
	if c := cfg.Config; len(c.Entrypoint) > 0 || len(c.Cmd) > 0 {
		rec["entrypoint"] = strings.Join(c.Entrypoint, " ")
		rec["cmd"] = strings.Join(c.Cmd, " ")
	}
	for k, v := range cfg.Config.Labels {
		rec["label "+k] = v
	}
	return o.g.printer().show(rec)
}

// ---- build

type containerBuildOptions struct {
	g         *globalOptions
	overcloud string
	version   string
	services  []string
}

func newContainerBuildCommand(g *globalOptions) *cobra.Command {
	o := &containerBuildOptions{g: g}
	cmd := &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build the overcloud's service images and push them to the registry",
		Long: `Build an OCI image for each overcloud service (all that the overcloud
binary runs, as "overcloud services" lists them, or the SERVICEs named)
and push it to the undercloud's registry as strata/SERVICE:VERSION. Each
image is one layer holding the static overcloud binary, with the
entrypoint "overcloud run SERVICE"; the services share that layer, and
the same binary and version give the same digests. Prints each image's
digest, by which the overcloud's nodes pull it.`,
		Example: `  strata container image build --version 1.0
  strata container image build identity --overcloud ./bin/overcloud --version 1.0 -f value -c digest`,
	}
	f := cmd.Flags()
	f.StringVar(&o.overcloud, "overcloud", "", `the static overcloud binary (default: "overcloud" beside strata)`)
	f.StringVar(&o.version, "version", "", "the images' tag and version label (required)")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *containerBuildOptions) Complete(_ *cobra.Command, args []string) error {
	o.services = args
	if o.overcloud == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.overcloud = filepath.Join(filepath.Dir(exe), "overcloud")
	}
	return nil
}

func (o *containerBuildOptions) Validate() error {
	if o.version == "" {
		return &usageError{msg: "--version: required (the images' tag)"}
	}
	if _, err := name.NewTag("registry.invalid/strata/x:"+o.version, name.StrictValidation); err != nil {
		return &usageError{msg: fmt.Sprintf("--version: %q is not a tag (letters, digits, '.', '_', '-')", o.version)}
	}
	if _, err := os.Stat(o.overcloud); err != nil {
		return &usageError{msg: fmt.Sprintf("--overcloud: %v (build it with make build)", err)}
	}
	_, err := o.g.registry()
	return err
}

func (o *containerBuildOptions) Run(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, o.overcloud, "services").Output()
	if err != nil {
		return fmt.Errorf("%s services: %w", o.overcloud, err)
	}
	known := strings.Fields(string(out))
	services := o.services
	if len(services) == 0 {
		services = known
	}
	var rows []record
	for _, svc := range services {
		if !slices.Contains(known, svc) {
			return &usageError{msg: fmt.Sprintf("SERVICE: %s does not run %q (it runs: %s)", o.overcloud, svc, strings.Join(known, ", "))}
		}
		img, err := images.ServiceImage{Service: svc, Binary: o.overcloud, Version: o.version}.Build()
		if err != nil {
			return err
		}
		ref, err := o.g.reference("strata/" + svc + ":" + o.version)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, o.g.registryOptions(ctx)...); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		d, _ := img.Digest()
		size, _ := imageSize(img)
		rows = append(rows, record{"service": svc, "image": ref.String(), "digest": d.String(), "size": size})
	}
	return o.g.printer().listAll([]column{{"service", "Service"}, {"image", "Image"}, {"digest", "Digest"}, {"size", "Size"}}, rows)
}
