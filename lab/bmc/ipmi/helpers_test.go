package ipmi

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
)

const (
	testUser     = "admin"
	testPassword = "Sup3r-Secret-Pw"
)

// logBuffer collects a server's log, for tests that look into it.
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

// testBMC is a served BMC with a Sim behind it.
type testBMC struct {
	srv *Server
	sim *bmc.Sim
	log *logBuffer
}

func testHardware() bmc.Hardware {
	return bmc.Hardware{UUID: "8d7a5f0e-3b4c-4a1e-9f00-1c2d3e4f5a6b", Manufacturer: "Strata", Model: "lab"}
}

// newBMC starts a BMC on a loopback port, with a Sim behind it; edit
// adjusts its configuration, and prepare the Server before it serves. The
// BMC stops when the test ends.
func newBMC(t *testing.T, edit func(*Config), prepare ...func(*Server)) *testBMC {
	t.Helper()
	tb := &testBMC{sim: bmc.NewSim(testHardware()), log: &logBuffer{}}
	cfg := Config{
		Addr:     "127.0.0.1:0",
		Username: testUser,
		Password: testPassword,
		Machine:  tb.sim,
		Logger:   slog.New(slog.NewTextHandler(tb.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb.srv = srv
	for _, p := range prepare {
		p(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("bmc log:\n%s", tb.log)
		}
	})
	return tb
}

// ipmitoolPath finds ipmitool, which `make deps` installs.
func ipmitoolPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Fatalf("ipmitool is missing (make deps installs it): %v", err)
	}
	return p
}

// ipmitool runs the real ipmitool against the BMC, with lanplus and the
// given credentials, and returns its combined output.
func (tb *testBMC) ipmitool(t *testing.T, user, password string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", strconv.Itoa(int(tb.srv.Addr().Port())),
		"-U", user, "-P", password, "-N", "2", "-R", "3"}
	full = append(full, args...)
	out, err := exec.CommandContext(ctx, ipmitoolPath(t), full...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
