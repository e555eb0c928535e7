package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
)

// handlerFunc is what every endpoint implements: it returns the value to send
// as JSON (or a *response for other codes), or an error that the adapter
// translates through errorRules.
type handlerFunc func(r *http.Request) (any, error)

// response is a result with a status other than 200 and possibly no body.
type response struct {
	status   int
	body     any // nil: no body
	location string
}

func created(body any, location string) *response {
	return &response{status: http.StatusCreated, body: body, location: location}
}

func accepted(location string) *response {
	return &response{status: http.StatusAccepted, location: location}
}

func noContent() *response { return &response{status: http.StatusNoContent} }

// adapt turns a handlerFunc into an http.Handler: the one place where results
// and errors become HTTP responses.
func (s *server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch v := v.(type) {
		case *response:
			if v.location != "" {
				w.Header().Set("Location", v.location)
			}
			if v.body == nil {
				w.WriteHeader(v.status)
				return
			}
			writeJSON(w, v.status, v.body)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	})
}

// fail writes err as an Ironic error response, logging the ones that are the
// server's fault.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpStatus(err)
	// A full worker pool (503) is back-pressure the client retries, not a
	// fault: the request line below records it.
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
	}
	writeError(w, status, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error_message": "{\"faultstring\": \"The response could not be encoded.\", \"faultcode\": \"Server\", \"debuginfo\": null}"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
