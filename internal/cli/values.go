package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// parseKeyValue splits "key=value". The value is read as JSON when it is
// valid JSON (4, true, [1,2], {"a":1}, "quoted"), and kept as a string
// otherwise, as the openstack CLI does for --property and friends.
func parseKeyValue(flag, s string) (string, any, error) {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", nil, usageErrorf("--%s: %q is not KEY=VALUE", flag, s)
	}
	return k, jsonOrString(v), nil
}

func jsonOrString(v string) any {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil || dec.More() {
		return v
	}
	// Trailing garbage after a JSON value ("4x") keeps it a string.
	if _, err := dec.Token(); err != io.EOF {
		return v
	}
	return out
}

// parseKeyValues turns repeated KEY=VALUE flags into a map; nil when none.
func parseKeyValues(flag string, ss []string) (map[string]any, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(ss))
	for _, s := range ss {
		k, v, err := parseKeyValue(flag, s)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// parseStringMap is parseKeyValues for maps of strings (a port's
// local_link_connection).
func parseStringMap(flag string, ss []string) (map[string]any, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(ss))
	for _, s := range ss {
		k, v, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErrorf("--%s: %q is not KEY=VALUE", flag, s)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// pointerEscape escapes a key for a JSON Pointer path (RFC 6901).
func pointerEscape(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// readJSONArg reads a JSON argument given inline, as a file path, or as
// "-" for standard input (the openstack CLI's convention for steps).
func readJSONArg(flag, arg string, stdin io.Reader, into any) error {
	var data []byte
	switch {
	case arg == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("--%s: reading standard input: %v", flag, err)
		}
		data = b
	case looksLikeJSON(arg):
		data = []byte(arg)
	default:
		b, err := os.ReadFile(arg)
		if err != nil {
			return usageErrorf("--%s: %q is neither JSON nor a readable file: %v", flag, arg, err)
		}
		data = b
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return usageErrorf("--%s: not valid JSON for this flag: %v", flag, err)
	}
	return nil
}

func looksLikeJSON(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
}
