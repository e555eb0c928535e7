package bmc_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
	labbmc "github.com/stratacloud/strata/lab/bmc"
	redfishbmc "github.com/stratacloud/strata/lab/bmc/redfish"
	"github.com/stratacloud/strata/undercloud/bmc"
)

// These tests drive the Redfish client, through bmc.Pool and gofish,
// against the lab's Redfish BMC serving several in-memory machines.

const (
	rfUser     = "root"
	rfPassword = "redfish-Passw0rd"
)

// redfishLab is a Redfish service over HTTPS on loopback for a set of Sims.
type redfishLab struct {
	srv  *redfishbmc.Server
	sims map[string]*labbmc.Sim
	// url is the service's base URL, https://127.0.0.1:port.
	url string
	// caFile holds the service's certificate, PEM-encoded.
	caFile string
}

// startRedfish serves a Sim per id until the test ends.
func startRedfish(t *testing.T, ids ...string) *redfishLab {
	t.Helper()
	lab := &redfishLab{sims: map[string]*labbmc.Sim{}}
	systems := map[string]labbmc.Machine{}
	for i, id := range ids {
		lab.sims[id] = labbmc.NewSim(labbmc.Hardware{UUID: fmt.Sprintf("6a1d2f3e-0000-4000-8000-%012d", i), Firmware: "uefi"})
		systems[id] = lab.sims[id]
	}
	srv, err := redfishbmc.New(redfishbmc.Config{Username: rfUser, Password: rfPassword, Systems: systems})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close the Redfish BMC: %v", err)
		}
	})
	lab.srv = srv
	lab.url = "https://" + srv.Addr().String()
	lab.caFile = filepath.Join(t.TempDir(), "bmc-ca.pem")
	if err := os.WriteFile(lab.caFile, srv.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return lab
}

// node is a redfish node for system id; mod changes its driver_info.
func (l *redfishLab) node(id string, mod func(di map[string]any)) *inventory.Node {
	di := map[string]any{
		"redfish_address":   l.url,
		"redfish_system_id": "/redfish/v1/Systems/" + id,
		"redfish_username":  rfUser,
		"redfish_password":  rfPassword,
		"redfish_verify_ca": l.caFile,
	}
	if mod != nil {
		mod(di)
	}
	return &inventory.Node{UUID: "node-" + id, Driver: inventory.DriverRedfish, DriverInfo: di}
}

