package identity

import (
	"context"
	"sync"
	"time"
)

// throttle limits authentication attempts per claimed identity (a user
// ID, a domain and user name, or an application credential), whether or
// not it exists:
//
//   - failures: a token bucket of burst failed attempts, refilled by one
//     every refill. An identity with no failure left is refused at once,
//     without a password check, until the bucket refills.
//   - concurrency: at most perKey checks of one identity run at once; the
//     others wait their turn (and are refused at once if the failures run
//     out meanwhile).
//
// So a flood of wrong passwords for one user exhausts that user's
// allowance and holds at most perKey hashing slots, and never the slots
// or the allowance of anyone else; and a program that logs in many times
// at once with the right password waits a little, but is not refused.
type throttle struct {
	burst  float64
	refill time.Duration
	perKey int
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	tokens float64
	at     time.Time
	slots  chan struct{}
	users  int // requests holding or waiting for this state
}

func newThrottle(burst int, refill time.Duration, now func() time.Time) *throttle {
	return &throttle{burst: float64(burst), refill: refill, perKey: 2, now: now, keys: map[string]*keyState{}}
}

// fill brings a bucket up to date; callers hold t.mu.
func (t *throttle) fill(k *keyState, now time.Time) {
	if t.refill > 0 && now.After(k.at) {
		k.tokens = min(t.burst, k.tokens+float64(now.Sub(k.at))/float64(t.refill))
	}
	k.at = now
}

// begin admits one attempt for key, waiting for a slot if needed. It
// returns false when the key has no failure left (or ctx ended); when it
// returns true, the caller must call done with the attempt's outcome.
func (t *throttle) begin(ctx context.Context, key string) (done func(failed bool), ok bool) {
	t.mu.Lock()
	k := t.keys[key]
	if k == nil {
		if len(t.keys) >= maxThrottled {
			t.sweep()
		}
		k = &keyState{tokens: t.burst, at: t.now(), slots: make(chan struct{}, t.perKey)}
		t.keys[key] = k
	}
	t.fill(k, t.now())
	if k.tokens < 1 {
		t.release(key, k)
		t.mu.Unlock()
		return nil, false
	}
	k.users++
	t.mu.Unlock()

	select {
	case k.slots <- struct{}{}:
	case <-ctx.Done():
		t.mu.Lock()
		k.users--
		t.release(key, k)
		t.mu.Unlock()
		return nil, false
	}
	t.mu.Lock()
	t.fill(k, t.now())
	if k.tokens < 1 {
		// The allowance ran out while this attempt waited.
		<-k.slots
		k.users--
		t.release(key, k)
		t.mu.Unlock()
		return nil, false
	}
	t.mu.Unlock()
	return func(failed bool) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if failed {
			t.fill(k, t.now())
			k.tokens--
		}
		<-k.slots
		k.users--
		t.release(key, k)
	}, true
}

// maxThrottled bounds the identities tracked at once.
const maxThrottled = 100000

// sweep forgets the states that refilled; if that is not enough it
// forgets every state not in use, rather than grow without bound.
// Callers hold t.mu.
func (t *throttle) sweep() {
	now := t.now()
	for key, k := range t.keys {
		t.fill(k, now)
		t.release(key, k)
	}
	if len(t.keys) >= maxThrottled {
		for key, k := range t.keys {
			if k.users == 0 {
				delete(t.keys, key)
			}
		}
	}
}

// release forgets a state no one uses whose bucket is full: it is the
// same as no state. Callers hold t.mu.
func (t *throttle) release(key string, k *keyState) {
	if k.users == 0 && k.tokens >= t.burst {
		delete(t.keys, key)
	}
}
