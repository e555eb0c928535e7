package redfish

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	bmclibbmc "github.com/bmc-toolbox/bmclib/v2/bmc"
	"github.com/bmc-toolbox/common"
	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/lab/bmc"
)

// newBmclib returns a bmclib client of the redfish provider alone (gofish),
// trusting the Server's certificate, opened against port on loopback.
func newBmclib(t *testing.T, ctx context.Context, ts *testServer, port uint16) *bmclib.Client {
	t.Helper()
	cl := bmclib.NewClient("127.0.0.1", testUser, testPassword,
		bmclib.WithRedfishPort(strconv.Itoa(int(port))),
		bmclib.WithSecureTLS(ts.CertPool()))
	cl.Registry.Drivers = cl.Registry.For("gofish")
	if err := cl.Open(ctx); err != nil {
		t.Fatalf("bmclib Open: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			t.Errorf("bmclib Close: %v", err)
		}
	})
	return cl
}

// TestBmclib drives nodes through bmclib's redfish provider, the way the
// undercloud's BMC layer does. bmclib acts on every system a BMC lists, so
// each node is exposed as a BMC of its own, all served by one Server.
func TestBmclib(t *testing.T) {
	ts := newTestServer(t, 3, nil)
	ts.start(t)
	ports := map[string]uint16{}
	for id := range ts.sims {
		ap, err := ts.Expose(id, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[id] = ap.Port()
	}

	t.Run("group", func(t *testing.T) {
		for id, sim := range ts.sims {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
				defer cancel()
				cl := newBmclib(t, ctx, ts, ports[id])
				exerciseBmclib(t, ctx, cl, sim)
				if _, err := cl.GetPowerState(ctx); err != nil {
					t.Fatal(err)
				}
				if m := cl.GetMetadata(); m.SuccessfulProvider != "gofish" {
					t.Errorf("provider %q", m.SuccessfulProvider)
				}
			})
		}
	})

	// Each node saw its own operations only.
	for id, sim := range ts.sims {
		if diff := cmp.Diff([]string{bmc.BootPXE, bmc.BootDisk, bmc.BootDisk, bmc.BootDisk}, sim.Boots()); diff != "" {
			t.Errorf("%s boots (-want +got):\n%s", id, diff)
		}
	}
	// bmclib logs out: no session is left open.
	for id := range ts.sims {
		if ids := ts.sessions.list(id); len(ids) != 0 {
			t.Errorf("%s: sessions left: %v", id, ids)
		}
	}
}

// exerciseBmclib runs bmclib's power and boot calls against one machine,
// checking the machine after each.
func exerciseBmclib(t *testing.T, ctx context.Context, cl *bmclib.Client, sim *bmc.Sim) {
	wantMachine := func(step string, on bool, boot bmc.BootConfig) {
		t.Helper()
		if got, _ := sim.PoweredOn(ctx); got != on {
			t.Errorf("%s: powered on %v, want %v", step, got, on)
		}
		if diff := cmp.Diff(boot, sim.Boot()); diff != "" {
			t.Errorf("%s: boot override (-want +got):\n%s", step, diff)
		}
	}
	wantPower := func(step, want string) {
		t.Helper()
		got, err := cl.GetPowerState(ctx)
		if err != nil || got != want {
			t.Errorf("%s: GetPowerState = %q, %v; want %q", step, got, err, want)
		}
	}
	wantOverride := func(step string, want bmclibbmc.BootDeviceOverride) {
		t.Helper()
		got, err := cl.GetBootDeviceOverride(ctx)
		if err != nil {
			t.Errorf("%s: GetBootDeviceOverride: %v", step, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: GetBootDeviceOverride (-want +got):\n%s", step, diff)
		}
	}
	must := func(step string, ok bool, err error) {
		t.Helper()
		if err != nil || !ok {
			t.Fatalf("%s: ok %v, err %v", step, ok, err)
		}
	}

	wantPower("start", "Off")

	// Inspection and deployment: PXE, once, UEFI; then power on.
	ok, err := cl.SetBootDevice(ctx, "pxe", false, true)
	must("SetBootDevice pxe", ok, err)
	wantMachine("SetBootDevice pxe", false, bmc.BootConfig{Device: bmc.BootPXE, UEFI: true})
	wantOverride("pxe", bmclibbmc.BootDeviceOverride{Device: bmclibbmc.BootDeviceTypePXE, IsEFIBoot: true})

	ok, err = cl.SetPowerState(ctx, "on")
	must("SetPowerState on", ok, err)
	// The boot consumed the one-time override.
	wantMachine("on", true, bmc.BootConfig{UEFI: true})
	wantPower("on", "On")
	wantOverride("after boot", bmclibbmc.BootDeviceOverride{Device: bmclibbmc.BootDeviceTypeNone, IsEFIBoot: true})

	// On when on changes nothing.
	ok, err = cl.SetPowerState(ctx, "on")
	must("SetPowerState on again", ok, err)

	// After deployment: boot from disk, persistently, legacy.
	ok, err = cl.SetBootDevice(ctx, "disk", true, false)
	must("SetBootDevice disk", ok, err)
	wantMachine("SetBootDevice disk", true, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})
	wantOverride("disk", bmclibbmc.BootDeviceOverride{Device: bmclibbmc.BootDeviceTypeDisk, IsPersistent: true})

	// "cycle" is a ForceRestart.
	ok, err = cl.SetPowerState(ctx, "cycle")
	must("SetPowerState cycle", ok, err)
	wantMachine("cycle", true, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})

	// "soft" is a GracefulShutdown. bmclib v2.3.3's redfish provider
	// answers ok=false after it (SystemPowerOff returns false, nil), so
	// bmclib reports a failure although the BMC did it.
	_, err = cl.SetPowerState(ctx, "soft")
	t.Logf("SetPowerState soft: %v", err)
	wantMachine("soft", false, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})
	wantPower("soft", "Off")

	// "reset" is a PowerCycle: it starts a stopped machine.
	ok, err = cl.SetPowerState(ctx, "reset")
	must("SetPowerState reset", ok, err)
	wantMachine("reset", true, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})

	ok, err = cl.SetPowerState(ctx, "off")
	must("SetPowerState off", ok, err)
	wantMachine("off", false, bmc.BootConfig{Device: bmc.BootDisk, Persistent: true})
	wantPower("off", "Off")

	// Off when off changes nothing.
	ok, err = cl.SetPowerState(ctx, "off")
	must("SetPowerState off again", ok, err)

	ok, err = cl.SetPowerState(ctx, "on")
	must("SetPowerState on at last", ok, err)

	// The BMC resets itself.
	ok, err = cl.ResetBMC(ctx, "GracefulRestart")
	must("ResetBMC", ok, err)

	// Nmi is refused with a clear error.
	if err := cl.SendNMI(ctx); err == nil {
		t.Errorf("SendNMI succeeded")
	}
}

