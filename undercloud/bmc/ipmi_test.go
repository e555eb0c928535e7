package bmc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/bmc"
)

// These tests drive the IPMI client, through bmc.Pool, bmclib's ipmitool
// provider and the real ipmitool, against OpenIPMI's ipmi_sim.

// ipmiPool is a Pool for a BMC on loopback: quick retries, and attempts
// long enough for a loaded machine. ipmitool is run through a wrapper that
// records its arguments (see ipmitoolWrapper).
func ipmiPool(t *testing.T) (*bmc.Pool, *ipmitoolLog) {
	tool, log := ipmitoolWrapper(t)
	return &bmc.Pool{IPMITool: tool, Timeout: 20 * time.Second, Attempts: 2, Backoff: 100 * time.Millisecond}, log
}

// ipmiNode is a node whose driver_info points at the simulator.
func ipmiNode(s *ipmiSim, password string) *inventory.Node {
	return &inventory.Node{UUID: "ipmi-node", Driver: inventory.DriverIPMI, DriverInfo: map[string]any{
		"ipmi_address":  s.cfg.Host,
		"ipmi_port":     float64(s.Port),
		"ipmi_username": s.cfg.Username,
		"ipmi_password": password,
	}}
}

func TestIPMIPower(t *testing.T) {
	t.Parallel()
	sim := startIPMISim(t, nil)
	pool, log := ipmiPool(t)
	a := access(t, ipmiNode(sim, sim.cfg.Password))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	wantPower(ctx, t, pool, a, inventory.PowerOff)
	if pids := sim.PowerOns(t); len(pids) != 0 {
		t.Fatalf("startcmd ran before power on: %v", pids)
	}

	// Power on: ipmi_sim runs startcmd, the machine.
	setPower(ctx, t, pool, a, inventory.PowerOn)
	waitFor(t, "startcmd to run", func() bool { return len(sim.PowerOns(t)) == 1 })
	wantPower(ctx, t, pool, a, inventory.PowerOn)
	sim.wantIPMIToolPower(ctx, t, "on")

	// Again: nothing more happens.
	setPower(ctx, t, pool, a, inventory.PowerOn)
	wantPower(ctx, t, pool, a, inventory.PowerOn)
	if pids := sim.PowerOns(t); len(pids) != 1 {
		t.Errorf("a second power on started the machine again: %v", pids)
	}

	// Power off: ipmi_sim kills the machine at its next tick.
	first := sim.PowerOns(t)[0]
	setPower(ctx, t, pool, a, inventory.PowerOff)
	waitFor(t, "power off", func() bool { return powerState(ctx, t, pool, a) == inventory.PowerOff })
	waitFor(t, "the machine's process to end", func() bool { return !machineRunning(first) })
	sim.wantIPMIToolPower(ctx, t, "off")

	// A reboot of a machine that is off powers it on.
	setPower(ctx, t, pool, a, inventory.Rebooting)
	waitFor(t, "the reboot to start the machine", func() bool { return len(sim.PowerOns(t)) == 2 })
	wantPower(ctx, t, pool, a, inventory.PowerOn)

	// A reboot of a running machine is a power cycle: off, then, a tick
	// after the machine is gone, on again.
	second := sim.PowerOns(t)[1]
	setPower(ctx, t, pool, a, inventory.Rebooting)
	waitFor(t, "the power cycle to start the machine again", func() bool { return len(sim.PowerOns(t)) == 3 })
	if machineRunning(second) {
		t.Errorf("the machine started before the power cycle was left running")
	}
	wantPower(ctx, t, pool, a, inventory.PowerOn)
	sim.wantIPMIToolPower(ctx, t, "on")

	setPower(ctx, t, pool, a, inventory.PowerOff)
	waitFor(t, "power off", func() bool { return powerState(ctx, t, pool, a) == inventory.PowerOff })

	log.check(t, sim.cfg.Password)
}

