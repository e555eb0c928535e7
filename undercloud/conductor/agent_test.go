package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
)

// ramdiskDriver is fake-hardware whose inspection boots the ramdisk: it
// leaves the node waiting for its agent, as the ipmi and redfish drivers
// do, and records the power changes.
type ramdiskDriver struct {
	conductor.Fake
	mu    sync.Mutex
	power []string
}

func (d *ramdiskDriver) Phase(ctx context.Context, n *inventory.Node, p conductor.Phase) error {
	if p == conductor.PhaseInspect {
		d.SetPower(ctx, n, inventory.PowerOn)
		return conductor.ErrWaitAgent
	}
	return d.Fake.Phase(ctx, n, p)
}

func (d *ramdiskDriver) SetPower(ctx context.Context, n *inventory.Node, target string) (string, error) {
	d.mu.Lock()
	d.power = append(d.power, target)
	d.mu.Unlock()
	return d.Fake.SetPower(ctx, n, target)
}

func (d *ramdiskDriver) powered() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.power...)
}

func TestInspectionWithAgent(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	d := &ramdiskDriver{}
	c, _ := start(t, nodes, conductor.Config{Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverFake: d}})
	n, err := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake, Properties: map[string]any{"capabilities": "profile:compute,boot_mode:bios"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.CreatePort(ctx, &inventory.Port{NodeUUID: n.UUID, Address: "52:54:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"manage", "inspect"} {
		if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: verb}); err != nil {
			t.Fatal(err)
		}
		if verb == "manage" {
			waitState(t, nodes, n.UUID, inventory.StateManageable)
		}
	}
	waitState(t, nodes, n.UUID, inventory.StateInspectWait)

	got, token, err := c.AgentLookup(ctx, []string{"52:54:00:00:00:01"}, "")
	if err != nil || got.UUID != n.UUID {
		t.Fatalf("lookup: %v, %v", got, err)
	}
	hw := inventory.Hardware{
		CPU:    inventory.CPU{Count: 2, Architecture: "x86_64"},
		Memory: inventory.Memory{Total: 1500 << 20, PhysicalMB: 1536},
		Disks: []inventory.Disk{
			{Name: "/dev/vda", Size: 8 << 30}, {Name: "/dev/vdb", Size: 4 << 30}, {Name: "/dev/vdc", Size: 1 << 30},
		},
		Interfaces: []inventory.Interface{{Name: "eth0", MACAddress: "52:54:00:00:00:01"}, {Name: "eth1", MACAddress: "52:54:00:00:00:02"}},
		Boot:       inventory.Boot{CurrentBootMode: "uefi", PXEInterface: "52:54:00:00:00:01"},
	}
	in := conductor.Inspection{Hardware: hw, Inventory: json.RawMessage(`{"cpu":{"count":2}}`)}
	if _, err := c.ContinueInspection(ctx, n.UUID, "wrong", in); !errors.Is(err, conductor.ErrAgentToken) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := c.ContinueInspection(ctx, n.UUID, token, in); err != nil {
		t.Fatal(err)
	}
	done := waitState(t, nodes, n.UUID, inventory.StateManageable)
	if done.Properties["cpus"] != float64(2) || done.Properties["cpu_arch"] != "x86_64" ||
		done.Properties["memory_mb"] != float64(1536) || done.Properties["local_gb"] != float64(4) ||
		done.Properties["capabilities"] != "profile:compute,boot_mode:uefi" || done.InspectionFinishedAt == nil {
		t.Errorf("after inspection: %+v", done.Properties)
	}
	if _, ok := done.DriverInternalInfo[conductor.AgentTokenHashKey]; ok {
		t.Error("the agent token survived the inspection")
	}
	inv, err := nodes.Inventory(ctx, n.UUID)
	if err != nil || string(inv.Inventory) != `{"cpu":{"count":2}}` {
		t.Errorf("stored inventory: %+v, %v", inv, err)
	}
	ports, _ := nodes.ListPorts(ctx, n.UUID)
	if len(ports) != 2 || ports[1].Address != "52:54:00:00:00:02" || ports[1].PXEEnabled {
		t.Errorf("ports after inspection: %+v, want the known one and eth1's, not for PXE", ports)
	}
	// The token was for that boot only.
	if _, err := c.ContinueInspection(ctx, n.UUID, token, in); !errors.Is(err, conductor.ErrAgentToken) {
		t.Errorf("a second report: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(strings.Join(d.powered(), ","), "power off") {
		if time.Now().After(deadline) {
			t.Fatalf("powered %v: want off after the inspection", d.powered())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentWaitTimesOut(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	d := &ramdiskDriver{}
	c, _ := start(t, nodes, conductor.Config{
		Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverFake: d},
		InspectWaitTimeout: 300 * time.Millisecond, TakeoverInterval: 100 * time.Millisecond,
	})
	n, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "manage"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, nodes, n.UUID, inventory.StateManageable)
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "inspect"}); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, nodes, n.UUID, inventory.StateInspectFailed)
	if !strings.Contains(got.LastError, "timeout reached while inspect wait") {
		t.Errorf("last_error = %q", got.LastError)
	}
	if _, _, err := c.AgentLookup(ctx, nil, n.UUID); !errors.Is(err, inventory.ErrInvalidState) {
		t.Errorf("lookup of a failed node: %v", err)
	}
}

