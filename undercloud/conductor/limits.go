package conductor

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// limitedPhase is a phase whose nodes boot the deploy ramdisk: how many
// may be in it at once is bounded.
type limitedPhase struct {
	name   string // for the message
	option string // the configuration key that sets the bound
	states []string
	limit  func(Config) int
}

var limitedPhases = map[string]limitedPhase{
	inventory.StateInspecting: {"inspecting", "max_concurrent_inspect", []string{inventory.StateInspecting, inventory.StateInspectWait},
		func(c Config) int { return c.MaxConcurrentInspect }},
	inventory.StateCleaning: {"cleaning", "max_concurrent_clean", []string{inventory.StateCleaning, inventory.StateCleanWait},
		func(c Config) int { return c.MaxConcurrentClean }},
	inventory.StateDeploying: {"deploying", "max_concurrent_deploy", []string{inventory.StateDeploying, inventory.StateWaitCallback},
		func(c Config) int { return c.MaxConcurrentDeploy }},
}

// phaseCounts caches how many nodes each limited phase holds: counting
// reads every node, which a bulk request over a thousand nodes must not
// do a thousand times. The count is read again once it is countTTL old;
// in between, each request let into a phase adds one.
type phaseCounts struct {
	mu     sync.Mutex
	at     time.Time
	counts map[string]int
}

// countTTL is how long a count of the nodes in each phase is trusted to
// let a request in; refuseAfter how long to refuse one.
const (
	countTTL    = time.Second
	refuseAfter = 100 * time.Millisecond
)

// checkConcurrency refuses to move a node into state to when as many
// nodes as allowed are in its phase already. The count is read from the
// store, so it holds across conductors (within countTTL); two requests
// at the same moment on two conductors may both pass at the limit, which
// is a bound's slack, not a leak.
func (c *Conductor) checkConcurrency(ctx context.Context, to string) error {
	p, ok := limitedPhases[to]
	if !ok {
		return nil
	}
	pc := &c.phases
	pc.mu.Lock()
	defer pc.mu.Unlock()
	recount := func() error {
		nodes, err := c.nodes.ListNodes(ctx)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for _, n := range nodes {
			for key, lp := range limitedPhases {
				if slices.Contains(lp.states, n.ProvisionState) {
					counts[key]++
				}
			}
		}
		pc.counts, pc.at = counts, time.Now()
		return nil
	}
	if pc.counts == nil || time.Since(pc.at) > countTTL {
		if err := recount(); err != nil {
			return err
		}
	}
	limit := p.limit(c.cfg)
	// Nodes leave a phase without telling the count: a refusal is made
	// on a fresh one only (which bounds the recounts under contention).
	if pc.counts[to] >= limit && time.Since(pc.at) > refuseAfter {
		if err := recount(); err != nil {
			return err
		}
	}
	if busy := pc.counts[to]; busy >= limit {
		return fmt.Errorf("%d nodes are %s, as many as this undercloud allows at once (%s = %d); try again when some have finished: %w",
			busy, p.name, p.option, limit, inventory.ErrConcurrencyLimit)
	}
	pc.counts[to]++ // this request's node, until the next count
	return nil
}
