package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// APIError is an error answer of the bare metal API.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Fault is the server's faultstring: what went wrong, in its words.
	Fault string
	// Code is the faultcode, Client or Server.
	Code string
}

func (e *APIError) Error() string { return e.Fault }

// notFoundError is a resource the API does not know.
type notFoundError struct {
	kind, ident string
}

func (e *notFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.kind, e.ident) }

// apiError turns a gophercloud error into an *APIError carrying the
// server's own message; other errors are returned as they are.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var rc gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &rc) {
		return &APIError{StatusCode: rc.Actual, Fault: faultString(rc.Actual, rc.Body), Code: faultCode(rc.Body)}
	}
	var prc *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &prc) {
		return &APIError{StatusCode: prc.Actual, Fault: faultString(prc.Actual, prc.Body), Code: faultCode(prc.Body)}
	}
	return err
}

// resourceError is apiError for a call about one resource: a 404 becomes
// "<kind> "<ident>" not found".
func resourceError(err error, kind, ident string) error {
	err = apiError(err)
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
		return &notFoundError{kind: kind, ident: ident}
	}
	return err
}

func isNotFound(err error) bool {
	var nf *notFoundError
	var ae *APIError
	return errors.As(err, &nf) || errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// ironicFault is the inner error document of Ironic's error body.
type ironicFault struct {
	FaultString string `json:"faultstring"`
	FaultCode   string `json:"faultcode"`
}

// decodeFault reads Ironic's error body: {"error_message": "<JSON string
// of a fault>"}, where some servers put the fault object itself.
func decodeFault(body []byte) (ironicFault, bool) {
	var outer struct {
		ErrorMessage json.RawMessage `json:"error_message"`
	}
	if json.Unmarshal(body, &outer) != nil || len(outer.ErrorMessage) == 0 {
		return ironicFault{}, false
	}
	var f ironicFault
	var inner string
	if json.Unmarshal(outer.ErrorMessage, &inner) == nil {
		if json.Unmarshal([]byte(inner), &f) == nil && f.FaultString != "" {
			return f, true
		}
		return ironicFault{FaultString: inner}, inner != ""
	}
	if json.Unmarshal(outer.ErrorMessage, &f) == nil && f.FaultString != "" {
		return f, true
	}
	return ironicFault{}, false
}

func faultCode(body []byte) string {
	f, _ := decodeFault(body)
	return f.FaultCode
}

// faultString is the human message of an error response.
func faultString(status int, body []byte) string {
	if f, ok := decodeFault(body); ok {
		return strings.TrimSpace(f.FaultString)
	}
	// Keystone and other OpenStack services.
	var ks struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &ks) == nil && ks.Error.Message != "" {
		return ks.Error.Message
	}
	text := strings.TrimSpace(string(body))
	if text == "" || strings.HasPrefix(text, "<") || len(text) > 500 {
		return fmt.Sprintf("the API answered %d %s", status, http.StatusText(status))
	}
	return text
}

// isConnectionError reports whether err means the server was not reached.
func isConnectionError(err error) bool {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne)
}

// describeError is the one line printed after "strata: ".
func describeError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Sprintf("cannot reach %s: %v", hostOf(ue.URL), oe.Err)
		}
		return fmt.Sprintf("cannot reach %s: %v", hostOf(ue.URL), ue.Err)
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}

// hostOf is the scheme and host of a URL, without the path, query or any
// user information.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the API"
	}
	return u.Scheme + "://" + u.Host
}

// redactURL is raw without any user information (a password can hide
// there).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the endpoint"
	}
	u.User = nil
	return u.String()
}
