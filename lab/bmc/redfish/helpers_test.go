package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
)

const (
	testUser     = "admin"
	testPassword = "s3cret-Passw0rd"
	testUUID     = "6f1c2a7e-3b1d-4c59-9a63-0e2f1b7d8c41"
)

// testHardware is the hardware of test machine i.
func testHardware(i int) bmc.Hardware {
	return bmc.Hardware{
		UUID:         fmt.Sprintf("9a1b6c3e-0000-4000-8000-%012d", i),
		Serial:       fmt.Sprintf("SN-%04d", i),
		Manufacturer: "QEMU",
		Model:        "Standard PC (Q35 + ICH9, 2009)",
		CPUs:         2,
		CPUModel:     "QEMU Virtual CPU version 2.5+",
		MemoryMiB:    3072,
		NICs: []bmc.NIC{
			{Name: "eth0", MAC: fmt.Sprintf("52:54:00:00:%02X:01", i)},
			{Name: "eth1", MAC: fmt.Sprintf("52:54:00:00:%02x:02", i)},
		},
		Disks: []bmc.Disk{
			{Name: "sda", SizeBytes: 20 << 30, Serial: fmt.Sprintf("QM%05d", i), Model: "QEMU HARDDISK"},
		},
		Firmware: "uefi",
	}
}

// fakeClock is a settable clock for session expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects a Server's log, at debug level, for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a Server with n Sims, "node-0" to "node-<n-1>", a fake
// clock and a captured log, not listening. mod changes the Config.
type testServer struct {
	*Server
	sims  map[string]*bmc.Sim
	clock *fakeClock
	log   *logBuffer
}

func newTestServer(t *testing.T, n int, mod func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{sims: map[string]*bmc.Sim{}, clock: newFakeClock(), log: &logBuffer{}}
	cfg := Config{
		Username: testUser,
		Password: testPassword,
		UUID:     testUUID,
		Systems:  map[string]bmc.Machine{},
		Now:      ts.clock.Now,
		Logger:   slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for i := range n {
		id := fmt.Sprintf("node-%d", i)
		ts.sims[id] = bmc.NewSim(testHardware(i))
		cfg.Systems[id] = ts.sims[id]
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Server = s
	return ts
}

// start starts the Server on a loopback port and stops it when the test
// ends.
func (ts *testServer) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := ts.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := ts.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

type reqOption func(*http.Request)

func basic(user, pass string) reqOption {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func token(tok string) reqOption {
	return func(r *http.Request) { r.Header.Set("X-Auth-Token", tok) }
}

func header(k, v string) reqOption {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

var admin = basic(testUser, testPassword)

// do runs one request through h.
func do(h http.Handler, method, path, body string, opts ...reqOption) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decode unmarshals a response body into a generic value.
func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("response body %q: %v", w.Body.String(), err)
	}
	return v
}

// wantStatus fails the test unless w has the status.
func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body: %s", w.Code, status, w.Body.String())
	}
}

// wantError checks a Redfish error answer: the status, the Base registry
// message key in @Message.ExtendedInfo, and words of the message.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, key string, words ...string) {
	t.Helper()
	wantStatus(t, w, status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Info    []struct {
				MessageID         string   `json:"MessageId"`
				Message           string   `json:"Message"`
				Severity          string   `json:"Severity"`
				Resolution        string   `json:"Resolution"`
				RelatedProperties []string `json:"RelatedProperties"`
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	e := body.Error
	if e.Code != "Base.1.16.GeneralError" {
		t.Errorf("code %q, want Base.1.16.GeneralError", e.Code)
	}
	if len(e.Info) != 1 {
		t.Fatalf("@Message.ExtendedInfo has %d messages, want 1: %s", len(e.Info), w.Body.String())
	}
	if got, want := e.Info[0].MessageID, "Base.1.16."+key; got != want {
		t.Errorf("MessageId %q, want %q", got, want)
	}
	if e.Info[0].Message != e.Message || e.Message == "" || e.Info[0].Severity == "" || e.Info[0].Resolution == "" {
		t.Errorf("incomplete error: %s", w.Body.String())
	}
	for _, word := range words {
		if !strings.Contains(e.Message, word) {
			t.Errorf("message %q does not mention %q", e.Message, word)
		}
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}