func TestIPMIBootDevice(t *testing.T) {
	t.Parallel()
	sim := startIPMISim(t, func(c *ipmiSimConfig) { c.Chassis = true })
	pool, log := ipmiPool(t)
	a := access(t, ipmiNode(sim, sim.cfg.Password))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	for _, tc := range []struct {
		device           string
		persistent, uefi bool
		// wantDevice is ipmi_sim's name for the device selector: it calls
		// the disk "default".
		wantDevice string
		// wantOptions is ipmitool's options argument (ipmi_sim does not
		// pass the persistent and EFI bits on, so they are checked in what
		// ipmitool was asked).
		wantOptions string
	}{
		{device: "pxe", uefi: true, wantDevice: "pxe", wantOptions: "options=efiboot"},
		{device: "disk", persistent: true, wantDevice: "default", wantOptions: "options=persistent"},
		{device: "cdrom", persistent: true, uefi: true, wantDevice: "cdrom", wantOptions: "options=persistent,efiboot"},
		{device: "bios", wantDevice: "bios"},
	} {
		err := pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
			return c.SetBootDevice(ctx, tc.device, tc.persistent, tc.uefi)
		})
		if err != nil {
			t.Fatalf("SetBootDevice(%s, persistent %t, uefi %t): %v", tc.device, tc.persistent, tc.uefi, err)
		}
		if got := sim.ChassisBoot(t); got != tc.wantDevice {
			t.Errorf("%s: the BMC's boot device is %q, want %q", tc.device, got, tc.wantDevice)
		}
		bootdev := log.last(t, "bootdev")
		want := []string{"chassis", "bootdev", tc.device}
		if tc.wantOptions != "" {
			want = append(want, tc.wantOptions)
		}
		if got := bootdev[len(bootdev)-len(want):]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: ipmitool ran with %q, want it to end with %q", tc.device, bootdev, want)
		}
	}

	// Power goes through the chassis control program too.
	setPower(ctx, t, pool, a, inventory.PowerOn)
	if !sim.ChassisPower(t) {
		t.Error("power on did not reach the chassis")
	}
	wantPower(ctx, t, pool, a, inventory.PowerOn)
	setPower(ctx, t, pool, a, inventory.PowerOff)
	if sim.ChassisPower(t) {
		t.Error("power off did not reach the chassis")
	}
	wantPower(ctx, t, pool, a, inventory.PowerOff)

	log.check(t, sim.cfg.Password)
}

func TestIPMIWrongPassword(t *testing.T) {
	t.Parallel()
	const wrong = "Wr0ng-Passw0rd-x"
	sim := startIPMISim(t, nil)
	pool, log := ipmiPool(t)
	a := access(t, ipmiNode(sim, wrong))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	for name, op := range map[string]func(context.Context, bmc.Client) error{
		"power state": func(ctx context.Context, c bmc.Client) error { _, err := c.PowerState(ctx); return err },
		"power on":    func(ctx context.Context, c bmc.Client) error { return c.SetPower(ctx, inventory.PowerOn) },
	} {
		err := pool.Do(ctx, a, op)
		if err == nil {
			t.Fatalf("%s with a wrong password succeeded", name)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("%s: the error gives the password away: %v", name, err)
		}
		// ipmitool says only "Unable to establish IPMI v2 / RMCP+
		// session", as it does for a BMC that is not there.
		if !errors.Is(err, bmc.ErrUnreachable) {
			t.Errorf("%s: error %v is not ErrUnreachable", name, err)
		}
	}
	if pids := sim.PowerOns(t); len(pids) != 0 {
		t.Errorf("the machine was started: %v", pids)
	}
	sim.wantIPMIToolPower(ctx, t, "off")
	log.check(t, wrong)
}

func TestIPMIUnreachable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: ipmitool would retry for most of a minute
	// (bmclib runs it with -N 5, for cipher suites 3 and 17).
	port := freePort(t, "udp", "127.0.0.1")
	a := access(t, &inventory.Node{Driver: inventory.DriverIPMI, DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": float64(port), "ipmi_username": "admin", "ipmi_password": "x-Passw0rd",
	}})
	for _, tc := range []struct {
		name     string
		pool     *bmc.Pool
		deadline time.Duration // of the caller
		// within bounds the time Do takes; the expected time is far
		// less, the unbounded one far more.
		within time.Duration
	}{
		{name: "attempts time out", pool: &bmc.Pool{Timeout: time.Second, Attempts: 2, Backoff: 10 * time.Millisecond}, deadline: time.Minute, within: 15 * time.Second},
		{name: "the caller's deadline", pool: &bmc.Pool{Timeout: time.Minute, Attempts: 3, Backoff: 10 * time.Millisecond}, deadline: 1500 * time.Millisecond, within: 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tool, _ := ipmitoolWrapper(t)
			tc.pool.IPMITool = tool
			ctx, cancel := context.WithTimeout(t.Context(), tc.deadline)
			defer cancel()
			start := time.Now()
			err := tc.pool.Do(ctx, a, func(ctx context.Context, c bmc.Client) error {
				_, err := c.PowerState(ctx)
				return err
			})
			took := time.Since(start)
			if err == nil {
				t.Fatal("a BMC that is not there answered")
			}
			if !errors.Is(err, bmc.ErrUnreachable) || strings.Contains(err.Error(), "x-Passw0rd") {
				t.Errorf("error %v: want ErrUnreachable, without the password", err)
			}
			if took > tc.within {
				t.Errorf("Do took %v, want less than %v", took, tc.within)
			}
			t.Logf("failed after %v: %v", took, err)
		})
	}
}

