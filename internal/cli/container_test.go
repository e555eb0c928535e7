package cli

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stratacloud/strata/internal/testbin"
	"github.com/stratacloud/strata/undercloud/registry"
)

// TestContainerImage pushes a docker-archive tarball and an OCI layout
// with strata, lists and shows them, and has skopeo (an independent
// client) read what was pushed.
func TestContainerImage(t *testing.T) {
	reg, err := registry.New(registry.Config{Dir: t.TempDir(), Authorize: func(r *http.Request) error {
		if u, p, ok := r.BasicAuth(); ok && u == "admin" && p == "pw" {
			return nil
		}
		return errors.New("credentials needed")
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	env := map[string]string{"STRATA_REGISTRY": host, "OS_USERNAME": "admin", "OS_PASSWORD": "pw"}
	run := func(args ...string) cliResult { return cliRun{env: env}.run(t, args...) }

	dir := t.TempDir()
	img, _ := random.Image(64<<10, 2)
	img, _ = mutate.Config(img, v1.Config{Entrypoint: []string{"/overcloud"}, Cmd: []string{"identity"}, Labels: map[string]string{"strata.service": "identity"}})
	tag, _ := name.NewTag("strata/identity:1.0")
	tarPath := filepath.Join(dir, "identity.tar")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	out := run("container", "image", "push", tarPath, "strata/identity:1.0", "-f", "value", "-c", "digest").mustSucceed(t)
	if strings.TrimSpace(out.stdout) != want.String() {
		t.Errorf("push printed %q, want %s", out.stdout, want)
	}
	img2, _ := random.Image(1024, 1)
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img2); err != nil {
		t.Fatal(err)
	}
	run("container", "image", "push", filepath.Join(dir, "layout"), "strata/compute-agent:1.0").mustSucceed(t)

	list := run("container", "image", "list", "-f", "value", "-c", "repository", "-c", "tag").mustSucceed(t)
	if list.stdout != "strata/compute-agent 1.0\nstrata/identity 1.0\n" {
		t.Errorf("list:\n%s", list.stdout)
	}
	var shown map[string]any
	show := run("container", "image", "show", "strata/identity:1.0", "-f", "json").mustSucceed(t)
	if err := json.Unmarshal([]byte(show.stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["digest"] != want.String() || shown["entrypoint"] != "/overcloud" || shown["cmd"] != "identity" || shown["layers"] != float64(2) || shown["label strata.service"] != "identity" {
		t.Errorf("show: %v", shown)
	}
	sk, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+host+"/strata/identity:1.0").CombinedOutput()
	if err != nil || !strings.Contains(string(sk), want.String()) {
		t.Errorf("skopeo inspect: %v\n%s", err, sk)
	}

	// Bad input.
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, []string{"container", "image", "list"}, "STRATA_REGISTRY"},
		{env, []string{"container", "image", "push", filepath.Join(dir, "nope.tar"), "strata/x:1"}, "SOURCE:"},
		{env, []string{"container", "image", "push", tarPath, "Strata/X:1"}, "is not NAME:TAG"},
		{map[string]string{"STRATA_REGISTRY": host}, []string{"container", "image", "push", tarPath, "strata/x:1"}, "UNAUTHORIZED"},
		{env, []string{"container", "image", "show", "strata/nope:1"}, "MANIFEST_UNKNOWN"},
	} {
		r := cliRun{env: c.env}.run(t, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestContainerImageBuild builds the service images from the real
// overcloud binary, twice (the same digests), and runs the binary that a
// pull of the image unpacks.
func TestContainerImageBuild(t *testing.T) {
	reg, err := registry.New(registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	bin := testbin.Build(t, "overcloud")
	run := func(args ...string) cliResult {
		return cliRun{env: map[string]string{"STRATA_REGISTRY": host}}.run(t, args...)
	}
	first := run("container", "image", "build", "--overcloud", bin, "--version", "1.0", "-f", "value", "-c", "service", "-c", "digest").mustSucceed(t)
	again := run("container", "image", "build", "--overcloud", bin, "--version", "1.0", "-f", "value", "-c", "service", "-c", "digest").mustSucceed(t)
	if !strings.HasPrefix(first.stdout, "identity sha256:") || first.stdout != again.stdout {
		t.Errorf("builds: %q then %q", first.stdout, again.stdout)
	}
	r := run("container", "image", "build", "nova", "--overcloud", bin, "--version", "1.0")
	if r.code == 0 || !strings.Contains(r.stderr, `does not run "nova" (it runs: identity)`) {
		t.Errorf("an unknown service: %d %s", r.code, r.stderr)
	}

	ref, _ := name.ParseReference(host+"/strata/identity:1.0", name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	if strings.Join(cfg.Config.Entrypoint, " ") != "/usr/bin/overcloud run identity" {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	root := filepath.Join(dir, "rootfs")
	os.MkdirAll(root, 0o755)
	extract := exec.Command("tar", "-x", "-C", root)
	rc := mutate.Extract(img)
	defer rc.Close()
	extract.Stdin = rc
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(root, "usr/bin/overcloud"), "services").Output()
	if err != nil || strings.TrimSpace(string(out)) != "identity" {
		t.Errorf("the image's overcloud binary says %q (%v)", out, err)
	}
}
