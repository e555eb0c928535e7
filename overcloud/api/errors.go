package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/stratacloud/strata/internal/store"
)

// Error kinds. A handler returns an *Error of one of these kinds (made by
// BadRequest, NotFound, ...) and Errors turns it into the status code and
// body of the service's format. Match them with errors.Is.
var (
	ErrBadRequest           = errors.New("bad request")
	ErrUnauthorized         = errors.New("unauthorized")
	ErrForbidden            = errors.New("forbidden")
	ErrNotFound             = errors.New("not found")
	ErrMethodNotAllowed     = errors.New("method not allowed")
	ErrNotAcceptable        = errors.New("not acceptable")
	ErrConflict             = errors.New("conflict")
	ErrTooLarge             = errors.New("request entity too large")
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	ErrTooManyRequests      = errors.New("too many requests")
	ErrUnavailable          = errors.New("service unavailable")
)

// statusTable is the one translation from error kinds, the API's and the
// store's, to HTTP status codes. Anything else is a 500.
var statusTable = []struct {
	kind   error
	status int
}{
	{ErrBadRequest, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrNotAcceptable, http.StatusNotAcceptable},
	{ErrConflict, http.StatusConflict},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType},
	{ErrTooManyRequests, http.StatusTooManyRequests},
	{ErrUnavailable, http.StatusServiceUnavailable},
	{store.ErrNotFound, http.StatusNotFound},
	{store.ErrExists, http.StatusConflict},
	{store.ErrConflict, http.StatusConflict},
}

// Error is an error whose message is meant for the client: it says what
// was wrong with the request and nothing about the server's insides.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrNotFound) and the like work.
func (e *Error) Unwrap() error { return e.Kind }

func newError(kind error, format string, args []any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with a message naming the field and the reason.
func BadRequest(format string, args ...any) error { return newError(ErrBadRequest, format, args) }

// Unauthorized is a 401.
func Unauthorized(format string, args ...any) error {
	return newError(ErrUnauthorized, format, args)
}

// Forbidden is a 403.
func Forbidden(format string, args ...any) error { return newError(ErrForbidden, format, args) }

// NotFound is a 404.
func NotFound(format string, args ...any) error { return newError(ErrNotFound, format, args) }

// Conflict is a 409.
func Conflict(format string, args ...any) error { return newError(ErrConflict, format, args) }

// NotAcceptable is a 406.
func NotAcceptable(format string, args ...any) error {
	return newError(ErrNotAcceptable, format, args)
}

// Status returns the HTTP status for err and the message the client may
// see. Errors that are not *Error get the generic text of their status,
// so that nothing internal (keys, addresses, stack) leaks.
func Status(err error) (int, string) {
	status := http.StatusInternalServerError
	for _, row := range statusTable {
		if errors.Is(err, row.kind) {
			status = row.status
			break
		}
	}
	var e *Error
	if errors.As(err, &e) && status != http.StatusInternalServerError {
		return status, e.Message
	}
	return status, genericMessage(status)
}

func genericMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "The request you have made requires authentication."
	case http.StatusForbidden:
		return "You are not authorized to perform the requested action."
	case http.StatusNotFound:
		return "Could not find the requested resource."
	case http.StatusConflict:
		return "Conflict occurred attempting to store the resource."
	case http.StatusInternalServerError:
		return "An unexpected error prevented the server from fulfilling your request."
	}
	return http.StatusText(status) + "."
}

// ErrorFormat builds the JSON body of an error response in one service's
// dialect.
type ErrorFormat func(status int, message string) any

// KeystoneFormat is identity's error body:
// {"error":{"code":404,"message":"...","title":"Not Found"}}.
func KeystoneFormat(status int, message string) any {
	return map[string]any{"error": map[string]any{
		"code":    status,
		"message": message,
		"title":   http.StatusText(status),
	}}
}

// NovaFormat is the compute and volume error body, keyed by a name per
// status: {"itemNotFound":{"code":404,"message":"..."}}.
func NovaFormat(status int, message string) any {
	name := map[int]string{
		http.StatusBadRequest:            "badRequest",
		http.StatusUnauthorized:          "unauthorized",
		http.StatusForbidden:             "forbidden",
		http.StatusNotFound:              "itemNotFound",
		http.StatusMethodNotAllowed:      "badMethod",
		http.StatusNotAcceptable:         "notAcceptable",
		http.StatusConflict:              "conflictingRequest",
		http.StatusRequestEntityTooLarge: "overLimit",
		http.StatusUnsupportedMediaType:  "badMediaType",
		http.StatusTooManyRequests:       "overLimit",
		http.StatusServiceUnavailable:    "serviceUnavailable",
	}[status]
	if name == "" {
		name = "computeFault"
	}
	return map[string]any{name: map[string]any{"code": status, "message": message}}
}

// Errors writes handler errors in one service's format.
type Errors struct {
	// Format builds the body; nil means KeystoneFormat.
	Format ErrorFormat
	// Logger records unexpected (5xx) errors with their detail, which the
	// client never sees. Nil discards.
	Logger *slog.Logger
	// AuthURI, when set, is sent in a WWW-Authenticate header on 401s so
	// that clients know where to get a token.
	AuthURI string
}

// Func is an HTTP handler that returns its error instead of writing it.
type Func func(w http.ResponseWriter, r *http.Request) error

// Handle adapts f to an http.Handler that writes f's error, if any.
func (e *Errors) Handle(f Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			e.Write(w, r, err)
		}
	})
}

// Write sends err as an error response.
func (e *Errors) Write(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := Status(err)
	if status >= 500 && e.Logger != nil {
		e.Logger.ErrorContext(r.Context(), "request failed",
			"method", r.Method, "path", r.URL.Path,
			"request_id", RequestIDFrom(r.Context()), "err", err)
	}
	if status == http.StatusUnauthorized && e.AuthURI != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", e.AuthURI))
	}
	format := e.Format
	if format == nil {
		format = KeystoneFormat
	}
	WriteJSON(w, status, format(status, msg))
}
