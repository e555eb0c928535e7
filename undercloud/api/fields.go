package api

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// field is one attribute of an API resource (T is inventory.Node or
// inventory.Port): the microversion that introduced it, how to read it and,
// when clients may write it, how to write it. The node and port tables below
// are the whole of the API's field-level version gating: a field newer than
// the request is not shown, and naming it in fields=, sort_key=, a POST body
// or a PATCH path is refused with 406, as Ironic does.
type field[T any] struct {
	name string
	// since is the minor API version that introduced the field (Ironic's
	// ironic/api/controllers/v1/utils.py VERSIONED_FIELDS for nodes, and
	// port.py hide_fields_in_newer_versions for ports).
	since int
	// get returns the value as stored, before masking; nil shows as null.
	// Maps come as map[string]any, lists as []string, times as time.Time.
	get func(*T) any
	// set writes a decoded JSON value (numbers are json.Number); nil means
	// clients can not write the field.
	set func(t *T, v any, ver version) error
	// create and patch say whether the field may be given at creation and
	// changed with PATCH.
	create, patch bool
	// unsupported marks an Ironic field this service does not model: it
	// always shows its empty value, and setting anything else is refused.
	unsupported bool
	// nosort marks fields that can not be a sort_key.
	nosort bool
	// mask hides secrets in the value before it is shown.
	mask func(any) any
}

type nodeField = field[inventory.Node]
type portField = field[inventory.Port]

