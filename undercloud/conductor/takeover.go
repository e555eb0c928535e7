package conductor

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// takeover looks for nodes whose reservation outlived its conductor: the
// node names a conductor but its lock key is gone with that conductor's
// lease. A node left in a working state moves to the state its operation
// fails to, with a last_error that says why; any other node just loses
// the stale reservation and pending power target.
func (c *Conductor) takeover(ctx context.Context) {
	nodes, err := c.nodes.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("takeover scan", "err", err)
		}
		return
	}
	for _, n := range nodes {
		if n.Reservation == "" && !inventory.IsStuck(n.ProvisionState) && n.TargetPowerState == "" {
			continue
		}
		_, err := c.nodes.Records().Get(ctx, nodestore.LockKey(n.UUID))
		if err == nil {
			continue // held by a live conductor
		}
		if !errors.Is(err, store.ErrNotFound) {
			c.log.Error("takeover: read lock", "node", n.UUID, "err", err)
			continue
		}
		if err := c.heal(ctx, n.UUID); err != nil && !errors.Is(err, nodestore.ErrFenced) && !errors.Is(err, store.ErrNoChange) {
			c.log.Error("takeover", "node", n.UUID, "err", err)
		}
	}
}

func (c *Conductor) heal(ctx context.Context, id string) error {
	var healed bool
	var to string
	_, _, err := c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
		healed = false
		// Nobody may take the lock while the node is being healed.
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(id)))
		holder := n.Reservation
		if holder == "" {
			holder = "unknown"
		}
		if failTo, ok := inventory.FailedStateFor(n.ProvisionState); ok {
			cause := fmt.Errorf("conductor %s went away while the node was %s; the operation was abandoned", holder, n.ProvisionState)
			ev := inventory.EventFail
			c.move(n, tx, ev, failTo, "", cause)
			n.LastError = cause.Error()
			to = failTo
			healed = true
		}
		if n.TargetPowerState != "" {
			if !healed {
				n.LastError = fmt.Errorf("conductor %s went away while changing the power state to %s", holder, n.TargetPowerState).Error()
			}
			n.TargetPowerState = ""
			healed = true
		}
		if n.Reservation != "" {
			n.Reservation = ""
			healed = true
		}
		if !healed {
			return store.ErrNoChange
		}
		return nil
	})
	if err == nil && healed {
		c.m.takeovers.Inc()
		c.log.Warn("took over a node left by a dead conductor", "node", id, "state", to)
	}
	return err
}
