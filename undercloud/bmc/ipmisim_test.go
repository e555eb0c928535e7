package bmc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// ipmiSim is OpenIPMI's ipmi_sim (Debian's openipmi) acting as one BMC on
// a loopback UDP port: an IPMI peer written independently of bmclib and of
// the lab's emulator, which ipmitool -I lanplus reaches as it would a real
// BMC.
//
// What ipmi_sim 2.0.33 needs to answer ipmitool over RMCP+, found in its
// lanserv sources and by trial:
//   - a guid in the LAN channel: without one it answers Get Channel
//     Authentication Capabilities without the IPMI 2.0 bit, and ipmitool
//     says "Unable to establish IPMI v2 / RMCP+ session"
//     (lanserv_ipmi.c: "Must have a GUID to do RMCP+");
//   - cipher suite 3 (RAKP-HMAC-SHA1): it does not do 17, and it refuses
//     ipmitool's sessionless Get Channel Cipher Suites ("Invalid authtype:
//     6"), so ipmitool without -C falls back only after about 10 seconds
//     of retries; bmclib asks for -C 3 first;
//   - a command file that makes MC 0x20 the BMC (mc_setbmc before mc_add,
//     then mc_enable), else it exits with "No bmc_ipmb specified or
//     configured" (on its console, which is its stdout unless -n); a
//     startcmd in lan.conf for an MC that has no channel 15 makes it
//     dereference a NULL channel and segfault (bmc.c, ipmi_emu_add_mc);
//   - for power, a system channel with the VM codec (serial 15 ... codec
//     VM) and a startcmd: power on forks startcmd, the power is on while
//     that process lives, and power off kills it (SIGTERM at the next
//     one-second tick, since no VM is connected to the codec); without
//     the serial channel, chassis control answers "Invalid data field";
//   - for boot devices (Set System Boot Options), a chassis_control
//     program; it then also carries power. ipmi_sim hands the program
//     only the device selector (pxe, default for disk, cdrom, bios), not
//     the persistent and EFI bits;
//   - -s with a state directory of its own (persisted users there would
//     override lan.conf's);
//   - stdin: without -n it reads commands from stdin and exits cleanly at
//     its end, so the test holds a pipe and closes it to stop it. Its
//     console (stdout) shows the commands it ran and then a "> " prompt
//     once it serves.
type ipmiSim struct {
	cfg ipmiSimConfig
	// Port is the UDP port the BMC answers on, at cfg.Host.
	Port int
	// Dir holds the configuration, the state, the console log and the
	// machine's traces.
	Dir string

	proc   *os.Process
	stdin  *os.File
	exited chan struct{}
	err    error // how the process ended, once exited is closed
}

// ipmiSimConfig configures an ipmiSim.
type ipmiSimConfig struct {
	// Host is the loopback address to listen on. Default 127.0.0.1.
	Host string
	// Username and Password are the BMC's administrator. Defaults
	// "admin" and "ipmi-Passw0rd".
	Username, Password string
	// Chassis drives power and boot devices through a chassis_control
	// program that keeps them in files (see ChassisPower, ChassisBoot)
	// instead of power through startcmd.
	Chassis bool
}

// startIPMISim starts ipmi_sim in a temporary directory, waits until it
// answers ipmitool, and stops it when the test ends.
func startIPMISim(t *testing.T, mod func(*ipmiSimConfig)) *ipmiSim {
	t.Helper()
	cfg := ipmiSimConfig{Host: "127.0.0.1", Username: "admin", Password: "ipmi-Passw0rd"}
	if mod != nil {
		mod(&cfg)
	}
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		t.Fatalf("ipmi_sim (Debian package openipmi) is needed: %v", err)
	}
	dir := t.TempDir()
	if strings.ContainsAny(dir, " \"'\\") {
		t.Fatalf("temporary directory %q can not be quoted in lan.conf", dir)
	}
	files := map[string]string{
		"vm.sh":      vmScript,
		"chassis.sh": chassisScript,
		"bmc.emu":    emuCommands,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"state", "chassis"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The ports are found free and then given to ipmi_sim, so another
	// process may take one in between: ipmi_sim then exits with "Unable to
	// bind ...", and it is tried again with other ports. (It binds with
	// SO_REUSEADDR, so the bind fails only if the other socket did not set
	// it too, as Go's do not.)
	for try := 1; ; try++ {
		s, retry := launchIPMISim(t, bin, dir, cfg)
		if s != nil {
			return s
		}
		if !retry || try == 3 {
			t.Fatalf("ipmi_sim did not start")
		}
	}
}

