package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/stratacloud/strata/inventory"
)

// waiter polls nodes until their provision action ends.
type waiter struct {
	client   *gophercloud.ServiceClient
	clock    clock
	interval time.Duration
	// timeout is how long one node may take; zero waits for ever.
	timeout  time.Duration
	progress *progress
}

// provisionFailedError is a node that ended in a failed state.
type provisionFailedError struct {
	Label  string
	State  string
	Expect string
	Last   string
}

func (e *provisionFailedError) Error() string {
	want := ""
	if e.Expect != "" {
		want = fmt.Sprintf(" instead of %q", e.Expect)
	}
	return fmt.Sprintf("node %s went to %q%s: %s", e.Label, e.State, want, e.lastError())
}

func (e *provisionFailedError) lastError() string {
	if e.Last == "" {
		return "the node has no last_error"
	}
	return e.Last
}

// timeoutError is a node that did not finish in time.
type timeoutError struct {
	Label   string
	State   string
	Expect  string
	Timeout time.Duration
}

func (e *timeoutError) Error() string {
	goal := "come to rest"
	if e.Expect != "" {
		goal = fmt.Sprintf("reach %q", e.Expect)
	}
	return fmt.Sprintf("node %s did not %s within %s; it is in %q", e.Label, goal, formatElapsed(e.Timeout), e.State)
}

// verdict is what one look at a node says about its action.
type verdict int

const (
	pending verdict = iota
	succeeded
	failed
)

// isFailedState reports whether s is one of Ironic's failure states.
func isFailedState(s string) bool {
	return strings.HasSuffix(s, " failed") || s == inventory.StateError
}

// judge says what node n, as just read, means for the verb's action;
// moved says whether the node has been seen to change since the action
// was requested (before that, its state is the old one).
func (v provisionVerb) judge(n record, moved bool) verdict {
	if !moved {
		return pending
	}
	state := n.str("provision_state")
	target := n.str("target_provision_state")
	if v.Expect == "" {
		// abort: done once the node rests, wherever that is.
		if !slices.Contains(inventory.UnstableStates, state) {
			return succeeded
		}
		return pending
	}
	if state == v.Expect && (target == "" || target == state) {
		return succeeded
	}
	if isFailedState(state) {
		return failed
	}
	// A failed verification sends the node back to enroll.
	if v.Event == inventory.EventManage && state == inventory.StateEnroll && n.str("last_error") != "" {
		return failed
	}
	return pending
}

// wait polls node ident until v's action is over. before is the node as
// it was when the action was requested, at start.
func (w *waiter) wait(ctx context.Context, v provisionVerb, ident, label string, before record, start time.Time) (record, error) {
	var deadline time.Time
	if w.timeout > 0 {
		deadline = start.Add(w.timeout)
	}
	startState := before.str("provision_state")
	startUpdated := before.time("provision_updated_at")
	moved := false
	for {
		n, err := getNode(ctx, w.client, ident)
		if err != nil {
			return nil, err
		}
		state := n.str("provision_state")
		if state != startState || !n.time("provision_updated_at").Equal(startUpdated) {
			moved = true
		}
		w.progress.observe(label, state)
		switch v.judge(n, moved) {
		case succeeded:
			return n, nil
		case failed:
			return n, &provisionFailedError{Label: label, State: state, Expect: v.Expect, Last: n.str("last_error")}
		}
		sleep := w.interval
		if !deadline.IsZero() {
			left := deadline.Sub(w.clock.Now())
			if left <= 0 {
				return n, &timeoutError{Label: label, State: state, Expect: v.Expect, Timeout: w.timeout}
			}
			sleep = min(sleep, left)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-w.clock.After(sleep):
		}
	}
}
