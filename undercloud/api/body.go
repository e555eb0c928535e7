package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// MaxBodyBytes caps the size of a request body.
const MaxBodyBytes = 1 << 20

// readBody reads the whole request body; ServeHTTP caps it at MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("The request body could not be read: %v.", err)
	}
	return b, nil
}

// decodeJSON parses a JSON document keeping numbers exact, and refuses
// trailing data.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("Malformed JSON in the request body: unexpected data after the JSON document.")
	}
	return nil
}

func malformed(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("Malformed JSON in the request body at offset %d: %v.", se.Offset, se)
	case errors.As(err, &te):
		return badRequest("The request body must be a JSON %s, not %s.", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("Malformed JSON in the request body: unexpected end of input.")
	default:
		return badRequest("Malformed JSON in the request body: %v.", err)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}

// object is a decoded JSON object whose members are read one by one with
// type checks that name the member.
type object map[string]any

// readObject reads the body as a JSON object. An empty body is an empty
// object when allowEmpty is set.
func readObject(r *http.Request, allowEmpty bool) (object, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return object{}, nil
		}
		return nil, badRequest("The request body is empty; a JSON object is required.")
	}
	var v any
	if err := decodeJSON(b, &v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("The request body must be a JSON object, not %s.", describe(v))
	}
	return object(m), nil
}

// allow refuses members outside allowed, naming them all.
func (o object) allow(allowed ...string) error {
	var unknown []string
	for k := range o {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return badRequest("Unknown attribute(s) in the request body: %s. Valid attributes are: %s.",
			strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

// has reports whether name is present (with any value, null included).
func (o object) has(name string) bool {
	_, ok := o[name]
	return ok
}

// str returns a string member; null and absence give "".
func (o object) str(name string) (string, error) {
	v, ok := o[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badRequest("Invalid value for %s: expected a string, got %s.", name, describe(v))
	}
	return s, nil
}

// boolean returns a boolean member, accepting the strings Ironic accepts;
// null and absence give nil.
func (o object) boolean(name string) (*bool, error) {
	v, ok := o[name]
	if !ok || v == nil {
		return nil, nil
	}
	b, err := toBool(name, v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// list returns an array member; null and absence give nil.
func (o object) list(name string) ([]any, error) {
	v, ok := o[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, badRequest("Invalid value for %s: expected an array, got %s.", name, describe(v))
	}
	return l, nil
}

// toBool converts a JSON boolean or one of the strings of oslo's strict
// bool_from_string.
func toBool(name string, v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if b, ok := parseBool(v); ok {
			return b, nil
		}
	}
	return false, badRequest("Invalid value for %s: expected a boolean, got %s.", name, describe(v))
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

// describe names a decoded JSON value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number (" + v.String() + ")"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "an unsupported value"
}
