package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The microversions this API serves. Version 1.1 is what a client that sends
// no version header gets; 1.87 is the newest Ironic microversion whose
// behaviour is implemented here.
const (
	MinVersion = "1.1"
	MaxVersion = "1.87"

	minMinor = 1
	maxMinor = 87
)

// Headers of Ironic's microversion protocol.
const (
	headerVersion    = "X-OpenStack-Ironic-API-Version"
	headerMinVersion = "X-OpenStack-Ironic-API-Minimum-Version"
	headerMaxVersion = "X-OpenStack-Ironic-API-Maximum-Version"
	headerAPIVersion = "OpenStack-API-Version"
	serviceType      = "baremetal"
)

// Microversions at which the behaviour of the API changes, named as in
// Ironic's ironic/api/controllers/v1/versions.py. Field-level gating lives in
// the field tables (fields.go); these are the other breakpoints.
const (
	v2AvailableState      = 2
	v5NodeName            = 5
	v8FieldsSelector      = 8
	v9ProvisionFilter     = 9
	v11EnrollState        = 11
	v12RAIDConfig         = 12
	v14StatesLinks        = 14
	v16DriverFilter       = 16
	v21ResourceClass      = 21
	v27SoftPower          = 27
	v35RebuildConfigDrive = 35
	v39InspectWait        = 39
	v41InspectAbort       = 41
	v42Fault              = 42
	v43Detail             = 43
	v45ResetInterfaces    = 45
	v46ConductorGroup     = 46
	v49Conductors         = 49
	v50Owner              = 50
	v56BuildConfigDrive   = 56
	v59ConfigDriveVendor  = 59
	v61Retired            = 61
	v64LinkNetworkType    = 64
	v65Lessee             = 65
	v69DeploySteps        = 69
	v70DisableRamdisk     = 70
	v75BootMode           = 75
	v78NodeHistory        = 78
	v81NodeInventory      = 81
	v92Runbooks           = 92
	v94PortNodeIdent      = 94
	v108ServiceRamdisk    = 108
	v110DeployWaitAbort   = 110
)

// version is a requested microversion 1.minor.
type version struct{ minor int }

func (v version) String() string { return "1." + strconv.Itoa(v.minor) }

// atLeast reports whether the request asked for minor or newer.
func (v version) atLeast(minor int) bool { return v.minor >= minor }

// negotiate reads the requested microversion from the headers: the standard
// OpenStack-API-Version header when it names the baremetal service, else
// Ironic's own header; no header at all means the minimum version.
func negotiate(h http.Header) (version, error) {
	raw, header := requestedVersion(h)
	if raw == "" {
		return version{minMinor}, nil
	}
	if strings.EqualFold(raw, "latest") {
		return version{maxMinor}, nil
	}
	major, minor, ok := parseVersion(raw)
	if !ok {
		return version{}, errorf(http.StatusBadRequest,
			"Invalid value %q for the %s header: expected 1.N or latest.", raw, header)
	}
	rng := fmt.Sprintf("The supported version range is: [%s, %s].", MinVersion, MaxVersion)
	if major != 1 {
		return version{}, errorf(http.StatusNotAcceptable,
			"Mutually exclusive versions requested. Version %d.%d requested but not supported by this service. %s", major, minor, rng)
	}
	if minor < minMinor || minor > maxMinor {
		return version{}, errorf(http.StatusNotAcceptable,
			"Version %d.%d was requested but the minor version is not supported by this service. %s", major, minor, rng)
	}
	return version{minor}, nil
}

// requestedVersion returns the version string asked for and the header it
// came from.
func requestedVersion(h http.Header) (string, string) {
	for _, line := range h.Values(headerAPIVersion) {
		for _, item := range strings.Split(line, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(item), " ")
			if ok && strings.EqualFold(svc, serviceType) {
				return strings.TrimSpace(ver), headerAPIVersion
			}
		}
	}
	return strings.TrimSpace(h.Get(headerVersion)), headerVersion
}

func parseVersion(s string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found || !isDigits(a) || !isDigits(b) {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// setVersionHeaders writes the negotiated version on a response.
func setVersionHeaders(h http.Header, v version) {
	h.Set(headerVersion, v.String())
	h.Set(headerAPIVersion, serviceType+" "+v.String())
}

// tooNew is the error for a field, parameter or verb newer than the request.
func tooNew(what string, since int, v version) error {
	return errorf(http.StatusNotAcceptable,
		"Request not acceptable: %s requires API version 1.%d or later, but version %s was requested.", what, since, v)
}
