package redfish

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/stratacloud/strata/lab/bmc"
)

// registry is the prefix of the message IDs this service answers with: the
// DMTF Base message registry, version 1.16.
const registry = "Base.1.16."

// message is an entry of the Base registry: its key, its text with %1, %2
// standing for the arguments, its severity, and the HTTP status this
// service answers it with.
type message struct {
	key        string
	text       string
	severity   string
	resolution string
	status     int
}

// The messages this service uses, with the Base registry's texts.
var (
	msgGeneralError = message{"GeneralError",
		"A general error has occurred.  See Resolution for information on how to resolve the error, or @Message.ExtendedInfo if Resolution is not provided.",
		"Critical", "None.", http.StatusBadRequest}
	msgInternalError = message{"InternalError",
		"The request failed due to an internal service error.  The service is still operational.",
		"Critical", "Resubmit the request.  If the problem persists, consider resetting the service.", http.StatusInternalServerError}
	msgInvalidURI = message{"InvalidURI",
		"The URI %1 was not found.",
		"Critical", "Provide a valid URI and resubmit the request.", http.StatusNotFound}
	msgResourceNotFound = message{"ResourceNotFound",
		"The requested resource of type %1 named '%2' was not found.",
		"Critical", "Provide a valid resource identifier and resubmit the request.", http.StatusNotFound}
	msgOperationNotAllowed = message{"OperationNotAllowed",
		"The HTTP method is not allowed on this resource.",
		"Critical", "None.", http.StatusMethodNotAllowed}
	msgNoValidSession = message{"NoValidSession",
		"There is no valid session established with the implementation.",
		"Critical", "Establish a session before attempting any operations.", http.StatusUnauthorized}
	msgUnauthorized = message{"ResourceAtUriUnauthorized",
		"While accessing the resource at '%1', the service received an authorization error '%2'.",
		"Critical", "Ensure that the appropriate access is provided for the service in order for it to access the URI.", http.StatusUnauthorized}
	msgSessionLimitExceeded = message{"SessionLimitExceeded",
		"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
		"Critical", "Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions, if supported.", http.StatusServiceUnavailable}
	msgMalformedJSON = message{"MalformedJSON",
		"The request body submitted was malformed JSON and could not be parsed by the receiving service.",
		"Critical", "Ensure that the request body is valid JSON and resubmit the request.", http.StatusBadRequest}
	msgEmptyJSON = message{"EmptyJSON",
		"The request body submitted contained an empty JSON object and the service is unable to process it.",
		"Warning", "Add properties in the JSON object and resubmit the request.", http.StatusBadRequest}
	msgPayloadTooLarge = message{"PayloadTooLarge",
		"The supplied payload exceeds the maximum size supported by the service.",
		"Critical", "Check that the supplied payload is correct and supported by this service.", http.StatusRequestEntityTooLarge}
	msgPropertyMissing = message{"PropertyMissing",
		"The property %1 is a required property and must be included in the request.",
		"Warning", "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgPropertyUnknown = message{"PropertyUnknown",
		"The property %1 is not in the list of valid properties for the resource.",
		"Warning", "Remove the unknown property from the request body and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgPropertyNotWritable = message{"PropertyNotWritable",
		"The property %1 is a read only property and cannot be assigned a value.",
		"Warning", "Remove the property from the request body and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgPropertyValueTypeError = message{"PropertyValueTypeError",
		"The value '%1' for the property %2 is of a different type than the property can accept.",
		"Warning", "Correct the value for the property in the request body and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgPropertyValueNotInList = message{"PropertyValueNotInList",
		"The value '%1' for the property %2 is not in the list of acceptable values.",
		"Warning", "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgPreconditionFailed = message{"PreconditionFailed",
		"The ETag supplied did not match the ETag required to change this resource.",
		"Critical", "Try the operation again using the appropriate ETag.", http.StatusPreconditionFailed}
	msgActionParameterMissing = message{"ActionParameterMissing",
		"The action %1 requires the parameter %2 to be present in the request body.",
		"Critical", "Supply the action with the required parameter in the request body when the request is resubmitted.", http.StatusBadRequest}
	msgActionParameterUnknown = message{"ActionParameterUnknown",
		"The action %1 was submitted with the invalid parameter %2.",
		"Warning", "Correct the invalid action parameter and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgActionParameterValueTypeError = message{"ActionParameterValueTypeError",
		"The value '%1' for the parameter %2 in the action %3 is of a different type than the parameter can accept.",
		"Warning", "Correct the value for the parameter in the request body and resubmit the request if the operation failed.", http.StatusBadRequest}
	msgActionParameterValueNotInList = message{"ActionParameterValueNotInList",
		"The value '%1' for the parameter %2 in the action %3 is not in the list of acceptable values.",
		"Warning", "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.", http.StatusBadRequest}
)