// checkSessions verifies that every operation logged out: the service
// holds no session.
func (l *redfishLab) checkSessions(t *testing.T) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.srv.CertPool()}}}
	req, err := http.NewRequest(http.MethodGet, l.url+"/redfish/v1/SessionService/Sessions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(rfUser, rfPassword)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sessions struct {
		Members []struct {
			ID string `json:"@odata.id"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&sessions); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sessions: %s, %v", resp.Status, err)
	}
	if len(sessions.Members) != 0 {
		t.Errorf("sessions left open: %v", sessions.Members)
	}
}

// redfishPool is a Pool for a BMC on loopback.
func redfishPool() *bmc.Pool {
	return &bmc.Pool{Timeout: 20 * time.Second, Attempts: 2, Backoff: 50 * time.Millisecond}
}

// machineState is what a test checks of a Sim.
type machineState struct {
	On    bool
	Boot  labbmc.BootConfig
	Boots []string
}

func stateOf(t *testing.T, s *labbmc.Sim) machineState {
	t.Helper()
	on, err := s.PoweredOn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return machineState{On: on, Boot: s.Boot(), Boots: s.Boots()}
}

// checkMachines compares every Sim of the lab with want (missing ones:
// untouched).
func (l *redfishLab) checkMachines(t *testing.T, step string, want map[string]machineState) {
	t.Helper()
	for id, s := range l.sims {
		if diff := cmp.Diff(want[id], stateOf(t, s)); diff != "" {
			t.Errorf("%s: machine %s (-want +got):\n%s", step, id, diff)
		}
	}
}

func TestRedfishPower(t *testing.T) {
	lab := startRedfish(t, "node-0", "node-1", "node-2")
	pool := redfishPool()
	a := access(t, lab.node("node-1", nil))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	wantPower(ctx, t, pool, a, inventory.PowerOff)
	steps := []struct {
		target    string
		wantPower string
		want      machineState
	}{
		{inventory.PowerOn, inventory.PowerOn, machineState{On: true, Boots: []string{"disk"}}},
		// Already on: no second boot.
		{inventory.PowerOn, inventory.PowerOn, machineState{On: true, Boots: []string{"disk"}}},
		{inventory.Rebooting, inventory.PowerOn, machineState{On: true, Boots: []string{"disk", "disk"}}},
		{inventory.SoftRebooting, inventory.PowerOn, machineState{On: true, Boots: []string{"disk", "disk", "disk"}}},
		{inventory.PowerOff, inventory.PowerOff, machineState{Boots: []string{"disk", "disk", "disk"}}},
		{inventory.PowerOff, inventory.PowerOff, machineState{Boots: []string{"disk", "disk", "disk"}}},
		// A reboot of a machine that is off starts it.
		{inventory.Rebooting, inventory.PowerOn, machineState{On: true, Boots: []string{"disk", "disk", "disk", "disk"}}},
		{inventory.SoftPowerOff, inventory.PowerOff, machineState{Boots: []string{"disk", "disk", "disk", "disk"}}},
		{inventory.SoftPowerOff, inventory.PowerOff, machineState{Boots: []string{"disk", "disk", "disk", "disk"}}},
		{inventory.SoftRebooting, inventory.PowerOn, machineState{On: true, Boots: []string{"disk", "disk", "disk", "disk", "disk"}}},
	}
	for i, step := range steps {
		name := fmt.Sprintf("step %d, %s", i, step.target)
		setPower(ctx, t, pool, a, step.target)
		wantPower(ctx, t, pool, a, step.wantPower)
		lab.checkMachines(t, name, map[string]machineState{"node-1": step.want})
	}

	err := pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, "hibernate") })
	if !errors.Is(err, bmc.ErrRefused) {
		t.Errorf("power target hibernate: %v, want ErrRefused", err)
	}
	lab.checkSessions(t)
}

func TestRedfishBootDevice(t *testing.T) {
	lab := startRedfish(t, "node-0", "node-1", "node-2")
	pool := redfishPool()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	n0, n2 := access(t, lab.node("node-0", nil)), access(t, lab.node("node-2", nil))
	setBoot(ctx, t, pool, n2, "pxe", false, true)
	want := map[string]machineState{"node-2": {Boot: labbmc.BootConfig{Device: labbmc.BootPXE, UEFI: true}}}
	lab.checkMachines(t, "pxe once in UEFI mode", want)

	setBoot(ctx, t, pool, n0, "disk", true, false)
	want["node-0"] = machineState{Boot: labbmc.BootConfig{Device: labbmc.BootDisk, Persistent: true}}
	lab.checkMachines(t, "disk always in legacy mode", want)

	// The override takes: node-2 boots from the network once, node-0
	// from its disk every time.
	setPower(ctx, t, pool, n2, inventory.PowerOn)
	setPower(ctx, t, pool, n0, inventory.PowerOn)
	setPower(ctx, t, pool, n0, inventory.Rebooting)
	want["node-2"] = machineState{On: true, Boot: labbmc.BootConfig{UEFI: true}, Boots: []string{"pxe"}}
	want["node-0"] = machineState{On: true, Boot: labbmc.BootConfig{Device: labbmc.BootDisk, Persistent: true}, Boots: []string{"disk", "disk"}}
	lab.checkMachines(t, "after booting", want)

	for _, dev := range []string{"cdrom", "bios"} {
		setBoot(ctx, t, pool, n2, dev, false, false)
	}
	want["node-2"] = machineState{On: true, Boot: labbmc.BootConfig{Device: labbmc.BootBIOS}, Boots: []string{"pxe"}}
	lab.checkMachines(t, "bios setup", want)

	err := pool.Do(ctx, n2, func(ctx context.Context, c bmc.Client) error { return c.SetBootDevice(ctx, "floppy", false, false) })
	if !errors.Is(err, bmc.ErrRefused) {
		t.Errorf("boot device floppy: %v, want ErrRefused", err)
	}
	lab.checkMachines(t, "after a refused device", want)
	lab.checkSessions(t)
}

func TestRedfishVerifyCA(t *testing.T) {
	lab := startRedfish(t, "node-0")
	other := startRedfish(t, "node-0") // another certificate
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name     string
		verifyCA any
		wantErr  error
	}{
		{name: "the BMC's CA", verifyCA: lab.caFile},
		{name: "verification off", verifyCA: false},
		{name: "verification off, as a string", verifyCA: "False"},
		{name: "the system's roots", verifyCA: true, wantErr: bmc.ErrUnreachable},
		{name: "default: the system's roots", verifyCA: nil, wantErr: bmc.ErrUnreachable},
		{name: "another CA", verifyCA: other.caFile, wantErr: bmc.ErrUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := access(t, lab.node("node-0", func(di map[string]any) {
				if tc.verifyCA == nil {
					delete(di, "redfish_verify_ca")
				} else {
					di["redfish_verify_ca"] = tc.verifyCA
				}
			}))
			err := redfishPool().Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
				_, err := c.PowerState(ctx)
				return err
			})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("power state: %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error %q does not say it is the certificate", err)
			}
		})
	}
	lab.checkSessions(t)
}

// TestRedfishRefusals covers requests the service turns down: none is
// retried (the Pool's backoff is longer than the test's deadline), and
// none touches a machine.
func TestRedfishRefusals(t *testing.T) {
	lab := startRedfish(t, "node-0", "node-1", "node-2")
	exposed, err := lab.srv.Expose("node-2", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "Wr0ng-redfish-pw"
	for _, tc := range []struct {
		name    string
		node    *inventory.Node
		wantErr []string // in the message
	}{
		{
			name:    "unknown system",
			node:    lab.node("node-9", nil),
			wantErr: []string{"no system /redfish/v1/Systems/node-9"},
		},
		{
			name:    "wrong password",
			node:    lab.node("node-1", func(di map[string]any) { di["redfish_password"] = wrong }),
			wantErr: []string{"log in"},
		},
		{
			name:    "wrong user",
			node:    lab.node("node-1", func(di map[string]any) { di["redfish_username"] = "admin" }),
			wantErr: []string{"log in"},
		},
		{
			name:    "several systems and no system id",
			node:    lab.node("", func(di map[string]any) { delete(di, "redfish_system_id") }),
			wantErr: []string{"has 3 systems", "redfish_system_id"},
		},
		{
			name: "a BMC of one system, which is not the one named",
			node: lab.node("node-1", func(di map[string]any) {
				di["redfish_address"] = "https://" + exposed.String()
			}),
			wantErr: []string{"no system /redfish/v1/Systems/node-1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := &bmc.Pool{Timeout: 20 * time.Second, Attempts: 3, Backoff: time.Hour}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			a := access(t, tc.node)
			for _, op := range []func(context.Context, bmc.Client) error{
				func(ctx context.Context, c bmc.Client) error { _, err := c.PowerState(ctx); return err },
				func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, inventory.PowerOn) },
				func(ctx context.Context, c bmc.Client) error { return c.SetBootDevice(ctx, "pxe", false, true) },
			} {
				err := pool.Do(ctx, a, op)
				if !errors.Is(err, bmc.ErrRefused) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%v: want ErrRefused at the first attempt", err)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), rfPassword) {
					t.Errorf("the error gives a password away: %v", err)
				}
			}
		})
	}
	lab.checkMachines(t, "after refusals", nil)
	lab.checkSessions(t)
}

// TestRedfishOneSystem drives a BMC of one system without a system id.
func TestRedfishOneSystem(t *testing.T) {
	lab := startRedfish(t, "node-0", "node-1")
	exposed, err := lab.srv.Expose("node-1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := access(t, lab.node("", func(di map[string]any) {
		di["redfish_address"] = exposed.String() // https assumed
		delete(di, "redfish_system_id")
	}))
	pool := redfishPool()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	setBoot(ctx, t, pool, a, "pxe", false, false)
	setPower(ctx, t, pool, a, inventory.PowerOn)
	wantPower(ctx, t, pool, a, inventory.PowerOn)
	lab.checkMachines(t, "the only system", map[string]machineState{"node-1": {On: true, Boots: []string{"pxe"}}})
}

func TestRedfishUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	a := access(t, &inventory.Node{Driver: inventory.DriverRedfish, DriverInfo: map[string]any{
		"redfish_address": addr, "redfish_system_id": "/redfish/v1/Systems/1",
		"redfish_username": rfUser, "redfish_password": rfPassword,
	}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = redfishPool().Do(ctx, a, func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, inventory.PowerOn) })
	if !errors.Is(err, bmc.ErrUnreachable) || strings.Contains(err.Error(), rfPassword) {
		t.Errorf("%v: want ErrUnreachable without the password", err)
	}
}
