package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/api"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testServer is the API on a real listener over a real store on an
// embedded etcd, with a fake conductor.
type testServer struct {
	url   string
	store *nodestore.Store
	cond  *fakeConductor
	reg   *prometheus.Registry
	logs  *syncBuffer
}

func newServer(t *testing.T, opts ...func(*api.Config)) *testServer {
	t.Helper()
	st := nodestore.New(store.New(etcdtest.Run(t), "/strata/undercloud/"))
	ts := &testServer{
		store: st,
		cond:  &fakeConductor{nodes: st, agent: conductor.New(conductor.Config{Name: "test"}, st)},
		reg:   prometheus.NewRegistry(),
		logs:  &syncBuffer{},
	}
	cfg := api.Config{
		Nodes:     st,
		Conductor: ts.cond,
		Logger:    slog.New(slog.NewJSONHandler(ts.logs, nil)),
		Registry:  ts.reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// req is one request to the test server.
type req struct {
	method, path string
	// body is sent as is when a string, JSON-encoded otherwise.
	body    any
	version string // X-OpenStack-Ironic-API-Version; "" sends 1.87, "-" sends none
	header  http.Header
	user    string // basic auth user:password, when set
}

// res is a response, read whole.
type res struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(t *testing.T, rq req) res {
	t.Helper()
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(enc)
	}
	hr, err := http.NewRequest(rq.method, ts.url+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch rq.version {
	case "":
		hr.Header.Set("X-OpenStack-Ironic-API-Version", "1.87")
	case "-":
	default:
		hr.Header.Set("X-OpenStack-Ironic-API-Version", rq.version)
	}
	for k, vs := range rq.header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	if rq.user != "" {
		u, p, _ := strings.Cut(rq.user, ":")
		hr.SetBasicAuth(u, p)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res{status: resp.StatusCode, header: resp.Header, body: b}
}

// json decodes the body as an object.
func (r res) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body %q: %v", r.body, err)
	}
	return m
}

// fault returns the faultstring of an Ironic error body, checking its shape.
func (r res) fault(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var outer map[string]any
	if err := json.Unmarshal(r.body, &outer); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	inner, ok := outer["error_message"].(string)
	if !ok || len(outer) != 1 {
		t.Fatalf("error body %q: want one member error_message holding a string", r.body)
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(inner), &f); err != nil {
		t.Fatalf("error_message %q is not JSON: %v", inner, err)
	}
	wantCode := "Client"
	if r.status >= 500 {
		wantCode = "Server"
	}
	if f["faultcode"] != wantCode || f["debuginfo"] != nil || len(f) != 3 {
		t.Errorf("error_message %q: want faultstring, faultcode %s, debuginfo null", inner, wantCode)
	}
	s, _ := f["faultstring"].(string)
	return s
}

// expect checks a response's status and, for errors, that the message
// contains every one of want.
func (r res) expect(t *testing.T, status int, want ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		msg := r.fault(t)
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("message %q does not contain %q", msg, w)
			}
		}
	}
}

