package conductor

import (
	"context"
	"fmt"

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

// checkConcurrency refuses to move a node into state to when as many
// nodes as allowed are in its phase already. The count is read from the
// store, so it holds across conductors; two requests at the same moment
// may both pass it at the limit, which is a bound's slack, not a leak.
func (c *Conductor) checkConcurrency(ctx context.Context, to string) error {
	p, ok := limitedPhases[to]
	if !ok {
		return nil
	}
	nodes, err := c.nodes.ListNodes(ctx)
	if err != nil {
		return err
	}
	busy := 0
	for _, n := range nodes {
		for _, s := range p.states {
			if n.ProvisionState == s {
				busy++
			}
		}
	}
	if limit := p.limit(c.cfg); busy >= limit {
		return fmt.Errorf("%d nodes are %s, as many as this undercloud allows at once (%s = %d); try again when some have finished: %w",
			busy, p.name, p.option, limit, inventory.ErrConcurrencyLimit)
	}
	return nil
}
