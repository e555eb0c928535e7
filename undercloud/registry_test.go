package undercloud_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
