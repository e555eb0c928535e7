package inventory

import (
	"errors"
	"fmt"
	"slices"
)

// Provision states, with Ironic's exact names.
const (
	StateEnroll         = "enroll"
	StateVerifying      = "verifying"
	StateManageable     = "manageable"
	StateInspecting     = "inspecting"
	StateInspectWait    = "inspect wait"
	StateInspectFailed  = "inspect failed"
	StateCleaning       = "cleaning"
	StateCleanWait      = "clean wait"
	StateCleanHold      = "clean hold"
	StateCleanFailed    = "clean failed"
	StateAvailable      = "available"
	StateDeploying      = "deploying"
	StateWaitCallback   = "wait call-back"
	StateDeployHold     = "deploy hold"
	StateDeployFailed   = "deploy failed"
	StateActive         = "active"
	StateDeleting       = "deleting"
	StateDeleted        = "deleted"
	StateError          = "error"
	StateAdopting       = "adopting"
	StateAdoptFailed    = "adopt failed"
	StateRescuing       = "rescuing"
	StateRescueWait     = "rescue wait"
	StateRescue         = "rescue"
	StateRescueFailed   = "rescue failed"
	StateUnrescuing     = "unrescuing"
	StateUnrescueFailed = "unrescue failed"
	StateServicing      = "servicing"
	StateServiceWait    = "service wait"
	StateServiceHold    = "service hold"
	StateServiceFailed  = "service failed"
	StateDeployComplete = "deploy complete"
)

// Event drives the provision state machine. Some events are API verbs;
// done, fail, wait, resume and hold are only ever raised internally.
type Event string

// Events of the provision state machine.
const (
	EventManage   Event = "manage"
	EventProvide  Event = "provide"
	EventInspect  Event = "inspect"
	EventClean    Event = "clean"
	EventDeploy   Event = "deploy"
	EventRebuild  Event = "rebuild"
	EventDelete   Event = "delete"
	EventAbort    Event = "abort"
	EventAdopt    Event = "adopt"
	EventRescue   Event = "rescue"
	EventUnrescue Event = "unrescue"
	EventUnhold   Event = "unhold"
	EventService  Event = "service"
	EventDone     Event = "done"
	EventFail     Event = "fail"
	EventWait     Event = "wait"
	EventResume   Event = "resume"
	EventHold     Event = "hold"
)

// Transition is one row of the state machine: in state From, event Event
// moves the node to state To.
type Transition struct {
	From  string
	Event Event
	To    string
}

