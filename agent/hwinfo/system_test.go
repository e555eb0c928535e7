package hwinfo_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stratacloud/strata/agent/hwinfo"
)

// TestCollectThisMachine collects the machine the test runs on and checks
// the result against what other sources say: system calls, getconf,
// lsblk and ip.
func TestCollectThisMachine(t *testing.T) {
	hw, err := hwinfo.Collect("/")
	if err != nil {
		t.Fatal(err)
	}
	if err := hw.Validate(); err != nil {
		t.Errorf("the inventory is not valid: %v", err)
	}

	t.Run("cpu", func(t *testing.T) {
		online, err := strconv.Atoi(strings.TrimSpace(run(t, "getconf", "_NPROCESSORS_ONLN")))
		if err != nil {
			t.Fatal(err)
		}
		if hw.CPU.Count != online {
			t.Errorf("cpu count %d, getconf _NPROCESSORS_ONLN says %d", hw.CPU.Count, online)
		}
		if n := runtime.NumCPU(); n > hw.CPU.Count {
			t.Errorf("cpu count %d, but this process may run on %d", hw.CPU.Count, n)
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		if machine := unix.ByteSliceToString(u.Machine[:]); hw.CPU.Architecture != machine {
			t.Errorf("architecture %q, uname -m says %q", hw.CPU.Architecture, machine)
		}
		if hw.CPU.ModelName == "" || hw.CPU.Frequency == "" || len(hw.CPU.Flags) == 0 {
			t.Logf("cpu: %+v (this CPU does not say everything)", hw.CPU)
		}
	})

	t.Run("memory", func(t *testing.T) {
		var si unix.Sysinfo_t
		if err := unix.Sysinfo(&si); err != nil {
			t.Fatal(err)
		}
		total := int64(si.Totalram) * int64(si.Unit)
		if d := hw.Memory.Total - total; d < -4096 || d > 4096 {
			t.Errorf("memory total %d, sysinfo says %d", hw.Memory.Total, total)
		}
		if hw.Memory.PhysicalMB != 0 && hw.Memory.PhysicalMB<<20 < hw.Memory.Total {
			t.Errorf("physical memory %d MiB is less than the total %d bytes", hw.Memory.PhysicalMB, hw.Memory.Total)
		}
	})

	t.Run("disks", func(t *testing.T) {
		type blk struct {
			size int64
			typ  string
		}
		lsblk := map[string]blk{}
		for line := range strings.Lines(run(t, "lsblk", "-d", "-b", "-n", "-o", "NAME,SIZE,TYPE")) {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("lsblk line %q", line)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("lsblk line %q: %v", line, err)
			}
			lsblk[f[0]] = blk{size, f[2]}
		}
		reported := map[string]bool{}
		for _, d := range hw.Disks {
			name := strings.TrimPrefix(d.Name, "/dev/")
			reported[name] = true
			b, ok := lsblk[name]
			switch {
			case !ok:
				t.Errorf("disk %s is not in lsblk's list", d.Name)
			case b.size != d.Size || b.typ != "disk":
				t.Errorf("disk %s: size %d; lsblk says %s of %d bytes", d.Name, d.Size, b.typ, b.size)
			}
		}
		// Every disk with a medium that is not memory is reported; lsblk
		// tells loop, dm, md and optical devices by their type.
		for name, b := range lsblk {
			if b.typ == "disk" && b.size > 0 && !strings.HasPrefix(name, "zram") && !strings.HasPrefix(name, "ram") && !reported[name] {
				t.Errorf("lsblk lists disk %s of %d bytes, which is not reported", name, b.size)
			}
		}
	})

	t.Run("nics", func(t *testing.T) {
		var links []struct {
			Name     string   `json:"ifname"`
			Address  string   `json:"address"`
			LinkType string   `json:"link_type"`
			Flags    []string `json:"flags"`
			LinkInfo *struct {
				Kind string `json:"info_kind"`
			} `json:"linkinfo"`
		}
		if err := json.Unmarshal([]byte(run(t, "ip", "-j", "-d", "link", "show")), &links); err != nil {
			t.Fatal(err)
		}
		type link struct {
			addr    string
			lowerUp bool
			virtual bool
		}
		ip := map[string]link{}
		for _, l := range links {
			virtual := l.LinkType == "loopback" || l.LinkInfo != nil && l.LinkInfo.Kind != ""
			lowerUp := false
			for _, f := range l.Flags {
				lowerUp = lowerUp || f == "LOWER_UP"
			}
			ip[l.Name] = link{l.Address, lowerUp, virtual}
		}
		reported := map[string]bool{}
		for _, nic := range hw.Interfaces {
			reported[nic.Name] = true
			l, ok := ip[nic.Name]
			switch {
			case !ok:
				t.Errorf("NIC %s is not in ip link's list", nic.Name)
				continue
			case l.addr != nic.MACAddress:
				t.Errorf("NIC %s: MAC %s, ip link says %s", nic.Name, nic.MACAddress, l.addr)
			case l.virtual:
				t.Errorf("NIC %s is reported, but ip link says it is virtual", nic.Name)
			}
			if nic.HasCarrier != l.lowerUp {
				t.Errorf("NIC %s: has_carrier %v, ip link says LOWER_UP is %v", nic.Name, nic.HasCarrier, l.lowerUp)
			}
		}
		for name, l := range ip {
			if !l.virtual && !reported[name] {
				t.Errorf("ip link lists %s (%s), which is not reported", name, l.addr)
			}
		}
	})

	t.Run("hostname", func(t *testing.T) {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		if want := unix.ByteSliceToString(u.Nodename[:]); hw.Hostname != want && want != "(none)" {
			t.Errorf("hostname %q, uname -n says %q", hw.Hostname, want)
		}
	})
}

// run runs a command that the test needs and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%v (make deps installs it)", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
