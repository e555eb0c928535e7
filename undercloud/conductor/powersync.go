package conductor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// powerSyncFailures is how many power-state reads in a row may fail before
// the node is put in maintenance with the fault "power failure", as Ironic
// does.
const powerSyncFailures = 3

// syncPower reads the power state of every node it may touch from its BMC
// and records changes made behind the undercloud's back in the node's
// history. It skips nodes in maintenance, nodes still being enrolled, and
// nodes a conductor is working on.
func (c *Conductor) syncPower(ctx context.Context) {
	start := time.Now()
	nodes, err := c.nodes.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("power sync: list nodes", "err", err)
		}
		return
	}
	sem := make(chan struct{}, c.cfg.PowerSyncWorkers)
	var wg sync.WaitGroup
	checked := 0
	for _, n := range nodes {
		if !syncable(n) {
			continue
		}
		d, ok := c.cfg.Drivers[n.Driver]
		if !ok {
			continue
		}
		checked++
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.syncNode(ctx, d, n)
		}()
	}
	wg.Wait()
	c.m.powerSync.Observe(time.Since(start).Seconds())
	c.log.Debug("power sync done", "nodes", checked, "took", time.Since(start))
}

func syncable(n *inventory.Node) bool {
	switch {
	case n.Maintenance, n.Reservation != "", n.TargetPowerState != "":
		return false
	case n.ProvisionState == inventory.StateEnroll, n.ProvisionState == inventory.StateVerifying:
		return false
	}
	return true
}

// offGrace is how long after a node starts waiting for its agent a
// power-off reading counts as the machine's death: a BMC may still show
// off for a moment after the power-on that started the wait.
const offGrace = 30 * time.Second

func (c *Conductor) syncNode(ctx context.Context, d Driver, n *inventory.Node) {
	readAt := c.nodes.Now()
	rctx, cancel := context.WithTimeout(ctx, c.cfg.PowerSyncTimeout)
	state, readErr := d.PowerState(rctx, n)
	cancel()
	if ctx.Err() != nil {
		return
	}
	_, _, err := c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		if !syncable(n) {
			return store.ErrNoChange
		}
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		failures, _ := n.DriverInternalInfo["power_sync_failures"].(float64)
		if readErr != nil {
			failures++
			n.DriverInternalInfo["power_sync_failures"] = failures
			if failures >= powerSyncFailures {
				n.Maintenance = true
				n.Fault = "power failure"
				n.MaintenanceReason = fmt.Sprintf("power state sync failed %d times in a row: %v", int(failures), readErr)
				h := c.nodes.NewHistory("power", "ERROR", "put in maintenance: "+n.MaintenanceReason)
				h.Conductor = c.cfg.Name
				tx.Record(h)
			}
			return nil
		}
		if failures > 0 {
			delete(n.DriverInternalInfo, "power_sync_failures")
		}
		died := state == inventory.PowerOff && c.waitTimeout(n.ProvisionState) > 0 &&
			n.ProvisionUpdatedAt != nil && readAt.Sub(*n.ProvisionUpdatedAt) > offGrace
		if died {
			c.agentDied(n, tx) // whether or not the off was recorded before
		}
		if state == n.PowerState {
			if failures == 0 && !died {
				return store.ErrNoChange
			}
			return nil
		}
		if n.PowerState != "" {
			h := c.nodes.NewHistory("power", "WARNING",
				fmt.Sprintf("power state changed out of band: from %q to %q", n.PowerState, state))
			h.Conductor = c.cfg.Name
			tx.Record(h)
			c.m.outOfBand.Inc()
		}
		n.PowerState = state
		return nil
	})
	if err != nil && ctx.Err() == nil {
		c.log.Debug("power sync: record", "node", n.UUID, "err", err)
	}
	if readErr != nil {
		c.log.Warn("power sync: read failed", "node", n.UUID, "err", readErr)
	}
}

// agentDied fails a node whose machine was found powered off while it
// waited for its agent: nothing will call back, so it need not wait for
// the timeout. Only the power-on of a later request brings it back.
func (c *Conductor) agentDied(n *inventory.Node, tx *nodestore.Tx) {
	next, err := inventory.Next(n.ProvisionState, inventory.EventFail)
	if err != nil {
		return
	}
	cause := fmt.Errorf("the machine was powered off out of band while %s: its agent can not call back", n.ProvisionState)
	c.move(n, tx, inventory.EventFail, next, "", cause)
	n.LastError = cause.Error()
	delete(n.DriverInternalInfo, AgentTokenHashKey)
}
