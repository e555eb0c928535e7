package undercloud_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/overcloud/identity"
	"github.com/stratacloud/strata/undercloud"
)

// TestKeystoneAuth runs the undercloud behind Strata's identity service:
// the real openstack CLI logs in with a password, finds the undercloud in
// the catalog, and is allowed or refused by its roles; requests without a
// valid token get 401.
func TestKeystoneAuth(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	id, err := identity.New(ctx, identity.Config{Etcd: etcdtest.Run(t), PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	idSrv := httptest.NewServer(id.Handler())
	t.Cleanup(idSrv.Close)
	go id.Run(ctx)
	const adminPW = "admin-pw-123"
	if err := id.Bootstrap(ctx, identity.Bootstrap{Password: adminPW, PublicURL: idSrv.URL + "/v3"}); err != nil {
		t.Fatal(err)
	}

	addr := startDaemon(t, undercloud.Config{
		Listen: "127.0.0.1:0",
		Auth:   undercloud.AuthKeystone,
		Keystone: undercloud.KeystoneConfig{
			AuthURL: idSrv.URL + "/v3", Username: "admin", Password: adminPW, Project: "admin",
		},
	})

	osc := func(user, password string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/openstack", args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "LC_ALL=C.UTF-8",
			"OS_AUTH_URL=" + idSrv.URL + "/v3", "OS_IDENTITY_API_VERSION=3",
			"OS_USERNAME=" + user, "OS_PASSWORD=" + password, "OS_PROJECT_NAME=admin",
			"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(user, password string, args ...string) string {
		t.Helper()
		out, err := osc(user, password, args...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// Register the undercloud in the catalog, as an operator would.
	must("admin", adminPW, "service", "create", "--name", "ironic", "baremetal")
	must("admin", adminPW, "endpoint", "create", "--region", "RegionOne", "baremetal", "public", "http://"+addr)
	must("admin", adminPW, "user", "create", "--password", "reader-pw-1", "watcher")
	must("admin", adminPW, "role", "add", "--project", "admin", "--user", "watcher", "reader")

	// The admin creates and lists nodes through the catalog.
	must("admin", adminPW, "baremetal", "node", "create", "--driver", "fake-hardware", "--name", "ks-0")
	if out := must("admin", adminPW, "baremetal", "node", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "ks-0") {
		t.Fatalf("node list: %q", out)
	}
	// A reader reads, and may not write.
	if out := must("watcher", "reader-pw-1", "baremetal", "node", "show", "ks-0", "-f", "value", "-c", "name"); !strings.Contains(out, "ks-0") {
		t.Fatalf("reader's node show: %q", out)
	}
	out, err := osc("watcher", "reader-pw-1", "baremetal", "node", "create", "--driver", "fake-hardware", "--name", "ks-1")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("reader creating a node: err %v, output %q", err, out)
	}

	// No token, or a made-up one: 401, and the node is still alone.
	for _, tok := range []string{"", "gAAAAAnot-a-token"} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/nodes", nil)
		if tok != "" {
			req.Header.Set("X-Auth-Token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}
	if out := must("admin", adminPW, "baremetal", "node", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "ks-1") {
		t.Fatalf("the reader's create went through: %q", out)
	}
}