// Transitions is the whole provision state machine, Ironic's, as data.
var Transitions = []Transition{
	{StateEnroll, EventManage, StateVerifying},
	{StateVerifying, EventDone, StateManageable},
	{StateVerifying, EventFail, StateEnroll},

	{StateManageable, EventProvide, StateCleaning},
	{StateManageable, EventClean, StateCleaning},
	{StateManageable, EventInspect, StateInspecting},
	{StateManageable, EventAdopt, StateAdopting},

	{StateInspecting, EventDone, StateManageable},
	{StateInspecting, EventFail, StateInspectFailed},
	{StateInspecting, EventWait, StateInspectWait},
	{StateInspectWait, EventDone, StateManageable},
	{StateInspectWait, EventFail, StateInspectFailed},
	{StateInspectWait, EventAbort, StateInspectFailed},
	{StateInspectWait, EventResume, StateInspecting},
	{StateInspectFailed, EventManage, StateManageable},
	{StateInspectFailed, EventInspect, StateInspecting},

	{StateCleaning, EventDone, StateAvailable},
	{StateCleaning, EventFail, StateCleanFailed},
	{StateCleaning, EventWait, StateCleanWait},
	{StateCleaning, EventHold, StateCleanHold},
	{StateCleaning, EventManage, StateManageable},
	{StateCleanWait, EventFail, StateCleanFailed},
	{StateCleanWait, EventAbort, StateCleanFailed},
	{StateCleanWait, EventHold, StateCleanHold},
	{StateCleanWait, EventResume, StateCleaning},
	{StateCleanHold, EventAbort, StateCleanFailed},
	{StateCleanHold, EventUnhold, StateCleanWait},
	{StateCleanFailed, EventManage, StateManageable},

	{StateAvailable, EventDeploy, StateDeploying},
	{StateAvailable, EventManage, StateManageable},

	{StateDeploying, EventFail, StateDeployFailed},
	{StateDeploying, EventWait, StateWaitCallback},
	{StateDeploying, EventHold, StateDeployHold},
	{StateDeploying, EventDone, StateActive},
	{StateWaitCallback, EventHold, StateDeployHold},
	{StateWaitCallback, EventResume, StateDeploying},
	{StateWaitCallback, EventFail, StateDeployFailed},
	{StateWaitCallback, EventAbort, StateDeployFailed},
	{StateWaitCallback, EventDelete, StateDeleting},
	{StateDeployHold, EventUnhold, StateWaitCallback},
	{StateDeployHold, EventAbort, StateDeployFailed},
	{StateDeployFailed, EventRebuild, StateDeploying},
	{StateDeployFailed, EventDeploy, StateDeploying},
	{StateDeployFailed, EventDelete, StateDeleting},

	{StateActive, EventRebuild, StateDeploying},
	{StateActive, EventDelete, StateDeleting},
	{StateActive, EventRescue, StateRescuing},
	{StateActive, EventService, StateServicing},

	{StateDeleting, EventFail, StateError},
	{StateDeleting, EventClean, StateCleaning},
	{StateError, EventRebuild, StateDeploying},
	{StateError, EventDelete, StateDeleting},

	{StateAdopting, EventDone, StateActive},
	{StateAdopting, EventFail, StateAdoptFailed},
	{StateAdoptFailed, EventAdopt, StateAdopting},
	{StateAdoptFailed, EventManage, StateManageable},

	{StateRescuing, EventDone, StateRescue},
	{StateRescuing, EventWait, StateRescueWait},
	{StateRescuing, EventFail, StateRescueFailed},
	{StateRescueWait, EventResume, StateRescuing},
	{StateRescueWait, EventFail, StateRescueFailed},
	{StateRescueWait, EventAbort, StateRescueFailed},
	{StateRescueWait, EventDelete, StateDeleting},
	{StateRescue, EventRescue, StateRescuing},
	{StateRescue, EventDelete, StateDeleting},
	{StateRescue, EventUnrescue, StateUnrescuing},
	{StateRescueFailed, EventRescue, StateRescuing},
	{StateRescueFailed, EventUnrescue, StateUnrescuing},
	{StateRescueFailed, EventDelete, StateDeleting},
	{StateUnrescuing, EventDone, StateActive},
	{StateUnrescuing, EventFail, StateUnrescueFailed},
	{StateUnrescueFailed, EventRescue, StateRescuing},
	{StateUnrescueFailed, EventUnrescue, StateUnrescuing},
	{StateUnrescueFailed, EventDelete, StateDeleting},

	{StateServicing, EventDone, StateActive},
	{StateServicing, EventFail, StateServiceFailed},
	{StateServicing, EventWait, StateServiceWait},
	{StateServicing, EventHold, StateServiceHold},
	{StateServiceWait, EventHold, StateServiceHold},
	{StateServiceWait, EventResume, StateServicing},
	{StateServiceWait, EventFail, StateServiceFailed},
	{StateServiceWait, EventAbort, StateServiceFailed},
	{StateServiceWait, EventDelete, StateDeleting},
	{StateServiceHold, EventService, StateServicing},
	{StateServiceHold, EventUnhold, StateServiceWait},
	{StateServiceHold, EventFail, StateServiceFailed},
	{StateServiceHold, EventAbort, StateServiceFailed},
	{StateServiceFailed, EventService, StateServicing},
	{StateServiceFailed, EventRescue, StateRescuing},
	{StateServiceFailed, EventWait, StateServiceWait},
	{StateServiceFailed, EventHold, StateServiceHold},
	{StateServiceFailed, EventDelete, StateDeleting},
	{StateServiceFailed, EventAbort, StateActive},
}

// targets gives, for each state that is on the way somewhere, the stable
// state it is heading for (Ironic's target_provision_state).
var targets = map[string]string{
	StateVerifying:      StateManageable,
	StateDeploying:      StateActive,
	StateWaitCallback:   StateActive,
	StateDeployFailed:   StateActive,
	StateDeployHold:     StateActive,
	StateCleaning:       StateAvailable,
	StateCleanWait:      StateAvailable,
	StateCleanFailed:    StateAvailable,
	StateCleanHold:      StateAvailable,
	StateDeleting:       StateAvailable,
	StateInspecting:     StateManageable,
	StateInspectFailed:  StateManageable,
	StateInspectWait:    StateManageable,
	StateAdopting:       StateActive,
	StateAdoptFailed:    StateActive,
	StateRescuing:       StateRescue,
	StateRescueWait:     StateRescue,
	StateRescueFailed:   StateRescue,
	StateUnrescuing:     StateActive,
	StateUnrescueFailed: StateActive,
	StateServicing:      StateActive,
	StateServiceWait:    StateActive,
	StateServiceFailed:  StateActive,
	StateServiceHold:    StateActive,
}

