package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// maxLimit is the most items a list returns at once, and the default.
const maxLimit = 1000

// query is the query string of a request, checked against the parameters an
// endpoint accepts.
type query struct{ vals url.Values }

func parseQuery(r *http.Request, allowed ...string) (query, error) {
	vals := r.URL.Query()
	var unknown []string
	for k := range vals {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return query{}, badRequest("Unknown argument(s): %s. This resource accepts: %s.",
			strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return query{vals}, nil
}

func (q query) get(name string) (string, bool) {
	if !q.vals.Has(name) {
		return "", false
	}
	return q.vals.Get(name), true
}

// since refuses a parameter that is newer than the request.
func (q query) since(name string, minor int, v version) error {
	if _, ok := q.get(name); ok && !v.atLeast(minor) {
		return tooNew("the "+name+" parameter", minor, v)
	}
	return nil
}

func (q query) boolean(name string) (*bool, error) {
	s, ok := q.get(name)
	if !ok {
		return nil, nil
	}
	b, ok := parseBool(s)
	if !ok {
		return nil, badRequest("Invalid %s: %q is not a boolean.", name, s)
	}
	return &b, nil
}

func (q query) limit() (int, error) {
	s, ok := q.get("limit")
	if !ok {
		return maxLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest("Expected an integer for limit: %s.", s)
	}
	if n <= 0 {
		return 0, badRequest("Limit must be positive, got %d.", n)
	}
	return min(n, maxLimit), nil
}

func (q query) marker() (string, error) {
	s, ok := q.get("marker")
	if !ok {
		return "", nil
	}
	if !inventory.IsUUID(s) {
		return "", badRequest("Expected a UUID for marker: %s.", s)
	}
	return strings.ToLower(s), nil
}

func (q query) sortDir() (desc bool, err error) {
	s, ok := q.get("sort_dir")
	if !ok {
		return false, nil
	}
	switch s {
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, badRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'.", s)
}

// fields is the fields= selection, or nil when absent.
func (q query) fields(v version) ([]string, error) {
	s, ok := q.get("fields")
	if !ok {
		return nil, nil
	}
	if !v.atLeast(v8FieldsSelector) {
		return nil, tooNew("the fields parameter", v8FieldsSelector, v)
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, badRequest("The fields parameter names no field.")
	}
	return out, nil
}

// listing is one page of a list.
type listing[T any] struct {
	items []*T
	more  bool
}

// pageOf sorts all by sortKey (creation order when ""), starts after the
// item with uuid marker, keeps the items for which keep is true, and cuts at
// limit. uuidOf gives an item's uuid.
func pageOf[T any](all []*T, fields []field[T], uuidOf func(*T) string, keep func(*T) bool,
	sortKey string, desc bool, marker string, limit int) (listing[T], bool) {
	sorted := slices.Clone(all)
	if sortKey != "" {
		f, _ := lookupField(fields, sortKey)
		slices.SortStableFunc(sorted, func(a, b *T) int { return compareValues(f.get(a), f.get(b)) })
	}
	if desc {
		slices.Reverse(sorted)
	}
	start := 0
	if marker != "" {
		i := slices.IndexFunc(sorted, func(t *T) bool { return uuidOf(t) == marker })
		if i < 0 {
			return listing[T]{}, false
		}
		start = i + 1
	}
	var out listing[T]
	for _, t := range sorted[start:] {
		if !keep(t) {
			continue
		}
		if len(out.items) == limit {
			out.more = true
			break
		}
		out.items = append(out.items, t)
	}
	return out, true
}

// checkSortKey validates sort_key against the table.
func checkSortKey[T any](fields []field[T], key string, v version) error {
	if key == "" {
		return nil
	}
	f, ok := lookupField(fields, key)
	if !ok || f.nosort {
		return badRequest("The sort_key value %q is an invalid field for sorting.", key)
	}
	if !v.atLeast(f.since) {
		return tooNew("the field "+key, f.since, v)
	}
	return nil
}

// compareValues orders field values: null first, then by value.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch a := a.(type) {
	case string:
		if b, ok := b.(string); ok {
			return strings.Compare(a, b)
		}
	case bool:
		if b, ok := b.(bool); ok {
			switch {
			case a == b:
				return 0
			case !a:
				return -1
			}
			return 1
		}
	case time.Time:
		if b, ok := b.(time.Time); ok {
			return a.Compare(b)
		}
	case json.Number:
		if b, ok := b.(json.Number); ok {
			x, _ := a.Float64()
			y, _ := b.Float64()
			return cmp.Compare(x, y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// nextLink is the URL of the page after items, keeping the query that
// produced this one.
func (s *server) nextLink(r *http.Request, path string, q query, limit int, lastUUID string) string {
	vals := url.Values{}
	for k, v := range q.vals {
		if k != "limit" && k != "marker" {
			vals[k] = v
		}
	}
	vals.Set("limit", strconv.Itoa(limit))
	vals.Set("marker", lastUUID)
	return s.base(r) + "/v1/" + path + "?" + vals.Encode()
}
