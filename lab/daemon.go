package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/lab/netlab"
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
	for _, ns := range []string{fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)} {
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
		Namespaces: []string{fabricNS(prefix), undercloudNS(prefix), bmcNS(prefix)},
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

	vms        []*vm.Machine
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
		if vm.DetectKVM(ctx, d.cfg.QEMU) {
			accel = AccelKVM
		}
		d.log.Info("accelerator", "accel", accel)
	}
	d.st.update(func(s *State) { s.Accel = accel })

	if err := d.makeVMs(accel); err != nil {
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

// makeVMs makes each node's VM (stopped) and records the nodes.
func (d *daemon) makeVMs(accel string) error {
	var nodes []NodeState
	for i, n := range d.cfg.Nodes {
		dir := filepath.Join(d.dir, "nodes", n.Name)
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
		ns := NodeState{
			Name: n.Name, Index: i, BMC: n.BMC, BMCAddr: NodeBMCAddr(i).String(),
			Networks: n.NICs, Firmware: n.Firmware, Dir: dir, Console: filepath.Join(dir, "console.log"),
		}
		for j, disk := range n.Disks {
			c.Disks = append(c.Disks, vm.Disk{Path: filepath.Join(dir, fmt.Sprintf("disk%d.raw", j)), SizeBytes: int64(disk.Size), Serial: disk.Serial})
		}
		for j := range n.NICs {
			mac := MAC(d.cfg.Name, i, j)
			c.NICs = append(c.NICs, vm.NIC{Tap: tapName(i, j), MAC: mac})
			ns.MACs = append(ns.MACs, mac.String())
		}
		name := "qemu " + n.Name
		c.OnStart = func(pid int) { d.st.add(processResource(name, pid)) }
		c.OnExit = func(pid int) { d.st.remove(Resource{Kind: ResProcess, Name: name, PID: pid}) }
		m, err := vm.New(c)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		d.vms = append(d.vms, m)
		nodes = append(nodes, ns)
	}
	return d.st.update(func(s *State) { s.Nodes = nodes })
}

// stop takes the lab down: the VMs, the undercloud, then whatever the
// state file still lists. The BMC servers and the API forward stop with
// the run's context.
func (d *daemon) stop() {
	d.st.update(func(s *State) { s.Phase = PhaseStopping })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range d.vms {
		if err := m.Close(ctx); err != nil {
			d.log.Warn("stop vm", "err", err)
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
