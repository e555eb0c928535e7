package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock never sleeps: After moves the time on at once.
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

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// Ticker never ticks: tests see only the redraws that state changes make.
func (c *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

// cliRun is one run of the CLI in-process.
type cliRun struct {
	env   map[string]string
	stdin string
	tty   bool
	clock clock
}

type cliResult struct {
	stdout string
	stderr string
	code   int
}

func newFake(t *testing.T) *fakeIronic {
	t.Helper()
	f := startFakeIronic()
	t.Cleanup(f.Close)
	return f
}

// fakeEnv points the CLI at f without authentication.
func fakeEnv(f *fakeIronic) map[string]string {
	return map[string]string{"OS_AUTH_TYPE": "none", "OS_ENDPOINT": f.URL}
}

// strata runs the CLI against f with args.
func strata(t *testing.T, f *fakeIronic, args ...string) cliResult {
	t.Helper()
	return cliRun{env: fakeEnv(f)}.run(t, args...)
}

func (c cliRun) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	env := c.env
	if env == nil {
		env = map[string]string{}
	}
	clk := c.clock
	if clk == nil {
		clk = newFakeClock()
	}
	h := &host{
		lookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		clock:      clk,
		isTerminal: func(io.Writer) bool { return c.tty },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := execute(ctx, args, IOStreams{In: strings.NewReader(c.stdin), Out: &out, ErrOut: &errOut}, h)
	return cliResult{stdout: out.String(), stderr: errOut.String(), code: code}
}

// mustSucceed fails the test unless the run exited 0.
func (r cliResult) mustSucceed(t *testing.T) cliResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}
