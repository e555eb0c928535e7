package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
	"github.com/stratacloud/strata/undercloud/stack"
)

// apiError is an error raised by the API itself, already worded the way
// Ironic words it, with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// errNotFound is the answer for a path that does not exist (or not at the
// requested version).
var errNotFound = errorf(http.StatusNotFound, "The resource could not be found.")

// ErrUnauthorized is returned by an Authenticator for a request without a
// valid credential.
var ErrUnauthorized = errors.New("authentication required")

// ErrForbidden is returned by an Authenticator for a valid credential that
// does not allow the request.
var ErrForbidden = errors.New("access was denied to this resource")

// subjectError records which resource a domain error is about, so that the
// message can name it.
type subjectError struct {
	kind  string // "Node", "Port"
	ident string
	err   error
}

func (e *subjectError) Error() string { return e.kind + " " + e.ident + ": " + e.err.Error() }
func (e *subjectError) Unwrap() error { return e.err }

func about(kind, ident string, err error) error {
	if err == nil {
		return nil
	}
	return &subjectError{kind: kind, ident: ident, err: err}
}

func nodeErr(ident string, err error) error { return about("Node", ident, err) }

// errorRule maps one kind of error to its HTTP status and public message.
type errorRule struct {
	match   func(error) bool
	status  int
	message func(error) string
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func as[T error]() func(error) bool {
	return func(err error) bool {
		var t T
		return errors.As(err, &t)
	}
}

// errorRules is the one table that turns errors into HTTP answers. The first
// rule that matches wins.
var errorRules = []errorRule{
	{as[*apiError](), 0, func(err error) string {
		var e *apiError
		errors.As(err, &e)
		return e.msg
	}},
	{is(ErrUnauthorized), http.StatusUnauthorized, func(err error) string {
		return sentence(domainText(err, ErrUnauthorized))
	}},
	{is(conductor.ErrAgentToken), http.StatusUnauthorized, func(err error) string {
		return sentence(strings.TrimSuffix(err.Error(), ": "+conductor.ErrAgentToken.Error()) + ": invalid agent token (missing, wrong, or from an earlier boot)")
	}},
	{is(stack.ErrBadCredential), http.StatusUnauthorized, func(err error) string {
		return sentence(err.Error())
	}},
	{is(stack.ErrNeedsConfirm), http.StatusConflict, func(err error) string {
		return sentence(err.Error())
	}},
	{is(stack.ErrMissingImages), http.StatusConflict, func(err error) string {
		return sentence(err.Error())
	}},
	{is(ErrForbidden), http.StatusForbidden, func(err error) string {
		return sentence(domainText(err, ErrForbidden))
	}},
	{as[*http.MaxBytesError](), http.StatusRequestEntityTooLarge, func(err error) string {
		var e *http.MaxBytesError
		errors.As(err, &e)
		return fmt.Sprintf("The request body is larger than the limit of %d bytes.", e.Limit)
	}},
	{as[*inventory.TransitionError](), http.StatusBadRequest, func(err error) string {
		var e *inventory.TransitionError
		errors.As(err, &e)
		node := "the node"
		if s := subjectOf(err); s != "" {
			node = "node " + strconv.Quote(s)
		}
		return fmt.Sprintf("The requested action %q can not be performed on %s while it is in state %q.",
			string(e.Event), node, e.State)
	}},
	{is(inventory.ErrInvalidTransition), http.StatusBadRequest, func(err error) string {
		return sentence(domainText(err, inventory.ErrInvalidTransition))
	}},
	{as[*inventory.InvalidError](), http.StatusBadRequest, func(err error) string {
		var e *inventory.InvalidError
		errors.As(err, &e)
		if e.Field == "" {
			return sentence(e.Reason)
		}
		return sentence("Invalid " + e.Field + ": " + e.Reason)
	}},
	{is(inventory.ErrInvalid), http.StatusBadRequest, func(err error) string {
		return sentence(domainText(err, inventory.ErrInvalid))
	}},
	{is(inventory.ErrNotFound), http.StatusNotFound, func(err error) string {
		var s *subjectError
		if errors.As(err, &s) {
			return fmt.Sprintf("%s %s could not be found.", s.kind, s.ident)
		}
		return sentence(domainText(err, inventory.ErrNotFound))
	}},
	{is(inventory.ErrDuplicate), http.StatusConflict, func(err error) string {
		return sentence(domainText(err, inventory.ErrDuplicate))
	}},
	{is(inventory.ErrLocked), http.StatusConflict, func(err error) string {
		return sentence(domainText(err, inventory.ErrLocked))
	}},
	{is(inventory.ErrInvalidState), http.StatusConflict, func(err error) string {
		return sentence(domainText(err, inventory.ErrInvalidState))
	}},
	{is(inventory.ErrConcurrencyLimit), http.StatusServiceUnavailable, func(err error) string {
		// Named first: clients (the strata CLI) wait for a slot on it.
		return "Concurrent action limit exceeded: " + domainText(err, inventory.ErrConcurrencyLimit) + "."
	}},
	{is(inventory.ErrNoWorkers), http.StatusServiceUnavailable, func(error) string {
		return "Requested action cannot be performed due to lack of free conductor workers."
	}},
	{is(nodestore.ErrFenced), http.StatusConflict, func(error) string {
		return "The node's reservation changed while the request was being processed; please retry."
	}},
	{is(store.ErrConflict), http.StatusConflict, func(error) string {
		return "The resource changed concurrently while the request was being processed; please retry."
	}},
	{is(context.DeadlineExceeded), http.StatusServiceUnavailable, func(error) string {
		return "The request timed out; please retry."
	}},
	{is(context.Canceled), http.StatusServiceUnavailable, func(error) string {
		return "The request was canceled."
	}},
}

// httpStatus returns the status and public message for err. Errors that
// match no rule are internal: 500 with a message that gives nothing away.
func httpStatus(err error) (int, string) {
	for _, r := range errorRules {
		if r.match(err) {
			status := r.status
			if status == 0 {
				var e *apiError
				errors.As(err, &e)
				status = e.status
			}
			return status, r.message(err)
		}
	}
	return http.StatusInternalServerError, "The server encountered an internal error and could not complete the request."
}

// subjectOf names the resource an error is about, or "" when unknown.
func subjectOf(err error) string {
	var s *subjectError
	if errors.As(err, &s) {
		return s.ident
	}
	return ""
}

// domainText is the part of a domain error's text that describes it, without
// the text of the sentinel it wraps (store errors read "port X could not be
// found: not found").
func domainText(err, sentinel error) string {
	var s *subjectError
	if errors.As(err, &s) {
		err = s.err
	}
	text := strings.TrimSuffix(err.Error(), ": "+sentinel.Error())
	if text == "" {
		text = sentinel.Error()
	}
	return text
}

// sentence capitalizes s and ends it with a period, as Ironic's messages are.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// faultBody is the inner document of an Ironic error; it travels JSON-encoded
// as the string value of error_message.
type faultBody struct {
	Faultstring string  `json:"faultstring"`
	Faultcode   string  `json:"faultcode"`
	Debuginfo   *string `json:"debuginfo"`
}

// writeError writes status and msg as Ironic does.
func writeError(w http.ResponseWriter, status int, msg string) {
	code := "Client"
	if status >= 500 {
		code = "Server"
	}
	inner, _ := json.Marshal(faultBody{Faultstring: msg, Faultcode: code})
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Baremetal API"`)
	}
	writeJSON(w, status, map[string]string{"error_message": string(inner)})
}