// TestBmclibInventory reads a node's inventory through bmclib. bmclib
// reads only systems, chassis and managers with the ids of known vendors,
// so this BMC names its one system "1", as a Supermicro does.
func TestBmclibInventory(t *testing.T) {
	ts := newTestServer(t, 0, func(c *Config) {
		c.Systems = map[string]bmc.Machine{"1": bmc.NewSim(testHardware(7))}
	})
	ts.start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// bmclib checks the certificate: one that trusts another refuses.
	other := newTestServer(t, 0, nil)
	untrusting := bmclib.NewClient("127.0.0.1", testUser, testPassword,
		bmclib.WithRedfishPort(strconv.Itoa(int(ts.Addr().Port()))),
		bmclib.WithSecureTLS(other.CertPool()))
	untrusting.Registry.Drivers = untrusting.Registry.For("gofish")
	if err := untrusting.Open(ctx); err == nil {
		untrusting.Close(ctx)
		t.Errorf("bmclib accepted an untrusted certificate")
	}

	cl := newBmclib(t, ctx, ts, ts.Addr().Port())
	dev, err := cl.Inventory(ctx)
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	hw := testHardware(7)
	if dev.Vendor != "QEMU" || dev.Model != hw.Model || dev.Serial != hw.Serial {
		t.Errorf("vendor %q, model %q, serial %q", dev.Vendor, dev.Model, dev.Serial)
	}
	if len(dev.CPUs) != hw.CPUs {
		t.Errorf("%d CPUs, want %d", len(dev.CPUs), hw.CPUs)
	}
	for _, c := range dev.CPUs {
		if c.Model != hw.CPUModel || c.Architecture != "x86" || c.Cores != 1 {
			t.Errorf("CPU %+v", c)
		}
	}
	var mem int64
	for _, m := range dev.Memory {
		mem += m.SizeBytes
	}
	if want := int64(hw.MemoryMiB) << 20; mem != want {
		t.Errorf("memory %d bytes, want %d", mem, want)
	}
	if len(dev.Drives) != 1 || dev.Drives[0].CapacityBytes != hw.Disks[0].SizeBytes || dev.Drives[0].Serial != hw.Disks[0].Serial {
		t.Errorf("drives %+v", dev.Drives)
	}
	if dev.BMC == nil || dev.BMC.ID != "1" || dev.BMC.Firmware.Installed != "1.0.0" {
		t.Errorf("BMC %+v", dev.BMC)
	}
	if len(dev.Enclosures) != 1 || !slices.ContainsFunc(dev.Enclosures, func(e *common.Enclosure) bool { return e.Serial == hw.Serial }) {
		t.Errorf("enclosures %+v", dev.Enclosures)
	}
}