// StableStates are the states a node rests in until someone acts.
var StableStates = []string{StateEnroll, StateManageable, StateAvailable, StateActive, StateError, StateRescue}

// UnstableStates are the states in which work is under way.
var UnstableStates = []string{
	StateDeploying, StateWaitCallback, StateCleaning, StateCleanWait, StateVerifying,
	StateDeleting, StateInspecting, StateInspectWait, StateAdopting, StateRescuing,
	StateRescueWait, StateUnrescuing, StateServicing, StateServiceWait,
}

// StuckStates are the states in which a conductor works on the node in a
// thread of its own: if that conductor dies, the node goes to the failed
// state of the operation (Ironic's STUCK_STATES_TREATED_AS_FAIL).
var StuckStates = []string{
	StateDeploying, StateCleaning, StateVerifying, StateInspecting, StateAdopting,
	StateRescuing, StateUnrescuing, StateDeleting, StateServicing,
}

// DeleteAllowedStates are the states from which a node may be deleted:
// Ironic's DELETE_ALLOWED_STATES plus available, which Ironic allows by
// default ([conductor] allow_deleting_available_nodes).
var DeleteAllowedStates = []string{StateManageable, StateEnroll, StateAdoptFailed, StateAvailable}

// UpdateAllowedStates are the states in which a node's fields may be
// patched (besides any state while in maintenance).
var UpdateAllowedStates = []string{
	StateDeployFailed, StateInspecting, StateInspectFailed, StateInspectWait,
	StateCleanFailed, StateError, StateManageable, StateAvailable, StateEnroll,
	StateAdoptFailed, StateRescueFailed, StateUnrescueFailed, StateServiceFailed,
}

// AllStates lists every provision state, in the order of Ironic's docs.
func AllStates() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range Transitions {
		for _, s := range []string{t.From, t.To} {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// ErrInvalidTransition is returned for an event that the current state
// does not accept.
var ErrInvalidTransition = errors.New("invalid state transition")

// TransitionError names the state and the event that were refused.
type TransitionError struct {
	State string
	Event Event
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("the requested action %q can not be performed on a node in state %q", e.Event, e.State)
}

func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }

// Next returns the state that event moves a node in state from to.
func Next(from string, ev Event) (string, error) {
	for _, t := range Transitions {
		if t.From == from && t.Event == ev {
			return t.To, nil
		}
	}
	return "", &TransitionError{State: from, Event: ev}
}

// Target is the target_provision_state of a node in state s: the stable
// state it is heading for, or "" when s is itself stable.
func Target(s string) string { return targets[s] }

// IsStable reports whether s is a stable state.
func IsStable(s string) bool { return slices.Contains(StableStates, s) }

// IsStuck reports whether a node in state s is failed when its conductor dies.
func IsStuck(s string) bool { return slices.Contains(StuckStates, s) }

// FailedStateFor is the state a node stuck in s moves to when the
// conductor working on it is gone.
func FailedStateFor(s string) (string, bool) {
	if !IsStuck(s) {
		return "", false
	}
	if s == StateDeleting {
		// Ironic fails a stuck deletion to error.
		return StateError, true
	}
	to, err := Next(s, EventFail)
	return to, err == nil
}

// Verb is an API provision verb (the "target" of PUT .../states/provision).
type Verb struct {
	Name  string
	Event Event
	// MinVersion is the minor API version that introduced the verb.
	MinVersion int
}

// Verbs are the provision verbs of the API, each mapped to the event it raises.
var Verbs = []Verb{
	{"active", EventDeploy, 1},
	{"deploy", EventDeploy, 73},
	{"deleted", EventDelete, 1},
	{"undeploy", EventDelete, 73},
	{"rebuild", EventRebuild, 1},
	{"manage", EventManage, 4},
	{"provide", EventProvide, 4},
	{"inspect", EventInspect, 6},
	{"abort", EventAbort, 13},
	{"clean", EventClean, 15},
	{"adopt", EventAdopt, 17},
	{"rescue", EventRescue, 38},
	{"unrescue", EventUnrescue, 38},
	{"unhold", EventUnhold, 85},
	{"service", EventService, 87},
}

// LookupVerb finds the verb named name.
func LookupVerb(name string) (Verb, bool) {
	for _, v := range Verbs {
		if v.Name == name {
			return v, true
		}
	}
	return Verb{}, false
}