// TestIPMIv6 reaches a BMC by its IPv6 address, which bmclib has to be
// given in brackets.
func TestIPMIv6(t *testing.T) {
	t.Parallel()
	sim := startIPMISim(t, func(c *ipmiSimConfig) { c.Host = "::1" })
	pool, log := ipmiPool(t)
	a := access(t, ipmiNode(sim, sim.cfg.Password))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	wantPower(ctx, t, pool, a, inventory.PowerOff)
	setPower(ctx, t, pool, a, inventory.PowerOn)
	waitFor(t, "startcmd to run", func() bool { return len(sim.PowerOns(t)) == 1 })
	sim.wantIPMIToolPower(ctx, t, "on")
	if args := log.last(t, "power"); !strings.Contains(strings.Join(args, " "), "-H ::1 -p "+strconv.Itoa(sim.Port)) {
		t.Errorf("ipmitool ran with %q", args)
	}
}

// wantIPMIToolPower checks the power state as ipmitool itself reads it.
func (s *ipmiSim) wantIPMIToolPower(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	out, err := s.ipmitool(ctx, "power", "status")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != "Chassis Power is "+want {
		t.Errorf("ipmitool power status: %q, want power %s", got, want)
	}
}

// machineRunning reports whether the process startcmd started as pid is
// still there (not counting a zombie, or another process given the pid).
func machineRunning(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && strings.Contains(string(b), "--pid=")
}

// ipmitoolLog is what the wrapper recorded: one line per run of ipmitool.
type ipmitoolLog struct{ path string }

// ipmitoolWrapper writes a script that records each run of ipmitool (its
// arguments, and whether the password was in its environment) and then
// runs the real one in its place, so that the Pool's deadline kills the
// real one.
func ipmitoolWrapper(t *testing.T) (string, *ipmitoolLog) {
	t.Helper()
	real, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Fatalf("ipmitool is needed: %v", err)
	}
	dir := t.TempDir()
	log := &ipmitoolLog{path: filepath.Join(dir, "runs")}
	script := "#!/bin/sh\n" +
		`{ printf 'env-password=%s' "${IPMITOOL_PASSWORD:+yes}"; for a in "$@"; do printf ' %s' "$a"; done; echo; } >> '` + log.path + "'\n" +
		`exec '` + real + `' "$@"` + "\n"
	path := filepath.Join(dir, "ipmitool")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func (l *ipmitoolLog) runs(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(l.path)
	if err != nil {
		t.Fatalf("ipmitool was never run: %v", err)
	}
	var runs [][]string
	for line := range strings.Lines(string(b)) {
		runs = append(runs, strings.Fields(line))
	}
	return runs
}

// last returns the arguments of the last run that had arg.
func (l *ipmitoolLog) last(t *testing.T, arg string) []string {
	t.Helper()
	runs := l.runs(t)
	for i := len(runs) - 1; i >= 0; i-- {
		for _, a := range runs[i][1:] {
			if a == arg {
				return runs[i][1:]
			}
		}
	}
	t.Fatalf("no run of ipmitool with %q", arg)
	return nil
}

// check verifies every run: lanplus, the password in the environment (-E)
// and nowhere on the command line.
func (l *ipmitoolLog) check(t *testing.T, password string) {
	t.Helper()
	for _, run := range l.runs(t) {
		line := strings.Join(run, " ")
		if run[0] != "env-password=yes" || !strings.Contains(line, " -E ") || !strings.Contains(line, "-I lanplus") {
			t.Errorf("ipmitool ran as %q", line)
		}
		if strings.Contains(line, password) {
			t.Errorf("the password is on ipmitool's command line: %q", line)
		}
	}
}
