package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the overcloud command: run with
// STRATA_TEST_MAIN=1 it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("STRATA_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestRunIdentitySIGTERM runs `overcloud run identity` as a process on a
// free port, uses it, and stops it with SIGTERM: it must exit 0 after
// logging that it stopped.
func TestRunIdentitySIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "run", "identity", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--password-cost", "4")
	cmd.Env = []string{"STRATA_TEST_MAIN=1", "STRATA_BOOTSTRAP_PASSWORD=cmd-test-pw", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) != nil {
				v = map[string]any{"msg": "not JSON: " + sc.Text()}
			}
			lines <- v
		}
	}()
	var seen []string
	next := func(msg string) map[string]any {
		t.Helper()
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case v, ok := <-lines:
				if !ok {
					t.Fatalf("the process ended before logging %q; it logged %v", msg, seen)
				}
				m, _ := v["msg"].(string)
				seen = append(seen, m)
				if m == msg {
					return v
				}
			case <-timeout:
				t.Fatalf("no %q log line; got %v", msg, seen)
			}
		}
	}
	listening := next("listening")
	addr, _ := listening["addr"].(string)
	resp, err := http.Get("http://" + addr + "/v3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Openstack-Request-Id") == "" {
		t.Errorf("GET /v3: %d %v", resp.StatusCode, resp.Header)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("stopped")
	for range lines {
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if strings.Contains(strings.Join(seen, " "), "cmd-test-pw") {
		t.Error("the password was logged")
	}
}