// snapshot is everything in the store, to check that a refused request
// changed nothing.
func (ts *testServer) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	nodes, err := ts.store.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := ts.store.ListPorts(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	hist := map[string][]inventory.HistoryEvent{}
	for _, n := range nodes {
		if hist[n.UUID], err = ts.store.History(ctx, n.UUID); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(map[string]any{"nodes": nodes, "ports": ports, "history": hist})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unchanged fails the test if the store differs from before.
func (ts *testServer) unchanged(t *testing.T, before string) {
	t.Helper()
	if after := ts.snapshot(t); after != before {
		t.Errorf("the store changed on a refused request:\n%s", cmp.Diff(before, after))
	}
}

// createNode makes a node through the API and returns its uuid.
func (ts *testServer) createNode(t *testing.T, body map[string]any) string {
	t.Helper()
	if body["driver"] == nil {
		body["driver"] = "fake-hardware"
	}
	r := ts.do(t, req{method: "POST", path: "/v1/nodes", body: body})
	r.expect(t, http.StatusCreated)
	return r.json(t)["uuid"].(string)
}

// createPort makes a port through the API and returns its uuid.
func (ts *testServer) createPort(t *testing.T, node, mac string) string {
	t.Helper()
	r := ts.do(t, req{method: "POST", path: "/v1/ports", body: map[string]any{"node_uuid": node, "address": mac}})
	r.expect(t, http.StatusCreated)
	return r.json(t)["uuid"].(string)
}

// setNode changes a node directly in the store (states the API can not set).
func (ts *testServer) setNode(t *testing.T, id string, fn func(n *inventory.Node)) {
	t.Helper()
	_, _, err := ts.store.UpdateNode(context.Background(), id, func(n *inventory.Node, tx *nodestore.Tx) error {
		fn(n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (ts *testServer) node(t *testing.T, id string) *inventory.Node {
	t.Helper()
	n, _, err := ts.store.GetNode(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// inState puts a node in a provision state, with the target Ironic gives it.
func (ts *testServer) inState(t *testing.T, id, state string) {
	t.Helper()
	ts.setNode(t, id, func(n *inventory.Node) {
		n.ProvisionState = state
		n.TargetProvisionState = inventory.Target(state)
	})
}

// fakeConductor carries requests out at once, through the real store: a
// verb moves the node to its next state and on through "done" (and the
// "clean" of a deletion) until it rests in a stable state.
type fakeConductor struct {
	nodes *nodestore.Store
	// agent answers the deploy agent's calls: they only read and write
	// the store, so the real conductor serves them without running.
	agent *conductor.Conductor

	mu       sync.Mutex
	err      error // returned by every call while set
	requests []api.ProvisionRequest
	power    []string // "target timeout"
}

func (c *fakeConductor) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *fakeConductor) failing() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *fakeConductor) lastRequest() api.ProvisionRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) == 0 {
		return api.ProvisionRequest{}
	}
	return c.requests[len(c.requests)-1]
}

func (c *fakeConductor) lastPower() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.power) == 0 {
		return ""
	}
	return c.power[len(c.power)-1]
}

func (c *fakeConductor) Provision(ctx context.Context, ident string, rq api.ProvisionRequest) error {
	if err := c.failing(); err != nil {
		return err
	}
	verb, ok := inventory.LookupVerb(rq.Verb)
	if !ok {
		return inventory.Invalid("target", "unknown verb %q", rq.Verb)
	}
	c.mu.Lock()
	c.requests = append(c.requests, rq)
	c.mu.Unlock()
	ev := verb.Event
	for range 10 {
		n, _, err := c.nodes.UpdateNode(ctx, ident, func(n *inventory.Node, tx *nodestore.Tx) error {
			if n.Reservation != "" {
				return inventory.ErrLocked
			}
			to, err := inventory.Next(n.ProvisionState, ev)
			if err != nil {
				return err
			}
			h := c.nodes.NewHistory("provisioning", "INFO", string(ev)+": "+n.ProvisionState+" -> "+to)
			h.User = rq.User
			tx.Record(h)
			n.ProvisionState, n.TargetProvisionState = to, inventory.Target(to)
			now := time.Now()
			n.ProvisionUpdatedAt = &now
			return nil
		})
		if err != nil {
			return err
		}
		if inventory.IsStable(n.ProvisionState) {
			return nil
		}
		ev = inventory.EventDone
		if n.ProvisionState == inventory.StateDeleting {
			ev = inventory.EventClean
		}
		if _, err := inventory.Next(n.ProvisionState, ev); err != nil {
			return nil
		}
	}
	return nil
}

func (c *fakeConductor) SetPower(ctx context.Context, ident, target string, timeout time.Duration) error {
	if err := c.failing(); err != nil {
		return err
	}
	if !slices.Contains(inventory.PowerTargets, target) {
		return inventory.Invalid("target", "unknown power target %q", target)
	}
	c.mu.Lock()
	c.power = append(c.power, target+" "+timeout.String())
	c.mu.Unlock()
	state := inventory.PowerOn
	if target == inventory.PowerOff || target == inventory.SoftPowerOff {
		state = inventory.PowerOff
	}
	_, _, err := c.nodes.UpdateNode(ctx, ident, func(n *inventory.Node, tx *nodestore.Tx) error {
		n.PowerState = state
		return nil
	})
	return err
}

var fakeBootDevices = []string{"pxe", "disk", "cdrom", "bios", "safe"}

func (c *fakeConductor) SetBootDevice(ctx context.Context, ident, device string, persistent bool) error {
	if err := c.failing(); err != nil {
		return err
	}
	if !slices.Contains(fakeBootDevices, device) {
		return inventory.Invalid("boot_device", "unsupported %q", device)
	}
	_, _, err := c.nodes.UpdateNode(ctx, ident, func(n *inventory.Node, tx *nodestore.Tx) error {
		n.BootDevice, n.BootDevicePersistent = device, persistent
		return nil
	})
	return err
}

func (c *fakeConductor) BootDevice(ctx context.Context, ident string) (string, bool, error) {
	if err := c.failing(); err != nil {
		return "", false, err
	}
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return "", false, err
	}
	return n.BootDevice, n.BootDevicePersistent, nil
}

func (c *fakeConductor) SupportedBootDevices(ctx context.Context, ident string) ([]string, error) {
	if err := c.failing(); err != nil {
		return nil, err
	}
	if _, _, err := c.nodes.GetNode(ctx, ident); err != nil {
		return nil, err
	}
	return fakeBootDevices, nil
}

func (c *fakeConductor) Validate(ctx context.Context, ident string) (map[string]api.ValidateResult, error) {
	if err := c.failing(); err != nil {
		return nil, err
	}
	if _, _, err := c.nodes.GetNode(ctx, ident); err != nil {
		return nil, err
	}
	yes := true
	return map[string]api.ValidateResult{
		"power":      {Result: &yes},
		"management": {Result: &yes},
		"console":    {Reason: "not supported"},
	}, nil
}

var errBoom = errors.New("boom")

// Golden files.

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00`)
	hostRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
)

// normalizeJSON replaces what changes from run to run: uuids (numbered in
// order of appearance), timestamps and the test server's address.
func normalizeJSON(b []byte) []byte {
	seen := map[string]string{}
	b = uuidRE.ReplaceAllFunc(b, func(u []byte) []byte {
		if _, ok := seen[string(u)]; !ok {
			seen[string(u)] = "<uuid-" + string(rune('a'+len(seen))) + ">"
		}
		return []byte(seen[string(u)])
	})
	b = timeRE.ReplaceAll(b, []byte("<time>"))
	return hostRE.ReplaceAll(b, []byte("http://api.test"))
}

// golden compares a JSON response with testdata/name after unmarshalling
// both, or rewrites the file with -update.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	got := normalizeJSON(body)
	path := filepath.Join("testdata", name)
	if *update {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatal(err)
		}
		var pretty bytes.Buffer
		enc := json.NewEncoder(&pretty)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func (c *fakeConductor) AgentLookup(ctx context.Context, macs []string, node string) (*inventory.Node, string, error) {
	return c.agent.AgentLookup(ctx, macs, node)
}

func (c *fakeConductor) AgentHeartbeat(ctx context.Context, node, token string, hb conductor.Heartbeat) (*inventory.Node, error) {
	return c.agent.AgentHeartbeat(ctx, node, token, hb)
}

func (c *fakeConductor) ContinueInspection(ctx context.Context, node, token string, in conductor.Inspection) (*inventory.Node, error) {
	return c.agent.ContinueInspection(ctx, node, token, in)
}

func (c *fakeConductor) ContinueCleaning(ctx context.Context, node, token, failure string) (*inventory.Node, error) {
	return c.agent.ContinueCleaning(ctx, node, token, failure)
}

func (c *fakeConductor) ContinueDeploy(ctx context.Context, node, token, failure string) (*inventory.Node, error) {
	return c.agent.ContinueDeploy(ctx, node, token, failure)
}

func (c *fakeConductor) AgentImage(ctx context.Context, node, token string) (string, string, error) {
	return c.agent.AgentImage(ctx, node, token)
}

func (c *fakeConductor) AgentConfigDrive(ctx context.Context, node, token string) ([]byte, error) {
	return c.agent.AgentConfigDrive(ctx, node, token)
}
