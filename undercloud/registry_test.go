package undercloud_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"golang.org/x/crypto/bcrypt"

	"github.com/stratacloud/strata/undercloud"
)

// TestRegistryInTheDaemon: the undercloud serves its registry beside the
// API; with http_basic auth, pushes need the htpasswd credentials and
// pulls need none.
func TestRegistryInTheDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	startDaemon(t, undercloud.Config{DataDir: data, Auth: undercloud.AuthHTTPBasic, HTPasswd: htpasswd,
		Registry: undercloud.RegistryConfig{Listen: "127.0.0.1:0"}})
	b, err := os.ReadFile(filepath.Join(data, undercloud.RegistryAddrFile))
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSpace(string(b))
	img, _ := random.Image(4096, 2)
	ref, _ := name.ParseReference(host+"/strata/identity:1", name.Insecure)
	var te *transport.Error
	if err := remote.Write(ref, img); !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an anonymous push: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "wrong"})); !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a push with a wrong password: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref) // anonymous
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digestOf(t, got), digestOf(t, img); a != b {
		t.Errorf("pulled %s, pushed %s", a, b)
	}
}

func digestOf(t *testing.T, img interface{ Digest() (v1.Hash, error) }) string {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestRunCommandTakesTheConfigFile: `undercloud run --config` applies
// every section of the file, the registry's included.
func TestRunCommandTakesTheConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "undercloud.yaml")
	os.WriteFile(conf, []byte("registry:\n  listen: 127.0.0.1:0\nimage_cache:\n  max_size_mb: 100\n"), 0o600)
	data := filepath.Join(dir, "data")
	cmd := undercloud.NewCommand()
	cmd.SetArgs([]string{"run", "--config", conf, "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "error"})
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(data, undercloud.RegistryAddrFile)); err == nil && len(b) > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("undercloud run stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no registry: the config file's registry section was not applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
