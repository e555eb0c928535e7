package inventory_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

// ironicTransitions is the transition table of ../shared/reference/ironic.md
// (Ironic's 93 add_transition calls), written out with the literal names so
// that the constants of states.go are checked too.
var ironicTransitions = []struct{ from, event, to string }{
	{"enroll", "manage", "verifying"},
	{"verifying", "done", "manageable"},
	{"verifying", "fail", "enroll"},
	{"manageable", "provide", "cleaning"},
	{"manageable", "clean", "cleaning"},
	{"manageable", "inspect", "inspecting"},
	{"manageable", "adopt", "adopting"},
	{"inspecting", "done", "manageable"},
	{"inspecting", "fail", "inspect failed"},
	{"inspecting", "wait", "inspect wait"},
	{"inspect wait", "done", "manageable"},
	{"inspect wait", "fail", "inspect failed"},
	{"inspect wait", "abort", "inspect failed"},
	{"inspect wait", "resume", "inspecting"},
	{"inspect failed", "manage", "manageable"},
	{"inspect failed", "inspect", "inspecting"},
	{"cleaning", "done", "available"},
	{"cleaning", "fail", "clean failed"},
	{"cleaning", "wait", "clean wait"},
	{"cleaning", "hold", "clean hold"},
	{"cleaning", "manage", "manageable"},
	{"clean wait", "fail", "clean failed"},
	{"clean wait", "abort", "clean failed"},
	{"clean wait", "hold", "clean hold"},
	{"clean wait", "resume", "cleaning"},
	{"clean hold", "abort", "clean failed"},
	{"clean hold", "unhold", "clean wait"},
	{"clean failed", "manage", "manageable"},
	{"available", "deploy", "deploying"},
	{"available", "manage", "manageable"},
	{"deploying", "fail", "deploy failed"},
	{"deploying", "wait", "wait call-back"},
	{"deploying", "hold", "deploy hold"},
	{"deploying", "done", "active"},
	{"wait call-back", "hold", "deploy hold"},
	{"wait call-back", "resume", "deploying"},
	{"wait call-back", "fail", "deploy failed"},
	{"wait call-back", "abort", "deploy failed"},
	{"wait call-back", "delete", "deleting"},
	{"deploy hold", "unhold", "wait call-back"},
	{"deploy hold", "abort", "deploy failed"},
	{"deploy failed", "rebuild", "deploying"},
	{"deploy failed", "deploy", "deploying"},
	{"deploy failed", "delete", "deleting"},
	{"active", "rebuild", "deploying"},
	{"active", "delete", "deleting"},
	{"active", "rescue", "rescuing"},
	{"active", "service", "servicing"},
	{"deleting", "fail", "error"},
	{"deleting", "clean", "cleaning"},
	{"error", "rebuild", "deploying"},
	{"error", "delete", "deleting"},
	{"adopting", "done", "active"},
	{"adopting", "fail", "adopt failed"},
	{"adopt failed", "adopt", "adopting"},
	{"adopt failed", "manage", "manageable"},
	{"rescuing", "done", "rescue"},
	{"rescuing", "wait", "rescue wait"},
	{"rescuing", "fail", "rescue failed"},
	{"rescue wait", "resume", "rescuing"},
	{"rescue wait", "fail", "rescue failed"},
	{"rescue wait", "abort", "rescue failed"},
	{"rescue wait", "delete", "deleting"},
	{"rescue", "rescue", "rescuing"},
	{"rescue", "delete", "deleting"},
	{"rescue", "unrescue", "unrescuing"},
	{"rescue failed", "rescue", "rescuing"},
	{"rescue failed", "unrescue", "unrescuing"},
	{"rescue failed", "delete", "deleting"},
	{"unrescuing", "done", "active"},
	{"unrescuing", "fail", "unrescue failed"},
	{"unrescue failed", "rescue", "rescuing"},
	{"unrescue failed", "unrescue", "unrescuing"},
	{"unrescue failed", "delete", "deleting"},
	{"servicing", "done", "active"},
	{"servicing", "fail", "service failed"},
	{"servicing", "wait", "service wait"},
	{"servicing", "hold", "service hold"},
	{"service wait", "hold", "service hold"},
	{"service wait", "resume", "servicing"},
	{"service wait", "fail", "service failed"},
	{"service wait", "abort", "service failed"},
	{"service wait", "delete", "deleting"},
	{"service hold", "service", "servicing"},
	{"service hold", "unhold", "service wait"},
	{"service hold", "fail", "service failed"},
	{"service hold", "abort", "service failed"},
	{"service failed", "service", "servicing"},
	{"service failed", "rescue", "rescuing"},
	{"service failed", "wait", "service wait"},
	{"service failed", "hold", "service hold"},
	{"service failed", "delete", "deleting"},
	{"service failed", "abort", "active"},
}

