package redfish

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/stratacloud/strata/lab/bmc"
)

// connectGofish logs in to the Server's main address with a session,
// trusting its certificate.
func connectGofish(t *testing.T, ctx context.Context, ts *testServer, basicAuth bool) *gofish.APIClient {
	t.Helper()
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.CertPool()}},
	}
	c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{
		Endpoint:   "https://" + ts.Addr().String(),
		Username:   testUser,
		Password:   testPassword,
		HTTPClient: hc,
		BasicAuth:  basicAuth,
	})
	if err != nil {
		t.Fatalf("gofish connect: %v", err)
	}
	return c
}

// TestGofish reads the inventory of many systems through gofish with a
// session, drives one, and logs out.
func TestGofish(t *testing.T) {
	ts := newTestServer(t, 4, nil)
	ts.start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := connectGofish(t, ctx, ts, false)
	svc := c.GetService()
	if svc.RedfishVersion != RedfishVersion || svc.UUID != testUUID {
		t.Errorf("service root: version %q, UUID %q", svc.RedfishVersion, svc.UUID)
	}
	sess, err := c.GetSession()
	if err != nil || !strings.HasPrefix(sess.ID, sessionsPath+"/") || sess.Token == "" {
		t.Fatalf("session %+v, %v", sess, err)
	}
	sessions, err := svc.Sessions()
	if err != nil || len(sessions) != 1 || sessions[0].UserName != testUser {
		t.Errorf("sessions %v, %v", sessions, err)
	}

	systems, err := svc.Systems()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sys := range systems {
		ids = append(ids, sys.ID)
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"node-0", "node-1", "node-2", "node-3"}, ids); diff != "" {
		t.Errorf("systems (-want +got):\n%s", diff)
	}
	for _, sys := range systems {
		hw := ts.sims[sys.ID].Hardware()
		checkGofishSystem(t, sys, hw)
	}

	// Drive one system: boot PXE once in UEFI, then power on.
	sys, err := redfish.GetComputerSystem(c, systemPath("node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.SetBoot(redfish.Boot{
		BootSourceOverrideTarget:  redfish.PxeBootSourceOverrideTarget,
		BootSourceOverrideEnabled: redfish.OnceBootSourceOverrideEnabled,
		BootSourceOverrideMode:    redfish.UEFIBootSourceOverrideMode,
	}); err != nil {
		t.Fatalf("SetBoot: %v", err)
	}
	sim := ts.sims["node-2"]
	if diff := cmp.Diff(bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, sim.Boot()); diff != "" {
		t.Errorf("boot (-want +got):\n%s", diff)
	}
	// gofish sent the ETag it had read; the change made it stale.
	err = sys.SetBoot(redfish.Boot{BootSourceOverrideTarget: redfish.HddBootSourceOverrideTarget})
	if err == nil || !strings.Contains(err.Error(), "412") {
		t.Errorf("SetBoot with a stale ETag: %v", err)
	}
	if err := sys.Reset(redfish.OnResetType); err != nil {
		t.Fatalf("Reset On: %v", err)
	}
	if diff := cmp.Diff([]string{bmc.BootPXE}, sim.Boots()); diff != "" {
		t.Errorf("boots (-want +got):\n%s", diff)
	}
	if err := sys.Reset(redfish.NmiResetType); err == nil {
		t.Errorf("Reset Nmi accepted")
	}
	sys, err = redfish.GetComputerSystem(c, systemPath("node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if sys.PowerState != redfish.OnPowerState || sys.Boot.BootSourceOverrideTarget != redfish.NoneBootSourceOverrideTarget {
		t.Errorf("after boot: power %q, boot %+v", sys.PowerState, sys.Boot)
	}
	// The other systems are untouched.
	for id, s := range ts.sims {
		if on, _ := s.PoweredOn(ctx); on != (id == "node-2") {
			t.Errorf("%s powered on: %v", id, on)
		}
	}

	// An error comes back as a Redfish error.
	_, err = redfish.GetComputerSystem(c, systemPath("nope"))
	if err == nil || !strings.Contains(err.Error(), "Base.1.16.ResourceNotFound") {
		t.Errorf("unknown system: %v", err)
	}

	c.Logout()
	if ids := ts.sessions.list(""); len(ids) != 0 {
		t.Errorf("sessions after logout: %v", ids)
	}
}

