package node_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/internal/testbin"
	"github.com/stratacloud/strata/overcloud/node"
)

// TestNodeRunsItsServicesFromTheConfigDrive is the node runner's whole
// path: the identity service's image, built from the real overcloud
// binary and pushed to a registry (go-containerregistry's, an
// independent implementation), a config drive naming it by digest, and
// `overcloud node` reading the drive, pulling, unpacking and supervising
// the service until it answers.
func TestNodeRunsItsServicesFromTheConfigDrive(t *testing.T) {
	dir := t.TempDir()
	bin := testbin.Build(t, "overcloud")
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := images.ServiceImage{Service: "identity", Binary: bin, Version: "1.0"}.Build()
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.ParseReference(host+"/strata/identity:1.0", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	api := freeAddr(t)
	cfg := node.Config{Stack: "overcloud", Role: "Controller", Hostname: "overcloud-controller-0", Undercloud: "http://192.168.24.1:6385",
		Networks: map[string]node.NetworkConfig{"InternalApi": {Address: "172.17.0.10/24", VLAN: 20}},
		Services: []node.ServiceConfig{{Name: "identity", Image: host + "/strata/identity@" + digest.String(),
			Args:       []string{"--listen", api, "--data-dir", filepath.Join(dir, "identity"), "--password-cost", "4"},
			Env:        []string{"STRATA_BOOTSTRAP_PASSWORD=secret"},
			HealthHTTP: "http://" + api + "/v3"}},
	}
	iso, err := images.ConfigDrive{MetaData: map[string]any{"uuid": "n-1", "hostname": cfg.Hostname}, VendorData: map[string]any{node.ConfigDriveVendorKey: cfg}}.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	drive := filepath.Join(dir, "config-2.iso")
	os.WriteFile(drive, iso, 0o644)

	state := filepath.Join(dir, "state")
	cmd := exec.Command(bin, "node", "--config-drive", drive, "--state-dir", state)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"service healthy"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the identity service never became healthy; the runner said:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + api + "/v3")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || v["version"] == nil {
		t.Errorf("GET /v3: %d %v", resp.StatusCode, v)
	}
	if _, err := os.Stat(filepath.Join(state, "images", strings.TrimPrefix(digest.String(), "sha256:"), "rootfs", "usr/bin/overcloud")); err != nil {
		t.Errorf("the image was not unpacked: %v", err)
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the runner exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the runner did not stop:\n%s", stderr.String())
	}
	if c, err := http.Get("http://" + api + "/v3"); err == nil {
		c.Body.Close()
		t.Error("the identity service outlived its runner")
	}
	for _, want := range []string{"node configured", "service image ready", "service healthy", "service stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the runner's log lacks %q:\n%s", want, stderr.String())
		}
	}
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReadConfigDriveRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(vendor map[string]any) string {
		iso, _ := images.ConfigDrive{MetaData: map[string]any{}, VendorData: vendor}.Build(time.Unix(0, 0))
		p := filepath.Join(dir, "d.iso")
		os.WriteFile(p, iso, 0o644)
		return p
	}
	for _, c := range []struct {
		vendor map[string]any
		want   string
	}{
		{map[string]any{}, `has no "strata" member`},
		{map[string]any{"strata": map[string]any{"hostname": "h", "role": "r", "services": []any{map[string]any{"name": "identity", "image": "r/identity:1.0"}}}}, "is not pinned by digest"},
		{map[string]any{"strata": map[string]any{"hostname": "h", "role": "r", "colour": "red"}}, `unknown field "colour"`},
		{map[string]any{"strata": map[string]any{"hostname": "h", "role": "r", "networks": map[string]any{"Tenant": map[string]any{"address": "10.0.0.1"}}}}, "networks.Tenant.address"},
	} {
		if _, err := node.ReadConfigDrive(write(c.vendor)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.vendor, err, c.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "zeros"), make([]byte, 64<<10), 0o644)
	if _, err := node.ReadConfigDrive(filepath.Join(dir, "zeros")); err == nil {
		t.Error("zeros read as a config drive")
	}
}
