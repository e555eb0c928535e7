package roles_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/roles"
)

func TestDefaultsAreValid(t *testing.T) {
	rs, ns := roles.DefaultRoles(), roles.DefaultNetworks()
	if err := roles.ValidateNetworks(ns, netip.MustParsePrefix("192.168.24.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := roles.Validate(rs, ns); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "Controller Compute Networker ObjectStorage BlockStorage" {
		t.Errorf("default roles: %s", got)
	}
}

// TestTripleORolesFile reads a roles file written for TripleO: its keys,
// networks as a map, OS::TripleO::Services names.
func TestTripleORolesFile(t *testing.T) {
	rs, err := roles.Parse([]byte(`
- name: Controller
  description: Controller role
  tags: [primary, controller]
  CountDefault: 1
  HostnameFormatDefault: '%stackname%-controller-%index%'
  update_serial: 1
  networks:
    External: {subnet: external_subnet}
    InternalApi: {subnet: internal_api_subnet}
  ServicesDefault:
    - OS::TripleO::Services::Etcd
    - OS::TripleO::Services::Keystone
`))
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Count != 1 || r.HostnameFormat != "%stackname%-controller-%index%" || strings.Join(r.Networks, ",") != "External,InternalApi" || strings.Join(r.Services, ",") != "etcd,identity" {
		t.Errorf("parsed %+v", r)
	}
	if err := roles.Validate(rs, roles.DefaultNetworks()); err != nil {
		t.Error(err)
	}
	if h := r.Hostname("overcloud", 2); h != "overcloud-controller-2" {
		t.Errorf("hostname %q", h)
	}
	if _, err := roles.Parse([]byte("- name: X\n  cuont: 1\n")); err == nil || !strings.Contains(err.Error(), `unknown key "cuont"`) {
		t.Errorf("a misspelt key: %v", err)
	}
}

// TestValidateNamesTheProblem: each bad file fails with a message that
// names the role or network and what is wrong.
func TestValidateNamesTheProblem(t *testing.T) {
	ctrl := "- name: Controller\n  count: 1\n  networks: [External, InternalApi]\n  services: [etcd, identity]\n"
	cases := []struct{ name, roles, want string }{
		{"unknown service", ctrl + "- name: Compute\n  count: 1\n  networks: [InternalApi]\n  services: [nova-compute]\n", `role Compute: unknown service "nova-compute"`},
		{"no nodes", ctrl + "- name: Compute\n  count: 0\n  networks: [InternalApi, Tenant, Storage]\n  services: [telemetry-sampler]\n", "role Compute: has no nodes (count 0)"},
		{"missing network", "- name: Controller\n  count: 1\n  networks: [InternalApi]\n  services: [etcd, identity]\n", "role Controller: service identity needs network External, which the role is not on"},
		{"unknown network", "- name: Controller\n  count: 1\n  networks: [External, InternalApi, Mgmt]\n  services: [etcd, identity]\n", `role Controller: network "Mgmt" is not in the networks file`},
		{"need unmet", "- name: Controller\n  count: 1\n  networks: [External, InternalApi]\n  services: [identity]\n", "service identity needs etcd, which no role with nodes runs"},
		{"even etcd", "- name: Controller\n  count: 2\n  networks: [External, InternalApi]\n  services: [etcd, identity]\n", "etcd runs on 2 nodes"},
		{"shared hostname", "- name: Controller\n  count: 3\n  hostname_format: ctl\n  networks: [External, InternalApi]\n  services: [etcd, identity]\n", "has no %index%"},
		{"twice", ctrl + ctrl, "role Controller: defined twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := roles.Parse([]byte(c.roles))
			if err != nil {
				t.Fatal(err)
			}
			err = roles.Validate(rs, roles.DefaultNetworks())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestValidateNetworks(t *testing.T) {
	net := func(name, subnet, extra string) string {
		return fmt.Sprintf("- name: %s\n  subnets:\n    s:\n      ip_subnet: %s\n%s", name, subnet, extra)
	}
	cases := []struct{ name, file, want string }{
		{"overlap", net("InternalApi", "172.17.0.0/24", "") + net("Storage", "172.17.0.128/25", ""), "network Storage, subnet s: 172.17.0.128/25 overlaps network InternalApi, subnet s (172.17.0.0/24)"},
		{"overlaps ctlplane", net("External", "192.168.0.0/16", ""), "overlaps the provisioning network (ctlplane) (192.168.24.0/24)"},
		{"pool outside", net("Tenant", "172.16.0.0/24", "      allocation_pools: [{start: 172.16.0.10, end: 172.16.1.10}]\n"), "allocation pool 172.16.0.10-172.16.1.10 is not inside 172.16.0.0/24"},
		{"bad subnet", net("Tenant", "172.16.0.0/33", ""), `ip_subnet "172.16.0.0/33" is not an address/length`},
		{"vlan shared", net("Tenant", "172.16.0.0/24", "      vlan: 50\n") + net("Storage", "172.18.0.0/24", "      vlan: 50\n"), "vlan 50 is also network Tenant, subnet s's"},
		{"vlan range", net("Tenant", "172.16.0.0/24", "      vlan: 5000\n"), "vlan 5000 is outside 1-4094"},
		{"gateway outside", net("Tenant", "172.16.0.0/24", "      gateway_ip: 10.0.0.1\n"), `gateway_ip "10.0.0.1" is not an address in 172.16.0.0/24`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, err := roles.ParseNetworks([]byte(c.file))
			if err != nil {
				t.Fatal(err)
			}
			err = roles.ValidateNetworks(ns, netip.MustParsePrefix("192.168.24.0/24"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
	if _, err := roles.ParseNetworks([]byte("- name: X\n  vlan_id: 3\n")); err == nil {
		t.Error("an unknown key was accepted")
	}
}

func nodes(specs ...string) []*inventory.Node {
	var out []*inventory.Node
	for i, s := range specs {
		name, profile, _ := strings.Cut(s, ":")
		n := &inventory.Node{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: name, ProvisionState: inventory.StateAvailable,
			Properties: map[string]any{"capabilities": "boot_mode:uefi,profile:" + profile}}
		out = append(out, n)
	}
	return out
}

func TestAllocate(t *testing.T) {
	rs, err := roles.Parse([]byte(`
- {name: Controller, count: 1, match: {profile: control}, networks: [External, InternalApi], services: [etcd, identity]}
- {name: Compute, count: 2, match: {profile: compute}, networks: [InternalApi, Tenant, Storage], services: [telemetry-sampler]}
`))
	if err != nil {
		t.Fatal(err)
	}
	pool := nodes("n3:compute", "n1:control", "n2:compute", "n4:compute", "n5:control")
	pool[4].Maintenance = true
	plan, err := roles.Allocate("oc", rs, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := func(as []roles.Assignment) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Hostname+"="+a.NodeName)
		}
		return strings.Join(s, " ")
	}
	if g := got(plan.Assignments); g != "oc-controller-0=n1 oc-compute-0=n2 oc-compute-1=n3" {
		t.Errorf("assignments: %s", g)
	}
	// Again, with the nodes now deployed: nothing changes.
	for _, n := range pool {
		n.ProvisionState = inventory.StateActive
	}
	again, err := roles.Allocate("oc", rs, pool, plan.Assignments)
	if err != nil || len(again.Added) != 0 || len(again.Removed) != 0 || got(again.Assignments) != got(plan.Assignments) {
		t.Errorf("the same roles again: %+v, %v", again, err)
	}
	// Scale Compute up to 3: only n4 is added, as index 2.
	pool[3].ProvisionState = inventory.StateAvailable
	rs[1].Count = 3
	up, err := roles.Allocate("oc", rs, pool, plan.Assignments)
	if err != nil || got(up.Added) != "oc-compute-2=n4" || len(up.Removed) != 0 {
		t.Errorf("scale up: added %s, removed %v, %v", got(up.Added), up.Removed, err)
	}
	// And back to 2: the highest index goes.
	rs[1].Count = 2
	down, err := roles.Allocate("oc", rs, pool, up.Assignments)
	if err != nil || got(down.Removed) != "oc-compute-2=n4" || len(down.Added) != 0 {
		t.Errorf("scale down: removed %s, added %v, %v", got(down.Removed), down.Added, err)
	}
	// Too few: the error names the role, the match and what was free.
	rs[0].Count = 3
	_, err = roles.Allocate("oc", rs, pool, down.Assignments)
	if !errors.Is(err, roles.ErrNotEnoughNodes) || !strings.Contains(err.Error(), "role Controller needs 2 more nodes matching profile:control; none is free (1 other available nodes do not match)") {
		t.Errorf("too few controllers: %v", err)
	}
}
