package conductor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/bmc"
)

// ErrAgentRequired is returned for the provisioning phases whose agent
// steps are not written yet (rescue, unrescue, service).
var ErrAgentRequired = errors.New("this phase needs deploy ramdisk agent steps that are not available yet")

// Hardware is the ipmi or redfish hardware type: power and boot devices
// through the node's BMC, by way of a shared bmc.Pool.
type Hardware struct {
	Type string
	Pool *bmc.Pool
	// SettleTimeout bounds how long a power change may take to show in
	// the BMC's power state. Default 60s.
	SettleTimeout time.Duration
	// SettlePoll is how often the power state is read while settling.
	// Default 1s.
	SettlePoll time.Duration
}

var _ Driver = (*Hardware)(nil)

func (h *Hardware) access(n *inventory.Node) (bmc.Access, error) {
	if n.Driver != h.Type {
		return bmc.Access{}, fmt.Errorf("node %s has driver %s, not %s", n.UUID, n.Driver, h.Type)
	}
	return bmc.AccessFromNode(n)
}

// Validate checks that driver_info names and can reach the BMC.
func (h *Hardware) Validate(n *inventory.Node) map[string]error {
	_, err := h.access(n)
	out := map[string]error{}
	for _, i := range interfaces {
		switch i {
		case "power", "management", "inspect", "boot":
			out[i] = err
		case "deploy":
			out[i] = err
			if err == nil {
				out[i] = checkImage(n)
			}
		case "console", "raid", "rescue":
			out[i] = errors.New("not supported")
		default:
			out[i] = nil
		}
	}
	return out
}

// Verify reads the power state with the node's credentials.
func (h *Hardware) Verify(ctx context.Context, n *inventory.Node) error {
	_, err := h.PowerState(ctx, n)
	return err
}

// PowerState reads the power state from the BMC.
func (h *Hardware) PowerState(ctx context.Context, n *inventory.Node) (string, error) {
	a, err := h.access(n)
	if err != nil {
		return "", err
	}
	var state string
	err = h.Pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
		var err error
		state, err = c.PowerState(ctx)
		return err
	})
	return state, err
}

// SetPower asks the BMC for target and waits until its power state shows
// the result.
func (h *Hardware) SetPower(ctx context.Context, n *inventory.Node, target string) (string, error) {
	a, err := h.access(n)
	if err != nil {
		return "", err
	}
	if err := h.Pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, target) }); err != nil {
		return "", err
	}
	want := settledPower(target)
	settle, poll := h.SettleTimeout, h.SettlePoll
	if settle <= 0 {
		settle = 60 * time.Second
	}
	if poll <= 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(settle)
	for {
		state, err := h.PowerState(ctx, n)
		if err == nil && state == want {
			return state, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", err
			}
			return state, fmt.Errorf("the power state is still %q %s after asking for %q", state, settle, target)
		}
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
	}
}

// SetBootDevice sets the boot device through the BMC, in UEFI mode when
// the node boots with UEFI.
func (h *Hardware) SetBootDevice(ctx context.Context, n *inventory.Node, device string, persistent bool) error {
	a, err := h.access(n)
	if err != nil {
		return err
	}
	uefi := bootsUEFI(n)
	return h.Pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
		return c.SetBootDevice(ctx, device, persistent, uefi)
	})
}

// bootsUEFI reports whether the node boots with UEFI: its boot_mode, or
// the boot_mode capability in its properties.
func bootsUEFI(n *inventory.Node) bool {
	if n.BootMode != "" {
		return n.BootMode == "uefi"
	}
	caps, _ := n.Properties["capabilities"].(string)
	for _, kv := range strings.Split(caps, ",") {
		if k, v, ok := strings.Cut(kv, ":"); ok && strings.TrimSpace(k) == "boot_mode" {
			return strings.TrimSpace(v) == "uefi"
		}
	}
	return false
}

// BootDevices are the devices IPMI and Redfish BMCs can set.
func (h *Hardware) BootDevices() []string {
	return []string{BootPXE, BootDisk, BootCDROM, BootBIOS, BootSafe}
}

// Phase boots the deploy ramdisk for an inspection, a cleaning or a
// deploy (which go on when its agent calls back), boots a deployed node
// from its disk, powers the node off for a tear down and checks the BMC
// for an adoption; rescue and service need agent steps not written yet.
func (h *Hardware) Phase(ctx context.Context, n *inventory.Node, p Phase) error {
	switch p {
	case PhaseInspect, PhaseClean:
		if err := h.bootRamdisk(ctx, n); err != nil {
			return err
		}
		return ErrWaitAgent
	case PhaseDeploy:
		if written, _ := n.DriverInternalInfo[imageWrittenKey].(bool); written {
			return h.bootDisk(ctx, n)
		}
		if err := checkImage(n); err != nil {
			return fmt.Errorf("%w: %w", errNoImage, err)
		}
		if err := h.bootRamdisk(ctx, n); err != nil {
			return err
		}
		return ErrWaitAgent
	case PhaseTearDown:
		_, err := h.SetPower(ctx, n, inventory.PowerOff)
		return err
	case PhaseAdopt:
		return h.Verify(ctx, n)
	default:
		return fmt.Errorf("%s of node %s: %w", p, n.UUID, ErrAgentRequired)
	}
}

// bootDisk makes the node boot from its disk from now on, and reboots it
// into the image the agent wrote.
func (h *Hardware) bootDisk(ctx context.Context, n *inventory.Node) error {
	if err := h.SetBootDevice(ctx, n, BootDisk, true); err != nil {
		return fmt.Errorf("set boot device disk: %w", err)
	}
	if _, err := h.SetPower(ctx, n, inventory.Rebooting); err != nil {
		return fmt.Errorf("reboot into the image: %w", err)
	}
	return nil
}

// bootRamdisk network-boots the node once: boot device PXE for the next
// boot, then power on, or a reboot when it is on already.
func (h *Hardware) bootRamdisk(ctx context.Context, n *inventory.Node) error {
	if err := h.SetBootDevice(ctx, n, BootPXE, false); err != nil {
		return fmt.Errorf("set boot device pxe: %w", err)
	}
	state, err := h.PowerState(ctx, n)
	if err != nil {
		return err
	}
	target := inventory.PowerOn
	if state == inventory.PowerOn {
		target = inventory.Rebooting
	}
	if _, err := h.SetPower(ctx, n, target); err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	return nil
}

// cleanStepChecker is a driver that knows which clean steps it can run,
// so that a manual clean asking for others is refused before anything
// boots.
type cleanStepChecker interface {
	CheckCleanSteps(steps []map[string]any) error
}

// CheckCleanSteps accepts the steps strata-agent carries out.
func (h *Hardware) CheckCleanSteps(steps []map[string]any) error {
	for i, s := range steps {
		name, _ := s["step"].(string)
		if !slices.Contains(AgentCleanSteps, name) {
			return inventory.Invalid(fmt.Sprintf("clean_steps[%d].step", i), "%q is not a clean step of the %s hardware type; it has %s",
				name, h.Type, strings.Join(AgentCleanSteps, ", "))
		}
	}
	return nil
}
