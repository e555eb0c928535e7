// Package api is the HTTP plumbing every overcloud service shares: the
// OpenStack error bodies, strict JSON decoding, request IDs and access
// logs, token validation with a short cache that honours revocation,
// microversion negotiation, and limit/marker pagination.
//
// Handlers are written as Func values that return an error instead of
// writing it; Errors translates that error to the wire once, in the
// service's own error format.
package api