// nodeFields is every field of a node in Ironic's API up to MaxVersion (and a
// few newer ones, so that asking for them gets a precise 406).
var nodeFields = []nodeField{
	{name: "uuid", since: 1, get: func(n *inventory.Node) any { return n.UUID }, create: true,
		set: func(n *inventory.Node, v any, _ version) error {
			s, err := asUUID("uuid", v)
			n.UUID = s
			return err
		}},
	{name: "created_at", since: 1, get: func(n *inventory.Node) any { return n.CreatedAt }},
	{name: "updated_at", since: 1, get: func(n *inventory.Node) any { return timeOrNil(n.UpdatedAt) }},
	{name: "allocation_uuid", since: 52, get: none[inventory.Node]},
	{name: "automated_clean", since: 47, get: func(n *inventory.Node) any { return boolOrNil(n.AutomatedClean) },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			b, err := asOptBool("automated_clean", v)
			n.AutomatedClean = b
			return err
		}},
	unsupportedStr[inventory.Node]("bios_interface", 40),
	unsupportedStr[inventory.Node]("boot_interface", 31),
	{name: "boot_mode", since: 75, get: func(n *inventory.Node) any { return strOrNil(n.BootMode) }},
	unsupportedStr[inventory.Node]("chassis_uuid", 1),
	{name: "clean_step", since: 7, get: func(n *inventory.Node) any { return mapOrEmpty(n.CleanStep) }, nosort: true},
	{name: "conductor", since: 49, get: func(n *inventory.Node) any { return strOrNil(n.Conductor) }},
	{name: "conductor_group", since: 46, get: func(n *inventory.Node) any { return n.ConductorGroup },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			s, err := asString("conductor_group", v)
			if err != nil {
				return err
			}
			if len(s) > 255 || !conductorGroupRE.MatchString(s) {
				return badRequest("Invalid conductor_group %q: use up to 255 letters, digits, '_', '-' and '.'.", s)
			}
			n.ConductorGroup = strings.ToLower(s)
			return nil
		}},
	{name: "console_enabled", since: 1, get: func(*inventory.Node) any { return false }, create: true, unsupported: true},
	unsupportedStr[inventory.Node]("console_interface", 31),
	unsupportedStr[inventory.Node]("deploy_interface", 31),
	{name: "deploy_step", since: 44, get: func(n *inventory.Node) any { return mapOrEmpty(n.DeployStep) }, nosort: true},
	{name: "description", since: 51, get: func(n *inventory.Node) any { return strOrNil(n.Description) },
		create: true, patch: true, set: stringSetter("description", 4096, func(n *inventory.Node) *string { return &n.Description })},
	{name: "disable_power_off", since: 95, get: none[inventory.Node]},
	{name: "driver", since: 1, get: func(n *inventory.Node) any { return n.Driver },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			s, err := asString("driver", v)
			if err != nil {
				return err
			}
			if !slices.Contains(inventory.Drivers, s) {
				return badRequest("No conductor supports driver %q; the available drivers are: %s.", s, strings.Join(inventory.Drivers, ", "))
			}
			n.Driver = s
			return nil
		}},
	{name: "driver_info", since: 1, get: func(n *inventory.Node) any { return mapOrEmpty(n.DriverInfo) },
		create: true, patch: true, nosort: true, mask: maskSecrets,
		set: mapSetter("driver_info", func(n *inventory.Node) *map[string]any { return &n.DriverInfo })},
	{name: "driver_internal_info", since: 3, get: func(n *inventory.Node) any { return mapOrEmpty(n.DriverInternalInfo) },
		nosort: true, mask: maskSecrets},
	{name: "extra", since: 1, get: func(n *inventory.Node) any { return mapOrEmpty(n.Extra) },
		create: true, patch: true, nosort: true,
		set: mapSetter("extra", func(n *inventory.Node) *map[string]any { return &n.Extra })},
	{name: "fault", since: 42, get: func(n *inventory.Node) any { return strOrNil(n.Fault) }},
	unsupportedStr[inventory.Node]("firmware_interface", 86),
	{name: "health", since: 109, get: none[inventory.Node]},
	unsupportedStr[inventory.Node]("inspect_interface", 31),
	{name: "inspection_finished_at", since: 6, get: func(n *inventory.Node) any { return timeOrNil(n.InspectionFinishedAt) }},
	{name: "inspection_started_at", since: 6, get: func(n *inventory.Node) any { return timeOrNil(n.InspectionStartedAt) }},
	{name: "instance_info", since: 1, get: func(n *inventory.Node) any { return mapOrEmpty(n.InstanceInfo) },
		create: true, patch: true, nosort: true, mask: maskInstanceInfo,
		set: mapSetter("instance_info", func(n *inventory.Node) *map[string]any { return &n.InstanceInfo })},
	{name: "instance_name", since: 104, get: none[inventory.Node]},
	{name: "instance_uuid", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.InstanceUUID) },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			if v == nil {
				n.InstanceUUID = ""
				return nil
			}
			s, err := asUUID("instance_uuid", v)
			n.InstanceUUID = s
			return err
		}},
	{name: "last_error", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.LastError) }},
	{name: "lessee", since: 65, get: func(n *inventory.Node) any { return strOrNil(n.Lessee) },
		create: true, patch: true, set: stringSetter("lessee", 255, func(n *inventory.Node) *string { return &n.Lessee })},
	{name: "maintenance", since: 1, get: func(n *inventory.Node) any { return n.Maintenance },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			b, err := asOptBool("maintenance", v)
			n.Maintenance = b != nil && *b
			return err
		}},
	{name: "maintenance_reason", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.MaintenanceReason) }},
	unsupportedStr[inventory.Node]("management_interface", 31),
	{name: "name", since: 5, get: func(n *inventory.Node) any { return strOrNil(n.Name) },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			s, err := asString("name", v)
			if err != nil {
				return err
			}
			if err := checkNodeName(s); err != nil {
				return err
			}
			n.Name = s
			return nil
		}},
	{name: "network_data", since: 66, get: func(*inventory.Node) any { return map[string]any{} },
		create: true, patch: true, unsupported: true, nosort: true},
	unsupportedStr[inventory.Node]("network_interface", 20),
	{name: "owner", since: 50, get: func(n *inventory.Node) any { return strOrNil(n.Owner) },
		create: true, patch: true, set: stringSetter("owner", 255, func(n *inventory.Node) *string { return &n.Owner })},
	unsupportedStr[inventory.Node]("parent_node", 83),
	unsupportedStr[inventory.Node]("power_interface", 31),
	{name: "power_state", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.PowerState) }},
	{name: "properties", since: 1, get: func(n *inventory.Node) any { return mapOrEmpty(n.Properties) },
		create: true, patch: true, nosort: true,
		set: mapSetter("properties", func(n *inventory.Node) *map[string]any { return &n.Properties })},
	{name: "protected", since: 48, get: func(n *inventory.Node) any { return n.Protected },
		patch: true, set: func(n *inventory.Node, v any, _ version) error {
			b, err := asOptBool("protected", v)
			n.Protected = b != nil && *b
			return err
		}},
	{name: "protected_reason", since: 48, get: func(n *inventory.Node) any { return strOrNil(n.ProtectedReason) },
		patch: true, set: stringSetter("protected_reason", 255, func(n *inventory.Node) *string { return &n.ProtectedReason })},
	{name: "provision_state", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.ProvisionState) }},
	{name: "provision_updated_at", since: 1, get: func(n *inventory.Node) any { return timeOrNil(n.ProvisionUpdatedAt) }},
	{name: "raid_config", since: 12, get: func(*inventory.Node) any { return map[string]any{} }, nosort: true},
	unsupportedStr[inventory.Node]("raid_interface", 31),
	unsupportedStr[inventory.Node]("rescue_interface", 38),
	{name: "reservation", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.Reservation) }},
	{name: "resource_class", since: 21, get: func(n *inventory.Node) any { return strOrNil(n.ResourceClass) },
		create: true, patch: true, set: stringSetter("resource_class", 80, func(n *inventory.Node) *string { return &n.ResourceClass })},
	{name: "retired", since: 61, get: func(n *inventory.Node) any { return n.Retired },
		create: true, patch: true, set: func(n *inventory.Node, v any, _ version) error {
			b, err := asOptBool("retired", v)
			n.Retired = b != nil && *b
			return err
		}},
	{name: "retired_reason", since: 61, get: func(n *inventory.Node) any { return strOrNil(n.RetiredReason) },
		create: true, patch: true, set: stringSetter("retired_reason", 255, func(n *inventory.Node) *string { return &n.RetiredReason })},
	{name: "secure_boot", since: 75, get: func(n *inventory.Node) any { return boolOrNil(n.SecureBoot) }},
	{name: "service_step", since: 87, get: func(n *inventory.Node) any { return mapOrEmpty(n.ServiceStep) }, nosort: true},
	unsupportedStr[inventory.Node]("shard", 82),
	unsupportedStr[inventory.Node]("storage_interface", 33),
	{name: "target_power_state", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.TargetPowerState) }},
	{name: "target_provision_state", since: 1, get: func(n *inventory.Node) any { return strOrNil(n.TargetProvisionState) }},
	{name: "target_raid_config", since: 12, get: func(*inventory.Node) any { return map[string]any{} }, nosort: true},
	{name: "traits", since: 37, get: func(n *inventory.Node) any { return listOrEmpty(n.Traits) }, nosort: true},
	unsupportedStr[inventory.Node]("vendor_interface", 31),
}

