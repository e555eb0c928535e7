// Package inventory is the node domain of the undercloud: nodes and their
// ports with Ironic's fields, the provision state machine as a table, the
// per-node history, and the import formats operators bring (TripleO's
// instackenv.json and the same fields as YAML). It knows nothing of HTTP or
// etcd.
package inventory

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// SchemaVersion is the version of the stored record format.
const SchemaVersion = 1

// Power states, with Ironic's names.
const (
	PowerOn          = "power on"
	PowerOff         = "power off"
	Rebooting        = "rebooting"
	SoftRebooting    = "soft rebooting"
	SoftPowerOff     = "soft power off"
	PowerStateNone   = ""
	PowerStateError  = "error"
	DriverFake       = "fake-hardware"
	DriverIPMI       = "ipmi"
	DriverRedfish    = "redfish"
	MaskedSecret     = "******"
	DefaultConductor = "undercloud"
)

// PowerTargets are the targets accepted by PUT .../states/power.
var PowerTargets = []string{PowerOn, PowerOff, Rebooting, SoftPowerOff, SoftRebooting}

// Drivers are the hardware types the undercloud knows.
var Drivers = []string{DriverFake, DriverIPMI, DriverRedfish}

// Node is a bare-metal machine, with Ironic's field names.
type Node struct {
	Schema int `json:"schema_version"`

	UUID        string         `json:"uuid"`
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	Driver      string         `json:"driver"`
	DriverInfo  map[string]any `json:"driver_info"`
	// DriverInternalInfo is the conductor's scratch space; never patched
	// through the API.
	DriverInternalInfo map[string]any `json:"driver_internal_info"`
	Properties         map[string]any `json:"properties"`
	InstanceInfo       map[string]any `json:"instance_info"`
	InstanceUUID       string         `json:"instance_uuid,omitempty"`
	Extra              map[string]any `json:"extra"`
	ResourceClass      string         `json:"resource_class,omitempty"`
	ConductorGroup     string         `json:"conductor_group"`
	Owner              string         `json:"owner,omitempty"`
	Lessee             string         `json:"lessee,omitempty"`
	Traits             []string       `json:"traits"`

	ProvisionState       string `json:"provision_state"`
	TargetProvisionState string `json:"target_provision_state,omitempty"`
	PowerState           string `json:"power_state,omitempty"`
	TargetPowerState     string `json:"target_power_state,omitempty"`
	BootMode             string `json:"boot_mode,omitempty"`
	SecureBoot           *bool  `json:"secure_boot,omitempty"`

	Maintenance       bool   `json:"maintenance"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	Fault             string `json:"fault,omitempty"`
	LastError         string `json:"last_error,omitempty"`
	// Reservation is the name of the conductor working on the node.
	Reservation string `json:"reservation,omitempty"`
	// Conductor is the conductor that owns the node.
	Conductor       string `json:"conductor,omitempty"`
	Protected       bool   `json:"protected"`
	ProtectedReason string `json:"protected_reason,omitempty"`
	Retired         bool   `json:"retired"`
	RetiredReason   string `json:"retired_reason,omitempty"`
	AutomatedClean  *bool  `json:"automated_clean,omitempty"`

	BootDevice           string `json:"boot_device,omitempty"`
	BootDevicePersistent bool   `json:"boot_device_persistent,omitempty"`

	CleanStep   map[string]any `json:"clean_step,omitempty"`
	DeployStep  map[string]any `json:"deploy_step,omitempty"`
	ServiceStep map[string]any `json:"service_step,omitempty"`

	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            *time.Time `json:"updated_at,omitempty"`
	ProvisionUpdatedAt   *time.Time `json:"provision_updated_at,omitempty"`
	InspectionStartedAt  *time.Time `json:"inspection_started_at,omitempty"`
	InspectionFinishedAt *time.Time `json:"inspection_finished_at,omitempty"`
}

// Port is a network interface of a node, by MAC address.
type Port struct {
	Schema int `json:"schema_version"`

	UUID                string            `json:"uuid"`
	Address             string            `json:"address"`
	NodeUUID            string            `json:"node_uuid"`
	PXEEnabled          bool              `json:"pxe_enabled"`
	PhysicalNetwork     string            `json:"physical_network,omitempty"`
	LocalLinkConnection map[string]string `json:"local_link_connection"`
	Extra               map[string]any    `json:"extra"`
	Name                string            `json:"name,omitempty"`
	IsSmartNIC          bool              `json:"is_smartnic"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           *time.Time        `json:"updated_at,omitempty"`
}

