package lab

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/lab/netlab"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestParseConfig(t *testing.T) {
	yaml := `
name: demo
accel: tcg
bmc: {username: root, password: calvin}
undercloud:
  api_port: 16385
  power_sync_interval: 5s
nodes:
  - name: ctl-0
    cpus: 2
    memory_mb: 2048
    disks: [{size: 20GiB, serial: CTL0}, {size: 512MiB}]
    nics: [ctlplane, internal_api, tenant]
    firmware: uefi
    bmc: redfish
  - name: cmp-0
  - name: sim-0
    kind: sim
    firmware: uefi
`
	got, err := ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	got.SetDefaults()
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Name:  "demo",
		Accel: "tcg",
		BMC:   BMCConfig{Username: "root", Password: "calvin"},
		Undercloud: UndercloudConfig{
			Busybox: "/bin/busybox", APIPort: 16385, PowerSyncInterval: Duration(5 * time.Second), Username: "admin",
		},
		Nodes: []Node{
			{
				Name: "ctl-0", Kind: "vm", CPUs: 2, MemoryMB: 2048,
				Disks:    []Disk{{Size: 20 << 30, Serial: "CTL0"}, {Size: 512 << 20, Serial: "ctl-0-disk1"}},
				NICs:     []string{"ctlplane", "internal_api", "tenant"},
				Firmware: "uefi", BMC: "redfish",
			},
			{
				Name: "cmp-0", Kind: "vm", CPUs: 1, MemoryMB: 512,
				Disks: []Disk{{Size: 4 << 30, Serial: "cmp-0-disk0"}},
				NICs:  []string{"ctlplane"}, Firmware: "bios", BMC: "ipmi",
			},
			{
				Name: "sim-0", Kind: "sim", CPUs: 1, MemoryMB: 512,
				Disks: []Disk{{Size: 4 << 30, Serial: "sim-0-disk0"}},
				NICs:  []string{"ctlplane"}, Firmware: "uefi", BMC: "ipmi",
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "nodes: [{name: a, colour: red}]", `unknown field "colour"`},
		{"no nodes", "name: x", "nodes: a lab needs at least one node"},
		{"bad lab name", "name: Big Lab\nnodes: [{name: a}]", `name: "Big Lab"`},
		{"bad node name", "nodes: [{name: node_0}]", `nodes[0].name: "node_0"`},
		{"duplicate node", "nodes: [{name: a}, {name: a}]", `nodes[1].name: "a" is used twice`},
		{"kind", "nodes: [{name: a, kind: container}]", `node a: kind: "container" is not one of: vm, sim`},
		{"cpus", "nodes: [{name: a, cpus: 100}]", "node a: cpus: 100 is not between 1 and 64"},
		{"memory", "nodes: [{name: a, memory_mb: 16}]", "node a: memory_mb: 16"},
		{"disk size", "nodes: [{name: a, disks: [{size: 1KiB}]}]", "node a: disks[0].size: 1KiB is less than 1MiB"},
		{"disk size unit", "nodes: [{name: a, disks: [{size: 4 parsecs}]}]", `size "4 parsecs"`},
		{"first nic", "nodes: [{name: a, nics: [tenant]}]", "node a: nics[0]: \"tenant\": the first NIC must be on ctlplane"},
		{"nic network", "nodes: [{name: a, nics: [ctlplane, bmc]}]", `node a: nics[1]: "bmc" is not one of ctlplane, external`},
		{"firmware", "nodes: [{name: a, firmware: coreboot}]", `node a: firmware: "coreboot" is not bios or uefi`},
		{"bmc", "nodes: [{name: a, bmc: amt}]", `node a: bmc: "amt" is not ipmi or redfish`},
		{"accel", "accel: hvf\nnodes: [{name: a}]", `accel: "hvf" is not auto, tcg or kvm`},
		{"ipmi password", "bmc: {password: abcdefghijklmnopqrstuvwxyz}\nnodes: [{name: a}]", "bmc.password: longer than IPMI's 20 bytes"},
		{"api port", "undercloud: {api_port: 70000}\nnodes: [{name: a}]", "undercloud.api_port: 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				c.SetDefaults()
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	c := Config{Nodes: DefaultNodes(MaxNodes + 1)}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at most 200") {
		t.Errorf("%d nodes: %v", MaxNodes+1, err)
	}
}

func TestDefaultNodes(t *testing.T) {
	c := Config{Nodes: DefaultNodes(3)}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range c.Nodes {
		got = append(got, n.Name+"/"+n.BMC+"/"+n.Firmware+"/"+n.Disks[0].Size.String())
	}
	want := []string{"node-0/ipmi/bios/4GiB", "node-1/redfish/bios/4GiB", "node-2/ipmi/bios/4GiB"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default nodes (-want +got):\n%s", diff)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"4GiB": 4 << 30, "512MiB": 512 << 20, "10G": 10 << 30, "1048576": 1 << 20, "2T": 2 << 40} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if s := Size(3 << 30).String(); s != "3GiB" {
		t.Errorf("String = %q", s)
	}
}