// defaultNodeFields are the fields of a node in a list without detail.
var defaultNodeFields = []string{"instance_uuid", "maintenance", "name", "power_state", "provision_state", "uuid"}

// portFields is every field of a port up to MaxVersion (and a few newer).
var portFields = []portField{
	{name: "uuid", since: 1, get: func(p *inventory.Port) any { return p.UUID }, create: true,
		set: func(p *inventory.Port, v any, _ version) error {
			s, err := asUUID("uuid", v)
			p.UUID = s
			return err
		}},
	{name: "created_at", since: 1, get: func(p *inventory.Port) any { return p.CreatedAt }},
	{name: "updated_at", since: 1, get: func(p *inventory.Port) any { return timeOrNil(p.UpdatedAt) }},
	{name: "address", since: 1, get: func(p *inventory.Port) any { return p.Address },
		create: true, patch: true, set: func(p *inventory.Port, v any, _ version) error {
			s, err := asString("address", v)
			if err != nil {
				return err
			}
			mac, err := inventory.ParseMAC(s)
			if err != nil {
				return badRequest("Expected valid MAC address for address: %s.", s)
			}
			p.Address = mac
			return nil
		}},
	{name: "available_for_dynamic_portgroup", since: 111, get: none[inventory.Port]},
	{name: "category", since: 101, get: none[inventory.Port]},
	{name: "description", since: 97, get: none[inventory.Port]},
	{name: "extra", since: 1, get: func(p *inventory.Port) any { return mapOrEmpty(p.Extra) },
		create: true, patch: true, nosort: true,
		set: mapSetter("extra", func(p *inventory.Port) *map[string]any { return &p.Extra })},
	{name: "internal_info", since: 18, get: func(*inventory.Port) any { return map[string]any{} }, nosort: true},
	{name: "is_smartnic", since: 53, get: func(p *inventory.Port) any { return p.IsSmartNIC },
		create: true, patch: true, set: func(p *inventory.Port, v any, _ version) error {
			b, err := asOptBool("is_smartnic", v)
			p.IsSmartNIC = b != nil && *b
			return err
		}},
	{name: "local_link_connection", since: 19, nosort: true,
		get: func(p *inventory.Port) any {
			out := map[string]any{}
			for k, v := range p.LocalLinkConnection {
				out[k] = v
			}
			return out
		},
		create: true, patch: true, set: setLocalLink},
	{name: "name", since: 88, get: none[inventory.Port]},
	{name: "node_uuid", since: 1, get: func(p *inventory.Port) any { return p.NodeUUID },
		create: true, patch: true, set: func(p *inventory.Port, v any, _ version) error {
			s, err := asUUID("node_uuid", v)
			p.NodeUUID = s
			return err
		}},
	{name: "physical_network", since: 34, get: func(p *inventory.Port) any { return strOrNil(p.PhysicalNetwork) },
		create: true, patch: true, set: func(p *inventory.Port, v any, _ version) error {
			if v == nil {
				p.PhysicalNetwork = ""
				return nil
			}
			s, err := asString("physical_network", v)
			if err != nil {
				return err
			}
			if s == "" {
				return badRequest("A non-empty value is required when setting physical_network.")
			}
			if len(s) > 64 {
				return badRequest("Invalid value for physical_network: longer than 64 characters.")
			}
			p.PhysicalNetwork = s
			return nil
		}},
	unsupportedStr[inventory.Port]("portgroup_uuid", 24),
	{name: "pxe_enabled", since: 19, get: func(p *inventory.Port) any { return p.PXEEnabled },
		create: true, patch: true, set: func(p *inventory.Port, v any, _ version) error {
			b, err := asOptBool("pxe_enabled", v)
			// Ironic's default for a port is to PXE boot from it.
			p.PXEEnabled = b == nil || *b
			return err
		}},
	{name: "vendor", since: 100, get: none[inventory.Port]},
}

