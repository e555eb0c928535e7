package redfish

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/lab/bmc"
)

// The boot override's values (ComputerSystem schema, Boot), and how they
// map onto a machine's bmc.BootConfig.
var (
	bootTargets = []struct{ name, device string }{
		{"None", bmc.BootNone},
		{"Pxe", bmc.BootPXE},
		{"Hdd", bmc.BootDisk},
		{"Cd", bmc.BootCDROM},
		{"BiosSetup", bmc.BootBIOS},
	}
	bootEnabled = []string{"Disabled", "Once", "Continuous"}
	bootModes   = []string{"UEFI", "Legacy"}
)

func bootTargetNames() []string {
	out := make([]string, len(bootTargets))
	for i, t := range bootTargets {
		out[i] = t.name
	}
	return out
}

// bootOverride is the Redfish view of a boot override.
type bootOverride struct {
	target, enabled, mode string
}

func toOverride(b bmc.BootConfig) bootOverride {
	o := bootOverride{target: "None", enabled: "Disabled", mode: "Legacy"}
	if b.UEFI {
		o.mode = "UEFI"
	}
	for _, t := range bootTargets {
		if t.device == b.Device && b.Device != bmc.BootNone {
			o.target = t.name
			o.enabled = "Once"
			if b.Persistent {
				o.enabled = "Continuous"
			}
		}
	}
	return o
}

// config is the machine's boot override for o: an override that is
// disabled, or targets None, is no override; the mode is kept either way.
func (o bootOverride) config() bmc.BootConfig {
	b := bmc.BootConfig{UEFI: o.mode == "UEFI"}
	if o.enabled == "Disabled" {
		return b
	}
	for _, t := range bootTargets {
		if t.name == o.target {
			b.Device = t.device
		}
	}
	b.Persistent = b.Device != bmc.BootNone && o.enabled == "Continuous"
	return b
}

// renderBoot is the Boot property of a ComputerSystem. Its mode is the
// machine's BootConfig.UEFI, also when no override is set.
func renderBoot(b bmc.BootConfig) object {
	o := toOverride(b)
	return object{
		"BootSourceOverrideTarget":                          o.target,
		"BootSourceOverrideEnabled":                         o.enabled,
		"BootSourceOverrideMode":                            o.mode,
		"BootSourceOverrideTarget@Redfish.AllowableValues":  bootTargetNames(),
		"BootSourceOverrideEnabled@Redfish.AllowableValues": bootEnabled,
		"BootSourceOverrideMode@Redfish.AllowableValues":    bootModes,
	}
}

// patchSystem changes a system's boot override, the one writable part of a
// ComputerSystem. The whole body is checked before anything changes; an
// If-Match header must carry the system's current ETag.
func (v *view) patchSystem(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	body, err := decodeObject(r)
	if err != nil {
		return reply{}, err
	}
	unlock, err := sys.lock(r.Context())
	if err != nil {
		return reply{}, err
	}
	defer unlock()

	current, err := sys.render(r.Context())
	if err != nil {
		return reply{}, err
	}
	tag, _ := json.Marshal(current)
	if err := ifMatch(r, etag(tag)); err != nil {
		return reply{}, err
	}
	b, err := bootPatch(body, current, sys.m.Boot())
	if err != nil {
		return reply{}, err
	}
	if err := sys.m.SetBoot(r.Context(), b); err != nil {
		return reply{}, err
	}
	o := toOverride(b)
	v.s.log.Info("boot override set", "system", sys.id, "target", o.target, "enabled", o.enabled, "mode", o.mode)
	updated, err := sys.render(r.Context())
	if err != nil {
		return reply{}, err
	}
	return reply{body: updated}, nil
}

// bootPatch checks a PATCH body against the system's current
// representation and returns the boot override it asks for.
func bootPatch(body map[string]json.RawMessage, current object, b bmc.BootConfig) (bmc.BootConfig, error) {
	if len(body) == 0 {
		return b, errorf(msgEmptyJSON)
	}
	if err := unknownOrReadOnly(body, current, "", "Boot"); err != nil {
		return b, err
	}
	raw, ok := body["Boot"]
	if !ok { // only annotations
		return b, errorf(msgEmptyJSON)
	}
	var boot map[string]json.RawMessage
	if err := json.Unmarshal(raw, &boot); err != nil || boot == nil {
		return b, errorf(msgPropertyValueTypeError, compact(raw), "Boot").about("/Boot")
	}
	if len(boot) == 0 {
		return b, errorf(msgEmptyJSON)
	}
	writable := []string{"BootSourceOverrideTarget", "BootSourceOverrideEnabled", "BootSourceOverrideMode"}
	if err := unknownOrReadOnly(boot, current["Boot"].(object), "/Boot", writable...); err != nil {
		return b, err
	}

	o := toOverride(b)
	fields := []struct {
		name    string
		allowed []string
		dst     *string
	}{
		{"BootSourceOverrideTarget", bootTargetNames(), &o.target},
		{"BootSourceOverrideEnabled", bootEnabled, &o.enabled},
		{"BootSourceOverrideMode", bootModes, &o.mode},
	}
	for _, f := range fields {
		raw, ok := boot[f.name]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return b, errorf(msgPropertyValueTypeError, compact(raw), f.name).about("/Boot/" + f.name)
		}
		if !slices.Contains(f.allowed, s) {
			return b, errorf(msgPropertyValueNotInList, s, f.name).about("/Boot/" + f.name)
		}
		*f.dst = s
	}
	// A target given alone turns a disabled override on, for one boot, as
	// BMCs commonly do.
	if _, given := boot["BootSourceOverrideEnabled"]; !given && o.enabled == "Disabled" {
		if _, targeted := boot["BootSourceOverrideTarget"]; targeted && o.target != "None" {
			o.enabled = "Once"
		}
	}
	return o.config(), nil
}

// unknownOrReadOnly rejects a property of body other than the writable
// ones (and annotations, which are ignored): read only if the resource has
// it, unknown if not.
func unknownOrReadOnly(body map[string]json.RawMessage, resource object, prefix string, writable ...string) error {
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if slices.Contains(writable, k) || strings.HasPrefix(k, "@") {
			continue
		}
		if _, ok := resource[k]; ok {
			return errorf(msgPropertyNotWritable, k).about(prefix + "/" + k)
		}
		return errorf(msgPropertyUnknown, k).about(prefix + "/" + k)
	}
	return nil
}

// compact shortens a JSON value for a message.
func compact(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return s
}