// launchIPMISim makes one attempt at starting ipmi_sim. It returns nil and
// whether to try again if it did not start.
func launchIPMISim(t *testing.T, bin, dir string, cfg ipmiSimConfig) (*ipmiSim, bool) {
	t.Helper()
	udpPort, tcpPort := freePort(t, "udp", cfg.Host), freePort(t, "tcp", cfg.Host)
	var conf bytes.Buffer
	err := lanConf.Execute(&conf, map[string]any{
		"Dir": dir, "Host": cfg.Host, "Port": udpPort, "SerialPort": tcpPort,
		"Username": cfg.Username, "Password": cfg.Password, "Chassis": cfg.Chassis,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lan.conf"), conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "console.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()

	cmd := exec.Command(bin, "-c", "lan.conf", "-f", "bmc.emu", "-s", "state")
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, logFile, logFile
	if err := cmd.Start(); err != nil {
		stdinW.Close()
		t.Fatalf("start ipmi_sim: %v", err)
	}
	s := &ipmiSim{cfg: cfg, Port: udpPort, Dir: dir, proc: cmd.Process, stdin: stdinW, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()

	// Ready once it prompts on its console.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte("> ")) {
			break
		}
		select {
		case <-s.exited:
			stdinW.Close()
			retry := bytes.Contains(out, []byte("Unable to bind"))
			t.Logf("ipmi_sim exited (%v) before serving; its console:\n%s", s.err, out)
			return nil, retry
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(t)
			t.Fatalf("ipmi_sim did not come up in 20s; its console:\n%s", out)
		}
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("ipmi_sim console:\n%s", out)
		}
	})

	// And it answers ipmitool.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := s.ipmitool(ctx, "power", "status")
		if err == nil {
			return s, false
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ipmi_sim on port %d does not answer ipmitool: %v", udpPort, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends ipmi_sim by closing its stdin, or kills it.
func (s *ipmiSim) stop(t *testing.T) {
	s.stdin.Close()
	select {
	case <-s.exited:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("ipmi_sim did not exit at the end of its input; killing it")
	s.proc.Kill() // our own child, by the pid we started
	<-s.exited
}

// Addr is the host:port ipmitool -H/-p would use.
func (s *ipmiSim) Addr() string { return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.Port)) }

// ipmitool runs ipmitool against the BMC itself, with the password in the
// environment, and returns its output.
func (s *ipmiSim) ipmitool(ctx context.Context, args ...string) (string, error) {
	argv := append([]string{"-I", "lanplus", "-C", "3", "-N", "1", "-R", "2", "-H", s.cfg.Host, "-p", strconv.Itoa(s.Port), "-U", s.cfg.Username, "-E"}, args...)
	cmd := exec.CommandContext(ctx, "ipmitool", argv...)
	cmd.Env = []string{"IPMITOOL_PASSWORD=" + s.cfg.Password}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ipmitool %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// PowerOns returns the pids of the processes startcmd started, one per
// power on.
func (s *ipmiSim) PowerOns(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "power-ons"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("power-ons: %v", err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// ChassisPower reports the power the chassis_control program holds.
func (s *ipmiSim) ChassisPower(t *testing.T) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(s.Dir, "chassis", "power"))
	return err == nil
}

// ChassisBoot returns the boot device the chassis_control program was last
// given ("" if none).
func (s *ipmiSim) ChassisBoot(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "chassis", "boot"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// freePort returns a port on host that nothing listens on right now.
func freePort(t *testing.T, network, host string) int {
	t.Helper()
	addr := net.JoinHostPort(host, "0")
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lanConf is ipmi_sim's configuration: one BMC, MC 0x20, with a LAN
// channel on the loopback port and one administrator.
var lanConf = template.Must(template.New("lan.conf").Parse(`# Written by the test (ipmisim_test.go).
name "strata-test"
set_working_mc 0x20
  startlan 1
    addr {{.Host}} {{.Port}}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid "STRATA-IPMI-SIM!"
  endlan
{{- if .Chassis}}
  chassis_control "{{.Dir}}/chassis.sh {{.Dir}}/chassis"
{{- else}}
  serial 15 {{.Host}} {{.SerialPort}} codec VM
  startcmd "{{.Dir}}/vm.sh {{.Dir}}"
  startnow false
  poweroff_wait 0
  kill_wait 2
{{- end}}
  user 2 true "{{.Username}}" "{{.Password}}" admin 10 none md2 md5 straight
`))

// emuCommands make MC 0x20 the BMC and turn it on.
const emuCommands = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
`

// vmScript stands for the machine that startcmd starts: it records its pid
// and lives until it is killed, or ipmi_sim is gone.
const vmScript = `#!/bin/sh
echo $$ >> "$1/power-ons"
exec tail -f --pid=$PPID /dev/null
`

// chassisScript is ipmi_sim's chassis_control program (see OpenIPMI's
// lanserv/ipmi_sim_chassiscontrol): "DIR get PARM..." prints PARM:VALUE
// lines, "DIR set PARM VALUE..." changes them; power and boot live in
// files in DIR.
const chassisScript = `#!/bin/sh
dir=$1; op=$2; shift 2
echo "$op $*" >> "$dir/log"
case $op in
get)
	for p in "$@"; do
		case $p in
		power) if [ -e "$dir/power" ]; then echo power:1; else echo power:0; fi ;;
		boot) if [ -s "$dir/boot" ]; then echo "boot:$(cat "$dir/boot")"; else echo boot:default; fi ;;
		*) echo "unknown parameter $p"; exit 1 ;;
		esac
	done
	;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power) if [ "$2" = 1 ]; then : > "$dir/power"; else rm -f "$dir/power"; fi ;;
		boot) echo "$2" > "$dir/boot" ;;
		reset) ;;
		shutdown) rm -f "$dir/power" ;;
		*) echo "unknown parameter $1"; exit 1 ;;
		esac
		shift 2
	done
	;;
*) echo "unknown operation $op"; exit 1 ;;
esac
`
