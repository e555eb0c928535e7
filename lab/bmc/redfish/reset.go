package redfish

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/stratacloud/strata/lab/bmc"
)

// resetTypes are the ResetType values of ComputerSystem.Reset this service
// carries out, and how. Nmi, Suspend, Pause and Resume are not among them:
// a bmc.Machine can not do them.
var resetTypes = []resetType{
	{"On", func(ctx context.Context, m bmc.Machine) error { return m.PowerOn(ctx) }},
	{"ForceOn", func(ctx context.Context, m bmc.Machine) error { return m.PowerOn(ctx) }},
	{"ForceOff", func(ctx context.Context, m bmc.Machine) error { return m.PowerOff(ctx, false) }},
	{"GracefulShutdown", func(ctx context.Context, m bmc.Machine) error { return m.PowerOff(ctx, true) }},
	{"ForceRestart", func(ctx context.Context, m bmc.Machine) error { return m.Reset(ctx, false) }},
	{"GracefulRestart", func(ctx context.Context, m bmc.Machine) error { return m.Reset(ctx, true) }},
	// A power cycle: off (if on), then on.
	{"PowerCycle", func(ctx context.Context, m bmc.Machine) error {
		if err := m.PowerOff(ctx, false); err != nil {
			return err
		}
		return m.PowerOn(ctx)
	}},
	// The power button: a running machine is asked to shut down (ACPI), a
	// stopped one starts.
	{"PushPowerButton", func(ctx context.Context, m bmc.Machine) error {
		on, err := m.PoweredOn(ctx)
		if err != nil {
			return err
		}
		if on {
			return m.PowerOff(ctx, true)
		}
		return m.PowerOn(ctx)
	}},
}

type resetType struct {
	name string
	do   func(ctx context.Context, m bmc.Machine) error
}

func resetTypeNames() []string {
	out := make([]string, len(resetTypes))
	for i, t := range resetTypes {
		out[i] = t.name
	}
	return out
}

const resetAction = "ComputerSystem.Reset"

// resetSystem is the ComputerSystem.Reset action: 204 once the machine has
// done it.
func (v *view) resetSystem(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	body, err := decodeObject(r)
	if err != nil {
		return reply{}, err
	}
	name, err := resetParameter(body)
	if err != nil {
		return reply{}, err
	}
	i := slices.IndexFunc(resetTypes, func(t resetType) bool { return t.name == name })
	if i < 0 {
		return reply{}, errorf(msgActionParameterValueNotInList, name, "ResetType", resetAction).about("/ResetType")
	}
	unlock, err := sys.lock(r.Context())
	if err != nil {
		return reply{}, err
	}
	defer unlock()
	if err := resetTypes[i].do(r.Context(), sys.m); err != nil {
		return reply{}, err
	}
	v.s.log.Info("system reset", "system", sys.id, "type", name)
	return reply{status: http.StatusNoContent}, nil
}

// resetParameter checks a Reset action's body: ResetType, a string, and
// nothing else.
func resetParameter(body map[string]json.RawMessage) (string, error) {
	keys := slices.Sorted(maps.Keys(body))
	for _, k := range keys {
		if k != "ResetType" {
			return "", errorf(msgActionParameterUnknown, resetAction, k).about("/" + k)
		}
	}
	raw, ok := body["ResetType"]
	if !ok {
		return "", errorf(msgActionParameterMissing, resetAction, "ResetType")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(msgActionParameterValueTypeError, compact(raw), "ResetType", resetAction).about("/ResetType")
	}
	return s, nil
}