// ironicAllStates is Ironic's ALL_STATES.
var ironicAllStates = []string{
	"active", "adopt failed", "adopting", "available", "clean failed", "clean hold",
	"cleaning", "clean wait", "deleted", "deleting", "deploy complete", "deploy failed",
	"deploy hold", "deploying", "wait call-back", "enroll", "error", "inspect failed",
	"inspecting", "inspect wait", "manageable", "rescue", "rescue failed", "rescuing",
	"rescue wait", "service failed", "service hold", "servicing", "service wait",
	"unrescue failed", "unrescuing", "verifying",
}

// aliases are in ALL_STATES but no transition reaches them.
var aliases = []string{"deleted", "deploy complete"}

var allEvents = []inventory.Event{
	inventory.EventManage, inventory.EventProvide, inventory.EventInspect, inventory.EventClean,
	inventory.EventDeploy, inventory.EventRebuild, inventory.EventDelete, inventory.EventAbort,
	inventory.EventAdopt, inventory.EventRescue, inventory.EventUnrescue, inventory.EventUnhold,
	inventory.EventService, inventory.EventDone, inventory.EventFail, inventory.EventWait,
	inventory.EventResume, inventory.EventHold,
}

var internalEvents = []inventory.Event{
	inventory.EventDone, inventory.EventFail, inventory.EventWait, inventory.EventResume, inventory.EventHold,
}

func TestTransitionsMatchIronic(t *testing.T) {
	if got, want := len(ironicTransitions), 93; got != want {
		t.Fatalf("the reference table has %d rows, want %d", got, want)
	}
	for _, row := range ironicTransitions {
		t.Run(row.from+"/"+row.event, func(t *testing.T) {
			got, err := inventory.Next(row.from, inventory.Event(row.event))
			if err != nil {
				t.Fatalf("Next(%q, %q): %v", row.from, row.event, err)
			}
			if got != row.to {
				t.Errorf("Next(%q, %q) = %q, want %q", row.from, row.event, got, row.to)
			}
		})
	}

	// Nothing extra, and no (state, event) pair twice: Next would only
	// ever see the first.
	var want, got []inventory.Transition
	for _, row := range ironicTransitions {
		want = append(want, inventory.Transition{From: row.from, Event: inventory.Event(row.event), To: row.to})
	}
	got = slices.Clone(inventory.Transitions)
	byKey := func(a, b inventory.Transition) int {
		return strings.Compare(a.From+"\x00"+string(a.Event), b.From+"\x00"+string(b.Event))
	}
	slices.SortFunc(want, byKey)
	slices.SortFunc(got, byKey)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Transitions differ from Ironic's (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if byKey(got[i-1], got[i]) == 0 {
			t.Errorf("state %q has two transitions for event %q", got[i].From, got[i].Event)
		}
	}
}

// TestNextEveryPair checks Next on every state and event: it succeeds
// exactly for the pairs of the table.
func TestNextEveryPair(t *testing.T) {
	rows := map[[2]string]string{}
	for _, row := range ironicTransitions {
		rows[[2]string{row.from, row.event}] = row.to
	}
	for _, s := range append(slices.Clone(ironicAllStates), "", "bogus") {
		for _, ev := range append(slices.Clone(allEvents), "", "bogus") {
			to, err := inventory.Next(s, ev)
			want, ok := rows[[2]string{s, string(ev)}]
			switch {
			case ok && (err != nil || to != want):
				t.Errorf("Next(%q, %q) = %q, %v; want %q", s, ev, to, err, want)
			case !ok && err == nil:
				t.Errorf("Next(%q, %q) = %q; want an error", s, ev, to)
			}
		}
	}
}

