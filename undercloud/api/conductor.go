package api

import "github.com/stratacloud/strata/undercloud/conductor"

// The conductor's request and result types, as the API passes them on.
type (
	// ProvisionRequest is a provisioning request for the conductor.
	ProvisionRequest = conductor.ProvisionRequest
	// ValidateResult is the outcome of validating one driver interface.
	ValidateResult = conductor.ValidateResult
)

var _ Conductor = (*conductor.Conductor)(nil)
