package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files in a lab's state directory.
const (
	// StateFile is the lab's state (State), ConfigFile the Config it was
	// launched with, with its defaults and generated secrets.
	StateFile      = "state.json"
	ConfigFile     = "lab.json"
	daemonLog      = "daemon.log"
	instackenvFile = "instackenv.json"
	bmcCAFile      = "bmc-ca.pem"
)

// Phases of a lab, in the state file.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseFailed   = "failed"
	PhaseStopping = "stopping"
	PhaseStopped  = "stopped"
)

// Kinds of resources the state file records.
const (
	ResNamespace = "netns"
	ResLink      = "link" // a bridge, veth or tap
	ResProcess   = "process"
)

// Resource is one thing the lab created: a namespace, an interface or a
// process. It is recorded before it is created, so that a crash in
// between leaves a record of what may exist; removing what does not exist
// is no error.
type Resource struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Netns is the namespace of a link ("" for the host's).
	Netns string `json:"netns,omitempty"`
	// PID and StartTime identify a process (the start time, in clock ticks
	// since boot, tells it from a later process that reuses the PID).
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

func (r Resource) String() string {
	switch r.Kind {
	case ResProcess:
		return fmt.Sprintf("process %s (pid %d)", r.Name, r.PID)
	case ResLink:
		if r.Netns != "" {
			return fmt.Sprintf("interface %s in %s", r.Name, r.Netns)
		}
		return "interface " + r.Name
	}
	return r.Kind + " " + r.Name
}

// Power states the state file records for sim nodes.
const (
	PowerOn  = "on"
	PowerOff = "off"
)

// NodeState is what the state file says about a node.
type NodeState struct {
	Name string `json:"name"`
	// Kind is vm or sim ("" in state files of older labs: vm).
	Kind     string   `json:"kind,omitempty"`
	Index    int      `json:"index"`
	BMC      string   `json:"bmc"`
	BMCAddr  string   `json:"bmc_address"`
	MACs     []string `json:"macs"`
	Networks []string `json:"networks"`
	Firmware string   `json:"firmware"`
	Dir      string   `json:"dir"`
	Console  string   `json:"console"`
	// Power is a sim node's power as its BMC last set or saw it (a VM's
	// is its qemu process's life).
	Power string `json:"power,omitempty"`
}

// State is the lab's state file: what the lab daemon made, and how to
// reach it.
type State struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Prefix  string `json:"prefix"`
	Phase   string `json:"phase"`
	Error   string `json:"error,omitempty"`
	// Daemon is the lab daemon's process.
	Daemon Resource `json:"daemon"`
	// Accel is the accelerator the VMs run with.
	Accel string `json:"accel,omitempty"`
	// APIURL is where the host reaches the undercloud's API (a loopback
	// forward into the undercloud's namespace); UndercloudURL is the API's
	// own address, inside the lab.
	APIURL        string `json:"api_url,omitempty"`
	UndercloudURL string `json:"undercloud_url,omitempty"`
	// TestImageURL is the test image the undercloud serves, for deploying
	// nodes (image_source), and TestImageSHA256 its checksum
	// (image_os_hash_value).
	TestImageURL    string      `json:"test_image_url,omitempty"`
	TestImageSHA256 string      `json:"test_image_sha256,omitempty"`
	Namespaces      []string    `json:"namespaces"`
	Nodes           []NodeState `json:"nodes"`
	// Resources are in the order they were created.
	Resources []Resource `json:"resources"`
	Updated   time.Time  `json:"updated"`
}

// stateStore keeps the state file of a running lab up to date: every
// change is written at once (to a temporary file, renamed over the old).
type stateStore struct {
	path string
	mu   sync.Mutex
	s    State
}

func newStateStore(dir string, s State) (*stateStore, error) {
	st := &stateStore{path: filepath.Join(dir, StateFile), s: s}
	return st, st.save()
}

// update changes the state and writes it.
func (st *stateStore) update(f func(*State)) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
	return st.save()
}

// add records a resource.
func (st *stateStore) add(r Resource) error {
	return st.update(func(s *State) { s.Resources = append(s.Resources, r) })
}

// remove forgets a resource that is gone.
func (st *stateStore) remove(r Resource) error {
	return st.update(func(s *State) {
		s.Resources = slices.DeleteFunc(s.Resources, func(x Resource) bool {
			return x.Kind == r.Kind && x.Name == r.Name && x.Netns == r.Netns && x.PID == r.PID
		})
	})
}

func (st *stateStore) get() State {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Resources = slices.Clone(s.Resources)
	return s
}

func (st *stateStore) save() error {
	st.s.Updated = time.Now().UTC()
	return writeJSON(st.path, st.s, 0o600)
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ErrNotUp is returned for a lab that has no state directory.
var ErrNotUp = errors.New("lab is not up")

// LoadState reads the state file of the lab whose state directory is dir.
func LoadState(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w (no %s in %s)", ErrNotUp, StateFile, dir)
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

// processStartTime reads a process's start time (field 22 of
// /proc/PID/stat), and whether it runs: a zombie does not.
func processStartTime(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return t, true
}

// processResource records a running process.
func processResource(name string, pid int) Resource {
	t, _ := processStartTime(pid)
	return Resource{Kind: ResProcess, Name: name, PID: pid, StartTime: t}
}

// Alive reports whether the recorded process still runs (and is the same
// process, not a later one with its PID).
func (r Resource) Alive() bool {
	if r.Kind != ResProcess {
		return false
	}
	t, ok := processStartTime(r.PID)
	return ok && (r.StartTime == 0 || t == r.StartTime)
}
