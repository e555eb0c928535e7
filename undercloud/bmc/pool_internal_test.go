package bmc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

// These tests drive Pool.Do through its dial seam with a client that does
// nothing: the operations under test are the closures given to Do. They
// run in synctest bubbles, so backoffs and timeouts take no real time and
// their lengths can be checked exactly.

// nopClient is a Client whose methods are never called: Do hands it to the
// operation, which here ignores it.
type nopClient struct{}

func (nopClient) PowerState(context.Context) (string, error)              { return "", nil }
func (nopClient) SetPower(context.Context, string) error                  { return nil }
func (nopClient) SetBootDevice(context.Context, string, bool, bool) error { return nil }

// dialer is a fake dial that fails with errs, in order, then succeeds.
type dialer struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (d *dialer) dial(Access, *Pool) (Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if len(d.errs) > 0 {
		err := d.errs[0]
		d.errs = d.errs[1:]
		return nil, err
	}
	return nopClient{}, nil
}

func (d *dialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// script is an operation that fails with errs, in order, then succeeds,
// and records when it was called.
type script struct {
	errs  []error
	times []time.Time
}

func (s *script) op(context.Context, Client) error {
	s.times = append(s.times, time.Now())
	if len(s.times) <= len(s.errs) {
		return s.errs[len(s.times)-1]
	}
	return nil
}

var (
	errFlaky = fmt.Errorf("%w: no answer", ErrUnreachable)
	errNo    = fmt.Errorf("%w: insufficient privilege", ErrRefused)
	errDial  = errors.New("dial failed")
)

func TestPoolDoRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		attempts  int
		dialErrs  []error
		opErrs    []error
		wantDials int
		wantOps   int
		wantErr   error // matched with errors.Is; nil for success
	}{
		{name: "first try", attempts: 3, wantDials: 1, wantOps: 1},
		{name: "two failures then success", attempts: 3, opErrs: []error{errFlaky, errFlaky}, wantDials: 3, wantOps: 3},
		{name: "gives up after the attempts", attempts: 3, opErrs: []error{errFlaky, errFlaky, errFlaky, errFlaky}, wantDials: 3, wantOps: 3, wantErr: ErrUnreachable},
		{name: "one attempt", attempts: 1, opErrs: []error{errFlaky}, wantDials: 1, wantOps: 1, wantErr: errFlaky},
		{name: "default is three attempts", attempts: 0, opErrs: []error{errFlaky, errFlaky, errFlaky, errFlaky}, wantDials: 3, wantOps: 3, wantErr: errFlaky},
		{name: "refused is not retried", attempts: 3, opErrs: []error{errNo}, wantDials: 1, wantOps: 1, wantErr: ErrRefused},
		{name: "refused after a transient failure", attempts: 5, opErrs: []error{errFlaky, errNo}, wantDials: 2, wantOps: 2, wantErr: ErrRefused},
		{name: "dial failure is retried", attempts: 3, dialErrs: []error{errDial}, wantDials: 2, wantOps: 1},
		{name: "dial failures use up the attempts", attempts: 2, dialErrs: []error{errDial, errDial}, wantDials: 2, wantOps: 0, wantErr: errDial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &dialer{errs: tc.dialErrs}
				p := &Pool{Attempts: tc.attempts, Backoff: time.Second, dial: d.dial}
				s := &script{errs: tc.opErrs}
				err := p.Do(t.Context(), testAccess("10.0.0.1"), s.op)
				if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Do = %v, want %v", err, tc.wantErr)
				}
				if d.count() != tc.wantDials || len(s.times) != tc.wantOps {
					t.Errorf("%d dials and %d operations, want %d and %d", d.count(), len(s.times), tc.wantDials, tc.wantOps)
				}
			})
		})
	}
}

// TestPoolDoBackoff checks that the wait before each retry starts at
// Backoff and doubles.
func TestPoolDoBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pool{Attempts: 4, Backoff: 250 * time.Millisecond, dial: (&dialer{}).dial}
		s := &script{errs: []error{errFlaky, errFlaky, errFlaky}}
		if err := p.Do(t.Context(), testAccess("10.0.0.1"), s.op); err != nil {
			t.Fatal(err)
		}
		var gaps []time.Duration
		for i := 1; i < len(s.times); i++ {
			gaps = append(gaps, s.times[i].Sub(s.times[i-1]))
		}
		want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}
		if diff := cmp.Diff(want, gaps); diff != "" {
			t.Errorf("waits between attempts (-want +got):\n%s", diff)
		}
	})
}

// TestPoolDoAttemptTimeout checks that each attempt gets its own deadline,
// Timeout from its start, and that an attempt that runs out is retried.
func TestPoolDoAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pool{Timeout: 5 * time.Second, Attempts: 2, Backoff: time.Second, dial: (&dialer{}).dial}
		var took []time.Duration
		err := p.Do(t.Context(), testAccess("10.0.0.1"), func(ctx context.Context, _ Client) error {
			start := time.Now()
			<-ctx.Done() // a BMC that never answers
			took = append(took, time.Since(start))
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want the attempt's deadline", err)
		}
		if diff := cmp.Diff([]time.Duration{5 * time.Second, 5 * time.Second}, took); diff != "" {
			t.Errorf("attempt durations (-want +got):\n%s", diff)
		}
	})
}

