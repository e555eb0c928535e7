package conductor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
	labbmc "github.com/stratacloud/strata/lab/bmc"
	redfishbmc "github.com/stratacloud/strata/lab/bmc/redfish"
	"github.com/stratacloud/strata/undercloud/bmc"
	"github.com/stratacloud/strata/undercloud/conductor"
)

// These tests drive the ipmi and redfish hardware types: Validate without
// any BMC, the rest through the lab's Redfish BMC in front of in-memory
// machines.

const (
	bmcUser     = "root"
	bmcPassword = "hw-Passw0rd"
)

// redfishBMC serves the machines, by system id, over HTTPS on loopback
// until the test ends, and returns a function making nodes for them.
func redfishBMC(t *testing.T, machines map[string]labbmc.Machine) func(id string, mod func(n *inventory.Node)) *inventory.Node {
	t.Helper()
	srv, err := redfishbmc.New(redfishbmc.Config{Username: bmcUser, Password: bmcPassword, Systems: machines})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(id string, mod func(n *inventory.Node)) *inventory.Node {
		n := &inventory.Node{UUID: "uuid-" + id, Driver: inventory.DriverRedfish, DriverInfo: map[string]any{
			"redfish_address":   "https://" + srv.Addr().String(),
			"redfish_system_id": "/redfish/v1/Systems/" + id,
			"redfish_username":  bmcUser,
			"redfish_password":  bmcPassword,
			"redfish_verify_ca": ca,
		}, Properties: map[string]any{}}
		if mod != nil {
			mod(n)
		}
		return n
	}
}

// redfishHardware is the redfish hardware type with a Pool and settling
// tuned for loopback.
func redfishHardware() *conductor.Hardware {
	return &conductor.Hardware{
		Type:          inventory.DriverRedfish,
		Pool:          &bmc.Pool{Timeout: 20 * time.Second, Attempts: 2, Backoff: 50 * time.Millisecond},
		SettleTimeout: 30 * time.Second,
		SettlePoll:    10 * time.Millisecond,
	}
}

func poweredOn(t *testing.T, m labbmc.Machine) bool {
	t.Helper()
	on, err := m.PoweredOn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return on
}

