package node_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratacloud/strata/overcloud/node"
)

// The test binary is also the services the tests supervise, by
// NODE_HELPER: "serve ADDR [NEEDS]" serves /healthz on ADDR once NEEDS
// (an address) accepts connections, exiting 1 if it does not; "crash"
// exits 3; "stubborn" ignores SIGTERM.
func TestMain(m *testing.M) {
	switch h := strings.Fields(os.Getenv("NODE_HELPER")); {
	case len(h) == 0:
		os.Exit(m.Run())
	case h[0] == "serve":
		if len(h) > 2 {
			if c, err := net.Dial("tcp", h[2]); err != nil {
				fmt.Println("what I need is not up:", err)
				os.Exit(1)
			} else {
				c.Close()
			}
		}
		http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		http.ListenAndServe(h[1], nil)
		os.Exit(1)
	case h[0] == "crash":
		os.Exit(3)
	case h[0] == "stubborn":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
	}
	os.Exit(2)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func helper(mode string) []string { return []string{"NODE_HELPER=" + mode} }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestOrderHealthAndStop: the api starts only once the database is
// healthy (it exits if the database is not up: no restarts means the
// order held), both become healthy, and both stop when the context ends.
func TestOrderHealthAndStop(t *testing.T) {
	db, api := freeAddr(t), freeAddr(t)
	self, _ := os.Executable()
	sup, err := node.New(node.SupervisorConfig{CheckInterval: 20 * time.Millisecond}, []node.Service{
		{Name: "api", Command: []string{self}, Env: helper("serve " + api + " " + db), After: []string{"db"}, Health: node.Health{HTTP: "http://" + api + "/healthz"}},
		{Name: "db", Command: []string{self}, Env: helper("serve " + db), Health: node.Health{TCP: db}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	waitUntil(t, "both healthy", sup.Healthy)
	st := sup.Status()
	if st[0].Name != "db" || st[1].Name != "api" || st[1].Restarts != 0 {
		t.Errorf("status %+v: want db then api, the api never restarted", st)
	}
	pids := []int{st[0].PID, st[1].PID}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, s := range sup.Status() {
		if s.State != node.StateStopped || alive(pids[i]) {
			t.Errorf("%s after the stop: %s, process %d alive %v", s.Name, s.State, pids[i], alive(pids[i]))
		}
	}
}

// TestRestartWithBackoff: a service that keeps dying is started again,
// its exit recorded, each wait longer.
func TestRestartWithBackoff(t *testing.T) {
	self, _ := os.Executable()
	sup, err := node.New(node.SupervisorConfig{CheckInterval: 20 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond},
		[]node.Service{{Name: "flaky", Command: []string{self}, Env: helper("crash"), Health: node.Health{TCP: freeAddr(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	waitUntil(t, "four restarts", func() bool { return sup.Status()[0].Restarts >= 4 })
	if st := sup.Status()[0]; st.LastExit != "exit status 3" {
		t.Errorf("last exit %q", st.LastExit)
	}
	cancel()
	<-done
	if st := sup.Status()[0]; st.State != node.StateStopped {
		t.Errorf("after the stop: %s", st.State)
	}
}

// TestStopKillsAStubbornService: SIGKILL follows SIGTERM after the grace.
func TestStopKillsAStubbornService(t *testing.T) {
	self, _ := os.Executable()
	sup, err := node.New(node.SupervisorConfig{CheckInterval: 20 * time.Millisecond, StopGrace: 100 * time.Millisecond},
		[]node.Service{{Name: "stubborn", Command: []string{self}, Env: helper("stubborn")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	waitUntil(t, "healthy (running)", sup.Healthy)
	pid := sup.Status()[0].PID
	cancel()
	<-done
	if alive(pid) {
		t.Errorf("process %d survived the stop", pid)
	}
}

func TestBadServices(t *testing.T) {
	for _, c := range []struct {
		name     string
		services []node.Service
		want     string
	}{
		{"cycle", []node.Service{{Name: "a", Command: []string{"x"}, After: []string{"b"}}, {Name: "b", Command: []string{"x"}, After: []string{"a"}}}, "wait for each other: a → b → a"},
		{"unknown", []node.Service{{Name: "a", Command: []string{"x"}, After: []string{"etcd"}}}, "a comes after etcd, which is not a service here"},
		{"twice", []node.Service{{Name: "a", Command: []string{"x"}}, {Name: "a", Command: []string{"y"}}}, "listed twice"},
		{"no command", []node.Service{{Name: "a"}}, "needs a name and a command"},
	} {
		if _, err := node.New(node.SupervisorConfig{}, c.services); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
