package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// Inspection is what an agent's inspection found.
type Inspection struct {
	// Hardware is the inventory, decoded and validated.
	Hardware inventory.Hardware
	// Inventory and PluginData are stored as the agent sent them.
	Inventory  json.RawMessage
	PluginData json.RawMessage
}

// ContinueInspection records an inspection's result: in one transaction
// the inventory, the node's properties and its move from inspect wait to
// manageable; then a port for each new NIC, and the machine is powered
// off.
func (c *Conductor) ContinueInspection(ctx context.Context, node, token string, in Inspection) (*inventory.Node, error) {
	n, _, err := c.nodes.GetNode(ctx, node)
	if err != nil {
		return nil, err
	}
	id := n.UUID
	n, _, err = c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
		if err := checkAgentToken(n, token); err != nil {
			return err
		}
		if n.ProvisionState != inventory.StateInspectWait {
			return fmt.Errorf("node %s is %s, not inspect wait; send the inventory again shortly: %w", n.UUID, n.ProvisionState, inventory.ErrInvalidState)
		}
		hints, _ := n.Properties["root_device"].(map[string]any)
		props, err := in.Hardware.Properties(hints)
		if err != nil {
			return fmt.Errorf("node %s: properties.root_device: %w", n.UUID, err)
		}
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		now := c.nodes.Now()
		plugin := in.PluginData
		if len(plugin) == 0 {
			plugin = json.RawMessage(`{}`)
		}
		tx.Ops = append(tx.Ops, store.PutJSON(nodestore.InventoryKey(n.UUID), nodestore.StoredInventory{
			Inventory: in.Inventory, PluginData: plugin, CreatedAt: now,
		}))
		for k, v := range props {
			n.Properties[k] = v
		}
		for k, v := range in.Hardware.Capabilities() {
			caps, _ := n.Properties["capabilities"].(string)
			n.Properties["capabilities"] = setCapability(caps, k, v)
		}
		n.InspectionFinishedAt = &now
		delete(n.DriverInternalInfo, AgentTokenHashKey)
		c.move(n, tx, inventory.EventDone, inventory.StateManageable, "", nil)
		tx.Record(c.nodes.NewHistory("inspection", "INFO", "inventory received: "+in.Hardware.Summary()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.m.transitions.WithLabelValues(string(inventory.EventDone), inventory.StateManageable).Inc()
	c.log.Info("inspection finished", "node", id, "summary", in.Hardware.Summary())
	for _, nic := range in.Hardware.Interfaces {
		mac := nic.MACAddress
		p := &inventory.Port{NodeUUID: id, Address: mac, PXEEnabled: strings.EqualFold(mac, in.Hardware.Boot.PXEInterface)}
		if _, err := c.nodes.CreatePort(ctx, p); err != nil && !errors.Is(err, inventory.ErrDuplicate) {
			c.log.Warn("inspection: create port", "node", id, "mac", mac, "err", err)
		}
	}
	c.powerOffAfter(ctx, n, "inspection")
	return n, nil
}

// setCapability sets key:value in a capabilities string ("k1:v1,k2:v2"),
// keeping the other entries and their order.
func setCapability(caps, key, value string) string {
	var out []string
	found := false
	for _, kv := range strings.Split(caps, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		if k, _, _ := strings.Cut(kv, ":"); strings.TrimSpace(k) == key {
			if found {
				continue
			}
			kv, found = key+":"+value, true
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, key+":"+value)
	}
	return strings.Join(out, ",")
}
