package conductor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// start runs a conductor until the test ends.
func start(t *testing.T, nodes *nodestore.Store, cfg conductor.Config) (*conductor.Conductor, context.CancelFunc) {
	t.Helper()
	c := conductor.New(cfg, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	var runErr error
	go func() { runErr = c.Run(ctx, ready); close(done) }()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("conductor did not start: %v", runErr)
	}
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return c, stop
}

func newNodes(t *testing.T) (*nodestore.Store, *clientv3.Client) {
	cli := etcdtest.Run(t)
	return nodestore.New(store.New(cli, "/strata/undercloud/")), cli
}

// waitState polls until the node rests in want, or fails the test.
func waitState(t *testing.T, nodes *nodestore.Store, id, want string) *inventory.Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, err := nodes.GetNode(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if n.ProvisionState == want && n.Reservation == "" {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s in %q (reservation %q, last_error %q), want %q", id, n.ProvisionState, n.Reservation, n.LastError, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFakeHardwareHappyPath(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	c, _ := start(t, nodes, conductor.Config{Name: "c1"})
	n, err := nodes.CreateNode(ctx, &inventory.Node{Name: "n0", Driver: inventory.DriverFake})
	if err != nil {
		t.Fatal(err)
	}
	walk := []struct{ verb, want string }{
		{"manage", inventory.StateManageable},
		{"inspect", inventory.StateManageable},
		{"provide", inventory.StateAvailable},
		{"active", inventory.StateActive},
		{"deleted", inventory.StateAvailable},
		{"manage", inventory.StateManageable},
	}
	for _, w := range walk {
		if err := c.Provision(ctx, "n0", conductor.ProvisionRequest{Verb: w.verb}); err != nil {
			t.Fatalf("%s: %v", w.verb, err)
		}
		got := waitState(t, nodes, n.UUID, w.want)
		if got.LastError != "" {
			t.Fatalf("%s: last_error %q", w.verb, got.LastError)
		}
	}
	got := waitState(t, nodes, n.UUID, inventory.StateManageable)
	if got.InspectionFinishedAt == nil || got.InspectionStartedAt == nil {
		t.Errorf("inspection timestamps not set: %v %v", got.InspectionStartedAt, got.InspectionFinishedAt)
	}
	hist, err := nodes.History(ctx, n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, h := range hist {
		if h.EventType == "provisioning" && h.To != "" {
			path = append(path, h.To)
		}
	}
	want := "enroll verifying manageable inspecting manageable cleaning available deploying active deleting cleaning available manageable"
	if strings.Join(path, " ") != want {
		t.Errorf("history path\n got %s\nwant %s", strings.Join(path, " "), want)
	}
}

func TestInvalidTransitionChangesNothing(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	c, _ := start(t, nodes, conductor.Config{Name: "c1"})
	n, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	_, before, _ := nodes.GetNode(ctx, n.UUID)
	err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "active"})
	var te *inventory.TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("deploy from enroll: got %v, want a TransitionError", err)
	}
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "fly"}); !errors.Is(err, inventory.ErrInvalid) {
		t.Fatalf("unknown verb: got %v", err)
	}
	_, after, _ := nodes.GetNode(ctx, n.UUID)
	if before != after {
		t.Fatal("a refused request wrote the node")
	}
}