func TestNextError(t *testing.T) {
	tests := []struct {
		name  string
		state string
		event inventory.Event
	}{
		{"deploy from enroll", inventory.StateEnroll, inventory.EventDeploy},
		{"provide from available", inventory.StateAvailable, inventory.EventProvide},
		{"internal event on a stable state", inventory.StateActive, inventory.EventDone},
		{"abort outside a wait", inventory.StateDeploying, inventory.EventAbort},
		{"delete from manageable", inventory.StateManageable, inventory.EventDelete},
		{"unknown state", "bogus", inventory.EventManage},
		{"unknown event", inventory.StateEnroll, "bogus"},
		{"alias state", inventory.StateDeleted, inventory.EventClean},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, err := inventory.Next(tt.state, tt.event)
			if err == nil {
				t.Fatalf("Next(%q, %q) = %q, want an error", tt.state, tt.event, to)
			}
			if to != "" {
				t.Errorf("Next returned state %q with its error", to)
			}
			if !errors.Is(err, inventory.ErrInvalidTransition) {
				t.Errorf("errors.Is(%v, ErrInvalidTransition) = false", err)
			}
			var te *inventory.TransitionError
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not a *TransitionError", err)
			}
			if te.State != tt.state || te.Event != tt.event {
				t.Errorf("TransitionError{%q, %q}, want {%q, %q}", te.State, te.Event, tt.state, tt.event)
			}
			checkMessage(t, err)
			if !strings.Contains(err.Error(), string(tt.event)) || !strings.Contains(err.Error(), tt.state) {
				t.Errorf("message %q does not name the event and the state", err)
			}
		})
	}
}

// checkMessage checks the style of an error message: lower-case start, no
// trailing punctuation.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" {
		t.Fatal("empty error message")
	}
	if first := msg[:1]; first != strings.ToLower(first) {
		t.Errorf("message %q starts with a capital", msg)
	}
	if strings.ContainsAny(msg[len(msg)-1:], ".!:;,") {
		t.Errorf("message %q ends with punctuation", msg)
	}
}

func TestAllStates(t *testing.T) {
	want := slices.DeleteFunc(slices.Clone(ironicAllStates), func(s string) bool { return slices.Contains(aliases, s) })
	got := inventory.AllStates()
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AllStates differs from Ironic's ALL_STATES without the aliases (-want +got):\n%s", diff)
	}
}

func TestReachableFromEnroll(t *testing.T) {
	seen := map[string]bool{inventory.StateEnroll: true}
	queue := []string{inventory.StateEnroll}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, tr := range inventory.Transitions {
			if tr.From == s && !seen[tr.To] {
				seen[tr.To] = true
				queue = append(queue, tr.To)
			}
		}
	}
	for _, s := range ironicAllStates {
		if slices.Contains(aliases, s) {
			if seen[s] {
				t.Errorf("alias %q is reachable", s)
			}
			continue
		}
		if !seen[s] {
			t.Errorf("state %q can not be reached from enroll", s)
		}
	}
}