func TestHardwareValidate(t *testing.T) {
	ipmi := func(di map[string]any) *inventory.Node {
		return &inventory.Node{UUID: "n-ipmi", Driver: inventory.DriverIPMI, DriverInfo: di}
	}
	redfish := func(di map[string]any) *inventory.Node {
		return &inventory.Node{UUID: "n-redfish", Driver: inventory.DriverRedfish, DriverInfo: di}
	}
	for _, tc := range []struct {
		name string
		hw   string
		node *inventory.Node
		// wantField is the driver_info key the power and management
		// errors must name; "" for none.
		wantField string
	}{
		{name: "ipmi", hw: inventory.DriverIPMI, node: ipmi(map[string]any{"ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "pw"})},
		{name: "ipmi without address", hw: inventory.DriverIPMI, node: ipmi(map[string]any{"ipmi_username": "admin"}), wantField: "ipmi_address"},
		{name: "ipmi with a bad port", hw: inventory.DriverIPMI, node: ipmi(map[string]any{"ipmi_address": "192.0.2.10", "ipmi_port": "six"}), wantField: "ipmi_port"},
		{name: "ipmi with a bad cipher suite", hw: inventory.DriverIPMI, node: ipmi(map[string]any{"ipmi_address": "192.0.2.10", "ipmi_cipher_suite": float64(99)}), wantField: "ipmi_cipher_suite"},
		{name: "redfish", hw: inventory.DriverRedfish, node: redfish(map[string]any{"redfish_address": "192.0.2.11", "redfish_system_id": "/redfish/v1/Systems/1"})},
		{name: "redfish without address", hw: inventory.DriverRedfish, node: redfish(map[string]any{"redfish_system_id": "/redfish/v1/Systems/1"}), wantField: "redfish_address"},
		{name: "redfish with a bad address", hw: inventory.DriverRedfish, node: redfish(map[string]any{"redfish_address": "gopher://192.0.2.11"}), wantField: "redfish_address"},
		{name: "redfish with a bad system id", hw: inventory.DriverRedfish, node: redfish(map[string]any{"redfish_address": "192.0.2.11", "redfish_system_id": "System.Embedded.1"}), wantField: "redfish_system_id"},
		{name: "redfish with a missing CA file", hw: inventory.DriverRedfish, node: redfish(map[string]any{"redfish_address": "192.0.2.11", "redfish_verify_ca": "/nonexistent/ca.pem"}), wantField: "redfish_verify_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &conductor.Hardware{Type: tc.hw, Pool: &bmc.Pool{}}
			got := h.Validate(tc.node)
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range got {
					if !yield(k) {
						return
					}
				}
			})
			want := []string{"boot", "console", "deploy", "inspect", "management", "network", "power", "raid", "rescue", "storage"}
			if diff := cmp.Diff(want, keys); diff != "" {
				t.Errorf("interfaces (-want +got):\n%s", diff)
			}
			for _, i := range []string{"power", "management", "inspect", "boot"} {
				err := got[i]
				if tc.wantField == "" {
					if err != nil {
						t.Errorf("%s: %v", i, err)
					}
					continue
				}
				var ie *inventory.InvalidError
				if !errors.As(err, &ie) || !strings.HasPrefix(ie.Reason, tc.wantField+" ") {
					t.Errorf("%s: %v, want an invalid input error naming %s", i, err, tc.wantField)
				}
			}
			// Deploying also needs an image the agent can check.
			if want := "instance_info.image_source: is required"; tc.wantField == "" && (got["deploy"] == nil || !strings.Contains(got["deploy"].Error(), want)) {
				t.Errorf("deploy: %v, want %q", got["deploy"], want)
			}
			for _, i := range []string{"console", "raid", "rescue"} {
				if got[i] == nil {
					t.Errorf("%s: supported?", i)
				}
			}
			for _, i := range []string{"network", "storage"} {
				if got[i] != nil {
					t.Errorf("%s: %v", i, got[i])
				}
			}
		})
	}

	t.Run("a node of another hardware type", func(t *testing.T) {
		h := &conductor.Hardware{Type: inventory.DriverIPMI, Pool: &bmc.Pool{}}
		got := h.Validate(redfish(map[string]any{"redfish_address": "192.0.2.11"}))
		if err := got["power"]; err == nil || !strings.Contains(err.Error(), "redfish") {
			t.Errorf("power: %v, want an error about the hardware type", err)
		}
	})
}

func TestHardwareVerify(t *testing.T) {
	sim := labbmc.NewSim(labbmc.Hardware{})
	node := redfishBMC(t, map[string]labbmc.Machine{"n1": sim})
	h := redfishHardware()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	if err := h.Verify(ctx, node("n1", nil)); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for name, tc := range map[string]struct {
		mod     func(n *inventory.Node)
		wantErr error
	}{
		"wrong password": {mod: func(n *inventory.Node) { n.DriverInfo["redfish_password"] = "nope-nope" }, wantErr: bmc.ErrRefused},
		"unknown system": {mod: func(n *inventory.Node) { n.DriverInfo["redfish_system_id"] = "/redfish/v1/Systems/n2" }, wantErr: bmc.ErrRefused},
		"no address":     {mod: func(n *inventory.Node) { delete(n.DriverInfo, "redfish_address") }, wantErr: inventory.ErrInvalid},
	} {
		err := h.Verify(ctx, node("n1", tc.mod))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "nope-nope") {
			t.Errorf("%s: the error gives the password away: %v", name, err)
		}
	}
	if poweredOn(t, sim) || len(sim.Boots()) != 0 {
		t.Error("Verify changed the machine")
	}
}

// lagMachine is a machine whose BMC is slow to show a power change: after
// each one, its next Lag power readings still show the power before it.
type lagMachine struct {
	*labbmc.Sim
	Lag int

	mu     sync.Mutex
	before bool // the power before the last change
	stale  int  // readings left that show before
	served int  // stale readings given
}

func (m *lagMachine) change(ctx context.Context, do func() error) error {
	before, _ := m.Sim.PoweredOn(ctx)
	err := do()
	m.mu.Lock()
	m.before, m.stale = before, m.Lag
	m.mu.Unlock()
	return err
}

