package api

import (
	"slices"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// checkPatch validates a JSON Patch against a field table before it is
// applied: every operation must be about a field the client may change (a
// test may look at any field that is not secret) and that exists at the
// requested version.
func checkPatch[T any](fields []field[T], ops []patchOp, v version) error {
	for _, op := range ops {
		f, ok := lookupField(fields, op.field())
		if !ok || (op.Op != "test" && !f.patch) {
			return badRequest("Cannot patch %s. Only the following can be updated: %s.", op.Path, strings.Join(patchable(fields, v), ", "))
		}
		if !v.atLeast(f.since) {
			return tooNew("the field "+f.name, f.since, v)
		}
		if op.Op == "test" && isSecretPath(op.segments) {
			return badRequest("Cannot test %s: it holds secrets, which are never compared or shown.", op.Path)
		}
	}
	return nil
}

// patchable lists the fields that PATCH may change at version v.
func patchable[T any](fields []field[T], v version) []string {
	var out []string
	for _, f := range fields {
		if f.patch && v.atLeast(f.since) {
			out = append(out, f.name)
		}
	}
	return out
}

// isSecretPath reports whether a path leads to (or contains) a secret.
func isSecretPath(segs []string) bool {
	switch segs[0] {
	case "driver_info", "driver_internal_info", "instance_info":
	default:
		return false
	}
	if len(segs) == 1 {
		return true
	}
	if segs[0] == "instance_info" && (segs[1] == "configdrive" || segs[1] == "image_url") {
		return true
	}
	return slices.ContainsFunc(segs[1:], inventory.IsSecretKey)
}

// patchFields applies ops to t at version v and writes every changed field
// back through its setter. It returns the names of the fields that changed.
func patchFields[T any](fields []field[T], t *T, ops []patchOp, v version) ([]string, error) {
	before, err := rawDoc(fields, t)
	if err != nil {
		return nil, err
	}
	after, err := applyPatch(before, ops)
	if err != nil {
		return nil, err
	}
	for i := range fields {
		f := &fields[i]
		nv := after[f.name] // a removed field is nil
		if jsonEqual(before[f.name], nv) {
			continue
		}
		if f.unsupported {
			if isEmptyValue(nv) {
				continue
			}
			return nil, unsupported(f.name)
		}
		if f.set == nil {
			return nil, badRequest("Cannot patch /%s: the field is read-only.", f.name)
		}
		if err := f.set(t, nv, v); err != nil {
			return nil, err
		}
	}
	now, err := rawDoc(fields, t)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range fields {
		if !jsonEqual(before[f.name], now[f.name]) {
			changed = append(changed, f.name)
		}
	}
	return changed, nil
}

// createFields fills a new t from a POST body at version v: unknown and
// read-only members are refused, as are members newer than v.
func createFields[T any](fields []field[T], t *T, body object, kind string, v version) error {
	names := make([]string, 0, len(body))
	for k := range body {
		names = append(names, k)
	}
	slices.Sort(names)
	var unknown []string
	for _, k := range names {
		if _, ok := lookupField(fields, k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return badRequest("Unknown attribute(s) for a new %s: %s.", kind, strings.Join(unknown, ", "))
	}
	for _, k := range names {
		f, _ := lookupField(fields, k)
		// As Ironic, a newer field is refused unless it is null (or empty).
		if !v.atLeast(f.since) && body[k] != nil && body[k] != "" {
			return tooNew("the field "+k, f.since, v)
		}
	}
	var readOnly []string
	for _, k := range names {
		if f, _ := lookupField(fields, k); !f.create {
			readOnly = append(readOnly, k)
		}
	}
	if len(readOnly) > 0 {
		return badRequest("Read-only attribute(s) can not be set on a new %s: %s.", kind, strings.Join(readOnly, ", "))
	}
	for _, k := range names {
		f, _ := lookupField(fields, k)
		if f.unsupported {
			if !isEmptyValue(body[k]) {
				return unsupported(k)
			}
			continue
		}
		if !v.atLeast(f.since) {
			continue
		}
		if err := f.set(t, body[k], v); err != nil {
			return err
		}
	}
	return nil
}

func unsupported(name string) error {
	return badRequest("The %s field is not supported by this service; it can only be empty.", name)
}