// TestPoolDoCallerDeadline checks that Do stops when the caller's context
// ends: during an attempt (with no further attempt), and during a backoff
// (at once, reporting the BMC's last error as well as the deadline).
func TestPoolDoCallerDeadline(t *testing.T) {
	t.Run("during an attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := &dialer{}
			p := &Pool{Timeout: time.Minute, Attempts: 3, dial: d.dial}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := p.Do(ctx, testAccess("10.0.0.1"), func(ctx context.Context, _ Client) error {
				<-ctx.Done()
				return ctx.Err()
			})
			if !errors.Is(err, context.DeadlineExceeded) || d.count() != 1 || time.Since(start) != 2*time.Second {
				t.Errorf("Do = %v after %v and %d dials, want the deadline after 2s and 1 dial", err, time.Since(start), d.count())
			}
		})
	})
	t.Run("during a backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := &dialer{}
			p := &Pool{Attempts: 3, Backoff: time.Hour, dial: d.dial}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			s := &script{errs: []error{errFlaky, errFlaky, errFlaky}}
			err := p.Do(ctx, testAccess("10.0.0.1"), s.op)
			if time.Since(start) != 2*time.Second || d.count() != 1 || len(s.times) != 1 {
				t.Errorf("Do returned after %v, %d dials, %d operations; want 2s, 1, 1", time.Since(start), d.count(), len(s.times))
			}
			if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer") {
				t.Errorf("Do = %v, want the BMC's error and the deadline", err)
			}
		})
	})
}

// TestPoolDoSerializesPerBMC checks that operations on one BMC run one at a
// time, in the order they came, while other BMCs proceed, and that a
// caller waiting for a busy BMC gives up when its context ends.
func TestPoolDoSerializesPerBMC(t *testing.T) {
	// A lock that ignored the context would block in a way that stops the
	// bubble's clock, hanging the test: fail it plainly instead.
	guard := time.AfterFunc(2*time.Minute, func() {
		panic("TestPoolDoSerializesPerBMC hung: does Do wait for a busy BMC past its caller's deadline?")
	})
	defer guard.Stop()
	synctest.Test(t, func(t *testing.T) {
		p := &Pool{Timeout: time.Hour, dial: (&dialer{}).dial}
		var mu sync.Mutex
		var started []string
		release := map[string]chan struct{}{}
		op := func(name string) func(context.Context, Client) error {
			ch := make(chan struct{})
			release[name] = ch
			return func(context.Context, Client) error {
				mu.Lock()
				started = append(started, name)
				mu.Unlock()
				<-ch
				return nil
			}
		}
		got := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), started...)
		}
		var wg sync.WaitGroup
		do := func(a Access, name string) {
			f := op(name)
			wg.Go(func() {
				if err := p.Do(t.Context(), a, f); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
			synctest.Wait()
		}
		bmcA, bmcB := testAccess("10.0.0.1"), testAccess("10.0.0.2")
		do(bmcA, "a1")
		do(bmcA, "a2")
		do(bmcA, "a3")
		do(bmcB, "b1")
		if diff := cmp.Diff([]string{"a1", "b1"}, got()); diff != "" {
			t.Fatalf("running while a1 holds BMC A (-want +got):\n%s", diff)
		}

		// A caller with a deadline gives up waiting, without dialing.
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		err := p.Do(ctx, bmcA, func(context.Context, Client) error {
			t.Error("an operation ran after its caller gave up")
			return nil
		})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), bmcA.Key()) {
			t.Errorf("Do on a busy BMC past the deadline = %v, want the deadline, naming the BMC", err)
		}

		close(release["a1"])
		synctest.Wait()
		close(release["b1"])
		synctest.Wait()
		close(release["a2"])
		synctest.Wait()
		close(release["a3"])
		wg.Wait()
		if diff := cmp.Diff([]string{"a1", "b1", "a2", "a3"}, got()); diff != "" {
			t.Errorf("order of operations (-want +got):\n%s", diff)
		}
	})
}

// TestPoolZeroValueConcurrent uses a zero Pool (but for the seam) from
// several goroutines at once: the defaults apply, and, under -race, filling
// them in must not race.
func TestPoolZeroValueConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &dialer{}
		p := &Pool{dial: d.dial}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				start := time.Now()
				s := &script{errs: []error{errFlaky, errFlaky, errFlaky}}
				err := p.Do(t.Context(), testAccess(fmt.Sprintf("10.0.0.%d", i)), s.op)
				// Three attempts, 1s then 2s apart.
				if !errors.Is(err, errFlaky) || len(s.times) != 3 || time.Since(start) != 3*time.Second {
					t.Errorf("Do = %v after %d attempts and %v", err, len(s.times), time.Since(start))
				}
			})
		}
		wg.Wait()
		if d.count() != 12 {
			t.Errorf("%d dials, want 12", d.count())
		}
		if p.Timeout != 0 || p.Attempts != 0 || p.Backoff != 0 {
			t.Errorf("Do wrote the Pool's settings: %+v", p)
		}
	})
}

