package conductor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// The deploy ramdisk's agent and the conductor work together like this:
//
//  1. A phase that needs the agent (inspect, clean, deploy) has the driver
//     set the node's boot device to PXE and power it on; the driver
//     returns ErrWaitAgent, and the node rests in the phase's wait state
//     (inspect wait, clean wait, wait call-back) with no worker holding it.
//  2. The machine network-boots the deploy ramdisk. Its agent looks the
//     node up by its MACs (AgentLookup) and receives a token, once per
//     boot: the token's hash is kept in the node's driver_internal_info,
//     and entering a phase that boots the ramdisk again clears it.
//  3. The agent heartbeats (AgentHeartbeat) with the token, and reports
//     the result of its work with it (ContinueInspection, …); the
//     conductor moves the node on in the same etcd transaction.
//  4. A node left in a wait state past its timeout fails, with a
//     last_error that names the state and the timeout.
//
// The agent never receives commands over a connection the undercloud
// opens: it pulls its work from the answers to its calls, so nothing on
// the machine listens.

// ErrWaitAgent is returned by a driver's Phase when the node was booted
// into the deploy ramdisk: the phase goes on when its agent calls back.
var ErrWaitAgent = errors.New("waiting for the deploy ramdisk's agent")

// ErrAgentToken is returned for an agent call without the node's agent
// token.
var ErrAgentToken = errors.New("invalid agent token")

// AgentTokenHashKey is the driver_internal_info key of the agent token's
// SHA-256, hex-encoded. The token itself is never stored.
const AgentTokenHashKey = "agent_token_sha256"

// agentStates are the states in which a node runs the deploy ramdisk,
// or is being booted into it.
var agentStates = map[string]bool{
	inventory.StateInspecting:   true,
	inventory.StateInspectWait:  true,
	inventory.StateCleaning:     true,
	inventory.StateCleanWait:    true,
	inventory.StateDeploying:    true,
	inventory.StateWaitCallback: true,
	inventory.StateRescuing:     true,
	inventory.StateRescueWait:   true,
	inventory.StateServicing:    true,
	inventory.StateServiceWait:  true,
}

// bootsRamdisk are the working states that (re)boot the node into the
// ramdisk: entering one revokes the agent token of the last boot.
var bootsRamdisk = map[string]bool{
	inventory.StateInspecting: true,
	inventory.StateCleaning:   true,
	inventory.StateDeploying:  true,
	inventory.StateRescuing:   true,
	inventory.StateServicing:  true,
}