// defaultPortFields are the fields of a port in a list without detail.
var defaultPortFields = []string{"address", "uuid"}

// lookupField finds a field by name.
func lookupField[T any](fields []field[T], name string) (*field[T], bool) {
	for i := range fields {
		if fields[i].name == name {
			return &fields[i], true
		}
	}
	return nil, false
}

// render shows t at version v: every field of that version, or only those in
// only (when not nil), with secrets masked.
func render[T any](fields []field[T], t *T, v version, only []string) map[string]any {
	out := make(map[string]any, len(fields))
	for i := range fields {
		f := &fields[i]
		if !v.atLeast(f.since) || (only != nil && !slices.Contains(only, f.name)) {
			continue
		}
		out[f.name] = shown(f, t)
	}
	return out
}

// shown is the value of f on t as clients see it.
func shown[T any](f *field[T], t *T) any {
	val := f.get(t)
	if f.mask != nil && val != nil {
		val = f.mask(val)
	}
	if tm, ok := val.(time.Time); ok {
		return isoTime(tm)
	}
	return val
}

// rawDoc is t as a JSON document with every field and no masking: what a
// PATCH applies to. Values are normalized through JSON.
func rawDoc[T any](fields []field[T], t *T) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	for i := range fields {
		val := fields[i].get(t)
		if tm, ok := val.(time.Time); ok {
			val = isoTime(tm)
		}
		out[fields[i].name] = val
	}
	return normalize(out)
}

