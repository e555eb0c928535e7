package ipmi

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/lab/bmc"
)

// TestBmclib drives the BMC with bmclib v2's ipmitool provider, the way
// the undercloud's conductor does.
func TestBmclib(t *testing.T) {
	ipmitoolPath(t)
	tb := newBMC(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	cl := bmclib.NewClient("127.0.0.1", testUser, testPassword,
		bmclib.WithIpmitoolPort(strconv.Itoa(int(tb.srv.Addr().Port()))))
	cl.Registry.Drivers = cl.Registry.For("ipmitool")
	if err := cl.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	defer cl.Close(ctx)

	state := func() string {
		t.Helper()
		s, err := cl.GetPowerState(ctx)
		if err != nil {
			t.Fatalf("power state: %v", err)
		}
		return strings.TrimSpace(s)
	}
	if got := state(); got != "Chassis Power is off" {
		t.Errorf("power state %q", got)
	}

	if ok, err := cl.SetBootDevice(ctx, "pxe", false, true); !ok || err != nil {
		t.Fatalf("boot device pxe: %v %v", ok, err)
	}
	if diff := cmp.Diff(bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, tb.sim.Boot()); diff != "" {
		t.Errorf("boot override (-want +got):\n%s", diff)
	}

	if ok, err := cl.SetPowerState(ctx, "on"); !ok || err != nil {
		t.Fatalf("power on: %v %v", ok, err)
	}
	if got := state(); got != "Chassis Power is on" {
		t.Errorf("power state %q", got)
	}
	if diff := cmp.Diff([]string{bmc.BootPXE}, tb.sim.Boots()); diff != "" {
		t.Errorf("boots (-want +got):\n%s", diff)
	}

	if ok, err := cl.SetBootDevice(ctx, "disk", true, false); !ok || err != nil {
		t.Fatalf("boot device disk: %v %v", ok, err)
	}
	if ok, err := cl.SetPowerState(ctx, "cycle"); !ok || err != nil {
		t.Fatalf("power cycle: %v %v", ok, err)
	}
	if diff := cmp.Diff([]string{bmc.BootPXE, bmc.BootDisk}, tb.sim.Boots()); diff != "" {
		t.Errorf("boots (-want +got):\n%s", diff)
	}

	if ok, err := cl.SetPowerState(ctx, "off"); !ok || err != nil {
		t.Fatalf("power off: %v %v", ok, err)
	}
	if on, _ := tb.sim.PoweredOn(ctx); on {
		t.Error("the machine is on")
	}
	if got := state(); got != "Chassis Power is off" {
		t.Errorf("power state %q", got)
	}

	// Wrong credentials: bmclib finds no compatible provider.
	bad := bmclib.NewClient("127.0.0.1", testUser, "wrong-password",
		bmclib.WithIpmitoolPort(strconv.Itoa(int(tb.srv.Addr().Port()))))
	bad.Registry.Drivers = bad.Registry.For("ipmitool")
	if err := bad.Open(ctx); err == nil {
		bad.Close(ctx)
		t.Error("open with a wrong password succeeded")
	}
}
