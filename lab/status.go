package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/stratacloud/strata/lab/netlab"
)

// Status is a lab's state file with what is running now.
type Status struct {
	State
	DaemonRunning bool
	// Undercloud is the undercloud's process, if it runs.
	Undercloud *Resource
	Nodes      []NodeStatus
}

// NodeStatus is a node and its machine's power: a VM is on while its
// qemu runs; a sim node is as its BMC last set or saw it, and PID is the
// process it runs (its /init), if any.
type NodeStatus struct {
	NodeState
	Power string // "on" or "off"
	PID   int
}

// simProcess names the process a sim node runs, in the state file.
func simProcess(node string) string { return "sim " + node }

// LoadStatus reads the lab's state file and checks which of its processes
// run.
func LoadStatus(dir string) (Status, error) {
	s, err := LoadState(dir)
	if err != nil {
		return Status{}, err
	}
	st := Status{State: s, DaemonRunning: s.Daemon.Alive()}
	for _, r := range s.Resources {
		if r.Kind == ResProcess && r.Name == undercloudProcess && r.Alive() {
			st.Undercloud = &r
		}
	}
	for _, n := range s.Nodes {
		ns := NodeStatus{NodeState: n, Power: "off"}
		process := "qemu " + n.Name
		if n.Kind == KindSim {
			process = simProcess(n.Name)
		}
		i := slices.IndexFunc(s.Resources, func(r Resource) bool {
			return r.Kind == ResProcess && r.Name == process && r.Alive()
		})
		switch {
		case n.Kind == KindSim && st.DaemonRunning:
			if n.Power == PowerOn {
				ns.Power = "on"
			}
			if i >= 0 {
				ns.PID = s.Resources[i].PID
			}
		case i >= 0 && st.DaemonRunning:
			ns.Power, ns.PID = "on", s.Resources[i].PID
		case i >= 0:
			// An orphan of a daemon that died: running, but no BMC drives it.
			ns.Power, ns.PID = "on (orphaned)", s.Resources[i].PID
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}

// Node returns the named node's state.
func (s State) Node(name string) (NodeState, bool) {
	i := slices.IndexFunc(s.Nodes, func(n NodeState) bool { return n.Name == name })
	if i < 0 {
		return NodeState{}, false
	}
	return s.Nodes[i], true
}

// Env is what points the OpenStack clients and strata at the lab's
// undercloud from the host: http_basic auth, the loopback forward to the
// API, and the API's credentials, as KEY=VALUE.
func Env(dir string) ([]string, error) {
	s, err := LoadState(dir)
	if err != nil {
		return nil, err
	}
	if s.APIURL == "" {
		return nil, fmt.Errorf("lab %s is not ready (phase %s)", s.Name, s.Phase)
	}
	return clientEnv(dir, s.APIURL)
}

func clientEnv(dir, url string) ([]string, error) {
	cfg, err := LoadLabConfig(dir)
	if err != nil {
		return nil, err
	}
	return []string{
		"OS_AUTH_TYPE=http_basic",
		"OS_ENDPOINT=" + url,
		"OS_USERNAME=" + cfg.Undercloud.Username,
		"OS_PASSWORD=" + cfg.Undercloud.Password,
	}, nil
}

// Exec runs a command in the undercloud's namespace, with the client
// environment pointed at the undercloud's own address there, and returns
// its exit code.
func Exec(ctx context.Context, dir string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		return 0, fmt.Errorf("no command")
	}
	s, err := LoadState(dir)
	if err != nil {
		return 0, err
	}
	if s.UndercloudURL == "" {
		return 0, fmt.Errorf("lab %s is not ready (phase %s)", s.Name, s.Phase)
	}
	env, err := clientEnv(dir, s.UndercloudURL)
	if err != nil {
		return 0, err
	}
	ns := undercloudNS(s.Prefix)
	if !netlab.NamespaceExists(ns) {
		return 0, fmt.Errorf("namespace %s is gone: the lab is down", ns)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(withoutOS(os.Environ()), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := netlab.Start(ns, cmd); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// withoutOS drops OS_* variables, so that the lab's win over a shell's.
func withoutOS(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "OS_") })
}
