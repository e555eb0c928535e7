package identity

import (
	"encoding/json"
	"maps"

	"github.com/stratacloud/strata/overcloud/api"
)

// Extra attributes: Keystone keeps the attributes of a user or a project
// that its schema does not name (a user's "project_id", for instance) and
// returns them beside the others, so that a client can store its own
// data on the resource. These are kept as the client sent them.

// Bounds on one resource's extra attributes, so that its record stays
// far below etcd's value size.
const (
	maxExtraAttributes = 64
	maxExtraBytes      = 64 << 10
)

// validExtra checks the extra attributes of a resource (field names it).
func validExtra(field string, extra map[string]json.RawMessage) error {
	if len(extra) > maxExtraAttributes {
		return api.BadRequest("Invalid input for field '%s': at most %d attributes beyond the known ones are kept.", field, maxExtraAttributes)
	}
	size := 0
	for k, v := range extra {
		size += len(k) + len(v)
	}
	if size > maxExtraBytes {
		return api.BadRequest("Invalid input for field '%s': the attributes beyond the known ones take more than %d bytes.", field, maxExtraBytes)
	}
	return nil
}

// extraAttributes returns the members of the JSON object b that are not in
// known, nor reserved to the server (id, links and the like).
func extraAttributes(b []byte, known map[string]bool) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var extra map[string]json.RawMessage
	for k, v := range all {
		if known[k] || reservedAttributes[k] {
			continue
		}
		if extra == nil {
			extra = map[string]json.RawMessage{}
		}
		extra[k] = v
	}
	return extra, nil
}

// reservedAttributes are never stored as extra attributes: the server
// sets them, or they would shadow one the server reports.
var reservedAttributes = map[string]bool{
	"id": true, "links": true, "extra": true, "password_expires_at": true,
	"password_hash": true, "federated": true, "is_domain": true, "parent_id": true,
}

// mergeExtra returns old with upd's attributes set over it.
func mergeExtra(old, upd map[string]json.RawMessage) map[string]json.RawMessage {
	if len(upd) == 0 {
		return old
	}
	out := maps.Clone(old)
	if out == nil {
		out = map[string]json.RawMessage{}
	}
	maps.Copy(out, upd)
	return out
}

// withExtra adds the extra attributes to a view; the view's own keys win.
func withExtra(view map[string]any, extra map[string]json.RawMessage) map[string]any {
	for k, v := range extra {
		if _, ok := view[k]; !ok {
			view[k] = v
		}
	}
	return view
}

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