// HistoryEvent is one entry of a node's history: a transition, an error,
// or anything else worth keeping, with when and by whom. The fields follow
// Ironic's node history (API 1.78).
type HistoryEvent struct {
	UUID      string    `json:"uuid"`
	CreatedAt time.Time `json:"created_at"`
	// Severity is INFO, WARNING or ERROR.
	Severity string `json:"severity"`
	// EventType says what kind of event this is: provisioning, power,
	// maintenance, conductor, ...
	EventType string `json:"event_type"`
	Event     string `json:"event"`
	Conductor string `json:"conductor,omitempty"`
	User      string `json:"user,omitempty"`
	// From and To are the provision states of a transition.
	From string `json:"from_state,omitempty"`
	To   string `json:"to_state,omitempty"`
	// Duration is how long the node spent in From, for per-phase timing.
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// Errors of the node domain; match them with errors.Is.
var (
	ErrInvalid      = errors.New("invalid input")
	ErrNotFound     = errors.New("not found")
	ErrDuplicate    = errors.New("already exists")
	ErrLocked       = errors.New("node is locked")
	ErrInvalidState = errors.New("invalid state")
	ErrNoWorkers    = errors.New("no free conductor workers")
	// ErrConcurrencyLimit refuses a request that would take more nodes
	// into a phase than the undercloud allows at once.
	ErrConcurrencyLimit = errors.New("concurrent action limit exceeded")
)

// InvalidError is bad input; Field names what was wrong.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an *InvalidError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var macRE = regexp.MustCompile(`^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$`)

// ParseMAC normalizes a 48-bit MAC address written as six colon- or
// dash-separated octets to lower-case colon form.
func ParseMAC(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !macRE.MatchString(s) {
		return "", Invalid("address", "%q is not a valid MAC address", s)
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", Invalid("address", "%q is not a valid MAC address", s)
	}
	return hw.String(), nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// IsUUID reports whether s looks like a UUID.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// nameRE is Ironic's rule for node names: a hostname-safe label set, with
// a few extra characters (RFC 3986 unreserved).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

// ValidateName checks a node name: it must be usable in a URL and must not
// be mistaken for a UUID.
func ValidateName(name string) error {
	if name == "" {
		return nil
	}
	if !nameRE.MatchString(name) {
		return Invalid("name", "%q is not a valid name: use letters, digits and . _ ~ - only", name)
	}
	if IsUUID(name) {
		return Invalid("name", "%q looks like a UUID and can not be a name", name)
	}
	return nil
}

// secretSuffixes mark driver_info keys whose values are never shown; any
// key containing "password" is secret too.
var secretSuffixes = []string{"_key", "secret", "token"}

// IsSecretKey reports whether a driver_info key holds a secret.
func IsSecretKey(k string) bool {
	lk := strings.ToLower(k)
	if strings.Contains(lk, "password") {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(lk, s) {
			return true
		}
	}
	return false
}

// MaskedDriverInfo returns a copy of driver_info with secrets replaced by
// MaskedSecret.
func MaskedDriverInfo(di map[string]any) map[string]any {
	out := make(map[string]any, len(di))
	for k, v := range di {
		if IsSecretKey(k) && v != nil && v != "" {
			out[k] = MaskedSecret
			continue
		}
		out[k] = v
	}
	return out
}
