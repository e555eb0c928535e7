package roles

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// Assignment is a node given a role: the index-th of its role, named
// Hostname in the overcloud.
type Assignment struct {
	Role     string `json:"role"`
	Index    int    `json:"index"`
	Node     string `json:"node"` // the node's UUID
	NodeName string `json:"node_name,omitempty"`
	Hostname string `json:"hostname"`
}

// Plan is what an allocation decided: the assignments the overcloud has
// afterwards (kept and new, by role and index) and those it drops.
type Plan struct {
	Assignments []Assignment
	// Added are the new assignments: nodes to deploy.
	Added []Assignment
	// Removed are assignments beyond their role's count, or of a role no
	// longer in the file: nodes to undeploy.
	Removed []Assignment
}

// Allocate gives every role its count of nodes, keeping the assignments
// of current that still fit, so that running it again with the same
// roles changes nothing, a higher count adds nodes and a lower one drops
// the highest indexes. New nodes come from nodes that are available, not
// in maintenance, not already assigned, and match the role, taken in name
// order; a role with fewer such nodes than it needs is an error that
// names the role, what it matches and what was free. Roles are filled in
// file order.
func Allocate(stack string, rs []Role, nodes []*inventory.Node, current []Assignment) (Plan, error) {
	var plan Plan
	used := map[string]bool{}
	byRole := map[string][]Assignment{}
	for _, a := range current {
		byRole[a.Role] = append(byRole[a.Role], a)
	}
	for role, as := range byRole {
		if !slices.ContainsFunc(rs, func(r Role) bool { return r.Name == role }) {
			plan.Removed = append(plan.Removed, as...)
			delete(byRole, role)
		}
	}
	for _, as := range byRole {
		for _, a := range as {
			used[a.Node] = true
		}
	}
	free := slices.Clone(nodes)
	slices.SortFunc(free, func(a, b *inventory.Node) int { return strings.Compare(nodeLabel(a), nodeLabel(b)) })

	var p Problems
	for _, r := range rs {
		kept := byRole[r.Name]
		slices.SortFunc(kept, func(a, b Assignment) int { return a.Index - b.Index })
		if len(kept) > r.Count {
			plan.Removed = append(plan.Removed, kept[r.Count:]...)
			kept = kept[:r.Count]
		}
		taken := map[int]bool{}
		for _, a := range kept {
			taken[a.Index] = true
		}
		plan.Assignments = append(plan.Assignments, kept...)
		need := r.Count - len(kept)
		var picked []*inventory.Node
		for _, n := range free {
			if len(picked) == need {
				break
			}
			if !used[n.UUID] && Eligible(n) && r.Match.Matches(n) {
				picked = append(picked, n)
			}
		}
		if len(picked) < need {
			p.add("role %s needs %d more nodes matching %s; %s", r.Name, need, r.Match, describeFree(free, used, r.Match))
			continue
		}
		index := 0
		for _, n := range picked {
			used[n.UUID] = true
			for taken[index] {
				index++
			}
			taken[index] = true
			a := Assignment{Role: r.Name, Index: index, Node: n.UUID, NodeName: n.Name, Hostname: r.Hostname(stack, index)}
			plan.Assignments = append(plan.Assignments, a)
			plan.Added = append(plan.Added, a)
		}
	}
	if err := p.err(); err != nil {
		return Plan{}, fmt.Errorf("%w: %w", ErrNotEnoughNodes, err)
	}
	return plan, nil
}

// Eligible reports whether a node may be given a role: available and not
// in maintenance.
func Eligible(n *inventory.Node) bool {
	return n.ProvisionState == inventory.StateAvailable && !n.Maintenance
}

// Matches reports whether node n has what m asks for.
func (m Match) Matches(n *inventory.Node) bool {
	caps := NodeCapabilities(n)
	if m.Profile != "" && caps["profile"] != m.Profile {
		return false
	}
	if m.ResourceClass != "" && n.ResourceClass != m.ResourceClass {
		return false
	}
	for k, v := range m.Capabilities {
		if caps[k] != v {
			return false
		}
	}
	return true
}

// NodeCapabilities reads a node's properties.capabilities, Ironic's
// "key:value,key:value" string (or an object).
func NodeCapabilities(n *inventory.Node) map[string]string {
	out := map[string]string{}
	switch c := n.Properties["capabilities"].(type) {
	case string:
		for _, kv := range strings.Split(c, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), ":"); ok {
				out[k] = v
			}
		}
	case map[string]any:
		for k, v := range c {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func nodeLabel(n *inventory.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return n.UUID
}

// describeFree says which nodes were left for a role that found too few:
// the free matching ones, and how many others were free but did not match.
func describeFree(nodes []*inventory.Node, used map[string]bool, m Match) string {
	var matching []string
	others := 0
	for _, n := range nodes {
		if !Eligible(n) {
			continue
		}
		switch {
		case m.Matches(n) && !used[n.UUID]:
			matching = append(matching, nodeLabel(n))
		case !used[n.UUID]:
			others++
		}
	}
	s := "none is free"
	if len(matching) > 0 {
		s = fmt.Sprintf("%d free: %s", len(matching), strings.Join(matching, ", "))
	}
	if others > 0 {
		s += fmt.Sprintf(" (%d other available nodes do not match)", others)
	}
	return s
}
