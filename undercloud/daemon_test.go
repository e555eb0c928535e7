package undercloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/undercloud"
)

// startDaemon runs the undercloud in this process until the test ends and
// returns its API address.
func startDaemon(t *testing.T, cfg undercloud.Config) string {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Conductor.ShutdownGrace == 0 {
		cfg.Conductor.ShutdownGrace = undercloud.Duration(time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- undercloud.Run(ctx, cfg, nil, func(a string) { addrc <- a }) }()
	select {
	case a := <-addrc:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("undercloud stopped with: %v", err)
			}
		})
		return a
	case err := <-done:
		cancel()
		t.Fatalf("undercloud did not start: %v", err)
		return ""
	}
}

// openstack runs the real openstack CLI (python3-openstackclient with
// python3-ironicclient, from Debian) against the undercloud at addr, in a
// clean environment.
func openstack(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("/usr/bin/openstack", args...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"OS_AUTH_TYPE=none",
		"OS_ENDPOINT=http://" + addr,
		"LC_ALL=C.UTF-8",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustOpenstack runs the CLI and fails the test if it fails.
func mustOpenstack(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := openstack(t, addr, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// decode parses the CLI's -f json output.
func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return v
}

// node reads a node straight from the API.
func node(t *testing.T, addr, ident string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/nodes/"+ident, nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.87")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET node %s: %s", ident, resp.Status)
	}
	var n map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitField polls the node until field has value want.
func waitField(t *testing.T, addr, ident, field, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := node(t, addr, ident)
		if fmt.Sprint(n[field]) == want && n["reservation"] == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: %s is %v (last_error %v), want %s", ident, field, n[field], n["last_error"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	if _, err := os.Stat("/usr/bin/openstack"); err != nil {
		fmt.Fprintln(os.Stderr, "the openstack CLI is missing: run `make deps` (python3-openstackclient, python3-ironicclient)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}