// normalize round-trips v through JSON so that it holds only decoded JSON
// values (json.Number for numbers).
func normalize(v map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := decodeJSON(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkFieldNames validates a fields= or sort_key= selection against the
// table at version v: 406 for a field newer than v, 400 for an unknown one.
func checkFieldNames[T any](fields []field[T], names []string, v version) error {
	var invalid []string
	for _, name := range names {
		f, ok := lookupField(fields, name)
		if !ok {
			invalid = append(invalid, name)
			continue
		}
		if !v.atLeast(f.since) {
			return tooNew("the field "+name, f.since, v)
		}
	}
	if len(invalid) > 0 {
		return badRequest("Field(s) %q are not valid.", strings.Join(invalid, ", "))
	}
	return nil
}

// isoTime renders a time the way Ironic (Python's isoformat) does:
// 2026-11-23T18:01:02.123456+00:00, without the fraction when it is zero.
func isoTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

var conductorGroupRE = regexp.MustCompile(`^[a-zA-Z0-9_.\-]*$`)

// reservedNodeNames can not be node names: they are paths under /v1/nodes.
var reservedNodeNames = []string{"detail", "validate", "states", "management", "maintenance", "vendor_passthru"}

func checkNodeName(name string) error {
	if name == "" {
		return nil
	}
	if err := inventory.ValidateName(name); err != nil {
		return badRequest("Cannot use the invalid node name %q: a name is 1 to 255 letters, digits or . _ ~ - and must not look like a UUID.", name)
	}
	if slices.Contains(reservedNodeNames, name) {
		return badRequest("The word %q is reserved and can not be used as a node name. Reserved words are: %s.",
			name, strings.Join(reservedNodeNames, ", "))
	}
	return nil
}

// Getter helpers.

func none[T any](*T) any { return nil }

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolOrNil(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func timeOrNil(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return *t
}

func mapOrEmpty(m map[string]any) any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

func listOrEmpty(l []string) any {
	if l == nil {
		return []string{}
	}
	return slices.Clone(l)
}

// unsupportedStr is an Ironic string field that this service does not model.
func unsupportedStr[T any](name string, since int) field[T] {
	return field[T]{name: name, since: since, get: none[T], create: true, patch: true, unsupported: true}
}

// isEmptyValue reports whether v is the empty value of an unsupported field.
func isEmptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// Setter helpers.

func asString(name string, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", badRequest("Invalid value for %s: expected a string, got %s.", name, describe(v))
}

func asUUID(name string, v any) (string, error) {
	s, err := asString(name, v)
	if err != nil {
		return "", err
	}
	if !inventory.IsUUID(s) {
		return "", badRequest("Expected a UUID for %s but received %q.", name, s)
	}
	return strings.ToLower(s), nil
}

func asOptBool(name string, v any) (*bool, error) {
	if v == nil {
		return nil, nil
	}
	b, err := toBool(name, v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func stringSetter[T any](name string, max int, p func(*T) *string) func(*T, any, version) error {
	return func(t *T, v any, _ version) error {
		s, err := asString(name, v)
		if err != nil {
			return err
		}
		if len(s) > max {
			return badRequest("Invalid value for %s: longer than %d characters.", name, max)
		}
		*p(t) = s
		return nil
	}
}

func mapSetter[T any](name string, p func(*T) *map[string]any) func(*T, any, version) error {
	return func(t *T, v any, _ version) error {
		switch v := v.(type) {
		case nil:
			*p(t) = map[string]any{}
		case map[string]any:
			*p(t) = v
		default:
			return badRequest("Invalid value for %s: expected an object, got %s.", name, describe(v))
		}
		return nil
	}
}

// Masking.

// maskSecrets replaces the values of secret keys (passwords, keys, tokens)
// with "******", at any depth.
func maskSecrets(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			if inventory.IsSecretKey(k) && val != nil && val != "" {
				out[k] = inventory.MaskedSecret
				continue
			}
			out[k] = maskSecrets(val)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			out[i] = maskSecrets(val)
		}
		return out
	}
	return v
}

// maskInstanceInfo also hides the config drive and the image URL, which may
// carry credentials, as Ironic does.
func maskInstanceInfo(v any) any {
	m, ok := maskSecrets(v).(map[string]any)
	if !ok {
		return v
	}
	for _, k := range []string{"configdrive", "image_url"} {
		if val, ok := m[k]; ok && val != nil && val != "" {
			m[k] = inventory.MaskedSecret
		}
	}
	return m
}

// Local link connection, as Ironic's LOCAL_LINK_CONN_SCHEMA allows it.

var localLinkKeys = []string{"port_id", "switch_id", "hostname", "switch_info", "network_type"}

var datapathRE = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{16}$`)

func setLocalLink(p *inventory.Port, v any, ver version) error {
	if v == nil {
		p.LocalLinkConnection = map[string]string{}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return badRequest("Invalid value for local_link_connection: expected an object, got %s.", describe(v))
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		if !slices.Contains(localLinkKeys, k) {
			return badRequest("Invalid local_link_connection: unknown key %q; valid keys are %s.", k, strings.Join(localLinkKeys, ", "))
		}
		if k == "network_type" && !ver.atLeast(v64LinkNetworkType) {
			return tooNew("local_link_connection/network_type", v64LinkNetworkType, ver)
		}
		s, ok := val.(string)
		if !ok {
			return badRequest("Invalid value for local_link_connection/%s: expected a string, got %s.", k, describe(val))
		}
		out[k] = s
	}
	if nt, ok := out["network_type"]; ok && nt != "managed" && nt != "unmanaged" {
		return badRequest("Invalid local_link_connection/network_type %q: expected managed or unmanaged.", nt)
	}
	has := func(k string) bool { _, ok := out[k]; return ok }
	switch {
	case len(out) == 0:
	case out["network_type"] == "unmanaged":
	case has("port_id") && has("switch_id"):
	case has("port_id") && has("hostname"):
	default:
		return badRequest("Invalid local_link_connection: it needs port_id and switch_id (or port_id and hostname for a smart NIC, or network_type unmanaged).")
	}
	if id, ok := out["switch_id"]; ok {
		if mac, err := inventory.ParseMAC(id); err == nil {
			out["switch_id"] = mac
		} else if datapathRE.MatchString(id) {
			out["switch_id"] = strings.ToLower(strings.TrimPrefix(id, "0x"))
		} else {
			return badRequest("Expected a MAC address or OpenFlow datapath ID but received %s.", id)
		}
	}
	p.LocalLinkConnection = out
	return nil
}
