package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/overcloud/node"
	"github.com/stratacloud/strata/undercloud"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// TestOvercloudDeploy lays an overcloud down on fake-hardware nodes of a
// real undercloud (API, conductor, registry, embedded etcd) through the
// strata command: the deploy refuses while service images are missing,
// allocates and deploys, gives each node a config drive that the node
// runner's own reader accepts, takes the nodes' reports (and refuses a
// wrong credential), keeps everything on a second run, needs --yes to
// scale down, and deletes.
func TestOvercloudDeploy(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- undercloud.Run(ctx, undercloud.Config{
			DataDir:   dir,
			Listen:    "127.0.0.1:0",
			Registry:  undercloud.RegistryConfig{Listen: "127.0.0.1:0"},
			Conductor: undercloud.ConductorConfig{Name: "deploy-test", ShutdownGrace: undercloud.Duration(time.Second)},
		}, nil, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	regAddr := strings.TrimSpace(readFile(t, filepath.Join(dir, undercloud.RegistryAddrFile)))
	env := map[string]string{"OS_AUTH_TYPE": "none", "OS_ENDPOINT": "http://" + addr, "STRATA_POLL_INTERVAL": "20ms", "STRATA_REGISTRY": regAddr}
	run := func(args ...string) cliResult { return cliRun{env: env}.run(t, args...) }

	// Three fake nodes, available: a controller and two computes.
	for n, profile := range map[string]string{"n1": "control", "n2": "compute", "n3": "compute", "n4": "control"} {
		run("node", "create", "--driver", "fake-hardware", "--name", n, "--property", "capabilities=profile:"+profile).mustSucceed(t)
	}
	run("node", "manage", "n1", "n2", "n3", "n4", "--wait=60").mustSucceed(t)
	run("node", "provide", "n1", "n2", "n3", "n4", "--wait=60").mustSucceed(t)

	rolesFile := filepath.Join(dir, "roles.yaml")
	writeFile(t, rolesFile, `
- {name: Controller, count: 1, match: {profile: control}, networks: [External, InternalApi], services: [etcd, identity]}
- {name: Compute, count: 1, match: {profile: compute}, networks: [External, InternalApi], services: [identity]}
`)
	clouds := filepath.Join(dir, "clouds.yaml")
	writeFile(t, clouds, "clouds:\n  undercloud: {auth_type: none, endpoint: http://192.168.24.1:6385}\n")
	deploy := func(extra ...string) cliResult {
		return run(append([]string{"overcloud", "deploy", "--roles", rolesFile, "--image", "http://192.168.24.1:8088/images/overcloud.raw",
			"--image-checksum", strings.Repeat("ab", 32), "--version", "1.0", "--wait", "30s", "--clouds-yaml", clouds}, extra...)...)
	}

	// No service images yet: refused, naming them, and nothing deployed.
	r := deploy()
	if r.code == 0 || !strings.Contains(r.stderr, "strata/etcd:1.0") || !strings.Contains(r.stderr, "strata/identity:1.0") {
		t.Fatalf("deploy without images: exit %d\n%s", r.code, r.stderr)
	}
	if s := run("node", "show", "n1", "-f", "value", "-c", "provision_state").mustSucceed(t).stdout; strings.TrimSpace(s) != "available" {
		t.Errorf("n1 is %q after a refused deploy", s)
	}
	// A bad roles file: refused before anything, naming the problem.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `- {name: Controller, count: 1, networks: [InternalApi], services: [nova-conductor-of-doom]}`)
	if r := run("overcloud", "deploy", "--roles", bad, "--image", "x", "--version", "1.0"); r.code == 0 || !strings.Contains(r.stderr, `unknown service "nova-conductor-of-doom"`) {
		t.Errorf("a bad roles file: exit %d\n%s", r.code, r.stderr)
	}

	// Push the two images (stand-ins: the deploy only pins them).
	for _, svc := range []string{"etcd", "identity"} {
		img, _ := random.Image(512, 1)
		ref, _ := name.ParseReference(regAddr+"/strata/"+svc+":1.0", name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	// The nodes go active (fake hardware) but no runner reports: the
	// deploy waits, then says so.
	r = deploy()
	if r.code == 0 || !strings.Contains(r.stderr, "not running yet") || !strings.Contains(r.stdout, "overcloud-controller-0") ||
		!strings.Contains(r.stdout, "deployed") || !strings.Contains(r.stdout, "InternalApi=172.17.0.") {
		t.Fatalf("deploy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Each node's config drive, as its agent would get it, read by the
	// runner's own reader.
	cfgs := map[string]node.Config{}
	for _, n := range []string{"n1", "n2"} {
		cfgs[n] = nodeConfig(t, dir, n)
	}
	ctl := cfgs["n1"]
	if ctl.Role != "Controller" || ctl.Hostname != "overcloud-controller-0" || ctl.Undercloud != "http://"+addr || len(ctl.Credential) != 64 ||
		len(ctl.Services) != 2 || !strings.HasPrefix(ctl.Services[1].Image, regAddr+"/strata/identity@sha256:") ||
		strings.Join(ctl.Services[1].After, ",") != "etcd" || ctl.Networks["External"].Address == "" {
		t.Errorf("the controller's part: %+v", ctl)
	}

	// The node's TLS identity, signed by the overcloud's CA, naming it;
	// identity's admin password in its environment.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ctl.TLS.CA)) {
		t.Fatal("the config drive's CA does not parse")
	}
	blk, _ := pem.Decode([]byte(ctl.TLS.Cert))
	if blk == nil {
		t.Fatal("the config drive's certificate does not parse")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	extAddr, _ := netip.ParsePrefix(ctl.Networks["External"].Address)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "overcloud-controller-0", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the controller's certificate: %v", err)
	}
	if err := cert.VerifyHostname(extAddr.Addr().String()); err != nil {
		t.Errorf("the controller's certificate does not name its External address: %v", err)
	}
	if _, err := tls.X509KeyPair([]byte(ctl.TLS.Cert), []byte(ctl.TLS.Key)); err != nil {
		t.Errorf("the controller's key: %v", err)
	}
	adminPassword := ""
	for _, e := range ctl.Services[1].Env {
		if v, ok := strings.CutPrefix(e, "STRATA_BOOTSTRAP_PASSWORD="); ok {
			adminPassword = v
		}
	}
	if len(adminPassword) < 20 {
		t.Errorf("identity's environment has no admin password: %q", ctl.Services[1].Env)
	}
	if cfgs["n2"].TLS == nil || cfgs["n2"].TLS.Cert == ctl.TLS.Cert || cfgs["n2"].TLS.CA != ctl.TLS.CA {
		t.Error("the compute node's TLS identity is not its own, or not from the same CA")
	}

	// Reports: a wrong credential changes nothing; the right ones make
	// the nodes running.
	// The runner's own report client, against the real API.
	healthy := []node.Status{{Name: "etcd", State: node.StateHealthy}, {Name: "identity", State: node.StateHealthy}}
	report := func(c node.Config) error {
		return node.SendReport(context.Background(), http.DefaultClient, c, healthy)
	}
	stolen := cfgs["n1"]
	stolen.Credential = cfgs["n2"].Credential
	if err := report(stolen); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a report with another node's credential: %v", err)
	}
	if s := run("overcloud", "status").mustSucceed(t).stdout; strings.Contains(s, "running") {
		t.Errorf("a refused report changed the status:\n%s", s)
	}
	for _, n := range []string{"n1", "n2"} {
		if err := report(cfgs[n]); err != nil {
			t.Errorf("%s's report: %v", n, err)
		}
	}
	// Again with the same files: nothing changes, and every node runs.
	r = deploy().mustSucceed(t)
	if !strings.Contains(r.stderr, "deploying none; undeploying none") || strings.Count(r.stdout, "identity:ok") != 2 {
		t.Errorf("the same deploy again:\n%s\n%s", r.stdout, r.stderr)
	}

	// The clouds.yaml entry: the controller's External address, the
	// admin's password; the file's other entry kept.
	b, err := os.ReadFile(clouds)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"undercloud:", "overcloud:", "auth_url: http://" + extAddr.Addr().String() + ":5000/v3", "password: " + adminPassword, "project_name: admin"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("clouds.yaml has no %q:\n%s", want, b)
		}
	}
	if fi, _ := os.Stat(clouds); fi.Mode().Perm() != 0o600 {
		t.Errorf("clouds.yaml mode %v", fi.Mode())
	}
	if out := run("overcloud", "clouds-yaml").mustSucceed(t).stdout; !strings.Contains(out, "password: "+adminPassword) {
		t.Errorf("clouds-yaml:\n%s", out)
	}

	// Scale Compute up to 2: only n3 is deployed, as overcloud-compute-1;
	// the others keep their parts (the same credentials) and reports.
	writeFile(t, rolesFile, `
- {name: Controller, count: 1, match: {profile: control}, networks: [External, InternalApi], services: [etcd, identity]}
- {name: Compute, count: 2, match: {profile: compute}, networks: [External, InternalApi], services: [identity]}
`)
	r = deploy("--wait", "0")
	if r.code != 0 || !strings.Contains(r.stderr, "deploying overcloud-compute-1; undeploying none") {
		t.Errorf("scale up: exit %d\n%s", r.code, r.stderr)
	}
	if nodeConfig(t, dir, "n1").Credential != ctl.Credential || nodeConfig(t, dir, "n2").Credential != cfgs["n2"].Credential {
		t.Error("scaling up redeployed a node that was there")
	}
	if n3 := nodeConfig(t, dir, "n3"); n3.Hostname != "overcloud-compute-1" {
		t.Errorf("n3 is %q", n3.Hostname)
	}
	if st := run("overcloud", "status").mustSucceed(t).stdout; strings.Count(st, "running") != 2 || !strings.Contains(st, "overcloud-compute-1") {
		t.Errorf("status after scale up:\n%s", st)
	}

	// Scale Compute down to 0 is not allowed (a role needs nodes); take
	// the Compute role out instead: needs --yes.
	writeFile(t, rolesFile, `
- {name: Controller, count: 1, match: {profile: control}, networks: [External, InternalApi], services: [etcd, identity]}
`)
	if r := deploy(); r.code == 0 || !strings.Contains(r.stderr, "overcloud-compute-0") || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("scale down without --yes: exit %d\n%s", r.code, r.stderr)
	}
	r = deploy("--yes", "--wait", "0")
	if r.code != 0 || !strings.Contains(r.stderr, "undeploying overcloud-compute-0, overcloud-compute-1") {
		t.Errorf("scale down: exit %d\n%s", r.code, r.stderr)
	}
	waitState(t, run, "n2", "available")
	waitState(t, run, "n3", "available")

	// Replace the controller's machine: n4 takes its name and addresses,
	// with a new credential; n1 is undeployed.
	r = run("overcloud", "node", "replace", "overcloud-controller-0").mustSucceed(t)
	if !strings.Contains(r.stderr, "overcloud-controller-0: deploying on n4") {
		t.Errorf("replace: %s", r.stderr)
	}
	waitState(t, run, "n1", "available")
	n4 := nodeConfig(t, dir, "n4")
	if n4.Hostname != "overcloud-controller-0" || n4.Networks["External"] != ctl.Networks["External"] || n4.Credential == ctl.Credential {
		t.Errorf("the replacement's part: %+v", n4)
	}
	if err := report(ctl); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the replaced machine's credential still reports: %v", err)
	}
	if err := report(n4); err != nil {
		t.Errorf("the replacement's report: %v", err)
	}
	// With the one free controller machine in maintenance, there is
	// nothing to replace with: the error names the role, and nothing
	// changes.
	run("node", "maintenance", "set", "n1").mustSucceed(t)
	if r := run("overcloud", "node", "replace", "overcloud-controller-0"); r.code == 0 || !strings.Contains(r.stderr, "no available node matches role Controller") {
		t.Errorf("a replace with no machine free: %d %s", r.code, r.stderr)
	}
	if got := nodeConfig(t, dir, "n4"); got.Credential != n4.Credential {
		t.Error("a refused replace changed the node")
	}
	if r := run("overcloud", "node", "replace", "overcloud-nothing-9"); r.code == 0 || !strings.Contains(r.stderr, "has no node") {
		t.Errorf("replacing an unknown host: %d %s", r.code, r.stderr)
	}

	if r := run("overcloud", "delete", "overcloud"); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("delete without --yes: %d %s", r.code, r.stderr)
	}
	run("overcloud", "delete", "overcloud", "--yes").mustSucceed(t)
	if r := run("overcloud", "status"); r.code == 0 || !strings.Contains(r.stderr, "no overcloud named") {
		t.Errorf("status after delete: %d %s", r.code, r.stderr)
	}
}

// nodeConfig reads node name's deploy config drive from the undercloud's
// etcd, builds the ISO its agent would write, and reads it back with the
// node runner's reader.
func nodeConfig(t *testing.T, dir, name string) node.Config {
	t.Helper()
	ep := strings.TrimSpace(readFile(t, filepath.Join(dir, undercloud.EtcdAddrFile)))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ns := nodestore.New(store.New(cli, "/strata/undercloud/"))
	n, _, err := ns.GetNode(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	iso, err := conductor.ConfigDriveImage(context.Background(), n, nil)
	if err != nil || iso == nil {
		t.Fatalf("%s's config drive: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), "drive.iso")
	writeFile(t, path, string(iso))
	c, err := node.ReadConfigDrive(path)
	if err != nil {
		t.Fatal(err)
	}
	if n.ProvisionState != inventory.StateActive {
		t.Errorf("%s is %s", name, n.ProvisionState)
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitState polls a node until it is in state, for at most a minute.
func waitState(t *testing.T, run func(...string) cliResult, node, state string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.TrimSpace(run("node", "show", node, "-f", "value", "-c", "provision_state").mustSucceed(t).stdout) != state {
		if time.Now().After(deadline) {
			t.Fatalf("%s is not %s after a minute", node, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