// AgentLookup finds the node awaiting an agent that has a port with one
// of macs (or, when node is given, that node), and issues its agent
// token. A second lookup in the same boot is refused: the token was given
// out already.
func (c *Conductor) AgentLookup(ctx context.Context, macs []string, node string) (*inventory.Node, string, error) {
	id, err := c.lookupNode(ctx, macs, node)
	if err != nil {
		return nil, "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := hex.EncodeToString(raw)
	n, _, err := c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
		if !agentStates[n.ProvisionState] {
			return fmt.Errorf("node %s is %s, not waiting for an agent: %w", n.UUID, n.ProvisionState, inventory.ErrInvalidState)
		}
		if _, issued := n.DriverInternalInfo[AgentTokenHashKey]; issued {
			return fmt.Errorf("an agent token was already issued for node %s since it last booted; the agent must keep the one it got: %w", n.UUID, inventory.ErrInvalidState)
		}
		n.DriverInternalInfo[AgentTokenHashKey] = tokenHash(token)
		n.DriverInternalInfo["agent_last_lookup"] = c.nodes.Now().Format(time.RFC3339)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	c.log.Info("agent looked up its node", "node", n.UUID, "state", n.ProvisionState)
	return n, token, nil
}

// lookupNode finds the uuid of the node a lookup is about.
func (c *Conductor) lookupNode(ctx context.Context, macs []string, node string) (string, error) {
	if node != "" {
		n, _, err := c.nodes.GetNode(ctx, node)
		if err != nil {
			return "", err
		}
		return n.UUID, nil
	}
	if len(macs) == 0 {
		return "", inventory.Invalid("addresses", "a lookup needs the MAC addresses of the machine or a node_uuid")
	}
	for _, m := range macs {
		hw, err := net.ParseMAC(strings.TrimSpace(m))
		if err != nil || len(hw) != 6 {
			return "", inventory.Invalid("addresses", "%q is not a MAC address", m)
		}
		p, err := c.nodes.PortByMAC(ctx, hw.String())
		if errors.Is(err, inventory.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		return p.NodeUUID, nil
	}
	return "", fmt.Errorf("no node has a port with the addresses %s: %w", strings.Join(macs, ", "), inventory.ErrNotFound)
}

// Heartbeat is what an agent reports with each heartbeat.
type Heartbeat struct {
	AgentVersion string
	Status       string
}

// AgentHeartbeat checks an agent's token and returns the node as it is
// now: the agent reads its work from the node's state.
func (c *Conductor) AgentHeartbeat(ctx context.Context, node, token string, hb Heartbeat) (*inventory.Node, error) {
	n, _, err := c.nodes.GetNode(ctx, node)
	if err != nil {
		return nil, err
	}
	if err := checkAgentToken(n, token); err != nil {
		return nil, err
	}
	c.log.Debug("agent heartbeat", "node", n.UUID, "state", n.ProvisionState, "agent_version", hb.AgentVersion, "status", hb.Status)
	return n, nil
}

// checkAgentToken compares token with the hash the node keeps.
func checkAgentToken(n *inventory.Node, token string) error {
	want, _ := n.DriverInternalInfo[AgentTokenHashKey].(string)
	if want == "" || token == "" || subtle.ConstantTimeCompare([]byte(want), []byte(tokenHash(token))) != 1 {
		return fmt.Errorf("node %s: %w", n.UUID, ErrAgentToken)
	}
	if !agentStates[n.ProvisionState] {
		return fmt.Errorf("node %s is %s, not waiting for an agent: %w", n.UUID, n.ProvisionState, inventory.ErrInvalidState)
	}
	return nil
}

// agentReport applies fn to the node an agent reports on, in one
// transaction, once the agent's token checks out and the node is in want
// (the wait state the report ends). The node must not be reserved: a
// report never races a worker.
func (c *Conductor) agentReport(ctx context.Context, node, token, want string, fn func(n *inventory.Node, tx *nodestore.Tx) error) (*inventory.Node, int64, error) {
	n, _, err := c.nodes.GetNode(ctx, node)
	if err != nil {
		return nil, 0, err
	}
	return c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		if err := checkAgentToken(n, token); err != nil {
			return err
		}
		if n.ProvisionState != want {
			return fmt.Errorf("node %s is %s, not %s; report again shortly: %w", n.UUID, n.ProvisionState, want, inventory.ErrInvalidState)
		}
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		return fn(n, tx)
	})
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// waitTimeout is how long a node may rest in a wait state for its agent.
func (c *Conductor) waitTimeout(state string) time.Duration {
	switch state {
	case inventory.StateInspectWait:
		return c.cfg.InspectWaitTimeout
	case inventory.StateCleanWait:
		return c.cfg.CleanCallbackTimeout
	case inventory.StateWaitCallback:
		return c.cfg.DeployCallbackTimeout
	case inventory.StateRescueWait, inventory.StateServiceWait:
		return c.cfg.DeployCallbackTimeout
	}
	return 0
}

// expireWaits fails the nodes that waited for their agent too long, and
// powers them off: a machine that did not call back may still be running
// something.
func (c *Conductor) expireWaits(ctx context.Context) {
	nodes, err := c.nodes.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("wait timeout scan", "err", err)
		}
		return
	}
	now := c.nodes.Now()
	for _, n := range nodes {
		limit := c.waitTimeout(n.ProvisionState)
		if limit <= 0 || n.ProvisionUpdatedAt == nil || now.Sub(*n.ProvisionUpdatedAt) < limit {
			continue
		}
		state := n.ProvisionState
		var failed *inventory.Node
		failed, _, err := c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
			if n.ProvisionState != state || n.ProvisionUpdatedAt == nil || now.Sub(*n.ProvisionUpdatedAt) < limit {
				return store.ErrNoChange // moved on meanwhile
			}
			tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
			next, err := inventory.Next(n.ProvisionState, inventory.EventFail)
			if err != nil {
				return err
			}
			cause := fmt.Errorf("timeout reached while %s: the agent did not call back within %s", state, limit)
			c.move(n, tx, inventory.EventFail, next, "", cause)
			n.LastError = cause.Error()
			delete(n.DriverInternalInfo, AgentTokenHashKey)
			return nil
		})
		if err != nil {
			if !errors.Is(err, nodestore.ErrFenced) {
				c.log.Error("wait timeout", "node", n.UUID, "err", err)
			}
			continue
		}
		if failed.ProvisionState == state {
			continue
		}
		c.log.Warn("agent wait timed out", "node", n.UUID, "state", failed.ProvisionState, "waited", limit)
		c.powerOffAfter(ctx, failed, "the agent wait timed out")
	}
}

// powerOffAfter powers a node off in the background, after an agent phase
// ended, and records the power state it ends in.
func (c *Conductor) powerOffAfter(ctx context.Context, n *inventory.Node, why string) {
	d, err := c.driver(n)
	if err != nil {
		return
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.OpTimeout)
		defer cancel()
		power, err := d.SetPower(opCtx, n, inventory.PowerOff)
		if err != nil {
			c.log.Warn("power off", "node", n.UUID, "after", why, "err", err)
			return
		}
		_, _, err = c.nodes.UpdateNode(opCtx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
			if n.PowerState == power {
				return store.ErrNoChange
			}
			n.PowerState = power
			return nil
		})
		if err != nil {
			c.log.Warn("record power state", "node", n.UUID, "err", err)
		}
	}()
}
