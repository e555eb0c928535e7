package api

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// patchOp is one operation of an RFC 6902 JSON Patch. The operations Ironic
// accepts (add, replace, remove) are supported, and test, which lets a client
// make a change conditional on the current value.
type patchOp struct {
	Op    string
	Path  string
	Value any
	// hasValue distinguishes "value": null from a missing value.
	hasValue bool
	// segments is Path split into unescaped reference tokens.
	segments []string
}

// String is the operation as Ironic quotes it in error messages.
func (o patchOp) String() string {
	if !o.hasValue {
		return fmt.Sprintf("{'op': '%s', 'path': '%s'}", o.Op, o.Path)
	}
	b, _ := json.Marshal(o.Value)
	return fmt.Sprintf("{'op': '%s', 'path': '%s', 'value': %s}", o.Op, o.Path, b)
}

// field is the top-level member the operation is about.
func (o patchOp) field() string { return o.segments[0] }

// readPatch reads and checks a JSON Patch document from the request body.
func readPatch(r *http.Request) ([]patchOp, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := decodeJSON(b, &doc); err != nil {
		return nil, err
	}
	list, ok := doc.([]any)
	if !ok {
		return nil, badRequest("The request body must be a JSON Patch: an array of operations, not %s.", describe(doc))
	}
	if len(list) == 0 {
		return nil, badRequest("The JSON Patch is empty: give at least one operation.")
	}
	ops := make([]patchOp, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest("Invalid patch operation #%d: expected an object, got %s.", i+1, describe(item))
		}
		op, err := parseOp(i+1, m)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOp(n int, m map[string]any) (patchOp, error) {
	var op patchOp
	for k := range m {
		if k != "op" && k != "path" && k != "value" {
			return op, badRequest("Invalid patch operation #%d: unknown member %q (allowed: op, path, value).", n, k)
		}
	}
	opName, ok := m["op"].(string)
	if !ok {
		return op, badRequest("Invalid patch operation #%d: \"op\" is required and must be a string.", n)
	}
	path, ok := m["path"].(string)
	if !ok {
		return op, badRequest("Invalid patch operation #%d: \"path\" is required and must be a string.", n)
	}
	op.Op, op.Path = opName, path
	op.Value, op.hasValue = m["value"]
	switch opName {
	case "add", "replace", "test":
		if !op.hasValue {
			return op, badRequest("Invalid patch operation #%d (%s %s): \"value\" is required.", n, opName, path)
		}
	case "remove":
		// A value is ignored, as Ironic (and RFC 6902) do; gophercloud sends
		// "value": null with every operation.
		op.Value, op.hasValue = nil, false
	default:
		return op, badRequest("Invalid patch operation #%d: op %q is not supported; use add, replace, remove or test.", n, opName)
	}
	segs, err := splitPointer(path)
	if err != nil {
		return op, badRequest("Invalid patch operation #%d: %v.", n, err)
	}
	op.segments = segs
	return op, nil
}

// splitPointer parses an RFC 6901 JSON Pointer that names a member below the
// root of the document.
func splitPointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return nil, fmt.Errorf("path %q must name a field, as in /name or /driver_info/ipmi_address", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "" && i == 0 {
			return nil, fmt.Errorf("path %q must name a field", p)
		}
		for j := 0; j < len(s); j++ {
			if s[j] == '~' && (j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1')) {
				return nil, fmt.Errorf("path %q has an invalid ~ escape", p)
			}
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs, nil
}

// applyPatch applies ops to doc (a decoded JSON object) in order, and
// returns the patched copy; doc is not changed.
func applyPatch(doc map[string]any, ops []patchOp) (map[string]any, error) {
	cur := any(deepCopy(doc))
	for _, op := range ops {
		next, err := applyOp(cur, op, op.segments)
		if err != nil {
			return nil, badRequest("Couldn't apply patch '%s'. Reason: %v.", op, err)
		}
		cur = next
	}
	return cur.(map[string]any), nil
}

// applyOp applies op at the location segs below node and returns the new node.
func applyOp(node any, op patchOp, segs []string) (any, error) {
	key := segs[0]
	last := len(segs) == 1
	switch n := node.(type) {
	case map[string]any:
		child, exists := n[key]
		if !last {
			if !exists {
				return nil, fmt.Errorf("member %q does not exist", key)
			}
			c, err := applyOp(child, op, segs[1:])
			if err != nil {
				return nil, err
			}
			n[key] = c
			return n, nil
		}
		switch op.Op {
		case "add":
			n[key] = deepCopy(op.Value)
		case "replace":
			if !exists {
				return nil, fmt.Errorf("can't replace a non-existent member %q", key)
			}
			n[key] = deepCopy(op.Value)
		case "remove":
			if !exists {
				return nil, fmt.Errorf("can't remove a non-existent member %q", key)
			}
			delete(n, key)
		case "test":
			if !exists {
				return nil, fmt.Errorf("member %q does not exist", key)
			}
			if !jsonEqual(child, op.Value) {
				return nil, fmt.Errorf("test failed: the value at %s is not the one given", op.Path)
			}
		}
		return n, nil
	case []any:
		if key == "-" && last && op.Op == "add" {
			return append(n, deepCopy(op.Value)), nil
		}
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || (key != "0" && strings.HasPrefix(key, "0")) {
			return nil, fmt.Errorf("%q is not an array index", key)
		}
		limit := len(n)
		if last && op.Op == "add" {
			limit++
		}
		if i >= limit {
			return nil, fmt.Errorf("array index %d is out of range", i)
		}
		if !last {
			c, err := applyOp(n[i], op, segs[1:])
			if err != nil {
				return nil, err
			}
			n[i] = c
			return n, nil
		}
		switch op.Op {
		case "add":
			n = append(n, nil)
			copy(n[i+1:], n[i:])
			n[i] = deepCopy(op.Value)
		case "replace":
			n[i] = deepCopy(op.Value)
		case "remove":
			n = append(n[:i], n[i+1:]...)
		case "test":
			if !jsonEqual(n[i], op.Value) {
				return nil, fmt.Errorf("test failed: the value at %s is not the one given", op.Path)
			}
		}
		return n, nil
	default:
		return nil, fmt.Errorf("%q can not be looked up in %s", key, describe(node))
	}
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			out[i] = deepCopy(val)
		}
		return out
	}
	return v
}

// jsonEqual compares two decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		x, ok1 := new(big.Float).SetString(a.String())
		y, ok2 := new(big.Float).SetString(bn.String())
		return ok1 && ok2 && x.Cmp(y) == 0
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