// A machine that never calls back while deploying (powered off behind the
// undercloud's back, or hung) fails cleanly, is powered off, and deploys
// again.
func TestDeployTimesOutAndDeploysAgain(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	d := &deployDriver{}
	c, _ := start(t, nodes, conductor.Config{
		Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverFake: d},
		DeployCallbackTimeout: 300 * time.Millisecond, TakeoverInterval: 100 * time.Millisecond,
	})
	n, _ := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	for _, step := range []struct{ verb, state string }{{"manage", "manageable"}, {"provide", "available"}, {"active", "deploy failed"}} {
		if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: step.verb}); err != nil {
			t.Fatal(err)
		}
		got := waitState(t, nodes, n.UUID, step.state)
		if step.state == "deploy failed" && !strings.Contains(got.LastError, "timeout reached while wait call-back") {
			t.Errorf("last_error = %q", got.LastError)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(strings.Join(d.powered(), ","), "power off") {
		if time.Now().After(deadline) {
			t.Fatalf("powered %v: want off after the timeout", d.powered())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Again, and this time the agent reports.
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "active"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, nodes, n.UUID, inventory.StateWaitCallback)
	_, token, err := c.AgentLookup(ctx, nil, n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContinueDeploy(ctx, n.UUID, token, ""); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, nodes, n.UUID, inventory.StateActive)
	if got.LastError != "" || !d.bootedDisk() {
		t.Errorf("active with last_error %q; booted from disk: %v", got.LastError, d.bootedDisk())
	}
}

// deployDriver is ramdiskDriver for deploys: the first phase boots the
// ramdisk, the one after the agent's report boots the disk.
type deployDriver struct {
	ramdiskDriver
	disk bool
}

func (d *deployDriver) Phase(ctx context.Context, n *inventory.Node, p conductor.Phase) error {
	if p != conductor.PhaseDeploy {
		return d.Fake.Phase(ctx, n, p)
	}
	if written, _ := n.DriverInternalInfo["agent_image_written"].(bool); written {
		d.mu.Lock()
		d.disk = true
		d.mu.Unlock()
		return nil
	}
	d.SetPower(ctx, n, inventory.PowerOn)
	return conductor.ErrWaitAgent
}

func (d *deployDriver) bootedDisk() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.disk
}

// A manual clean asking the ipmi or redfish hardware type for a step the
// agent does not have is refused before the node boots anything.
func TestManualCleanStepsChecked(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	h := &conductor.Hardware{Type: inventory.DriverIPMI}
	c, _ := start(t, nodes, conductor.Config{Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverIPMI: h}})
	n, err := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverIPMI, ProvisionState: inventory.StateManageable})
	if err != nil {
		t.Fatal(err)
	}
	req := conductor.ProvisionRequest{Verb: "clean", CleanSteps: []map[string]any{
		{"interface": "deploy", "step": "erase_devices_metadata"}, {"interface": "deploy", "step": "erase_devices"},
	}}
	err = c.Provision(ctx, n.UUID, req)
	if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), `clean_steps[1].step: "erase_devices" is not a clean step`) {
		t.Fatalf("clean with erase_devices: %v", err)
	}
	if got, _, _ := nodes.GetNode(ctx, n.UUID); got.ProvisionState != inventory.StateManageable || got.Reservation != "" {
		t.Errorf("the refused clean changed the node: %s, reservation %q", got.ProvisionState, got.Reservation)
	}
}