func TestLockedAndNoWorkers(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	c, _ := start(t, nodes, conductor.Config{Name: "c1", Workers: 1, ShutdownGrace: time.Millisecond, Drivers: map[string]conductor.Driver{
		inventory.DriverFake: conductor.Fake{StepDelay: time.Hour},
	}})
	a, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	b, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	if err := c.Provision(ctx, a.UUID, conductor.ProvisionRequest{Verb: "manage"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPower(ctx, a.UUID, inventory.PowerOn, 0); !errors.Is(err, inventory.ErrNoWorkers) {
		t.Fatalf("second operation with one worker: got %v, want ErrNoWorkers", err)
	}
	if err := c.Provision(ctx, b.UUID, conductor.ProvisionRequest{Verb: "manage"}); !errors.Is(err, inventory.ErrNoWorkers) {
		t.Fatalf("got %v, want ErrNoWorkers", err)
	}
	got, _, _ := nodes.GetNode(ctx, b.UUID)
	if got.ProvisionState != inventory.StateEnroll {
		t.Fatalf("refused request moved the node to %q", got.ProvisionState)
	}
	if err := c.SetBootDevice(ctx, a.UUID, conductor.BootPXE, false); !errors.Is(err, inventory.ErrLocked) {
		t.Fatalf("boot device on a reserved node: got %v, want ErrLocked", err)
	}
}

func TestDeadConductorsNodesFail(t *testing.T) {
	ctx := context.Background()
	nodes, cli := newNodes(t)
	slow := map[string]conductor.Driver{inventory.DriverFake: conductor.Fake{StepDelay: time.Hour}}
	a, stopA := start(t, nodes, conductor.Config{Name: "a", Drivers: slow, ShutdownGrace: time.Millisecond})
	n, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	if err := a.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "manage"}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := nodes.GetNode(ctx, n.UUID)
	if got.ProvisionState != inventory.StateVerifying || got.Reservation != "a" {
		t.Fatalf("node %q reserved by %q", got.ProvisionState, got.Reservation)
	}
	// Conductor a dies: its lease goes, and with it the lock.
	stopA()
	if _, err := cli.Get(ctx, "/strata/undercloud/locks/"+n.UUID); err != nil {
		t.Fatal(err)
	}
	start(t, nodes, conductor.Config{Name: "b"})
	got = waitState(t, nodes, n.UUID, inventory.StateEnroll)
	if !strings.Contains(got.LastError, "conductor a went away") {
		t.Fatalf("last_error = %q", got.LastError)
	}
}

func TestRestartUnderSameNameRevokesOldLocks(t *testing.T) {
	ctx := context.Background()
	nodes, cli := newNodes(t)
	slow := map[string]conductor.Driver{inventory.DriverFake: conductor.Fake{StepDelay: time.Hour}}
	// An earlier run of "u" crashed: its registration and the node's lock
	// are still there, on a lease with a long TTL.
	a := conductor.New(conductor.Config{Name: "u", Drivers: slow, LeaseTTL: time.Hour}, nodes)
	actx, cancelA := context.WithCancel(ctx)
	ready := make(chan struct{})
	go a.Run(actx, ready)
	<-ready
	n, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	if err := a.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "manage"}); err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: the process is gone without revoking its lease,
	// which lives on for an hour. Only the record of it remains.
	_ = cli
	cancelA()
	// The new run under the same name must not wait for the TTL.
	start(t, nodes, conductor.Config{Name: "u"})
	got := waitState(t, nodes, n.UUID, inventory.StateEnroll)
	if got.LastError == "" {
		t.Fatal("no last_error after takeover")
	}
}

// TestConcurrencyLimits: with one node allowed in each phase, a second
// inspection or deploy is refused (and its node unchanged) while the
// first runs, and accepted once it is done.
func TestConcurrencyLimits(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	c, _ := start(t, nodes, conductor.Config{Name: "c1", MaxConcurrentInspect: 1, MaxConcurrentDeploy: 1,
		Drivers: map[string]conductor.Driver{inventory.DriverFake: conductor.Fake{StepDelay: 300 * time.Millisecond}}})
	var ids []string
	for _, name := range []string{"a", "b"} {
		n, err := nodes.CreateNode(ctx, &inventory.Node{Name: name, Driver: inventory.DriverFake})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.UUID)
		if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "manage"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		waitState(t, nodes, id, inventory.StateManageable)
	}
	for _, p := range []struct{ first, verb, busy, done string }{
		{"inspect", "inspect", "inspecting", inventory.StateManageable},
		{"provide", "provide", "", inventory.StateAvailable}, // cleaning allows 50
		{"active", "active", "deploying", inventory.StateActive},
	} {
		if err := c.Provision(ctx, ids[0], conductor.ProvisionRequest{Verb: p.verb}); err != nil {
			t.Fatal(err)
		}
		err := c.Provision(ctx, ids[1], conductor.ProvisionRequest{Verb: p.verb})
		if p.busy == "" {
			if err != nil {
				t.Fatalf("%s of a second node: %v", p.verb, err)
			}
		} else {
			if !errors.Is(err, inventory.ErrConcurrencyLimit) || !strings.Contains(err.Error(), "1 nodes are "+p.busy) {
				t.Fatalf("%s of a second node: %v, want the concurrency limit", p.verb, err)
			}
			if n, _, _ := nodes.GetNode(ctx, ids[1]); n.ProvisionState == p.busy {
				t.Fatalf("the refused node is %s", n.ProvisionState)
			}
			waitState(t, nodes, ids[0], p.done)
			if err := c.Provision(ctx, ids[1], conductor.ProvisionRequest{Verb: p.verb}); err != nil {
				t.Fatalf("%s once the first is done: %v", p.verb, err)
			}
		}
		waitState(t, nodes, ids[0], p.done)
		waitState(t, nodes, ids[1], p.done)
	}
}
