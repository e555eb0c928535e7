// Package node is what runs on an overcloud node besides its services:
// the supervisor that starts a role's services in dependency order,
// checks their health, restarts them with backoff when they die, and
// stops them in reverse order.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Service is a process the supervisor keeps running.
type Service struct {
	Name    string
	Command []string
	Env     []string
	Dir     string
	// After names the services that must be healthy before this one
	// starts.
	After []string
	// Health says how to tell the service is serving; zero means "its
	// process is running".
	Health Health
	// Log receives the process's standard output and error; nil discards.
	Log io.Writer
}

// Health is a service's health check: an HTTP GET that must answer 2xx,
// or a TCP connect that must succeed.
type Health struct {
	HTTP string
	TCP  string
}

func (h Health) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch {
	case h.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", h.HTTP, resp.Status)
		}
	case h.TCP != "":
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.TCP)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// States of a service.
const (
	StateWaiting    = "waiting"    // for the services it comes after
	StateStarting   = "starting"   // running, not yet healthy
	StateHealthy    = "healthy"    // running and passing its check
	StateUnhealthy  = "unhealthy"  // running, failing its check
	StateRestarting = "restarting" // exited; starts again after a backoff
	StateStopped    = "stopped"
)

// Status is what the supervisor knows of a service.
type Status struct {
	Name     string    `json:"name"`
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
	Since    time.Time `json:"since"`
}

// SupervisorConfig tunes a supervisor; zero values have working defaults.
type SupervisorConfig struct {
	// CheckInterval is how often health is checked. Default 1s.
	CheckInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart, which
	// doubles with each exit and resets once the service has been
	// healthy for StableAfter. Defaults 1s, 30s, 60s.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopGrace is how long a service has to exit after SIGTERM before
	// SIGKILL. Default 10s.
	StopGrace time.Duration
	Logger    *slog.Logger
}

// Supervisor runs services.
type Supervisor struct {
	cfg      SupervisorConfig
	services []Service
	log      *slog.Logger

	mu     sync.Mutex
	status map[string]*Status
	// healthy is closed for each service when it first becomes healthy.
	healthy map[string]chan struct{}
}

// New checks the services (unique names, known and acyclic After) and
// returns their supervisor.
func New(cfg SupervisorConfig, services []Service) (*Supervisor, error) {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{cfg: cfg, services: services, log: cfg.Logger, status: map[string]*Status{}, healthy: map[string]chan struct{}{}}
	for _, svc := range services {
		if svc.Name == "" || len(svc.Command) == 0 {
			return nil, fmt.Errorf("supervisor: a service needs a name and a command (%q)", svc.Name)
		}
		if s.status[svc.Name] != nil {
			return nil, fmt.Errorf("supervisor: service %s is listed twice", svc.Name)
		}
		s.status[svc.Name] = &Status{Name: svc.Name, State: StateWaiting}
		s.healthy[svc.Name] = make(chan struct{})
	}
	if _, err := s.order(); err != nil {
		return nil, err
	}
	return s, nil
}

// order sorts the services so that each comes after those it names.
func (s *Supervisor) order() ([]Service, error) {
	byName := map[string]Service{}
	for _, svc := range s.services {
		byName[svc.Name] = svc
	}
	var out []Service
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		svc, ok := byName[name]
		if !ok {
			return fmt.Errorf("supervisor: %s comes after %s, which is not a service here", path[len(path)-1], name)
		}
		switch state[name] {
		case 1:
			return fmt.Errorf("supervisor: the services wait for each other: %s", strings.Join(append(path, name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		for _, a := range svc.After {
			if err := visit(a, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, svc)
		return nil
	}
	for _, svc := range s.services {
		if err := visit(svc.Name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Status returns every service's status, in start order.
func (s *Supervisor) Status() []Status {
	ordered, _ := s.order()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(ordered))
	for _, svc := range ordered {
		out = append(out, *s.status[svc.Name])
	}
	return out
}

func (s *Supervisor) set(name string, fn func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status[name]
	before := st.State
	fn(st)
	if st.State != before {
		st.Since = time.Now()
		s.log.Info("service "+st.State, "service", name, "pid", st.PID, "restarts", st.Restarts, "last_exit", st.LastExit)
	}
}

// Run starts every service once those it comes after are healthy, keeps
// them running until ctx ends, then stops them in reverse order and
// returns.
func (s *Supervisor) Run(ctx context.Context) error {
	ordered, err := s.order()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	stops := make([]chan struct{}, len(ordered))
	dones := make([]chan struct{}, len(ordered))
	for i, svc := range ordered {
		stops[i], dones[i] = make(chan struct{}), make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(dones[i])
			s.keep(ctx, svc, stops[i])
		}()
	}
	<-ctx.Done()
	for i := len(ordered) - 1; i >= 0; i-- { // dependents first
		close(stops[i])
		<-dones[i]
	}
	wg.Wait()
	return nil
}

// keep runs one service: waits for its dependencies, then starts it again
// whenever it exits, with backoff, until stop is closed.
func (s *Supervisor) keep(ctx context.Context, svc Service, stop chan struct{}) {
	for _, a := range svc.After {
		select {
		case <-s.healthy[a]:
		case <-stop:
			s.set(svc.Name, func(st *Status) { st.State = StateStopped })
			return
		}
	}
	backoff := s.cfg.MinBackoff
	for {
		started := time.Now()
		exit, stopped := s.runOnce(ctx, svc, stop)
		if stopped {
			s.set(svc.Name, func(st *Status) { st.State, st.PID = StateStopped, 0 })
			return
		}
		if time.Since(started) >= s.cfg.StableAfter {
			backoff = s.cfg.MinBackoff
		}
		s.set(svc.Name, func(st *Status) {
			st.State, st.PID, st.LastExit = StateRestarting, 0, exit
			st.Restarts++
		})
		select {
		case <-time.After(backoff):
		case <-stop:
			s.set(svc.Name, func(st *Status) { st.State = StateStopped })
			return
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// runOnce starts the process and watches it until it exits (its exit
// status is returned) or stop is closed (it is stopped: SIGTERM, then
// SIGKILL after the grace).
func (s *Supervisor) runOnce(ctx context.Context, svc Service, stop chan struct{}) (string, bool) {
	cmd := exec.Command(svc.Command[0], svc.Command[1:]...)
	cmd.Env = append(os.Environ(), svc.Env...)
	cmd.Dir = svc.Dir
	cmd.Stdout, cmd.Stderr = svc.Log, svc.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "failed to start: " + err.Error(), false
	}
	s.set(svc.Name, func(st *Status) { st.State, st.PID = StateStarting, cmd.Process.Pid })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(s.cfg.CheckInterval)
	defer tick.Stop()
	check := func() {
		err := svc.Health.check(ctx)
		s.set(svc.Name, func(st *Status) {
			switch {
			case err == nil:
				st.State = StateHealthy
			case st.State == StateHealthy:
				st.State = StateUnhealthy
			}
		})
		if err == nil {
			s.markHealthy(svc.Name)
		}
	}
	check()
	for {
		select {
		case err := <-exited:
			return exitString(err), false
		case <-tick.C:
			check()
		case <-stop:
			// The whole process group: a service's own children go too.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(s.cfg.StopGrace):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			return "", true
		}
	}
}

func (s *Supervisor) markHealthy(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.healthy[name]
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func exitString(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}

// Healthy reports whether every service is healthy.
func (s *Supervisor) Healthy() bool {
	return !slices.ContainsFunc(s.Status(), func(st Status) bool { return st.State != StateHealthy })
}
