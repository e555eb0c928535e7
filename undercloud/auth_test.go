package undercloud_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/stratacloud/strata/undercloud"
)

// TestHTTPBasicWithOpenstackCLI runs the daemon with http_basic auth and
// talks to it with the openstack CLI's own http_basic plugin: the right
// password works, a wrong one is refused, and neither password shows up in
// the daemon's log.
func TestHTTPBasicWithOpenstackCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("operator:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cfg := undercloud.Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", Auth: undercloud.AuthHTTPBasic, HTPasswd: htpasswd, LogFormat: "json", LogLevel: "debug"}
	log, err := undercloud.NewLogger(cfg, logFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- undercloud.Run(ctx, cfg, log, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()

	run := func(password string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/openstack", args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_AUTH_TYPE=http_basic",
			"OS_ENDPOINT=http://" + addr, "OS_USERNAME=operator", "OS_PASSWORD=" + password}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("s3cret-pw", "baremetal", "node", "create", "--driver", "fake-hardware", "--name", "basic-0"); err != nil {
		t.Fatalf("with the right password: %v\n%s", err, out)
	}
	out, err := run("wrong-pw", "baremetal", "node", "list")
	if err == nil || !strings.Contains(out, "401") {
		t.Fatalf("with a wrong password: err %v, output %q", err, out)
	}
	hist, err := run("s3cret-pw", "baremetal", "node", "history", "list", "basic-0", "--long", "-f", "json")
	if err != nil {
		t.Fatalf("history: %v\n%s", err, hist)
	}
	if !strings.Contains(hist, "operator") {
		t.Errorf("history does not name the user:\n%s", hist)
	}
	logs, _ := os.ReadFile(logPath)
	for _, pw := range []string{"s3cret-pw", "wrong-pw"} {
		if strings.Contains(string(logs), pw) {
			t.Errorf("password %q appears in the daemon's log", pw)
		}
	}
}

// TestConfigRefusals checks the daemon refuses unsafe or broken settings
// before it touches anything.
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  undercloud.Config
		want string
	}{
		{"noauth off loopback", undercloud.Config{DataDir: t.TempDir(), Listen: "0.0.0.0:6385"}, "noauth is only allowed on a loopback address"},
		{"basic without file", undercloud.Config{DataDir: t.TempDir(), Auth: "http_basic"}, "htpasswd: required"},
		{"unknown auth", undercloud.Config{DataDir: t.TempDir(), Auth: "kerberos"}, `"kerberos" is not one of`},
		{"keystone without settings", undercloud.Config{DataDir: t.TempDir(), Auth: "keystone"}, "auth_url, username, password and project are required"},
		{"no data dir", undercloud.Config{}, "data_dir: required"},
		{"bad endpoint", undercloud.Config{DataDir: t.TempDir(), Etcd: undercloud.EtcdConfig{Endpoints: []string{"10.0.0.1:2379"}}}, "must start with http"},
		{"cert without key", undercloud.Config{DataDir: t.TempDir(), Etcd: undercloud.EtcdConfig{Endpoints: []string{"https://10.0.0.1:2379"}, Cert: "c.pem"}}, "cert and key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := undercloud.Run(context.Background(), tc.cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestConfigFile checks the YAML config: durations, unknown keys refused.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:7000\nconductor:\n  workers: 7\n  lease_ttl: 15s\n  fake_step_delay: 2\n"), 0o600)
	cfg, err := undercloud.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7000" || cfg.Conductor.Workers != 7 || cfg.Conductor.LeaseTTL.String() != "15s" || cfg.Conductor.FakeStepDelay.String() != "2s" {
		t.Fatalf("loaded %+v", cfg)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("conductor:\n  wokers: 7\n"), 0o600)
	if _, err := undercloud.Load(bad); err == nil || !strings.Contains(err.Error(), "wokers") {
		t.Fatalf("unknown key: got %v", err)
	}
	bad2 := filepath.Join(dir, "bad2.yaml")
	os.WriteFile(bad2, []byte("conductor:\n  lease_ttl: soon\n"), 0o600)
	if _, err := undercloud.Load(bad2); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration: got %v", err)
	}
}
