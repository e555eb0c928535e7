// Package conductor carries out what the undercloud's API accepts: it moves
// nodes through the provision state machine, drives their power and boot
// devices through their drivers, and heals after conductors that died.
//
// A request is accepted in one etcd transaction that checks the transition
// against the state table, moves the node to its next state and takes the
// node's reservation: a lock key bound to this conductor's lease. A worker
// from a bounded pool then does the work; every write it makes is fenced by
// the lock's revision, and its last write releases the lock. A conductor
// that dies loses its lease, its locks vanish with it, and whichever
// conductor notices first moves the nodes it left in a working state to the
// matching failed state, as Ironic does.
package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/bmc"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// Config configures a conductor. The zero value of every field but Nodes
// has a working default.
type Config struct {
	// Name identifies the conductor in reservations; it must be unique
	// among the conductors sharing an etcd cluster. Default: the hostname.
	Name string
	// Workers bounds the operations in progress at once; a request beyond
	// it is refused with inventory.ErrNoWorkers. Default 100 (Ironic's).
	Workers int
	// LeaseTTL is how long the conductor's lease outlives the conductor.
	// Default 10s.
	LeaseTTL time.Duration
	// TakeoverInterval is how often the conductor looks for nodes left
	// behind by dead conductors. Default 10s.
	TakeoverInterval time.Duration
	// ShutdownGrace is how long Run waits for operations in progress when
	// its context ends, before abandoning them. Default 30s.
	ShutdownGrace time.Duration
	// OpTimeout bounds each driver operation. Default 10m.
	OpTimeout time.Duration
	// PowerSyncInterval is how often the power state of every node is read
	// from its BMC. Default 60s; negative disables the sync.
	PowerSyncInterval time.Duration
	// PowerSyncWorkers bounds the BMCs read at once. Default 8.
	PowerSyncWorkers int
	// PowerSyncTimeout bounds one node's read. Default 30s.
	PowerSyncTimeout time.Duration
	// InspectWaitTimeout, CleanCallbackTimeout and DeployCallbackTimeout
	// bound how long a node waits for its agent in inspect wait, clean
	// wait and wait call-back (also rescue and service wait). Default 30m
	// each, as Ironic's.
	InspectWaitTimeout    time.Duration
	CleanCallbackTimeout  time.Duration
	DeployCallbackTimeout time.Duration
	// MaxConcurrentInspect, MaxConcurrentClean and MaxConcurrentDeploy
	// bound the nodes inspecting, cleaning and deploying at once (their
	// wait states included: each such node boots the deploy ramdisk and,
	// deploying, pulls its image); a request that would start one more is
	// refused with inventory.ErrConcurrencyLimit, not queued, as Ironic's
	// max_concurrent_clean and max_concurrent_deploy do. Defaults 50, 50
	// and 250 (Ironic's for clean and deploy). A node cleaned after an
	// undeploy is counted but never refused: its undeploy was accepted.
	MaxConcurrentInspect int
	MaxConcurrentClean   int
	MaxConcurrentDeploy  int
	// Drivers maps hardware type names to drivers. Default: fake-hardware,
	// and ipmi and redfish through their BMCs.
	Drivers map[string]Driver
	// Logger receives the conductor's log; nil discards.
	Logger *slog.Logger
	// Registerer receives the conductor's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
		if c.Name == "" {
			c.Name = inventory.DefaultConductor
		}
	}
	if c.Workers <= 0 {
		c.Workers = 100
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.TakeoverInterval <= 0 {
		c.TakeoverInterval = 10 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 10 * time.Minute
	}
	if c.PowerSyncInterval == 0 {
		c.PowerSyncInterval = 60 * time.Second
	}
	for _, d := range []*time.Duration{&c.InspectWaitTimeout, &c.CleanCallbackTimeout, &c.DeployCallbackTimeout} {
		if *d <= 0 {
			*d = 30 * time.Minute
		}
	}
	for _, l := range []struct {
		v   *int
		def int
	}{{&c.MaxConcurrentInspect, 50}, {&c.MaxConcurrentClean, 50}, {&c.MaxConcurrentDeploy, 250}} {
		if *l.v <= 0 {
			*l.v = l.def
		}
	}
	if c.PowerSyncWorkers <= 0 {
		c.PowerSyncWorkers = 8
	}
	if c.PowerSyncTimeout <= 0 {
		c.PowerSyncTimeout = 30 * time.Second
	}
	if c.Drivers == nil {
		pool := &bmc.Pool{}
		c.Drivers = map[string]Driver{
			inventory.DriverFake:    Fake{},
			inventory.DriverIPMI:    &Hardware{Type: inventory.DriverIPMI, Pool: pool},
			inventory.DriverRedfish: &Hardware{Type: inventory.DriverRedfish, Pool: pool},
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Conductor is one conductor of the undercloud.
type Conductor struct {
	cfg   Config
	nodes *nodestore.Store
	log   *slog.Logger
	m     *metrics

	slots chan struct{}

	mu      sync.Mutex
	lease   clientv3.LeaseID
	running bool
	// workCtx is the context of worker operations: it ends ShutdownGrace
	// after Run's context, so that a clean stop lets work finish.
	workCtx context.Context
	workers sync.WaitGroup

	// phases counts the nodes in each limited phase, for the concurrency
	// limits (limits.go).
	phases phaseCounts
}

// New returns a conductor over the node store. Call Run before sending it
// requests.
func New(cfg Config, nodes *nodestore.Store) *Conductor {
	cfg.setDefaults()
	return &Conductor{
		cfg:   cfg,
		nodes: nodes,
		log:   cfg.Logger.With("conductor", cfg.Name),
		m:     newMetrics(cfg.Registerer),
		slots: make(chan struct{}, cfg.Workers),
	}
}

// Name is the conductor's name.
func (c *Conductor) Name() string { return c.cfg.Name }

// ErrNotRunning is returned for requests sent before Run or after it
// ended; like a full worker pool, it asks the client to come back later.
var ErrNotRunning = fmt.Errorf("conductor is not running: %w", inventory.ErrNoWorkers)

// conductorRecord is the registration of a live conductor.
type conductorRecord struct {
	Name      string    `json:"name"`
	Lease     int64     `json:"lease"`
	Drivers   []string  `json:"drivers"`
	StartedAt time.Time `json:"started_at"`
	PID       int       `json:"pid"`
}

const conductorsPrefix = "conductors/"

// Run registers the conductor, takes over what a previous run under the
// same name left behind, and keeps its lease alive until ctx ends. Then it
// refuses new work, waits up to ShutdownGrace for work in progress, and
// gives up its lease. ready, if not nil, is closed once requests are
// accepted.
func (c *Conductor) Run(ctx context.Context, ready chan<- struct{}) error {
	if err := c.register(ctx); err != nil {
		return err
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.workCtx = workCtx
	c.running = true
	c.mu.Unlock()

	c.takeover(ctx)
	if ready != nil {
		close(ready)
	}

	tick := time.NewTicker(c.cfg.TakeoverInterval)
	defer tick.Stop()
	var syncTick <-chan time.Time
	syncDone := make(chan struct{}, 1)
	syncDone <- struct{}{}
	if c.cfg.PowerSyncInterval > 0 {
		t := time.NewTicker(c.cfg.PowerSyncInterval)
		defer t.Stop()
		syncTick = t.C
	}
	var syncs sync.WaitGroup
	defer syncs.Wait()
	keep := c.keepAlive(ctx)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case _, ok := <-keep:
			if ok {
				continue
			}
			if ctx.Err() != nil {
				break loop
			}
			// The lease is gone: every lock under it is lost and the
			// workers' fenced writes fail. Start over with a new lease.
			c.log.Error("conductor lease lost; registering again")
			if err := c.register(ctx); err != nil {
				if ctx.Err() != nil {
					break loop
				}
				c.log.Error("re-register", "err", err)
				time.Sleep(time.Second)
			}
			keep = c.keepAlive(ctx)
		case <-tick.C:
			c.takeover(ctx)
			c.expireWaits(ctx)
		case <-syncTick:
			// One sync at a time: a slow round is not stacked on.
			select {
			case <-syncDone:
				syncs.Add(1)
				go func() {
					defer syncs.Done()
					c.syncPower(ctx)
					syncDone <- struct{}{}
				}()
			default:
			}
		}
	}

	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.workers.Wait(); close(done) }()
	grace := time.NewTimer(c.cfg.ShutdownGrace)
	select {
	case <-done:
		grace.Stop()
	case <-grace.C:
		c.log.Warn("shutdown grace period over; abandoning operations in progress")
		cancelWork()
		<-done
	}
	cancelWork()

	// Give the lease up: the locks of anything abandoned vanish now, not a
	// TTL later.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c.mu.Lock()
	lease := c.lease
	c.mu.Unlock()
	if _, err := c.client().Revoke(rctx, lease); err != nil {
		c.log.Warn("revoke lease", "err", err)
	}
	return nil
}

func (c *Conductor) client() *clientv3.Client { return c.nodes.Records().Client() }

// register grants a lease and records the conductor under it. A record
// left by an earlier run under the same name has its lease revoked first,
// which frees that run's locks at once.
func (c *Conductor) register(ctx context.Context) error {
	st := c.nodes.Records()
	key := conductorsPrefix + c.cfg.Name
	if old, _, err := store.GetJSON[conductorRecord](ctx, st, key); err == nil {
		c.log.Info("taking over from an earlier run", "lease", old.Lease)
		if _, err := c.client().Revoke(ctx, clientv3.LeaseID(old.Lease)); err != nil && !isLeaseNotFound(err) {
			return fmt.Errorf("revoke the lease of conductor %s's earlier run: %w", c.cfg.Name, err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	lg, err := c.client().Grant(ctx, int64(c.cfg.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("grant conductor lease: %w", err)
	}
	var drivers []string
	for d := range c.cfg.Drivers {
		drivers = append(drivers, d)
	}
	rec := conductorRecord{Name: c.cfg.Name, Lease: int64(lg.ID), Drivers: drivers, StartedAt: time.Now().UTC(), PID: os.Getpid()}
	b, _ := json.Marshal(rec)
	if _, err := st.Commit(ctx, nil, []store.Op{store.PutLeased(key, b, lg.ID)}); err != nil {
		return fmt.Errorf("register conductor: %w", err)
	}
	c.mu.Lock()
	c.lease = lg.ID
	c.mu.Unlock()
	return nil
}

func isLeaseNotFound(err error) bool { return errors.Is(err, rpctypes.ErrLeaseNotFound) }

func (c *Conductor) keepAlive(ctx context.Context) <-chan *clientv3.LeaseKeepAliveResponse {
	c.mu.Lock()
	lease := c.lease
	c.mu.Unlock()
	ch, err := c.client().KeepAlive(ctx, lease)
	if err != nil {
		closed := make(chan *clientv3.LeaseKeepAliveResponse)
		close(closed)
		return closed
	}
	return ch
}

// acquire takes a worker slot, or fails with ErrNoWorkers.
func (c *Conductor) acquire() (context.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil, ErrNotRunning
	}
	select {
	case c.slots <- struct{}{}:
	default:
		c.m.refused.Inc()
		return nil, fmt.Errorf("all %d workers of conductor %s are busy: %w", c.cfg.Workers, c.cfg.Name, inventory.ErrNoWorkers)
	}
	c.workers.Add(1)
	c.m.busy.Inc()
	return c.workCtx, nil
}

func (c *Conductor) release() {
	<-c.slots
	c.m.busy.Dec()
	c.workers.Done()
}

func (c *Conductor) currentLease() clientv3.LeaseID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

func (c *Conductor) driver(n *inventory.Node) (Driver, error) {
	d, ok := c.cfg.Drivers[n.Driver]
	if !ok {
		return nil, inventory.Invalid("driver", "hardware type %q is not enabled on conductor %s", n.Driver, c.cfg.Name)
	}
	return d, nil
}
