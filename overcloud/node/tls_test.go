package node

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stratacloud/strata/roles"
)

func TestWriteTLSAndPlaceholders(t *testing.T) {
	dir := t.TempDir()
	c := Config{TLS: &roles.NodeTLS{CA: "ca-pem", Cert: "cert-pem", Key: "key-pem"}}
	r, err := writeTLS(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ca.pem": "ca-pem", "cert.pem": "cert-pem", "key.pem": "key-pem"} {
		p := filepath.Join(dir, "tls", name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", name, b, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	got := expandAll(r, []string{"--cert-file={tls_cert}", "--key-file", "{tls_key}", "--trusted-ca-file={tls_ca}", "--data-dir={state_dir}/etcd", "plain"})
	want := []string{"--cert-file=" + dir + "/tls/cert.pem", "--key-file", dir + "/tls/key.pem", "--trusted-ca-file=" + dir + "/tls/ca.pem", "--data-dir=" + dir + "/etcd", "plain"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("expanded %q, want %q", got, want)
	}
	// Without TLS in the config, nothing is written; paths still expand.
	other := t.TempDir()
	if _, err := writeTLS(Config{}, other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "tls")); !os.IsNotExist(err) {
		t.Errorf("tls written without TLS in the config: %v", err)
	}
}
