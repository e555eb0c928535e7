package undercloud_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// process is an undercloud daemon running as its own process.
type process struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
}

// buildDaemon builds the undercloud binary once per test.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "undercloud")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/stratacloud/strata/cmd/undercloud").CombinedOutput()
	if err != nil {
		t.Fatalf("build undercloud: %v\n%s", err, out)
	}
	return bin
}

func startProcess(t *testing.T, bin, dataDir, config string) *process {
	t.Helper()
	os.Remove(filepath.Join(dataDir, "api.addr"))
	log, err := os.OpenFile(filepath.Join(dataDir, "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--config", config)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.exited) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, "api.addr"))
		if err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			return p
		}
		select {
		case <-p.exited:
			logs, _ := os.ReadFile(filepath.Join(dataDir, "daemon.log"))
			t.Fatalf("undercloud exited at start:\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("undercloud did not write its address")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes an API request and returns the status and body.
func call(addr, method, path string, body any) (int, []byte, error) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.87")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), nil
}

// TestKillNineMidBatch kills the daemon with SIGKILL while a batch of nodes
// is moving through the state machine, restarts it on the same data, and
// checks that every node ends in a valid resting state, that none is left
// in a transitional state or reserved, and that the nodes whose work was
// cut short say why in last_error.
func TestKillNineMidBatch(t *testing.T) {
	t.Parallel()
	bin := buildDaemon(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "undercloud.yaml")
	os.WriteFile(config, []byte("conductor:\n  name: crash-test\n  fake_step_delay: 300ms\n  lease_ttl: 30s\n"), 0o600)
	p := startProcess(t, bin, dir, config)

	const nodes = 30
	var ids []string
	for i := 0; i < nodes; i++ {
		code, body, err := call(p.addr, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("crash-%02d", i)})
		if err != nil || code != 201 {
			t.Fatalf("create node: %d %s %v", code, body, err)
		}
		var n map[string]any
		json.Unmarshal(body, &n)
		ids = append(ids, n["uuid"].(string))
	}

	// Each node walks manage → provide → deploy on its own; the daemon is
	// killed while they are on their way.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, step := range []struct{ verb, want string }{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
				if code, _, err := call(p.addr, "PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": step.verb}); err != nil || code != 202 {
					return
				}
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					_, body, err := call(p.addr, "GET", "/v1/nodes/"+id, nil)
					if err != nil {
						return
					}
					var n map[string]any
					json.Unmarshal(body, &n)
					if n["provision_state"] == step.want && n["reservation"] == nil {
						break
					}
				}
			}
		}()
	}
	time.Sleep(900 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	close(stop)
	wg.Wait()

	// Restart on the same data directory.
	p = startProcess(t, bin, dir, config)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := call(p.addr, "GET", "/v1/nodes/detail", nil)
		if err != nil || code != 200 {
			t.Fatalf("list: %d %v", code, err)
		}
		var list struct{ Nodes []map[string]any }
		json.Unmarshal(body, &list)
		if len(list.Nodes) != nodes {
			t.Fatalf("%d nodes after restart, want %d", len(list.Nodes), nodes)
		}
		settled, failed := 0, 0
		var pending []string
		for _, n := range list.Nodes {
			state, _ := n["provision_state"].(string)
			if !slices.Contains(inventory.AllStates(), state) {
				t.Fatalf("node %s in unknown state %q", n["name"], state)
			}
			if slices.Contains(inventory.UnstableStates, state) || n["reservation"] != nil {
				pending = append(pending, fmt.Sprintf("%s=%s/%v", n["name"], state, n["reservation"]))
				continue
			}
			settled++
			if lastErr, _ := n["last_error"].(string); lastErr != "" {
				if !strings.Contains(lastErr, "went away") {
					t.Errorf("node %s: last_error %q does not say why", n["name"], lastErr)
				}
				failed++
			}
		}
		if settled == nodes {
			if failed == 0 {
				t.Fatal("no node was caught mid-transition: the test proved nothing")
			}
			t.Logf("%d of %d nodes were cut short and failed cleanly", failed, nodes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes still working or reserved after restart: %v", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every node can go on: a failed node is managed again.
	for _, id := range ids {
		_, body, _ := call(p.addr, "GET", "/v1/nodes/"+id, nil)
		var n map[string]any
		json.Unmarshal(body, &n)
		if n["provision_state"] != "enroll" && n["provision_state"] != "clean failed" && n["provision_state"] != "deploy failed" {
			continue
		}
		verb := "manage"
		if n["provision_state"] == "deploy failed" {
			verb = "active"
		}
		if code, body, _ := call(p.addr, "PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": verb}); code != 202 {
			t.Errorf("%s of node in %v: %d %s", verb, n["provision_state"], code, body)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