// apiError is a Redfish error answer: a Base registry message with its
// arguments, and the property it is about, if any. Handlers return it; the
// boundary (fail) writes it as a Redfish error body.
type apiError struct {
	msg      message
	args     []string
	property string // a JSON pointer into the request body, or ""
}

func errorf(m message, args ...string) *apiError { return &apiError{msg: m, args: args} }

// about records the property (a JSON pointer such as "/Boot/BootSourceOverrideTarget")
// the error is about.
func (e *apiError) about(pointer string) *apiError {
	e.property = pointer
	return e
}

// Status is the HTTP status of the error.
func (e *apiError) Status() int { return e.msg.status }

// MessageID is the registry message ID, such as "Base.1.16.ResourceNotFound".
func (e *apiError) MessageID() string { return registry + e.msg.key }

var placeholder = regexp.MustCompile(`%[1-9]`)

// Error is the message's text with its arguments in place.
func (e *apiError) Error() string {
	return placeholder.ReplaceAllStringFunc(e.msg.text, func(p string) string {
		if i := int(p[1] - '1'); i < len(e.args) {
			return e.args[i]
		}
		return p
	})
}

// body is the Redfish error response for e (Redfish specification, "Error
// responses"): a general error whose @Message.ExtendedInfo holds the message.
func (e *apiError) body() map[string]any {
	args := e.args
	if args == nil {
		args = []string{}
	}
	info := map[string]any{
		"@odata.type":     "#Message.v1_1_1.Message",
		"MessageId":       e.MessageID(),
		"Message":         e.Error(),
		"MessageArgs":     args,
		"MessageSeverity": e.msg.severity,
		"Severity":        e.msg.severity,
		"Resolution":      e.msg.resolution,
	}
	if e.property != "" {
		info["RelatedProperties"] = []string{"#" + e.property}
	}
	return map[string]any{"error": map[string]any{
		"code":                  registry + msgGeneralError.key,
		"message":               e.Error(),
		"@Message.ExtendedInfo": []any{info},
	}}
}

// errSessionLimit is returned by the session store when a BMC has as many
// sessions as it may hold.
var errSessionLimit = errors.New("too many sessions")

// toWire translates an error into the Redfish error it is answered with:
// this package's *apiError as it is, a machine's and the session store's
// errors by the table, anything else as an internal error, which is logged
// here because here is where it is handled.
func toWire(log *slog.Logger, r *http.Request, err error) *apiError {
	var e *apiError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, errSessionLimit):
		return errorf(msgSessionLimitExceeded)
	case errors.Is(err, bmc.ErrUnsupported):
		// The message names what the machine can not do.
		return &apiError{msg: message{msgGeneralError.key, err.Error(), "Critical",
			"The machine behind this BMC can not carry out the request.", http.StatusBadRequest}}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{msg: message{msgGeneralError.key,
			"The request ended before the machine had answered.",
			"Critical", "Resubmit the request.", http.StatusServiceUnavailable}}
	default:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return errorf(msgInternalError)
	}
}
