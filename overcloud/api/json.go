package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"time"
)

// MaxBodySize is the largest request body DecodeJSON reads.
const MaxBodySize = 1 << 20

// TimeFormat is how every timestamp is written: UTC, microseconds and a
// literal Z, the one shape Tempest, keystoneauth and gophercloud all parse.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t in TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime accepts the ISO 8601 forms clients send (with or without a
// fraction and a zone; no zone means UTC).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not an ISO 8601 date and time")
}

// DecodeJSON reads the request body into v and refuses, with a 400 (or
// 413, 415) that says why, a body that is missing, too large, not JSON,
// of the wrong type for a field, or followed by trailing data.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
			return &Error{Kind: ErrUnsupportedMediaType, Message: "Content-Type must be application/json."}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &Error{Kind: ErrTooLarge, Message: "Request body is larger than " + strconv.Itoa(MaxBodySize) + " bytes."}
		}
		return BadRequest("Could not read the request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return BadRequest("A JSON request body is required.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("Request body has data after the JSON value.")
	}
	return nil
}

func isJSONSuffix(mt string) bool {
	return len(mt) > 5 && mt[len(mt)-5:] == "+json"
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return BadRequest("Request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return BadRequest("Request body must be a JSON %s, not %s.", jsonKind(typ.Type), typ.Value)
		}
		return BadRequest("Invalid input for field '%s': expected %s, got %s.", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("Request body is truncated JSON.")
	}
	var bad *Error
	if errors.As(err, &bad) {
		return bad
	}
	return BadRequest("Request body could not be decoded: %s.", err.Error())
}

// jsonKind names a Go type the way a JSON Schema would.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// WriteJSON sends v as the JSON body with status. A 204 or 304 gets no body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusNoContent || status == http.StatusNotModified || v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(KeystoneFormat(status, genericMessage(status)))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
