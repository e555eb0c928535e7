package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// ProvisionRequest is a provision verb with its arguments, as the API
// received it.
type ProvisionRequest struct {
	Verb           string
	ConfigDrive    any
	CleanSteps     []map[string]any
	DeploySteps    []map[string]any
	ServiceSteps   []map[string]any
	RescuePassword string
	DisableRamdisk bool
	// User is who asked, for the node's history.
	User string
}

// ValidateResult is one interface's line of a node validation.
type ValidateResult struct {
	Result *bool  `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// maxConfigDrive bounds a config drive kept in the node record; larger
// ones need the image store.
const maxConfigDrive = 256 << 10

// step is the work done in one working state: it returns the event that
// ends the state.
type step func(ctx context.Context, d Driver, n *inventory.Node) (inventory.Event, error)

func phaseStep(p Phase) step {
	return func(ctx context.Context, d Driver, n *inventory.Node) (inventory.Event, error) {
		err := d.Phase(ctx, n, p)
		if errors.Is(err, ErrWaitAgent) {
			return inventory.EventWait, nil
		}
		if err != nil {
			return inventory.EventFail, fmt.Errorf("%s failed: %w", p, err)
		}
		return inventory.EventDone, nil
	}
}

// steps maps each working state to its work. States not listed need no
// worker: the node rests there until a verb, the agent or a timeout moves it.
var steps = map[string]step{
	inventory.StateVerifying: func(ctx context.Context, d Driver, n *inventory.Node) (inventory.Event, error) {
		if err := d.Verify(ctx, n); err != nil {
			return inventory.EventFail, fmt.Errorf("failed to verify the BMC credentials of node %s: %w", n.UUID, err)
		}
		return inventory.EventDone, nil
	},
	inventory.StateInspecting: phaseStep(PhaseInspect),
	inventory.StateCleaning: func(ctx context.Context, d Driver, n *inventory.Node) (inventory.Event, error) {
		err := d.Phase(ctx, n, PhaseClean)
		if errors.Is(err, ErrWaitAgent) {
			return inventory.EventWait, nil
		}
		if err != nil {
			return inventory.EventFail, fmt.Errorf("cleaning failed: %w", err)
		}
		// Manual cleaning returns to manageable; automated cleaning ends
		// in available.
		if manualCleaning(n) {
			return inventory.EventManage, nil
		}
		return inventory.EventDone, nil
	},
	inventory.StateDeploying: phaseStep(PhaseDeploy),
	inventory.StateDeleting: func(ctx context.Context, d Driver, n *inventory.Node) (inventory.Event, error) {
		if err := d.Phase(ctx, n, PhaseTearDown); err != nil {
			return inventory.EventFail, fmt.Errorf("tear down failed: %w", err)
		}
		return inventory.EventClean, nil
	},
	inventory.StateAdopting:   phaseStep(PhaseAdopt),
	inventory.StateRescuing:   phaseStep(PhaseRescue),
	inventory.StateUnrescuing: phaseStep(PhaseUnrescue),
	inventory.StateServicing:  phaseStep(PhaseService),
}

// maintenanceRefused are the verbs a node in maintenance may not take.
var maintenanceRefused = []inventory.Event{
	inventory.EventProvide, inventory.EventInspect, inventory.EventClean, inventory.EventDeploy,
	inventory.EventRebuild, inventory.EventRescue, inventory.EventService, inventory.EventAdopt,
}

// Provision checks verb against the node's state, and in one write moves
// the node to its next state and, where that state needs work, reserves
// it for a worker of this conductor; the work then goes on in the
// background.
func (c *Conductor) Provision(ctx context.Context, ident string, req ProvisionRequest) error {
	verb, ok := inventory.LookupVerb(req.Verb)
	if !ok {
		return inventory.Invalid("target", "%q is not a valid provision state target", req.Verb)
	}
	if err := checkArgs(verb, req); err != nil {
		return err
	}
	n, _, err := c.nodes.GetNode(ctx, ident)
	if err != nil {
		return err
	}
	d, err := c.driver(n)
	if err != nil {
		return err
	}
	if n.Maintenance && slices.Contains(maintenanceRefused, verb.Event) {
		return fmt.Errorf("node %s is in maintenance mode, %q is not allowed: %w", n.UUID, req.Verb, inventory.ErrInvalidState)
	}
	target, err := inventory.Next(n.ProvisionState, verb.Event)
	if err != nil {
		return err
	}
	if err := c.checkConcurrency(ctx, target); err != nil {
		return err
	}
	if verb.Event == inventory.EventManage && n.ProvisionState == inventory.StateEnroll {
		if err := firstError(d.Validate(n), "power", "management"); err != nil {
			return inventory.Invalid("driver_info", "%v", err)
		}
	}
	if c, ok := d.(cleanStepChecker); ok && verb.Event == inventory.EventClean {
		if err := c.CheckCleanSteps(req.CleanSteps); err != nil {
			return err
		}
	}
	if verb.Event == inventory.EventDeploy || verb.Event == inventory.EventRebuild {
		if err := firstError(d.Validate(n), "deploy"); err != nil {
			return err
		}
	}

	// Reserve a worker before touching the node, so that a full pool
	// refuses the request without changing anything.
	var workCtx context.Context
	reserveWorker := func(to string) error {
		if steps[to] == nil || workCtx != nil {
			return nil
		}
		wc, err := c.acquire()
		workCtx = wc
		return err
	}
	var to string
	updated, rev, err := c.nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		next, err := inventory.Next(n.ProvisionState, verb.Event)
		if err != nil {
			return err
		}
		if err := reserveWorker(next); err != nil {
			return err
		}
		to = next
		tx.Conds = append(tx.Conds, store.Absent(nodestore.LockKey(n.UUID)))
		if steps[next] != nil {
			tx.Ops = append(tx.Ops, store.PutLeased(nodestore.LockKey(n.UUID), []byte(c.cfg.Name), c.currentLease()))
			n.Reservation = c.cfg.Name
		}
		n.LastError = ""
		c.move(n, tx, verb.Event, next, req.User, nil)
		applyArgs(n, verb, req)
		return nil
	})
	if err != nil {
		if workCtx != nil {
			c.release()
		}
		if errors.Is(err, nodestore.ErrFenced) {
			return c.lockedError(ctx, n.UUID)
		}
		return err
	}
	c.m.transitions.WithLabelValues(string(verb.Event), to).Inc()
	c.log.Info("provision request accepted", "node", updated.UUID, "verb", req.Verb, "state", to)
	if steps[to] == nil {
		if workCtx != nil {
			c.release()
		}
		return nil
	}
	go c.work(workCtx, updated.UUID, rev)
	return nil
}

func checkArgs(v inventory.Verb, req ProvisionRequest) error {
	if req.ConfigDrive != nil && v.Event != inventory.EventDeploy && v.Event != inventory.EventRebuild {
		return inventory.Invalid("configdrive", "may only be given with the deploy and rebuild targets")
	}
	if req.ConfigDrive != nil {
		b, err := json.Marshal(req.ConfigDrive)
		if err != nil {
			return inventory.Invalid("configdrive", "not encodable: %v", err)
		}
		if len(b) > maxConfigDrive {
			return inventory.Invalid("configdrive", "%d bytes is larger than the %d bytes allowed", len(b), maxConfigDrive)
		}
		// An image given inline is checked now, not when the agent asks
		// for it: a bad one fails the request, not the deploy.
		if s, ok := req.ConfigDrive.(string); ok && !strings.Contains(s, "://") {
			if _, err := decodeConfigDrive(s); err != nil {
				return err
			}
		}
	}
	if v.Event == inventory.EventClean && len(req.CleanSteps) == 0 {
		return inventory.Invalid("clean_steps", "required for manual cleaning")
	}
	if len(req.CleanSteps) > 0 && v.Event != inventory.EventClean {
		return inventory.Invalid("clean_steps", "may only be given with the clean target")
	}
	for i, s := range req.CleanSteps {
		if s["interface"] == nil || s["step"] == nil {
			return inventory.Invalid(fmt.Sprintf("clean_steps[%d]", i), "needs an interface and a step")
		}
	}
	if v.Event == inventory.EventService && len(req.ServiceSteps) == 0 {
		return inventory.Invalid("service_steps", "required for servicing")
	}
	if req.RescuePassword != "" && v.Event != inventory.EventRescue {
		return inventory.Invalid("rescue_password", "may only be given with the rescue target")
	}
	if v.Event == inventory.EventRescue && req.RescuePassword == "" {
		return inventory.Invalid("rescue_password", "required for rescue")
	}
	return nil
}

// applyArgs keeps a request's arguments where the worker finds them.
func applyArgs(n *inventory.Node, v inventory.Verb, req ProvisionRequest) {
	switch v.Event {
	case inventory.EventProvide, inventory.EventDelete:
		// Automated cleaning follows: no steps of an earlier manual one.
		delete(n.DriverInternalInfo, "clean_steps")
	case inventory.EventClean:
		n.DriverInternalInfo["clean_steps"] = req.CleanSteps
		// Manual cleaning goes back to manageable.
		n.TargetProvisionState = inventory.StateManageable
	case inventory.EventDeploy, inventory.EventRebuild:
		delete(n.DriverInternalInfo, imageWrittenKey)
		if req.ConfigDrive != nil {
			n.InstanceInfo["configdrive"] = req.ConfigDrive
		}
		if len(req.DeploySteps) > 0 {
			n.DriverInternalInfo["user_deploy_steps"] = req.DeploySteps
		}
	case inventory.EventService:
		n.DriverInternalInfo["service_steps"] = req.ServiceSteps
	case inventory.EventInspect:
		now := time.Now().UTC()
		n.InspectionStartedAt = &now
		n.InspectionFinishedAt = nil
	}
}

// move records one transition of n to state to: the new state and target,
// the time, and a history entry with how long the node spent in the state
// it leaves.
func (c *Conductor) move(n *inventory.Node, tx *nodestore.Tx, ev inventory.Event, to, user string, cause error) {
	from := n.ProvisionState
	now := c.nodes.Now()
	var spent time.Duration
	if n.ProvisionUpdatedAt != nil {
		spent = now.Sub(*n.ProvisionUpdatedAt)
		c.m.phase.WithLabelValues(from).Observe(spent.Seconds())
	}
	n.ProvisionState = to
	n.TargetProvisionState = inventory.Target(to)
	if (to == inventory.StateCleaning || to == inventory.StateCleanWait) && manualCleaning(n) {
		n.TargetProvisionState = inventory.StateManageable
	}
	if bootsRamdisk[to] || !agentStates[to] {
		// The agent of an earlier boot has no business with this one.
		delete(n.DriverInternalInfo, AgentTokenHashKey)
	}
	n.ProvisionUpdatedAt = &now
	severity, text := "INFO", fmt.Sprintf("%s: %s -> %s", ev, from, to)
	if cause != nil {
		severity = "ERROR"
		text += ": " + cause.Error()
	}
	h := c.nodes.NewHistory("provisioning", severity, text)
	h.From, h.To, h.Duration, h.Conductor, h.User = from, to, spent, c.cfg.Name, user
	tx.Record(h)
}

func (c *Conductor) lockedError(ctx context.Context, id string) error {
	holder := "another conductor"
	if r, err := c.nodes.Records().Get(ctx, nodestore.LockKey(id)); err == nil {
		holder = string(r.Value)
	}
	return fmt.Errorf("node %s is locked by host %s, please retry after the current operation is completed: %w", id, holder, inventory.ErrLocked)
}

// work carries the node from one working state to the next until it comes
// to rest, then releases the node. Each write is fenced by the lock taken
// at revision lockRev.
func (c *Conductor) work(ctx context.Context, id string, lockRev int64) {
	defer c.release()
	released := false
	defer func() {
		if !released && ctx.Err() == nil {
			c.unlock(id, lockRev)
		}
	}()
	for {
		n, _, err := c.nodes.GetNode(ctx, id)
		if err != nil {
			c.log.Error("worker lost its node", "node", id, "err", err)
			return
		}
		d, err := c.driver(n)
		if err != nil {
			c.log.Error("worker has no driver", "node", id, "err", err)
			return
		}
		st := steps[n.ProvisionState]
		if st == nil {
			return
		}
		opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
		ev, cause := st(opCtx, d, n)
		cancel()
		if ctx.Err() != nil {
			// Abandoned at shutdown: the node stays reserved under a lease
			// that is about to be revoked, and the next takeover fails it.
			return
		}
		var to string
		_, _, err = c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
			next, err := inventory.Next(n.ProvisionState, ev)
			if err != nil {
				return err
			}
			to = next
			tx.Conds = append(tx.Conds, store.Created(nodestore.LockKey(id), lockRev))
			c.move(n, tx, ev, next, "", cause)
			if cause != nil {
				n.LastError = oneLine(cause.Error())
			}
			switch {
			case n.ProvisionState == inventory.StateActive && ev == inventory.EventDone,
				ev == inventory.EventWait && agentStates[n.ProvisionState]:
				n.PowerState = inventory.PowerOn
			case n.ProvisionState == inventory.StateCleaning && ev == inventory.EventClean:
				n.PowerState = inventory.PowerOff
			case n.ProvisionState == inventory.StateManageable && n.InspectionStartedAt != nil && n.InspectionFinishedAt == nil:
				now := c.nodes.Now()
				n.InspectionFinishedAt = &now
			}
			if steps[next] == nil {
				n.Reservation = ""
				tx.Ops = append(tx.Ops, store.Del(nodestore.LockKey(id)))
			}
			return nil
		})
		if err != nil {
			c.log.Error("record transition", "node", id, "event", ev, "err", err)
			if errors.Is(err, nodestore.ErrFenced) {
				released = true // the lock is not ours any more
			}
			return
		}
		c.m.transitions.WithLabelValues(string(ev), to).Inc()
		if cause != nil {
			c.log.Warn("operation failed", "node", id, "state", to, "err", cause)
		} else {
			c.log.Info("node moved", "node", id, "event", ev, "state", to)
		}
		if steps[to] == nil {
			released = true
			return
		}
	}
}

// unlock releases a reservation the worker could not release with its
// last transition.
func (c *Conductor) unlock(id string, lockRev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.nodes.UpdateNode(ctx, id, func(n *inventory.Node, tx *nodestore.Tx) error {
		tx.Conds = append(tx.Conds, store.Created(nodestore.LockKey(id), lockRev))
		tx.Ops = append(tx.Ops, store.Del(nodestore.LockKey(id)))
		n.Reservation = ""
		return nil
	})
	if err != nil && !errors.Is(err, inventory.ErrNotFound) && !errors.Is(err, nodestore.ErrFenced) {
		c.log.Error("release reservation", "node", id, "err", err)
	}
	if errors.Is(err, inventory.ErrNotFound) {
		// The node is gone; drop its lock if it is still ours.
		_, _ = c.nodes.Records().Commit(ctx,
			[]store.Cond{store.Created(nodestore.LockKey(id), lockRev)},
			[]store.Op{store.Del(nodestore.LockKey(id))})
	}
}

func firstError(m map[string]error, keys ...string) error {
	for _, k := range keys {
		if err := m[k]; err != nil {
			return err
		}
	}
	return nil
}

// oneLine folds an error's text onto one line for last_error: errors from
// BMC tools can span several lines, and clients show last_error as a cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
