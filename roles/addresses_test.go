package roles_test

import (
	"strings"
	"testing"

	"github.com/stratacloud/strata/roles"
)

func TestAssignAddresses(t *testing.T) {
	rs, err := roles.Parse([]byte(`
- {name: Controller, count: 1, networks: [External, InternalApi], services: [etcd, identity]}
- {name: Compute, count: 2, networks: [InternalApi], services: [telemetry-sampler]}
`))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := roles.ParseNetworks([]byte(`
- name: External
  vip: true
  subnets: {external_subnet: {ip_subnet: 10.0.0.0/24, gateway_ip: 10.0.0.1, vlan: 10, allocation_pools: [{start: 10.0.0.4, end: 10.0.0.5}]}}
- name: InternalApi
  vip: true
  mtu: 9000
  subnets: {internal_api_subnet: {ip_subnet: 172.17.0.0/24, vlan: 20}}
`))
	if err != nil {
		t.Fatal(err)
	}
	as := []roles.Assignment{
		{Role: "Compute", Index: 1, Hostname: "oc-compute-1"},
		{Role: "Controller", Index: 0, Hostname: "oc-controller-0"},
		{Role: "Compute", Index: 0, Hostname: "oc-compute-0"},
	}
	addrs, vips, err := roles.AssignAddresses(rs, nets, as, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// VIPs first, then nodes in role and index order; no pool on
	// InternalApi means the subnet but its first and last ten.
	want := `oc-compute-0: InternalApi=172.17.0.12/24
oc-compute-1: InternalApi=172.17.0.13/24
oc-controller-0: External=10.0.0.5/24 InternalApi=172.17.0.11/24
`
	if got := addrs.String(); got != want {
		t.Errorf("addresses:\n%s\nwant:\n%s", got, want)
	}
	if vips["External"] != "10.0.0.4" || vips["InternalApi"] != "172.17.0.10" {
		t.Errorf("virtual addresses %v: want External 10.0.0.4, InternalApi 172.17.0.10", vips)
	}
	ext := addrs["oc-controller-0"]["External"]
	if ext.VLAN != 10 || ext.Gateway != "10.0.0.1" {
		t.Errorf("External address %+v: want vlan 10, gateway 10.0.0.1", ext)
	}
	if api := addrs["oc-compute-0"]["InternalApi"]; api.MTU != 9000 || api.VLAN != 20 {
		t.Errorf("InternalApi address %+v: want mtu 9000, vlan 20", api)
	}

	// The same again keeps everything; a node added takes the next free
	// address, and one removed frees its own for later.
	again, vips2, err := roles.AssignAddresses(rs, nets, as, addrs, vips)
	if err != nil || again.String() != addrs.String() || vips2["External"] != vips["External"] {
		t.Errorf("the same again: %v\n%s", err, again)
	}
	rs[1].Count = 3
	more := append(as[1:2:2], roles.Assignment{Role: "Compute", Index: 0, Hostname: "oc-compute-0"}, roles.Assignment{Role: "Compute", Index: 2, Hostname: "oc-compute-2"})
	up, _, err := roles.AssignAddresses(rs, nets, more, addrs, vips)
	if err != nil {
		t.Fatal(err)
	}
	if got := up["oc-compute-2"]["InternalApi"].Address; got != "172.17.0.13/24" {
		t.Errorf("after oc-compute-1 left, oc-compute-2 got %s, want its freed 172.17.0.13/24", got)
	}
	if up["oc-compute-0"]["InternalApi"] != addrs["oc-compute-0"]["InternalApi"] {
		t.Errorf("oc-compute-0 moved: %+v", up["oc-compute-0"])
	}

	// A pool too small: the error names the network.
	rs[0].Count = 2
	two := append(as, roles.Assignment{Role: "Controller", Index: 1, Hostname: "oc-controller-1"})
	_, _, err = roles.AssignAddresses(rs, nets, two, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "network External: its allocation pools have no address left for oc-controller-1") {
		t.Errorf("a full pool: %v", err)
	}
}
