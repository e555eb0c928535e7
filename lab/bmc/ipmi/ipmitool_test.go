package ipmi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/lab/bmc"
)

// TestIpmitool drives the BMC with the real ipmitool, over UDP on
// loopback, with each cipher suite and with ipmitool's own choice, and
// checks both ipmitool's output and the machine's state after each step.
func TestIpmitool(t *testing.T) {
	ipmitoolPath(t)
	type step struct {
		args []string
		// out has regular expressions ipmitool's output must match.
		out  []string
		fail bool
		on   bool
		boot bmc.BootConfig
		// boots is how many times the machine has booted so far.
		boots int
	}
	pxe := bmc.BootConfig{Device: bmc.BootPXE}
	diskAlways := bmc.BootConfig{Device: bmc.BootDisk, Persistent: true}
	steps := []step{
		{args: []string{"power", "status"}, out: []string{`^Chassis Power is off$`}},
		{args: []string{"power", "cycle"}, fail: true, out: []string{`not supported in present state`}},
		{args: []string{"chassis", "bootdev", "pxe"}, out: []string{`^Set Boot Device to pxe$`}, boot: pxe},
		{args: []string{"chassis", "bootparam", "get", "5"}, boot: pxe, out: []string{
			`Boot Flag Valid`, `Options apply to only next boot`, `BIOS PC Compatible \(legacy\) boot`, `Boot Device Selector : Force PXE`}},
		{args: []string{"power", "on"}, out: []string{`^Chassis Power Control: Up/On$`}, on: true, boots: 1},
		{args: []string{"power", "status"}, out: []string{`^Chassis Power is on$`}, on: true, boots: 1},
		{args: []string{"chassis", "bootparam", "get", "5"}, on: true, boots: 1, out: []string{`Boot Flag Invalid`, `No override`}},
		{args: []string{"chassis", "bootdev", "disk", "options=persistent"}, out: []string{`^Set Boot Device to disk$`},
			on: true, boot: diskAlways, boots: 1},
		{args: []string{"chassis", "bootparam", "get", "5"}, on: true, boot: diskAlways, boots: 1, out: []string{
			`Options apply to all future boots`, `Force Boot from default Hard-Drive`}},
		{args: []string{"power", "cycle"}, out: []string{`^Chassis Power Control: Cycle$`}, on: true, boot: diskAlways, boots: 2},
		{args: []string{"power", "reset"}, out: []string{`^Chassis Power Control: Reset$`}, on: true, boot: diskAlways, boots: 3},
		{args: []string{"chassis", "bootdev", "pxe", "options=efiboot"}, out: []string{`^Set Boot Device to pxe$`},
			on: true, boot: bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, boots: 3},
		{args: []string{"chassis", "bootparam", "get", "5"}, on: true, boot: bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, boots: 3,
			out: []string{`BIOS EFI boot`, `Options apply to only next boot`, `Force PXE`}},
		{args: []string{"power", "soft"}, out: []string{`^Chassis Power Control: Soft$`}, boot: bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, boots: 3},
		{args: []string{"power", "on"}, on: true, boot: bmc.BootConfig{UEFI: true}, boots: 4},
		{args: []string{"power", "off"}, out: []string{`^Chassis Power Control: Down/Off$`}, boot: bmc.BootConfig{UEFI: true}, boots: 4},
		{args: []string{"chassis", "status"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{
			`System Power\s+: off`, `Last Power Event\s+: command`}},
		{args: []string{"chassis", "bootparam", "get", "0"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{`Set In Progress : set complete`}},
		{args: []string{"chassis", "selftest"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{`Self Test Results\s+: passed`}},
		{args: []string{"mc", "info"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{
			`IPMI Version\s+: 2.0`, `Firmware Revision\s+: 1.00`, `Device Available\s+: yes`, `Chassis Device`}},
		{args: []string{"mc", "guid"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{`System GUID\s+: ` + testHardware().UUID}},
		{args: []string{"channel", "getciphers", "ipmi"}, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{
			`(?m)^3\s+N/A\s+hmac_sha1\s+hmac_sha1_96\s+aes_cbc_128`, `(?m)^17\s+N/A\s+hmac_sha256\s+sha256_128\s+aes_cbc_128`}},
		{args: []string{"raw", "0x06", "0x99"}, fail: true, boot: bmc.BootConfig{UEFI: true}, boots: 4, out: []string{`rsp=0xc1\): Invalid command`}},
	}
	for _, suite := range []struct {
		name string
		flag []string
		id   string
	}{
		{name: "suite 3", flag: []string{"-C", "3"}, id: "3"},
		{name: "suite 17", flag: []string{"-C", "17"}, id: "17"},
		{name: "ipmitool's choice", id: "17"},
	} {
		t.Run(suite.name, func(t *testing.T) {
			tb := newBMC(t, nil)
			for _, st := range steps {
				args := append(append([]string(nil), suite.flag...), st.args...)
				out, err := tb.ipmitool(t, testUser, testPassword, args...)
				if (err != nil) != st.fail {
					t.Fatalf("ipmitool %s: %v, want failure %v\n%s", strings.Join(args, " "), err, st.fail, out)
				}
				for _, re := range st.out {
					if !regexp.MustCompile(re).MatchString(out) {
						t.Errorf("ipmitool %s: output does not match %q:\n%s", strings.Join(args, " "), re, out)
					}
				}
				on, _ := tb.sim.PoweredOn(t.Context())
				if on != st.on {
					t.Errorf("after %s: powered on = %v, want %v", strings.Join(st.args, " "), on, st.on)
				}
				if diff := cmp.Diff(st.boot, tb.sim.Boot()); diff != "" {
					t.Errorf("after %s: boot override (-want +got):\n%s", strings.Join(st.args, " "), diff)
				}
				if got := len(tb.sim.Boots()); got != st.boots {
					t.Errorf("after %s: %d boots, want %d", strings.Join(st.args, " "), got, st.boots)
				}
			}
			if want := "cipher_suite=" + suite.id + " "; !strings.Contains(tb.log.String(), want) {
				t.Errorf("no session with %s in the log", want)
			}
			if strings.Contains(tb.log.String(), testPassword) {
				t.Error("the password is in the log")
			}
		})
	}
}

// TestIpmitoolRefusals checks that wrong credentials, refused cipher
// suites and privileges above the user's fail the way ipmitool reports a
// real BMC's refusal, and change nothing.
func TestIpmitoolRefusals(t *testing.T) {
	ipmitoolPath(t)
	tb := newBMC(t, func(c *Config) { c.Privilege = PrivilegeOperator })
	for _, tc := range []struct {
		name           string
		user, password string
		args           []string
		out            string
		// exitsZero marks a refusal ipmitool reports but exits 0 for:
		// chassis bootdev returns a positive completion code as its
		// status, which ipmitool 1.8.19 does not count as a failure.
		exitsZero bool
	}{
		{name: "wrong password", user: testUser, password: "not-the-password", args: []string{"power", "on"},
			out: `Unable to establish IPMI v2 / RMCP\+ session`},
		{name: "wrong password, suite 3", user: testUser, password: "not-the-password", args: []string{"-C", "3", "chassis", "bootdev", "pxe"},
			out: `Unable to establish IPMI v2 / RMCP\+ session`},
		{name: "unknown user", user: "root", password: testPassword, args: []string{"power", "on"},
			out: `Unable to establish IPMI v2 / RMCP\+ session`},
		{name: "suite 0", user: testUser, password: testPassword, args: []string{"-C", "0", "power", "on"},
			out: `invalid authentication algorithm`},
		{name: "suite 2", user: testUser, password: testPassword, args: []string{"-C", "2", "power", "on"},
			out: `invalid confidentiality algorithm`},
		{name: "administrator", user: testUser, password: testPassword, args: []string{"-L", "ADMINISTRATOR", "power", "on"},
			out: `Unable to establish IPMI v2 / RMCP\+ session`},
		{name: "OEM", user: testUser, password: testPassword, args: []string{"-L", "OEM", "power", "on"},
			out: `invalid role`},
		{name: "user level", user: testUser, password: testPassword, args: []string{"-L", "USER", "power", "on"},
			out: `Insufficient privilege level`},
		{name: "user level bootdev", user: testUser, password: testPassword, args: []string{"-L", "USER", "chassis", "bootdev", "pxe"},
			out: `Set Chassis Boot Parameter 5 failed: Insufficient privilege level`, exitsZero: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tb.ipmitool(t, tc.user, tc.password, tc.args...)
			if (err == nil) != tc.exitsZero {
				t.Fatalf("ipmitool: %v, want failure %v\n%s", err, !tc.exitsZero, out)
			}
			if !regexp.MustCompile(tc.out).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", tc.out, out)
			}
			if on, _ := tb.sim.PoweredOn(t.Context()); on {
				t.Error("the machine was powered on")
			}
			if got := tb.sim.Boot(); got != (bmc.BootConfig{}) {
				t.Errorf("the boot override changed: %+v", got)
			}
		})
	}
	// The operator can do what an operator may.
	out, err := tb.ipmitool(t, testUser, testPassword, "-L", "OPERATOR", "power", "on")
	if err != nil {
		t.Fatalf("power on as OPERATOR: %v\n%s", err, out)
	}
	if on, _ := tb.sim.PoweredOn(t.Context()); !on {
		t.Error("the machine is off")
	}
	log := tb.log.String()
	for _, secret := range []string{testPassword, "not-the-password"} {
		if strings.Contains(log, secret) {
			t.Errorf("%q is in the log", secret)
		}
	}
	for _, want := range []string{"unknown user", "privilege above the user's"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not tell %q", want)
		}
	}
}
