package conductor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// SetPower reserves the node and a worker, records the target power state,
// and drives the node to it in the background.
func (c *Conductor) SetPower(ctx context.Context, ident, target string, timeout time.Duration) error {
	if !slices.Contains(inventory.PowerTargets, target) {
		return inventory.Invalid("target", "%q is not a valid power state target; use one of %q", target, inventory.PowerTargets)
	}
	if timeout < 0 {
		return inventory.Invalid("timeout", "must not be negative")
	}
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return err
	}
	d, err := c.driver(n)
	if err != nil {
		return err
	}
	if err := firstError(d.Validate(n), "power"); err != nil {
		return inventory.Invalid("driver_info", "%v", err)
	}
	workCtx, err := c.acquire()
	if err != nil {
		return err
	}
	_, rev, err := c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		tx.Ops = append(tx.Ops, store.PutLeased(nodestore.LockKey(n.UUID), []byte(c.cfg.Name), c.currentLease()))
		n.Reservation = c.cfg.Name
		n.TargetPowerState = target
		n.LastError = ""
		return nil
	})
	if err != nil {
		c.release()
		if errors.Is(err, nodestore.ErrFenced) {
			return c.lockedError(ctx, n.UUID)
		}
		return err
	}
	go c.powerWork(workCtx, n.UUID, rev, target, timeout)
	return nil
}

func (c *Conductor) powerWork(ctx context.Context, id string, lockRev int64, target string, timeout time.Duration) {
	defer c.release()
	n, _, err := c.nodes.GetNode(ctx, id)
	if err != nil {
		c.unlock(id, lockRev)
		return
	}
	d, err := c.driver(n)
	if err != nil {
		c.unlock(id, lockRev)
		return
	}
	if timeout <= 0 {
		timeout = c.cfg.OpTimeout
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	state, cause := d.SetPower(opCtx, n, target)
	cancel()
	if ctx.Err() != nil {
		return
	}
	_, _, err = c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
		tx.Conds = append(tx.Conds, store.Created(nodestore.LockKey(id), lockRev))
		tx.Ops = append(tx.Ops, store.Del(nodestore.LockKey(id)))
		from := n.PowerState
		n.Reservation = ""
		n.TargetPowerState = ""
		h := c.nodes.NewHistory("power", "INFO", "")
		h.Conductor = c.cfg.Name
		if cause != nil {
			n.LastError = oneLine(fmt.Sprintf("failed to change power state to %q: %v", target, cause))
			h.Severity, h.Event = "ERROR", n.LastError
		} else {
			n.PowerState = state
			h.Event = fmt.Sprintf("power state changed from %q to %q (target %q)", from, state, target)
		}
		tx.Record(h)
		return nil
	})
	if err != nil {
		c.log.Error("record power state", "node", id, "err", err)
		if !errors.Is(err, nodestore.ErrFenced) {
			c.unlock(id, lockRev)
		}
		return
	}
	if cause != nil {
		c.log.Warn("power action failed", "node", id, "target", target, "err", cause)
	}
}

// SetBootDevice sets the device the node boots from, through its driver,
// and records it. It fails with ErrLocked while the node is reserved.
func (c *Conductor) SetBootDevice(ctx context.Context, ident, device string, persistent bool) error {
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return err
	}
	d, err := c.driver(n)
	if err != nil {
		return err
	}
	if !slices.Contains(d.BootDevices(), device) {
		return inventory.Invalid("boot_device", "%q is not supported by the %s driver; use one of %q", device, n.Driver, d.BootDevices())
	}
	if _, err := c.nodes.Records().Get(ctx, nodestore.LockKey(n.UUID)); err == nil {
		return c.lockedError(ctx, n.UUID)
	}
	if err := d.SetBootDevice(ctx, n, device, persistent); err != nil {
		return fmt.Errorf("set boot device of node %s: %w", n.UUID, err)
	}
	_, _, err = c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		n.BootDevice, n.BootDevicePersistent = device, persistent
		return nil
	})
	if errors.Is(err, nodestore.ErrFenced) {
		return c.lockedError(ctx, n.UUID)
	}
	return err
}

// BootDevice returns the boot device last set on the node.
func (c *Conductor) BootDevice(ctx context.Context, ident string) (string, bool, error) {
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return "", false, err
	}
	return n.BootDevice, n.BootDevicePersistent, nil
}

// SupportedBootDevices lists the boot devices the node's driver can set.
func (c *Conductor) SupportedBootDevices(ctx context.Context, ident string) ([]string, error) {
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	d, err := c.driver(n)
	if err != nil {
		return nil, err
	}
	return d.BootDevices(), nil
}

// Validate reports, per hardware interface, whether the node's driver can
// work with its configuration.
func (c *Conductor) Validate(ctx context.Context, ident string) (map[string]ValidateResult, error) {
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	d, err := c.driver(n)
	if err != nil {
		return nil, err
	}
	res := d.Validate(n)
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]ValidateResult, len(res))
	for _, k := range keys {
		ok := res[k] == nil
		r := ValidateResult{Result: &ok}
		if !ok {
			r.Reason = res[k].Error()
		}
		out[k] = r
	}
	return out, nil
}
