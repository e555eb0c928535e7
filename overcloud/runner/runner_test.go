package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `run identity` in-process and returns its address and a
// function that stops it and returns its exit code.
func start(t *testing.T, dir string, env map[string]string, logs *lockedBuffer) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	code := make(chan int, 1)
	o := &IdentityOptions{Stderr: logs, Ready: func(a net.Addr) { ready <- a }}
	go func() {
		code <- runIdentity(ctx, o, []string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--password-cost", "4"}, func(k string) string { return env[k] })
	}()
	select {
	case a := <-ready:
		return "http://" + a.String(), func() int { cancel(); return <-code }
	case c := <-code:
		cancel()
		t.Fatalf("identity exited with %d before serving:\n%s", c, logs.String())
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("identity did not start:\n%s", logs.String())
	}
	return "", nil
}

func TestIdentityStartStopRestart(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	url, stop := start(t, dir, map[string]string{BootstrapPasswordEnv: "first-pw"}, logs)
	login := func(url, pw string) int {
		body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"` + pw + `"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}`
		resp, err := http.Post(url+"/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := login(url, "first-pw"); got != 201 {
		t.Fatalf("login: %d", got)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d on a clean stop:\n%s", code, logs.String())
	}
	// Every log line is JSON; none carries the password.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	if strings.Contains(logs.String(), "first-pw") {
		t.Error("the bootstrap password is in the logs")
	}
	for _, msg := range []string{`"msg":"identity bootstrapped"`, `"msg":"listening"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("logs lack %s:\n%s", msg, logs.String())
		}
	}

	// A restart on the same data needs no password and keeps the admin.
	logs2 := &lockedBuffer{}
	url, stop = start(t, dir, nil, logs2)
	if got := login(url, "first-pw"); got != 201 {
		t.Errorf("login after restart: %d", got)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestIdentityFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no service", []string{"run"}, "usage: overcloud run <service>"},
		{"unknown service", []string{"run", "compute"}, `unknown service "compute"`},
		{"no storage", []string{"run", "identity"}, "give --data-dir (embedded etcd) or --etcd-endpoints"},
		{"bad listen", []string{"run", "identity", "--listen", "localhost", "--data-dir", "x"}, "--listen \"localhost\": want ADDR:PORT"},
		{"bad endpoints", []string{"run", "identity", "--etcd-endpoints", "etcd:2379"}, "is not an http(s) URL"},
		{"bad url", []string{"run", "identity", "--data-dir", "x", "--public-url", "nope"}, "--public-url \"nope\""},
		{"bad level", []string{"run", "identity", "--data-dir", "x", "--log-level", "loud"}, "log level"},
		{"extra argument", []string{"run", "identity", "--data-dir", "x", "more"}, `unexpected argument "more"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := Main(context.Background(), tc.args, &bytes.Buffer{}, &stderr, func(string) string { return "" }); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestFirstStartNeedsPassword(t *testing.T) {
	var stderr bytes.Buffer
	code := Main(context.Background(), []string{"run", "identity", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--password-cost", "4"},
		&bytes.Buffer{}, &stderr, func(string) string { return "" })
	if code != 1 || !strings.Contains(stderr.String(), "STRATA_BOOTSTRAP_PASSWORD") {
		t.Errorf("exit %d, stderr %s", code, stderr.String())
	}
}