func (m *lagMachine) PoweredOn(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stale > 0 {
		m.stale--
		m.served++
		return m.before, nil
	}
	return m.Sim.PoweredOn(ctx)
}

func (m *lagMachine) PowerOn(ctx context.Context) error {
	return m.change(ctx, func() error { return m.Sim.PowerOn(ctx) })
}

func (m *lagMachine) PowerOff(ctx context.Context, graceful bool) error {
	return m.change(ctx, func() error { return m.Sim.PowerOff(ctx, graceful) })
}

func (m *lagMachine) Reset(ctx context.Context, graceful bool) error {
	return m.change(ctx, func() error { return m.Sim.Reset(ctx, graceful) })
}

// servedStale returns how many stale readings the machine gave, and how
// many it still owes.
func (m *lagMachine) servedStale() (served, owed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.served, m.stale
}

// stuckMachine accepts power on and stays off.
type stuckMachine struct{ *labbmc.Sim }

func (stuckMachine) PowerOn(context.Context) error { return nil }

func TestHardwareSetPowerSettles(t *testing.T) {
	lag := &lagMachine{Sim: labbmc.NewSim(labbmc.Hardware{}), Lag: 4}
	stuck := stuckMachine{labbmc.NewSim(labbmc.Hardware{})}
	node := redfishBMC(t, map[string]labbmc.Machine{"lag": lag, "stuck": stuck})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("waits until the power state shows the change", func(t *testing.T) {
		h := redfishHardware()
		for i, target := range []string{inventory.PowerOn, inventory.PowerOff, inventory.PowerOn} {
			got, err := h.SetPower(ctx, node("lag", nil), target)
			if err != nil || got != target {
				t.Fatalf("SetPower(%s) = %q, %v", target, got, err)
			}
			// SetPower returned the settled state only after reading
			// through every stale one.
			if served, owed := lag.servedStale(); served != (i+1)*lag.Lag || owed != 0 {
				t.Errorf("SetPower(%s) returned after %d stale readings, with %d to go; want %d and 0", target, served, owed, (i+1)*lag.Lag)
			}
			if on := poweredOn(t, lag.Sim); on != (target == inventory.PowerOn) {
				t.Errorf("SetPower(%s): machine on: %t", target, on)
			}
		}
	})

	t.Run("gives up after SettleTimeout", func(t *testing.T) {
		h := redfishHardware()
		h.SettleTimeout = 300 * time.Millisecond
		start := time.Now()
		got, err := h.SetPower(ctx, node("stuck", nil), inventory.PowerOn)
		if err == nil || got != inventory.PowerOff || !strings.Contains(err.Error(), "still") {
			t.Errorf("SetPower of a machine that stays off = %q, %v; want power off and an error", got, err)
		}
		if took := time.Since(start); took < h.SettleTimeout {
			t.Errorf("gave up after %v, before SettleTimeout", took)
		}
	})

	t.Run("stops when the caller's context ends", func(t *testing.T) {
		h := redfishHardware()
		h.SettleTimeout = time.Hour
		cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer ccancel()
		_, err := h.SetPower(cctx, node("stuck", nil), inventory.PowerOn)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("SetPower = %v, want the caller's deadline", err)
		}
	})
}