// pwError is a typed error that carries a password in its text.
type pwError struct{ password string }

func (e *pwError) Error() string { return "login as admin:" + e.password + " failed" }

func TestPoolDoRedactsPassword(t *testing.T) {
	const pw = "Sw0rdf1sh!"
	typed := &pwError{password: pw}
	for _, tc := range []struct {
		name     string
		password string
		err      error
		wantMsg  string
		wantIs   []error
		wantSame bool // Do returns the very error the operation did
	}{
		{
			name:     "wrapped sentinel",
			password: pw,
			err:      fmt.Errorf("%w: https://admin:%s@10.0.0.1: refused", ErrRefused, pw),
			wantMsg:  "BMC refused the request: https://admin:******@10.0.0.1: refused",
			wantIs:   []error{ErrRefused},
		},
		{
			name:     "every occurrence",
			password: pw,
			err:      fmt.Errorf("%s and %s", pw, pw),
			wantMsg:  "****** and ******",
		},
		{
			name:     "typed error in the chain",
			password: pw,
			err:      fmt.Errorf("%w: %w", ErrUnreachable, typed),
			wantMsg:  "BMC unreachable: login as admin:****** failed",
			wantIs:   []error{ErrUnreachable, typed},
		},
		{
			name:     "several wrapped errors",
			password: pw,
			err:      errors.Join(ErrRefused, errors.New("password "+pw+" expired")),
			wantMsg:  "BMC refused the request\npassword ****** expired",
			wantIs:   []error{ErrRefused},
		},
		{
			name:     "typed error alone",
			password: pw,
			err:      typed,
			wantMsg:  "login as admin:****** failed",
			wantIs:   []error{typed},
		},
		{
			name:     "no password in the text",
			password: pw,
			err:      errNo,
			wantMsg:  errNo.Error(),
			wantIs:   []error{ErrRefused},
			wantSame: true,
		},
		{
			name:     "no password set",
			password: "",
			err:      errNo,
			wantMsg:  errNo.Error(),
			wantSame: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &Pool{Attempts: 1, dial: (&dialer{}).dial}
				a := testAccess("10.0.0.1")
				a.Password = tc.password
				err := p.Do(t.Context(), a, func(context.Context, Client) error { return tc.err })
				if err == nil {
					t.Fatal("Do succeeded")
				}
				if diff := cmp.Diff(tc.wantMsg, err.Error()); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
				for _, target := range tc.wantIs {
					if !errors.Is(err, target) {
						t.Errorf("errors.Is(%v, %v) = false", err, target)
					}
				}
				if tc.wantSame != (err == tc.err) {
					t.Errorf("Do returned %#v for %#v", err, tc.err)
				}
				if tc.password != "" && !tc.wantSame {
					// The original text is not one Unwrap away, but its
					// typed errors can still be asked for.
					if u := errors.Unwrap(err); u != nil && strings.Contains(u.Error(), pw) {
						t.Errorf("errors.Unwrap gives the password back: %v", u)
					}
					var pe *pwError
					if errors.Is(tc.err, typed) && (!errors.As(err, &pe) || pe != typed) {
						t.Errorf("errors.As did not find the typed error in %v", err)
					}
				}
			})
		})
	}
}

// TestDialDrivers checks the default dial's choice of client.
func TestDialDrivers(t *testing.T) {
	if c, err := dial(Access{Driver: inventory.DriverIPMI, Host: "10.0.0.1", Port: 623}, &Pool{}); err != nil {
		t.Errorf("ipmi: %v", err)
	} else if _, ok := c.(*ipmiClient); !ok {
		t.Errorf("ipmi: got a %T", c)
	}
	if c, err := dial(Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.1", VerifyCA: "false"}, &Pool{}); err != nil {
		t.Errorf("redfish: %v", err)
	} else if _, ok := c.(*redfishClient); !ok {
		t.Errorf("redfish: got a %T", c)
	}
	if _, err := dial(Access{Driver: inventory.DriverFake}, &Pool{}); err == nil {
		t.Error("fake-hardware: no error")
	}
	if _, err := dial(Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.1", VerifyCA: "/nonexistent/ca.pem"}, &Pool{}); err == nil || !strings.Contains(err.Error(), "redfish_verify_ca") {
		t.Errorf("redfish with a missing CA file: %v", err)
	}
}

func testAccess(host string) Access {
	return Access{Driver: inventory.DriverIPMI, Host: host, Port: 623, Username: "admin"}
}
