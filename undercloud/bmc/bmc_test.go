package bmc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/bmc"
)

// access reads the node's driver_info, failing the test if it can not.
func access(t *testing.T, n *inventory.Node) bmc.Access {
	t.Helper()
	a, err := bmc.AccessFromNode(n)
	if err != nil {
		t.Fatalf("AccessFromNode: %v", err)
	}
	return a
}

// powerState reads the power state through the pool.
func powerState(ctx context.Context, t *testing.T, p *bmc.Pool, a bmc.Access) string {
	t.Helper()
	var state string
	err := p.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
		var err error
		state, err = c.PowerState(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("power state: %v", err)
	}
	return state
}

func wantPower(ctx context.Context, t *testing.T, p *bmc.Pool, a bmc.Access, want string) {
	t.Helper()
	if got := powerState(ctx, t, p, a); got != want {
		t.Errorf("power state %q, want %q", got, want)
	}
}

func setPower(ctx context.Context, t *testing.T, p *bmc.Pool, a bmc.Access, target string) {
	t.Helper()
	if err := p.Do(ctx, a, func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, target) }); err != nil {
		t.Fatalf("set power %s: %v", target, err)
	}
}

func setBoot(ctx context.Context, t *testing.T, p *bmc.Pool, a bmc.Access, device string, persistent, uefi bool) {
	t.Helper()
	err := p.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
		return c.SetBootDevice(ctx, device, persistent, uefi)
	})
	if err != nil {
		t.Fatalf("set boot device %s: %v", device, err)
	}
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
