// Package roles holds what an overcloud is made of before any node is
// touched: the roles (which services run on how many nodes of which
// hardware, on which networks) and the isolated networks, in files close
// to TripleO's roles_data.yaml and network_data.yaml, and the allocation
// of available nodes to roles. It is pure: parse, validate, match.
package roles

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Role is one kind of overcloud node.
type Role struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Count is how many nodes the role has.
	Count int `json:"count"`
	// HostnameFormat names the role's nodes: %stackname% is the
	// overcloud's name, %index% the node's index in the role.
	HostnameFormat string `json:"hostname_format,omitempty"`
	// UpdateSerial is how many of the role's nodes an update changes at
	// once. Default 1.
	UpdateSerial int `json:"update_serial,omitempty"`
	// Networks are the isolated networks the role's nodes are on, besides
	// the provisioning network every node is on.
	Networks []string `json:"networks,omitempty"`
	// Services are the services the role's nodes run, by their Strata
	// names (TripleO names are read as their Strata ones).
	Services []string `json:"services"`
	// Match chooses the nodes the role may take.
	Match Match `json:"match,omitempty"`
}

// Match is what a node must have to be given a role: the capability
// profile (TripleO's way), a resource class, other capabilities. Empty
// fields match anything.
type Match struct {
	Profile       string            `json:"profile,omitempty"`
	ResourceClass string            `json:"resource_class,omitempty"`
	Capabilities  map[string]string `json:"capabilities,omitempty"`
}

func (m Match) String() string {
	var parts []string
	if m.Profile != "" {
		parts = append(parts, "profile:"+m.Profile)
	}
	if m.ResourceClass != "" {
		parts = append(parts, "resource_class:"+m.ResourceClass)
	}
	keys := make([]string, 0, len(m.Capabilities))
	for k := range m.Capabilities {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+":"+m.Capabilities[k])
	}
	if len(parts) == 0 {
		return "any node"
	}
	return strings.Join(parts, ", ")
}

// roleKeys are the keys a role may have: Strata's, and TripleO's for the
// same things.
var roleKeys = map[string]string{
	"name": "name", "description": "description", "count": "count", "CountDefault": "count",
	"hostname_format": "hostname_format", "HostnameFormatDefault": "hostname_format",
	"update_serial": "update_serial", "networks": "networks", "services": "services",
	"ServicesDefault": "services", "match": "match", "tags": "", "uses_deprecated_params": "",
}

// UnmarshalJSON reads a role in Strata's form or in TripleO's
// (CountDefault, HostnameFormatDefault, ServicesDefault, networks as a
// map of network to subnet), refusing keys it does not know.
func (r *Role) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("a role must be a mapping: %w", err)
	}
	canon := map[string]json.RawMessage{}
	for k, v := range raw {
		to, ok := roleKeys[k]
		if !ok {
			return fmt.Errorf("unknown key %q (known: name, description, count, hostname_format, update_serial, networks, services, match)", k)
		}
		if to != "" {
			canon[to] = v
		}
	}
	if nets, ok := canon["networks"]; ok && len(nets) > 0 && nets[0] == '{' {
		var m map[string]json.RawMessage // TripleO: {InternalApi: {subnet: internal_api_subnet}}
		if err := json.Unmarshal(nets, &m); err != nil {
			return fmt.Errorf("networks: %w", err)
		}
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		canon["networks"], _ = json.Marshal(names)
	}
	type plain Role
	var p plain
	b, _ = json.Marshal(canon)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*r = Role(p)
	return nil
}

// Parse reads a roles file (YAML or JSON): a list of roles.
func Parse(data []byte) ([]Role, error) {
	var rs []Role
	if err := yaml.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("roles file: %w", err)
	}
	for i := range rs {
		for j, s := range rs[i].Services {
			if svc, ok := LookupService(s); ok {
				rs[i].Services[j] = svc.Name
			}
		}
	}
	return rs, nil
}

// Problems is everything wrong with a deployment's files, each line
// naming where.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(p), strings.Join(p, "\n  "))
}

func (p *Problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

var roleName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// Validate checks roles against each other and against the networks:
// names, counts, hostname formats, every service known and on the
// networks it needs, every service's needs met by some role, and the etcd
// cluster's size. It reports every problem it finds, not just the first.
func Validate(rs []Role, nets []Network) error {
	var p Problems
	if len(rs) == 0 {
		p.add("the roles file has no roles")
	}
	known := map[string]bool{}
	for _, n := range nets {
		known[n.Name] = true
	}
	seen := map[string]bool{}
	running := map[string]int{} // service → nodes that run it
	for i, r := range rs {
		where := fmt.Sprintf("role %s", r.Name)
		if !roleName.MatchString(r.Name) {
			where = fmt.Sprintf("role %d", i+1)
			p.add("%s: name %q must be a letter followed by letters and digits", where, r.Name)
		} else if seen[r.Name] {
			p.add("%s: defined twice", where)
		}
		seen[r.Name] = true
		if r.Count < 1 {
			p.add("%s: has no nodes (count %d); give it a count of at least 1 or leave the role out", where, r.Count)
		}
		if r.Count > 1 && r.HostnameFormat != "" && !strings.Contains(r.HostnameFormat, "%index%") {
			p.add("%s: hostname_format %q has no %%index%%: its %d nodes would share one name", where, r.HostnameFormat, r.Count)
		}
		if r.UpdateSerial < 0 {
			p.add("%s: update_serial %d is negative", where, r.UpdateSerial)
		}
		if len(r.Services) == 0 {
			p.add("%s: runs no services", where)
		}
		for _, n := range r.Networks {
			if !known[n] {
				p.add("%s: network %q is not in the networks file", where, n)
			}
		}
		dup := map[string]bool{}
		for _, s := range r.Services {
			svc, ok := LookupService(s)
			if !ok {
				p.add("%s: unknown service %q (known: %s)", where, s, serviceNames())
				continue
			}
			if dup[svc.Name] {
				p.add("%s: service %s is listed twice", where, svc.Name)
			}
			dup[svc.Name] = true
			running[svc.Name] += max(r.Count, 0)
			for _, n := range svc.Networks {
				if !slices.Contains(r.Networks, n) {
					p.add("%s: service %s needs network %s, which the role is not on", where, svc.Name, n)
				}
			}
		}
	}
	for _, svc := range Services {
		if running[svc.Name] == 0 {
			continue
		}
		for _, need := range svc.Needs {
			if running[need] == 0 {
				p.add("service %s needs %s, which no role with nodes runs", svc.Name, need)
			}
		}
	}
	if n := running["etcd"]; n > 0 && n%2 == 0 {
		p.add("etcd runs on %d nodes: an etcd cluster needs an odd number of members (1, 3 or 5)", n)
	}
	return p.err()
}

// Hostname is the name of a role's index-th node in the overcloud named
// stack: its hostname_format, or stack-role-index in lower case.
func (r Role) Hostname(stack string, index int) string {
	f := r.HostnameFormat
	if f == "" {
		f = "%stackname%-" + strings.ToLower(r.Name) + "-%index%"
	}
	return strings.NewReplacer("%stackname%", stack, "%index%", fmt.Sprint(index)).Replace(f)
}

// ErrNotEnoughNodes is the allocation's error when some role has fewer
// matching nodes than its count.
var ErrNotEnoughNodes = errors.New("not enough matching nodes")
