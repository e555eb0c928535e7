package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/netlab"
	"github.com/stratacloud/strata/lab/sim"
	"github.com/stratacloud/strata/lab/vm"
)

// Run is the lab daemon. It reads the lab's config from the state
// directory dir (written there by Launch), builds the lab, serves its
// BMCs and its API forward, and runs its undercloud, until ctx ends; then
// it takes everything down again. Every namespace, interface and process
// is recorded in dir's state file before it is made, so that Down can
// remove what a killed daemon left. It returns an error if the lab could
// not be built (after taking down what was built).
func Run(ctx context.Context, dir string, log *slog.Logger) (err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := LoadLabConfig(dir)
	if err != nil {
		return err
	}
	prefix := Prefix(cfg.Name)
	for _, ns := range labNamespaces(prefix, cfg.Nodes) {
		if netlab.NamespaceExists(ns) {
			return fmt.Errorf("namespace %s exists: a lab named %q is up (or was not taken down: strata lab down), or another lab's name hashes to the same prefix", ns, cfg.Name)
		}
	}
	st, err := newStateStore(dir, State{
		Version:    1,
		Name:       cfg.Name,
		Prefix:     prefix,
		Phase:      PhaseStarting,
		Daemon:     processResource("lab daemon", os.Getpid()),
		Namespaces: labNamespaces(prefix, cfg.Nodes),
	})
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	d := &daemon{cfg: cfg, dir: dir, prefix: prefix, st: st, log: log}
	defer func() {
		d.stop()
		phase, msg := PhaseStopped, ""
		if err != nil {
			phase, msg = PhaseFailed, err.Error()
		}
		st.update(func(s *State) { s.Phase, s.Error = phase, msg })
	}()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	d.group = g
	if err := d.build(gctx); err != nil {
		log.Error("lab failed", "err", err)
		cancel()
		g.Wait()
		return err
	}
	log.Info("lab ready", "name", cfg.Name, "prefix", prefix, "api", st.get().APIURL)
	err = g.Wait()
	if ctx.Err() != nil {
		err = nil // asked to stop
	}
	return err
}

// daemon is one run of a lab.
type daemon struct {
	cfg    Config
	dir    string
	prefix string
	st     *stateStore
	log    *slog.Logger
	group  *errgroup.Group

	// machines are the nodes' machines, in the config's order.
	machines   []machine
	undercloud *exec.Cmd
	ucDone     chan struct{}
}

func (d *daemon) build(ctx context.Context) error {
	start := time.Now()
	if err := buildNetwork(d.st, d.prefix, d.cfg.Nodes); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	d.log.Info("network built", "took", time.Since(start).Round(time.Millisecond))

	// The undercloud takes some seconds to start its etcd: start it first,
	// and build the rest meanwhile.
	if err := d.startUndercloud(); err != nil {
		return fmt.Errorf("undercloud: %w", err)
	}

	accel := d.cfg.Accel
	if accel == AccelAuto {
		accel = AccelTCG
		if slices.ContainsFunc(d.cfg.Nodes, func(n Node) bool { return n.Kind == KindVM }) && vm.DetectKVM(ctx, d.cfg.QEMU) {
			accel = AccelKVM
		}
		d.log.Info("accelerator", "accel", accel)
	}
	d.st.update(func(s *State) { s.Accel = accel })

	if err := d.makeMachines(accel); err != nil {
		return err
	}
	if err := d.serveBMCs(ctx); err != nil {
		return fmt.Errorf("bmc: %w", err)
	}
	if err := d.waitUndercloud(ctx); err != nil {
		return fmt.Errorf("undercloud: %w", err)
	}
	if err := d.serveAPIForward(ctx); err != nil {
		return fmt.Errorf("api forward: %w", err)
	}
	if err := writeInstackenv(d.dir, d.cfg); err != nil {
		return fmt.Errorf("instackenv: %w", err)
	}
	d.log.Info("lab built", "took", time.Since(start).Round(time.Millisecond))
	return d.st.update(func(s *State) { s.Phase = PhaseReady })
}

