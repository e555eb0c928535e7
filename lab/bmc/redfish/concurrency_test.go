package redfish

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stratacloud/strata/lab/bmc"
)

// gateMachine is a Sim whose power and boot changes each wait for a value
// at its gate, and which records how many of them ran at once.
type gateMachine struct {
	*bmc.Sim
	gate chan struct{}

	mu               sync.Mutex
	running, maxSeen int
}

func newGateMachine(i int) *gateMachine {
	return &gateMachine{Sim: bmc.NewSim(testHardware(i)), gate: make(chan struct{})}
}

func (m *gateMachine) through(ctx context.Context, op func(context.Context) error) error {
	m.mu.Lock()
	m.running++
	m.maxSeen = max(m.maxSeen, m.running)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.running--
		m.mu.Unlock()
	}()
	select {
	case <-m.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return op(ctx)
}

func (m *gateMachine) counts() (running, maxSeen int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running, m.maxSeen
}

func (m *gateMachine) PowerOn(ctx context.Context) error {
	return m.through(ctx, m.Sim.PowerOn)
}

func (m *gateMachine) Reset(ctx context.Context, graceful bool) error {
	return m.through(ctx, func(ctx context.Context) error { return m.Sim.Reset(ctx, graceful) })
}

func (m *gateMachine) SetBoot(ctx context.Context, b bmc.BootConfig) error {
	return m.through(ctx, func(ctx context.Context) error { return m.Sim.SetBoot(ctx, b) })
}

// TestOperationsSerialized: a system's power and boot changes run one at a
// time; another system's run alongside; reads wait for neither.
func TestOperationsSerialized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newGateMachine(0), newGateMachine(1)
		s, err := New(Config{Username: testUser, Password: testPassword,
			Systems: map[string]bmc.Machine{"a": a, "b": b}})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		const reset = "/Actions/ComputerSystem.Reset"
		type result struct {
			what string
			code int
		}
		results := make(chan result, 8)
		var wg sync.WaitGroup
		send := func(what, method, path, body string) {
			wg.Go(func() {
				results <- result{what, do(h, method, path, body, admin).Code}
			})
		}
		for range 3 {
			send("a reset", "POST", "/redfish/v1/Systems/a"+reset, `{"ResetType":"ForceRestart"}`)
		}
		send("a boot", "PATCH", "/redfish/v1/Systems/a", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`)
		send("b on", "POST", "/redfish/v1/Systems/b"+reset, `{"ResetType":"On"}`)
		synctest.Wait()

		// One change of a is under way, the others wait for it; b's runs at
		// the same time.
		if running, _ := a.counts(); running != 1 {
			t.Fatalf("%d operations of a under way, want 1", running)
		}
		if running, _ := b.counts(); running != 1 {
			t.Fatalf("%d operations of b under way, want 1", running)
		}
		// Reads are answered meanwhile.
		wantStatus(t, do(h, "GET", "/redfish/v1/Systems/a", "", admin), http.StatusOK)

		b.gate <- struct{}{}
		for range 4 {
			a.gate <- struct{}{}
			synctest.Wait()
			if running, _ := a.counts(); running > 1 {
				t.Fatalf("%d operations of a at once", running)
			}
		}
		wg.Wait()
		close(results)
		for r := range results {
			if r.code != http.StatusNoContent && r.code != http.StatusOK {
				t.Errorf("%s: status %d", r.what, r.code)
			}
		}
		if _, maxSeen := a.counts(); maxSeen != 1 {
			t.Errorf("a ran %d operations at once", maxSeen)
		}
		if got := len(a.Boots()); got != 3 {
			t.Errorf("a booted %d times, want 3", got)
		}
	})
}

// TestWaitingOperationGivesUp: a request waiting for its turn ends when its
// client goes away, without touching the machine.
func TestWaitingOperationGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newGateMachine(0)
		s, err := New(Config{Username: testUser, Password: testPassword, Systems: map[string]bmc.Machine{"a": a}})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		done := make(chan int, 1)
		go func() {
			done <- do(h, "POST", "/redfish/v1/Systems/a/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, admin).Code
		}()
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		waiting := make(chan int, 1)
		go func() {
			r := httptest.NewRequestWithContext(ctx, "POST", "/redfish/v1/Systems/a/Actions/ComputerSystem.Reset", strings.NewReader(`{"ResetType":"ForceOff"}`))
			r.SetBasicAuth(testUser, testPassword)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			waiting <- w.Code
		}()
		synctest.Wait()
		cancel()
		if code := <-waiting; code != http.StatusServiceUnavailable {
			t.Errorf("abandoned request: status %d, want 503", code)
		}
		a.gate <- struct{}{}
		if code := <-done; code != http.StatusNoContent {
			t.Errorf("first request: status %d", code)
		}
		if on, _ := a.PoweredOn(context.Background()); !on {
			t.Errorf("the abandoned ForceOff ran")
		}
	})
}