func checkGofishSystem(t *testing.T, sys *redfish.ComputerSystem, hw bmc.Hardware) {
	t.Helper()
	if sys.UUID != hw.UUID || sys.Manufacturer != hw.Manufacturer || sys.Model != hw.Model || sys.SerialNumber != hw.Serial {
		t.Errorf("%s: identity %q %q %q %q", sys.ID, sys.UUID, sys.Manufacturer, sys.Model, sys.SerialNumber)
	}
	if sys.PowerState != redfish.OffPowerState {
		t.Errorf("%s: power %q", sys.ID, sys.PowerState)
	}
	if sys.ProcessorSummary.Count != hw.CPUs || sys.ProcessorSummary.Model != hw.CPUModel {
		t.Errorf("%s: processors %+v", sys.ID, sys.ProcessorSummary)
	}
	if got, want := sys.MemorySummary.TotalSystemMemoryGiB, float32(hw.MemoryMiB)/1024; got != want {
		t.Errorf("%s: memory %v GiB, want %v", sys.ID, got, want)
	}
	if want := redfish.ResetType("PushPowerButton"); !slices.Contains(sys.SupportedResetTypes, want) || slices.Contains(sys.SupportedResetTypes, redfish.NmiResetType) {
		t.Errorf("%s: reset types %v", sys.ID, sys.SupportedResetTypes)
	}

	nics, err := sys.EthernetInterfaces()
	if err != nil {
		t.Fatalf("%s: EthernetInterfaces: %v", sys.ID, err)
	}
	var macs, wantMACs []string
	for _, n := range nics {
		macs = append(macs, n.MACAddress)
	}
	for _, n := range hw.NICs {
		wantMACs = append(wantMACs, strings.ToLower(n.MAC))
	}
	slices.Sort(macs)
	if diff := cmp.Diff(wantMACs, macs); diff != "" {
		t.Errorf("%s: MACs (-want +got):\n%s", sys.ID, diff)
	}

	storages, err := sys.SimpleStorages()
	if err != nil || len(storages) != 1 {
		t.Fatalf("%s: SimpleStorages: %v, %v", sys.ID, storages, err)
	}
	devs := storages[0].Devices
	if len(devs) != len(hw.Disks) || devs[0].CapacityBytes != hw.Disks[0].SizeBytes || devs[0].Name != hw.Disks[0].Name {
		t.Errorf("%s: devices %+v", sys.ID, devs)
	}

	procs, err := sys.Processors()
	if err != nil || len(procs) != hw.CPUs {
		t.Errorf("%s: processors %d, %v", sys.ID, len(procs), err)
	}

	managers, err := sys.ManagedBy()
	if err != nil || len(managers) != 1 || managers[0].ID != sys.ID || managers[0].ManagerType != redfish.BMCManagerType {
		t.Errorf("%s: managers %v, %v", sys.ID, managers, err)
	}
	// gofish has no accessor for Links.Chassis; the chassis has the system's id.
	chassis, err := redfish.GetChassis(sys.GetClient(), chassisPath(sys.ID))
	if err != nil || chassis.PowerState != redfish.OffPowerState || chassis.SerialNumber != hw.Serial {
		t.Errorf("%s: chassis %+v, %v", sys.ID, chassis, err)
	}
}

// TestGofishBasicAuth: gofish without a session, HTTP Basic on every
// request.
func TestGofishBasicAuth(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	ts.start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := connectGofish(t, ctx, ts, true)
	systems, err := c.GetService().Systems()
	if err != nil || len(systems) != 1 {
		t.Fatalf("systems %v, %v", systems, err)
	}
	if err := systems[0].Reset(redfish.ForceRestartResetType); err != nil {
		t.Fatal(err)
	}
	if on, _ := ts.sims["node-0"].PoweredOn(ctx); !on {
		t.Errorf("not on")
	}
	if ids := ts.sessions.list(""); len(ids) != 0 {
		t.Errorf("sessions %v", ids)
	}
}
