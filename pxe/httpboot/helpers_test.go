package httpboot_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/httpboot"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fakeNodes is a node store keyed by MAC.
type fakeNodes struct {
	mu    sync.Mutex
	nodes map[string]*inventory.Node
	err   error
}

func (f *fakeNodes) Lookup(_ context.Context, mac net.HardwareAddr) (*inventory.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	n, ok := f.nodes[mac.String()]
	if !ok {
		return nil, inventory.ErrNotFound
	}
	c := *n
	return &c, nil
}

func (f *fakeNodes) set(mac string, n *inventory.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[mac] = n
}

// env is a handler under test, served on a loopback port.
type env struct {
	srv    *httptest.Server
	mu     sync.Mutex
	log    []string // the requests served, as "METHOD URI STATUS"
	nodes  *fakeNodes
	images string // the artifacts directory
	reg    *prometheus.Registry
}

// newEnv serves a handler whose artifacts come from a fresh directory
// through an os.Root; change adjusts the configuration first, and gets the
// test server's URL. The base URL the scripts use is a fixed one, so that
// they can be golden files.
func newEnv(t *testing.T, change func(c *httpboot.Config, url string)) *env {
	t.Helper()
	e := &env{nodes: &fakeNodes{nodes: map[string]*inventory.Node{}}, images: t.TempDir(), reg: prometheus.NewRegistry()}
	root, err := os.OpenRoot(e.images)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	// The handler needs the server's URL, which exists once it listens.
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		e.mu.Lock()
		e.log = append(e.log, r.Method+" "+r.URL.RequestURI()+" "+strconv.Itoa(sw.status))
		e.mu.Unlock()
	}))
	t.Cleanup(e.srv.Close)
	cfg := httpboot.Config{
		Nodes:         e.nodes,
		Artifacts:     httpboot.FS(root.FS()),
		BaseURL:       "http://192.0.2.1:8080",
		APIURL:        "http://192.0.2.1:6385",
		DeployKernel:  "deploy/vmlinuz",
		DeployRamdisk: "deploy/initramfs",
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:    e.reg,
	}
	if change != nil {
		change(&cfg, e.srv.URL)
	}
	h, err = httpboot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// get fetches path from the handler with the given request headers.
func (e *env) get(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// requests returns the requests served so far.
func (e *env) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// tool finds a program that `make deps` installs, or fails the test naming
// the Debian package.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian package %s): %v", name, pkg, err)
	}
	return p
}

// run runs a program and returns what it printed on stdout, and stderr
// separately.
func run(t testing.TB, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// metric returns the value of a counter series in reg, 0 if it does not
// exist.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
