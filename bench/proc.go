package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go runs on).
const userHZ = 100

// processTree returns the given processes and all their descendants that
// are alive now.
func processTree(roots ...int) ([]int, error) {
	children := map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil {
			continue // gone meanwhile
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if slices.Contains(out, pid) {
			continue
		}
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out, nil
}

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] is the state, [1] the parent's pid, [11] utime, [12] stime,
// [13] cutime, [14] cstime.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// peakMemory is the sum of the peak resident set sizes (VmHWM) of the
// given processes and their descendants, in bytes.
func peakMemory(roots ...int) (int64, error) {
	pids, err := processTree(roots...)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, pid := range pids {
		kb, err := statusValue(pid, "VmHWM")
		if err != nil {
			return 0, err
		}
		total += kb * 1024
	}
	return total, nil
}

// statusValue reads a "Name: N kB" line of /proc/PID/status.
func statusValue(pid int, name string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != name {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		return strconv.ParseInt(num, 10, 64)
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, name)
}

// cpuTime is the CPU time (user and system) used so far by the given
// processes and their descendants, those alive and those already reaped.
func cpuTime(roots ...int) (time.Duration, error) {
	pids, err := processTree(roots...)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, pid := range pids {
		f, err := statFields(pid)
		if err != nil {
			return 0, err
		}
		for _, i := range []int{11, 12, 13, 14} {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, i, err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// peakMemoryByProcess describes the peak resident set size (VmHWM) of each
// of the given processes and their descendants, as "pid name MiB".
func peakMemoryByProcess(roots ...int) ([]string, error) {
	pids, err := processTree(roots...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pid := range pids {
		kb, err := statusValue(pid, "VmHWM")
		if err != nil {
			return nil, err
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		out = append(out, fmt.Sprintf("%d %s %.1f MiB", pid, strings.TrimSpace(string(comm)), float64(kb)/1024))
	}
	return out, nil
}

// machineBusy is the CPU time the whole machine has spent busy (not idle
// nor waiting for I/O) since boot, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