func TestNames(t *testing.T) {
	p := Prefix("demo")
	if !regexp.MustCompile(`^sl[0-9a-f]{4}$`).MatchString(p) {
		t.Errorf("prefix %q", p)
	}
	if p != Prefix("demo") || p == Prefix("demo2") {
		t.Errorf("prefix not a deterministic function of the name")
	}
	// Every interface name fits Linux's limit.
	names := []string{tapName(MaxNodes-1, 7), "uc-" + NetCtlplane, "uc-" + NetExternal, "bmcs"}
	for _, n := range Networks {
		names = append(names, n.Bridge())
	}
	for _, n := range names {
		if len(n) > netlab.MaxNameLen {
			t.Errorf("interface name %q is longer than %d", n, netlab.MaxNameLen)
		}
	}
	for _, ns := range []string{fabricNS(p), undercloudNS(p), bmcNS(p)} {
		if !strings.HasPrefix(ns, p+"-") {
			t.Errorf("namespace %q lacks the prefix", ns)
		}
	}
	if got := NodeBMCAddr(0).String(); got != "192.168.25.10" {
		t.Errorf("node 0's BMC at %s", got)
	}
	if got := NodeBMCAddr(MaxNodes - 1).String(); got != "192.168.25.209" {
		t.Errorf("the last node's BMC at %s", got)
	}
}

func TestMAC(t *testing.T) {
	seen := map[string]bool{}
	for node := range MaxNodes {
		for nic := range 8 {
			m := MAC("demo", node, nic)
			if m[0]&0x02 == 0 || m[0]&0x01 != 0 {
				t.Fatalf("%s is not a locally administered unicast address", m)
			}
			if !strings.HasPrefix(m.String(), "52:54:00:") {
				t.Fatalf("%s is not in 52:54:00", m)
			}
			if seen[m.String()] {
				t.Fatalf("%s given twice", m)
			}
			seen[m.String()] = true
		}
	}
	if MAC("demo", 3, 1).String() != MAC("demo", 3, 1).String() {
		t.Error("MAC is not deterministic")
	}
	if MAC("demo", 3, 1).String() == MAC("other", 3, 1).String() && Prefix("demo") != Prefix("other") {
		t.Log("two labs share a MAC byte (possible: one byte of hash)")
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, err := newStateStore(dir, State{Version: 1, Name: "demo", Prefix: Prefix("demo"), Phase: PhaseStarting})
	if err != nil {
		t.Fatal(err)
	}
	rs := []Resource{
		{Kind: ResNamespace, Name: "sl0000-net"},
		{Kind: ResLink, Name: "br-ctlplane", Netns: "sl0000-net"},
		processResource("lab test", os.Getpid()),
		{Kind: ResProcess, Name: "qemu node-0", PID: 1 << 30},
	}
	for _, r := range rs {
		if err := st.add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.remove(rs[3]); err != nil {
		t.Fatal(err)
	}
	st.update(func(s *State) {
		s.Phase = PhaseReady
		s.Nodes = []NodeState{{Name: "node-0", BMC: "ipmi", BMCAddr: "192.168.25.10", MACs: []string{"52:54:00:01:00:00"}}}
	})
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := st.get()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if len(got.Resources) != 3 || got.Phase != PhaseReady {
		t.Errorf("resources %v, phase %s", got.Resources, got.Phase)
	}
	if !got.Resources[2].Alive() {
		t.Error("this test's own process is not alive")
	}
	if (Resource{Kind: ResProcess, PID: 1 << 30}).Alive() {
		t.Error("a process that does not exist is alive")
	}
	// A later process with the same PID is not the recorded one.
	old := got.Resources[2]
	old.StartTime++
	if old.Alive() {
		t.Error("a process with another start time is taken for the recorded one")
	}
	if _, err := LoadState(t.TempDir()); err == nil {
		t.Error("no error for a directory without a state file")
	}
}

func TestInstackenv(t *testing.T) {
	c := Config{Name: "demo", BMC: BMCConfig{Password: "s3cret"}, Nodes: DefaultNodes(2)}
	c.Nodes[1].NICs = []string{NetCtlplane, NetTenant}
	c.Nodes[1].Firmware = "uefi"
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(instackenv(c, "/var/lib/strata/lab/demo/bmc-ca.pem"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "instackenv.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantB, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	json.Unmarshal(wantB, &want)
	json.Unmarshal(got, &have)
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("instackenv.json (-want +got):\n%s\n(go test -update rewrites the golden file)", diff)
	}

	// The undercloud's importer takes it as it is.
	specs, err := inventory.ParseImport(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d nodes imported", len(specs))
	}
	ipmi, rf := specs[0].Node, specs[1].Node
	if ipmi.Driver != "ipmi" || ipmi.DriverInfo["ipmi_address"] != "192.168.25.10" {
		t.Errorf("node-0: driver %s, driver_info %v", ipmi.Driver, ipmi.DriverInfo)
	}
	if rf.Driver != "redfish" || rf.DriverInfo["redfish_system_id"] != "/redfish/v1/Systems/node-1" || rf.DriverInfo["redfish_address"] != "https://192.168.25.11" {
		t.Errorf("node-1: driver %s, driver_info %v", rf.Driver, rf.DriverInfo)
	}
	if len(specs[1].Ports) != 1 || specs[1].Ports[0].Address != MAC("demo", 1, 0).String() {
		t.Errorf("node-1's ports %+v: want its ctlplane NIC only", specs[1].Ports)
	}
}
