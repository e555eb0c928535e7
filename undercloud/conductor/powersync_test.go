package conductor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
)

// bench is a hardware type whose power state the test sets behind the
// conductor's back, like a person at the machine's power button.
type bench struct {
	conductor.Fake
	mu    sync.Mutex
	state string
	err   error
	reads int
}

func (b *bench) set(state string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.err = state, err
}

func (b *bench) PowerState(context.Context, *inventory.Node) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	return b.state, b.err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPowerSync(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	hw := &bench{state: inventory.PowerOff}
	start(t, nodes, conductor.Config{Name: "sync", PowerSyncInterval: 20 * time.Millisecond,
		Drivers: map[string]conductor.Driver{inventory.DriverFake: hw}})

	watched, _ := nodes.CreateNode(ctx, &inventory.Node{Name: "watched", Driver: inventory.DriverFake, ProvisionState: inventory.StateManageable})
	resting, _ := nodes.CreateNode(ctx, &inventory.Node{Name: "resting", Driver: inventory.DriverFake, ProvisionState: inventory.StateManageable, Maintenance: true, PowerState: inventory.PowerOff})
	enrolled, _ := nodes.CreateNode(ctx, &inventory.Node{Name: "enrolled", Driver: inventory.DriverFake})

	// The first round records the state; then someone powers the node on.
	waitFor(t, "the first power state", func() bool {
		n, _, _ := nodes.GetNode(ctx, watched.UUID)
		return n.PowerState == inventory.PowerOff
	})
	hw.set(inventory.PowerOn, nil)
	waitFor(t, "the out-of-band change", func() bool {
		n, _, _ := nodes.GetNode(ctx, watched.UUID)
		return n.PowerState == inventory.PowerOn
	})
	hist, _ := nodes.History(ctx, watched.UUID)
	if !historyHas(hist, "power state changed out of band") {
		t.Fatalf("history does not record the change: %+v", hist)
	}
	for _, id := range []string{resting.UUID, enrolled.UUID} {
		n, _, _ := nodes.GetNode(ctx, id)
		if n.PowerState == inventory.PowerOn {
			t.Errorf("node %s (maintenance %v, %s) was synced", n.Name, n.Maintenance, n.ProvisionState)
		}
	}

	// The BMC stops answering: after three failures in a row the node is
	// put in maintenance with a power failure, and no longer polled.
	hw.set("", errors.New("BMC unreachable"))
	waitFor(t, "maintenance", func() bool {
		n, _, _ := nodes.GetNode(ctx, watched.UUID)
		return n.Maintenance
	})
	n, _, _ := nodes.GetNode(ctx, watched.UUID)
	if n.Fault != "power failure" || !strings.Contains(n.MaintenanceReason, "BMC unreachable") {
		t.Fatalf("fault %q, reason %q", n.Fault, n.MaintenanceReason)
	}
}

func historyHas(hist []inventory.HistoryEvent, text string) bool {
	for _, h := range hist {
		if strings.Contains(h.Event, text) {
			return true
		}
	}
	return false
}

// TestPowerSyncFailsADeadAgentWait: a machine found off while its node
// waits for its agent fails the node at once (the agent can not call
// back), unless the wait has only just begun.
func TestPowerSyncFailsADeadAgentWait(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	hw := &bench{state: inventory.PowerOff}
	start(t, nodes, conductor.Config{Name: "sync", PowerSyncInterval: 20 * time.Millisecond,
		Drivers: map[string]conductor.Driver{inventory.DriverFake: hw}})
	long := time.Now().Add(-time.Minute)
	now := time.Now()
	waiting, _ := nodes.CreateNode(ctx, &inventory.Node{Name: "waiting", Driver: inventory.DriverFake, ProvisionState: inventory.StateWaitCallback,
		// Its off already recorded, during the grace period.
		PowerState: inventory.PowerOff, ProvisionUpdatedAt: &long, DriverInternalInfo: map[string]any{conductor.AgentTokenHashKey: "x"}})
	fresh, _ := nodes.CreateNode(ctx, &inventory.Node{Name: "fresh", Driver: inventory.DriverFake, ProvisionState: inventory.StateInspectWait,
		PowerState: inventory.PowerOn, ProvisionUpdatedAt: &now})
	var n *inventory.Node
	waitFor(t, "the deploy to fail", func() bool {
		n, _, _ = nodes.GetNode(ctx, waiting.UUID)
		return n.ProvisionState == inventory.StateDeployFailed
	})
	if !strings.Contains(n.LastError, "powered off out of band while wait call-back") || n.DriverInternalInfo[conductor.AgentTokenHashKey] != nil {
		t.Errorf("last_error %q, token hash %v", n.LastError, n.DriverInternalInfo[conductor.AgentTokenHashKey])
	}
	if f, _, _ := nodes.GetNode(ctx, fresh.UUID); f.ProvisionState != inventory.StateInspectWait || f.PowerState != inventory.PowerOff {
		t.Errorf("a wait that has just begun: %s, %s; want still inspect wait, power off recorded", f.ProvisionState, f.PowerState)
	}
}