func TestStateClasses(t *testing.T) {
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"StableStates", inventory.StableStates, []string{"enroll", "manageable", "available", "active", "error", "rescue"}},
		{"UnstableStates", inventory.UnstableStates, []string{
			"deploying", "wait call-back", "cleaning", "clean wait", "verifying", "deleting",
			"inspecting", "inspect wait", "adopting", "rescuing", "rescue wait", "unrescuing",
			"servicing", "service wait",
		}},
		{"StuckStates", inventory.StuckStates, []string{
			"deploying", "cleaning", "verifying", "inspecting", "adopting", "rescuing",
			"unrescuing", "deleting", "servicing",
		}},
		{"DeleteAllowedStates", inventory.DeleteAllowedStates, []string{"manageable", "enroll", "adopt failed", "available"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := slices.Sorted(slices.Values(tt.got)), slices.Sorted(slices.Values(tt.want))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, s := range tt.got {
				if !slices.Contains(ironicAllStates, s) {
					t.Errorf("%q is not one of Ironic's states", s)
				}
			}
		})
	}
	for _, s := range ironicAllStates {
		if got, want := inventory.IsStable(s), slices.Contains(inventory.StableStates, s); got != want {
			t.Errorf("IsStable(%q) = %v, want %v", s, got, want)
		}
		if got, want := inventory.IsStuck(s), slices.Contains(inventory.StuckStates, s); got != want {
			t.Errorf("IsStuck(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range inventory.UnstableStates {
		if inventory.IsStable(s) {
			t.Errorf("%q is both stable and unstable", s)
		}
	}
}

func TestTarget(t *testing.T) {
	// add_state(..., target=...) in Ironic's state machine.
	want := map[string]string{
		"verifying":       "manageable",
		"deploying":       "active",
		"wait call-back":  "active",
		"deploy failed":   "active",
		"deploy hold":     "active",
		"cleaning":        "available",
		"clean wait":      "available",
		"clean failed":    "available",
		"clean hold":      "available",
		"deleting":        "available",
		"inspecting":      "manageable",
		"inspect failed":  "manageable",
		"inspect wait":    "manageable",
		"adopting":        "active",
		"adopt failed":    "active",
		"rescuing":        "rescue",
		"rescue wait":     "rescue",
		"rescue failed":   "rescue",
		"unrescuing":      "active",
		"unrescue failed": "active",
		"servicing":       "active",
		"service wait":    "active",
		"service failed":  "active",
		"service hold":    "active",
	}
	for _, s := range ironicAllStates {
		t.Run(s, func(t *testing.T) {
			if got := inventory.Target(s); got != want[s] {
				t.Errorf("Target(%q) = %q, want %q", s, got, want[s])
			}
			if inventory.IsStable(s) && inventory.Target(s) != "" {
				t.Errorf("stable state %q has a target", s)
			}
			if slices.Contains(inventory.UnstableStates, s) && inventory.Target(s) == "" {
				t.Errorf("unstable state %q has no target", s)
			}
			if tg := inventory.Target(s); tg != "" && !inventory.IsStable(tg) {
				t.Errorf("target %q of %q is not a stable state", tg, s)
			}
		})
	}
}

func TestFailedStateFor(t *testing.T) {
	tests := []struct {
		state, want string
	}{
		{"deploying", "deploy failed"},
		{"cleaning", "clean failed"},
		{"verifying", "enroll"},
		{"inspecting", "inspect failed"},
		{"adopting", "adopt failed"},
		{"rescuing", "rescue failed"},
		{"unrescuing", "unrescue failed"},
		{"deleting", "error"},
		{"servicing", "service failed"},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			got, ok := inventory.FailedStateFor(tt.state)
			if !ok || got != tt.want {
				t.Errorf("FailedStateFor(%q) = %q, %v; want %q, true", tt.state, got, ok, tt.want)
			}
		})
	}
	if len(tests) != len(inventory.StuckStates) {
		t.Errorf("the test covers %d stuck states, the package has %d", len(tests), len(inventory.StuckStates))
	}
	for _, s := range append(slices.Clone(ironicAllStates), "", "bogus") {
		if inventory.IsStuck(s) {
			continue
		}
		if got, ok := inventory.FailedStateFor(s); ok || got != "" {
			t.Errorf("FailedStateFor(%q) = %q, %v; want \"\", false", s, got, ok)
		}
	}
}

func TestLookupVerb(t *testing.T) {
	tests := []struct {
		verb       string
		event      inventory.Event
		minVersion int
	}{
		{"active", inventory.EventDeploy, 1},
		{"deploy", inventory.EventDeploy, 73},
		{"deleted", inventory.EventDelete, 1},
		{"undeploy", inventory.EventDelete, 73},
		{"rebuild", inventory.EventRebuild, 1},
		{"manage", inventory.EventManage, 4},
		{"provide", inventory.EventProvide, 4},
		{"inspect", inventory.EventInspect, 6},
		{"abort", inventory.EventAbort, 13},
		{"clean", inventory.EventClean, 15},
		{"adopt", inventory.EventAdopt, 17},
		{"rescue", inventory.EventRescue, 38},
		{"unrescue", inventory.EventUnrescue, 38},
		{"unhold", inventory.EventUnhold, 85},
		{"service", inventory.EventService, 87},
	}
	for _, tt := range tests {
		t.Run(tt.verb, func(t *testing.T) {
			v, ok := inventory.LookupVerb(tt.verb)
			if !ok {
				t.Fatalf("LookupVerb(%q) found nothing", tt.verb)
			}
			want := inventory.Verb{Name: tt.verb, Event: tt.event, MinVersion: tt.minVersion}
			if diff := cmp.Diff(want, v); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !slices.ContainsFunc(inventory.Transitions, func(tr inventory.Transition) bool { return tr.Event == v.Event }) {
				t.Errorf("no transition takes event %q", v.Event)
			}
		})
	}
	if len(tests) != len(inventory.Verbs) {
		t.Errorf("the test covers %d verbs, the package has %d", len(tests), len(inventory.Verbs))
	}

	notVerbs := []string{"", "bogus", "Active", "MANAGE", " manage", "power on", "available", "delete"}
	for _, ev := range internalEvents {
		notVerbs = append(notVerbs, string(ev))
	}
	for _, name := range notVerbs {
		if v, ok := inventory.LookupVerb(name); ok {
			t.Errorf("LookupVerb(%q) = %+v, want nothing", name, v)
		}
	}
}
