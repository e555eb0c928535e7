package conductor

import (
	"context"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// Driver is what the conductor needs from a hardware type: checking a
// node's driver_info, reaching its BMC, and carrying out each phase of
// provisioning. One value serves every node of its type; per-node state
// lives in the node record.
type Driver interface {
	// Validate checks driver_info without touching the hardware and
	// returns, per Ironic interface name, nil or why it is not usable.
	Validate(n *inventory.Node) map[string]error
	// Verify reaches the BMC with the node's credentials (verifying).
	Verify(ctx context.Context, n *inventory.Node) error
	// SetPower drives the node to target (one of inventory.PowerTargets)
	// and returns the power state it ends in.
	SetPower(ctx context.Context, n *inventory.Node, target string) (string, error)
	// PowerState reads the node's power state.
	PowerState(ctx context.Context, n *inventory.Node) (string, error)
	// SetBootDevice sets the device the node boots from next (or always).
	SetBootDevice(ctx context.Context, n *inventory.Node, device string, persistent bool) error
	// BootDevices lists the boot devices the driver can set.
	BootDevices() []string
	// Phase runs one phase of provisioning: inspect, clean, deploy,
	// tear down, adopt, rescue, unrescue or service.
	Phase(ctx context.Context, n *inventory.Node, phase Phase) error
}

// Phase names a piece of provisioning work the conductor hands a driver.
type Phase string

// Phases, one per working state.
const (
	PhaseInspect  Phase = "inspect"
	PhaseClean    Phase = "clean"
	PhaseDeploy   Phase = "deploy"
	PhaseTearDown Phase = "tear down"
	PhaseAdopt    Phase = "adopt"
	PhaseRescue   Phase = "rescue"
	PhaseUnrescue Phase = "unrescue"
	PhaseService  Phase = "service"
)

// Boot devices, with Ironic's names.
const (
	BootPXE   = "pxe"
	BootDisk  = "disk"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
	BootSafe  = "safe"
)

// interfaces are the Ironic hardware interfaces that validate reports on.
var interfaces = []string{"boot", "console", "deploy", "inspect", "management", "network", "power", "raid", "rescue", "storage"}

// Fake is Ironic's fake-hardware: every operation succeeds. StepDelay
// makes each operation take that long, so that tests can catch a node
// mid-transition.
type Fake struct {
	StepDelay time.Duration
}

var _ Driver = Fake{}

func (f Fake) wait(ctx context.Context) error {
	if f.StepDelay <= 0 {
		return nil
	}
	t := time.NewTimer(f.StepDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Validate accepts any driver_info.
func (Fake) Validate(*inventory.Node) map[string]error {
	out := map[string]error{}
	for _, i := range interfaces {
		out[i] = nil
	}
	return out
}

// Verify succeeds.
func (f Fake) Verify(ctx context.Context, _ *inventory.Node) error { return f.wait(ctx) }

// SetPower reports the state the target implies.
func (f Fake) SetPower(ctx context.Context, _ *inventory.Node, target string) (string, error) {
	if err := f.wait(ctx); err != nil {
		return "", err
	}
	return settledPower(target), nil
}

// PowerState reports what was last set (off for a new node).
func (Fake) PowerState(_ context.Context, n *inventory.Node) (string, error) {
	if n.PowerState == "" {
		return inventory.PowerOff, nil
	}
	return n.PowerState, nil
}

// SetBootDevice succeeds.
func (f Fake) SetBootDevice(ctx context.Context, _ *inventory.Node, _ string, _ bool) error {
	return f.wait(ctx)
}

// BootDevices are the devices fake-hardware pretends to support.
func (Fake) BootDevices() []string {
	return []string{BootPXE, BootDisk, BootCDROM, BootBIOS, BootSafe}
}

// Phase succeeds after StepDelay.
func (f Fake) Phase(ctx context.Context, _ *inventory.Node, _ Phase) error { return f.wait(ctx) }

// settledPower is the power state a power target ends in.
func settledPower(target string) string {
	switch target {
	case inventory.PowerOff, inventory.SoftPowerOff:
		return inventory.PowerOff
	default:
		return inventory.PowerOn
	}
}