// machine is a node's machine, as its BMC drives it and the daemon stops
// it.
type machine interface {
	bmc.Machine
	Close(ctx context.Context) error
}

// makeMachines makes each node's machine (stopped), a VM or a simulated
// machine by its kind, and records the nodes.
func (d *daemon) makeMachines(accel string) error {
	var nodes []NodeState
	for i, n := range d.cfg.Nodes {
		dir := filepath.Join(d.dir, "nodes", n.Name)
		ns := NodeState{
			Name: n.Name, Kind: n.Kind, Index: i, BMC: n.BMC, BMCAddr: NodeBMCAddr(i).String(),
			Networks: n.NICs, Firmware: n.Firmware, Dir: dir, Console: filepath.Join(dir, "console.log"),
		}
		for j := range n.NICs {
			ns.MACs = append(ns.MACs, MAC(d.cfg.Name, i, j).String())
		}
		var m machine
		var err error
		if n.Kind == KindSim {
			ns.Power = PowerOff
			m, err = d.makeSim(i, n, dir)
		} else {
			m, err = d.makeVM(accel, i, n, dir)
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		d.machines = append(d.machines, m)
		nodes = append(nodes, ns)
	}
	return d.st.update(func(s *State) { s.Nodes = nodes })
}

// makeVM makes node i's qemu VM.
func (d *daemon) makeVM(accel string, i int, n Node, dir string) (machine, error) {
	c := vm.Config{
		Name:      d.prefix + "-" + n.Name,
		Dir:       dir,
		QEMU:      d.cfg.QEMU,
		Accel:     accel,
		CPUs:      n.CPUs,
		MemoryMiB: n.MemoryMB,
		Firmware:  n.Firmware,
		UUID:      nodeUUID(d.cfg.Name, n.Name),
		Serial:    n.Name,
		Start:     func(c *exec.Cmd) error { return netlab.Start(fabricNS(d.prefix), c) },
		Logger:    d.log,
	}
	if n.Firmware == "uefi" {
		// A UEFI server's firmware network-boots with its own PXE
		// stack: DHCP, then the iPXE loader over TFTP.
		c.NICROM = vm.NoROM
	}
	for j, disk := range n.Disks {
		c.Disks = append(c.Disks, vm.Disk{Path: filepath.Join(dir, fmt.Sprintf("disk%d.raw", j)), SizeBytes: int64(disk.Size), Serial: disk.Serial})
	}
	for j := range n.NICs {
		c.NICs = append(c.NICs, vm.NIC{Tap: tapName(i, j), MAC: MAC(d.cfg.Name, i, j)})
	}
	name := "qemu " + n.Name
	c.OnStart = func(pid int) { d.st.add(processResource(name, pid)) }
	c.OnExit = func(pid int) { d.st.remove(Resource{Kind: ResProcess, Name: name, PID: pid}) }
	return vm.New(c)
}

// makeSim makes node i's simulated machine, with the hardware of a VM of
// the same config, in the node's own namespace. Its power is recorded in
// the state file as its BMC changes it: no process lives as long as it
// is on.
func (d *daemon) makeSim(i int, n Node, dir string) (machine, error) {
	c := sim.Config{
		Name:      n.Name,
		Dir:       dir,
		Netns:     simNS(d.prefix, i),
		CPUs:      n.CPUs,
		MemoryMiB: n.MemoryMB,
		Firmware:  n.Firmware,
		UUID:      nodeUUID(d.cfg.Name, n.Name),
		Serial:    n.Name,
		Logger:    d.log,
	}
	for _, disk := range n.Disks {
		c.Disks = append(c.Disks, sim.Disk{SizeBytes: int64(disk.Size), Serial: disk.Serial})
	}
	for j := range n.NICs {
		c.NICs = append(c.NICs, sim.NIC{Name: simNICName(j), MAC: MAC(d.cfg.Name, i, j)})
	}
	name := simProcess(n.Name)
	c.OnStart = func(pid int) { d.st.add(processResource(name, pid)) }
	c.OnExit = func(pid int) { d.st.remove(Resource{Kind: ResProcess, Name: name, PID: pid}) }
	m, err := sim.New(c)
	if err != nil {
		return nil, err
	}
	return &recordedPower{Machine: m, record: func(on bool) {
		p := PowerOff
		if on {
			p = PowerOn
		}
		d.st.update(func(s *State) {
			if i < len(s.Nodes) {
				s.Nodes[i].Power = p
			}
		})
	}}, nil
}

// recordedPower is a simulated machine whose power state is recorded
// after every call of its BMC's that may change it, or read it (the
// conductor's power sync reads it periodically, which records a machine
// that turned itself off).
type recordedPower struct {
	*sim.Machine
	record func(on bool)

	mu        sync.Mutex
	known, on bool
}

// note records the power state when it changed.
func (r *recordedPower) note(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known && r.on == on {
		return
	}
	r.known, r.on = true, on
	r.record(on)
}

func (r *recordedPower) sync(ctx context.Context) {
	if on, err := r.Machine.PoweredOn(ctx); err == nil {
		r.note(on)
	}
}

func (r *recordedPower) PoweredOn(ctx context.Context) (bool, error) {
	on, err := r.Machine.PoweredOn(ctx)
	if err == nil {
		r.note(on)
	}
	return on, err
}

func (r *recordedPower) PowerOn(ctx context.Context) error {
	defer r.sync(ctx)
	return r.Machine.PowerOn(ctx)
}

func (r *recordedPower) PowerOff(ctx context.Context, graceful bool) error {
	defer r.sync(ctx)
	return r.Machine.PowerOff(ctx, graceful)
}

func (r *recordedPower) Reset(ctx context.Context, graceful bool) error {
	defer r.sync(ctx)
	return r.Machine.Reset(ctx, graceful)
}

func (r *recordedPower) Close(ctx context.Context) error {
	defer r.note(false)
	return r.Machine.Close(ctx)
}

// stop takes the lab down: the VMs, the undercloud, then whatever the
// state file still lists. The BMC servers and the API forward stop with
// the run's context.
func (d *daemon) stop() {
	d.st.update(func(s *State) { s.Phase = PhaseStopping })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range d.machines {
		if err := m.Close(ctx); err != nil {
			d.log.Warn("stop machine", "err", err)
		}
	}
	d.stopUndercloud(ctx)
	for _, err := range removeResources(ctx, d.st.get().Resources, d.st.remove) {
		d.log.Warn("teardown", "err", err)
	}
}

// removeResources removes recorded resources, newest first: processes are
// killed (the undercloud is asked to stop first), interfaces and
// namespaces deleted. forget is called for each one that is gone. It
// returns what it could not remove.
func removeResources(ctx context.Context, rs []Resource, forget func(Resource) error) []error {
	var errs []error
	// Processes first: a namespace lives on while a process runs in it.
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r.Kind != ResProcess {
			continue
		}
		if err := stopProcess(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		forget(r)
	}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		var err error
		switch r.Kind {
		case ResLink:
			err = netlab.DeleteLink(r.Netns, r.Name)
		case ResNamespace:
			err = netlab.DeleteNamespace(r.Name)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		forget(r)
	}
	return errs
}

// stopProcess ends a recorded process: SIGTERM, then SIGKILL if it is
// still there after a grace period (at once for qemu, which holds no state
// worth a clean stop).
func stopProcess(ctx context.Context, r Resource) error {
	if !r.Alive() {
		return nil
	}
	p, err := os.FindProcess(r.PID)
	if err != nil {
		return nil
	}
	grace := 10 * time.Second
	if r.Name != undercloudProcess {
		grace = 0
	} else {
		p.Signal(syscall.SIGTERM)
	}
	if !waitGone(ctx, r, grace) {
		p.Kill()
		if !waitGone(ctx, r, 10*time.Second) {
			return fmt.Errorf("%s: still running after SIGKILL", r)
		}
	}
	return nil
}

// waitGone polls until the process is gone or d passes.
func waitGone(ctx context.Context, r Resource, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for r.Alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return !r.Alive()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