func TestHardwareSetBootDevice(t *testing.T) {
	sim := labbmc.NewSim(labbmc.Hardware{})
	node := redfishBMC(t, map[string]labbmc.Machine{"n1": sim})
	h := redfishHardware()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name       string
		bootMode   string
		caps       any
		device     string
		persistent bool
		want       labbmc.BootConfig
	}{
		{name: "boot_mode uefi", bootMode: "uefi", device: conductor.BootPXE, want: labbmc.BootConfig{Device: labbmc.BootPXE, UEFI: true}},
		{name: "boot_mode bios", bootMode: "bios", device: conductor.BootPXE, want: labbmc.BootConfig{Device: labbmc.BootPXE}},
		{name: "capability uefi", caps: "cpu_vt:true,boot_mode:uefi", device: conductor.BootDisk, persistent: true, want: labbmc.BootConfig{Device: labbmc.BootDisk, Persistent: true, UEFI: true}},
		{name: "capability with spaces", caps: " boot_mode : uefi ", device: conductor.BootPXE, want: labbmc.BootConfig{Device: labbmc.BootPXE, UEFI: true}},
		{name: "capability bios", caps: "boot_mode:bios", device: conductor.BootCDROM, want: labbmc.BootConfig{Device: labbmc.BootCDROM}},
		{name: "boot_mode wins over the capability", bootMode: "bios", caps: "boot_mode:uefi", device: conductor.BootPXE, want: labbmc.BootConfig{Device: labbmc.BootPXE}},
		{name: "neither: legacy", device: conductor.BootBIOS, persistent: true, want: labbmc.BootConfig{Device: labbmc.BootBIOS, Persistent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := node("n1", func(n *inventory.Node) {
				n.BootMode = tc.bootMode
				if tc.caps != nil {
					n.Properties["capabilities"] = tc.caps
				}
			})
			if err := h.SetBootDevice(ctx, n, tc.device, tc.persistent); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, sim.Boot()); diff != "" {
				t.Errorf("boot override (-want +got):\n%s", diff)
			}
		})
	}
	if err := h.SetBootDevice(ctx, node("n1", nil), "usb", false); !errors.Is(err, bmc.ErrRefused) {
		t.Errorf("SetBootDevice(usb) = %v, want ErrRefused", err)
	}
	if got, want := h.BootDevices(), []string{"pxe", "disk", "cdrom", "bios", "safe"}; !slices.Equal(got, want) {
		t.Errorf("BootDevices() = %v, want %v", got, want)
	}
}

func TestHardwarePhases(t *testing.T) {
	sim := labbmc.NewSim(labbmc.Hardware{})
	node := redfishBMC(t, map[string]labbmc.Machine{"n1": sim})
	h := redfishHardware()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n := node("n1", nil)

	if err := sim.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Phase(ctx, n, conductor.PhaseTearDown); err != nil {
		t.Fatalf("tear down: %v", err)
	}
	if poweredOn(t, sim) {
		t.Error("tear down left the machine on")
	}
	if err := h.Phase(ctx, n, conductor.PhaseAdopt); err != nil {
		t.Errorf("adopt: %v", err)
	}
	bad := node("n1", func(n *inventory.Node) { n.DriverInfo["redfish_password"] = "nope-nope" })
	for _, p := range []conductor.Phase{conductor.PhaseTearDown, conductor.PhaseAdopt} {
		if err := h.Phase(ctx, bad, p); !errors.Is(err, bmc.ErrRefused) {
			t.Errorf("%s with a wrong password: %v", p, err)
		}
	}
	for _, p := range []conductor.Phase{conductor.PhaseRescue, conductor.PhaseUnrescue, conductor.PhaseService} {
		err := h.Phase(ctx, n, p)
		if !errors.Is(err, conductor.ErrAgentRequired) || !strings.Contains(err.Error(), n.UUID) {
			t.Errorf("%s: %v, want ErrAgentRequired naming the node", p, err)
		}
	}
	if err := h.Phase(ctx, n, conductor.PhaseDeploy); err == nil || !strings.Contains(err.Error(), "instance_info.image_source") {
		t.Errorf("deploy without an image: %v", err)
	}
	if got := fmt.Sprint(sim.Boots()); got != "[disk]" {
		t.Errorf("the machine booted %s, want once, from its disk, before the tear down", got)
	}
	// Inspection and cleaning boot the ramdisk: PXE once, from off or by
	// a reboot, and then wait for the agent.
	for _, p := range []conductor.Phase{conductor.PhaseInspect, conductor.PhaseClean} {
		if err := h.Phase(ctx, n, p); !errors.Is(err, conductor.ErrWaitAgent) {
			t.Errorf("%s: %v, want ErrWaitAgent", p, err)
		}
		if !poweredOn(t, sim) {
			t.Error("inspect left the machine off")
		}
	}
	if got := fmt.Sprint(sim.Boots()); got != "[disk pxe pxe]" {
		t.Errorf("the machine booted %s, want from PXE twice after its disk", got)
	}
}
