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
	n, _, err := c.agentReport(ctx, node, token, inventory.StateInspectWait, func(n *inventory.Node, tx *nodestore.Tx) error {
		hints, _ := n.Properties["root_device"].(map[string]any)
		props, err := in.Hardware.Properties(hints)
		if err != nil {
			return fmt.Errorf("node %s: properties.root_device: %w", n.UUID, err)
		}
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
	id := n.UUID
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

// DefaultCleanSteps are the steps of automated cleaning (provide, and
// after undeploy).
var DefaultCleanSteps = []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata", "priority": 10}}

// AgentCleanSteps are the clean steps strata-agent carries out.
var AgentCleanSteps = []string{"erase_devices_metadata"}

// CleanSteps are the steps the node's cleaning runs: those of a manual
// clean request, or DefaultCleanSteps.
func CleanSteps(n *inventory.Node) []map[string]any {
	if steps, ok := n.DriverInternalInfo["clean_steps"].([]any); ok {
		out := make([]map[string]any, 0, len(steps))
		for _, s := range steps {
			if m, ok := s.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return DefaultCleanSteps
}

// ContinueCleaning records the end of the agent's clean steps: the node
// goes on to available (or manageable, for manual cleaning), or to clean
// failed with the agent's message; then the machine is powered off.
func (c *Conductor) ContinueCleaning(ctx context.Context, node, token, failure string) (*inventory.Node, error) {
	n, _, err := c.agentReport(ctx, node, token, inventory.StateCleanWait, func(n *inventory.Node, tx *nodestore.Tx) error {
		if failure != "" {
			cause := fmt.Errorf("cleaning failed on the node: %s", failure)
			c.move(n, tx, inventory.EventFail, inventory.StateCleanFailed, "", cause)
			n.LastError = oneLine(cause.Error())
			return nil
		}
		manual := manualCleaning(n)
		c.move(n, tx, inventory.EventResume, inventory.StateCleaning, "", nil)
		if manual {
			c.move(n, tx, inventory.EventManage, inventory.StateManageable, "", nil)
		} else {
			c.move(n, tx, inventory.EventDone, inventory.StateAvailable, "", nil)
		}
		delete(n.DriverInternalInfo, "clean_steps")
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.log.Info("cleaning finished", "node", n.UUID, "state", n.ProvisionState, "failure", failure)
	c.powerOffAfter(ctx, n, "cleaning")
	return n, nil
}

// manualCleaning reports whether the node's cleaning was asked for with
// steps (the clean verb), which ends in manageable, rather than automated
// (provide, undeploy), which ends in available.
func manualCleaning(n *inventory.Node) bool {
	_, ok := n.DriverInternalInfo["clean_steps"]
	return ok
}
