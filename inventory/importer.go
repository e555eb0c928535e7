package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// NodeSpec is one node of an import file: the node's fields and its ports,
// as the file gives them. The store fills in what the file does not say:
// UUIDs (unless the file gives the node's), the schema version, the
// timestamps, the initial provision state, and each port's node_uuid.
type NodeSpec struct {
	Node  Node   `json:"node"`
	Ports []Port `json:"ports"`
}

// ImportError is one thing wrong with one node entry of an import file.
type ImportError struct {
	// Index is the position of the entry in the file's node list, from 0.
	Index int
	// Name is the entry's name, when it has a valid one.
	Name string
	// Err says what is wrong; it is an *InvalidError naming the field.
	Err error
}

func (e *ImportError) Error() string {
	return entryLabel(e.Index, e.Name) + ": " + e.Err.Error()
}

func (e *ImportError) Unwrap() error { return e.Err }

func entryLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("nodes[%d]", i)
	}
	return fmt.Sprintf("nodes[%d] (%s)", i, name)
}

// Defaults that TripleO's import gave a node or a port which names none.
const (
	importResourceClass   = "baremetal"
	importPhysicalNetwork = "ctlplane"
)

// pmTypes maps TripleO's pm_type values, including the classic driver
// names of older files, to the undercloud's drivers.
var pmTypes = map[string]string{
	"ipmi":          DriverIPMI,
	"pxe_ipmitool":  DriverIPMI,
	"ipmi_ipmitool": DriverIPMI,
	"redfish":       DriverRedfish,
	"fake":          DriverFake,
	"fake-hardware": DriverFake,
	"fake_pxe":      DriverFake,
}

// nodeFields are the keys a node entry may have. TripleO files may carry
// a "_comment", which is ignored.
var nodeFields = []string{
	"_comment", "arch", "capabilities", "cpu", "description", "disk",
	"driver_info", "mac", "memory", "name", "pm_addr", "pm_password",
	"pm_port", "pm_system_id", "pm_type", "pm_user", "ports", "profile",
	"properties", "redfish_verify_ca", "resource_class", "root_device", "uuid",
}

// bmcFields are the fields that say how to reach a node's BMC, and
// driverFields which of them each driver uses.
var (
	bmcFields    = []string{"pm_addr", "pm_port", "pm_user", "pm_password", "pm_system_id", "redfish_verify_ca"}
	driverFields = map[string][]string{
		DriverIPMI:    {"pm_addr", "pm_port", "pm_user", "pm_password"},
		DriverRedfish: {"pm_addr", "pm_user", "pm_password", "pm_system_id", "redfish_verify_ca"},
		DriverFake:    nil,
	}
)

// portFields are the keys a port entry may have.
var portFields = []string{"address", "local_link_connection", "physical_network", "pxe_enabled"}

// localLinkFields are the keys of a port's local_link_connection.
var localLinkFields = []string{"hostname", "network_type", "port_id", "switch_id", "switch_info"}

// rootDeviceHints are the root device hints Ironic knows.
var rootDeviceHints = []string{
	"by_path", "hctl", "model", "name", "rotational", "serial", "size",
	"vendor", "wwn", "wwn_vendor_extension", "wwn_with_extension",
}

// maxResourceClass is Ironic's limit on the length of a resource class.
const maxResourceClass = 80

// maxDepth bounds the nesting of an import file.
const maxDepth = 64

// ParseImportFile reads an import file; see ParseImport.
func ParseImportFile(path string) ([]NodeSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	specs, err := ParseImport(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return specs, nil
}

// ParseImport parses a node file in TripleO's format: instackenv.json, or
// the same fields as YAML (nodes.yaml). Content that starts with { or [ is
// JSON, anything else YAML. The top level is {"nodes": [...]} (other keys
// are ignored, as TripleO did) or a bare list of nodes.
//
// Each entry's pm_* fields become Ironic's driver_info for its driver:
// ipmi_address, ipmi_port, ipmi_username and ipmi_password, or
// redfish_address (https:// is added when pm_addr has no scheme),
// redfish_system_id, redfish_username, redfish_password and
// redfish_verify_ca. cpu, memory, disk, arch, capabilities (a "k:v,k:v"
// string or a map), profile and root_device become properties. The maps
// driver_info and properties are merged in, and must agree with the
// fields. Numbers may be given as strings. MAC addresses come from ports
// and from the older mac list; ports are PXE-enabled on the ctlplane
// physical network unless they say otherwise. Nodes without a
// resource_class get baremetal, as TripleO gave them.
//
// Bad input gives an error that joins one *ImportError for each problem
// found, each naming the entry and the field; errors.Is(err, ErrInvalid)
// holds. A file that is not JSON or YAML, or holds no node list, gives an
// *InvalidError. Error messages never quote a password.
func ParseImport(data []byte) ([]NodeSpec, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	list, err := nodeList(doc)
	if err != nil {
		return nil, err
	}
	imp := &importer{
		names: map[string]int{},
		uuids: map[string]int{},
		macs:  map[string]string{},
		bmcs:  map[string]int{},
	}
	specs := make([]NodeSpec, 0, len(list))
	var errs []error
	for i, v := range list {
		spec, bad := imp.node(i, v)
		errs = append(errs, bad...)
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return specs, nil
}

func nodeList(doc any) ([]any, error) {
	var list []any
	switch d := doc.(type) {
	case nil:
		return nil, Invalid("", "the file is empty")
	case []any:
		list = d
	case map[string]any:
		v, ok := d["nodes"]
		if !ok {
			return nil, Invalid("nodes", `is missing: the file must be {"nodes": [...]} or a list of nodes`)
		}
		l, ok := v.([]any)
		if !ok {
			return nil, Invalid("nodes", "must be a list, not %s", kind(v))
		}
		list = l
	default:
		return nil, Invalid("", `the file must be {"nodes": [...]} or a list of nodes, not %s`, kind(doc))
	}
	if len(list) == 0 {
		return nil, Invalid("nodes", "is empty")
	}
	return list, nil
}

// importer checks what must be unique across the entries of one file.
type importer struct {
	labels []string
	names  map[string]int    // node name → entry
	uuids  map[string]int    // node uuid → entry
	macs   map[string]string // MAC → where it was first listed
	bmcs   map[string]int    // BMC identity → entry
}

// entry collects the problems of one node entry.
type entry struct {
	index int
	name  string
	raw   map[string]any
	errs  []error
}

func (e *entry) invalid(field, format string, args ...any) {
	e.errs = append(e.errs, Invalid(field, format, args...))
}

// field returns the value of key, unless it is absent or null.
func (e *entry) field(key string) (any, bool) {
	v, ok := e.raw[key]
	return v, ok && v != nil
}

func (imp *importer) node(i int, v any) (NodeSpec, []error) {
	e := &entry{index: i}
	defer func() { imp.labels = append(imp.labels, entryLabel(i, e.name)) }()
	raw, ok := v.(map[string]any)
	if !ok {
		e.invalid("", "must be an object, not %s", kind(v))
		return NodeSpec{}, e.wrapped()
	}
	e.raw = raw
	for _, k := range sortedKeys(raw) {
		if !slices.Contains(nodeFields, k) {
			e.invalid(k, "unknown field")
		}
	}

	var n Node
	imp.identity(e, &n)
	n.DriverInfo = imp.driverInfo(e, &n).m
	n.Properties = e.properties().m
	ports := imp.ports(e)
	return NodeSpec{Node: n, Ports: ports}, e.wrapped()
}

func (e *entry) wrapped() []error {
	out := make([]error, len(e.errs))
	for i, err := range e.errs {
		out[i] = &ImportError{Index: e.index, Name: e.name, Err: err}
	}
	return out
}

// label names entry j for messages about another entry.
func (imp *importer) label(j int) string { return imp.labels[j] }

// identity fills in the name, uuid, description and resource class.
func (imp *importer) identity(e *entry, n *Node) {
	if v, ok := e.field("name"); ok {
		if s, ok := e.str("name", v); ok && s != "" {
			if err := ValidateName(s); err != nil {
				e.errs = append(e.errs, err)
			} else if j, dup := imp.names[s]; dup {
				e.invalid("name", "%q is already the name of %s", s, imp.label(j))
			} else {
				imp.names[s] = e.index
				n.Name = s
				e.name = s
			}
		}
	}
	if v, ok := e.field("uuid"); ok {
		if s, ok := e.str("uuid", v); ok {
			if id, ok := canonicalUUID(s); !ok {
				e.invalid("uuid", "%q is not a valid UUID", s)
			} else if j, dup := imp.uuids[id]; dup {
				e.invalid("uuid", "%s is already the uuid of %s", id, imp.label(j))
			} else {
				imp.uuids[id] = e.index
				n.UUID = id
			}
		}
	}
	if v, ok := e.field("description"); ok {
		n.Description, _ = e.str("description", v)
	}
	n.ResourceClass = importResourceClass
	if v, ok := e.field("resource_class"); ok {
		if s, ok := e.str("resource_class", v); ok && s != "" {
			if len(s) > maxResourceClass {
				e.invalid("resource_class", "is longer than %d characters", maxResourceClass)
			} else {
				n.ResourceClass = s
			}
		}
	}
}

// canonicalUUID returns s as a lower-case UUID with dashes.
func canonicalUUID(s string) (string, bool) {
	if !IsUUID(s) {
		return "", false
	}
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// fieldSet is driver_info or properties being built from several input
// fields; from remembers which field set each key, so that a second
// field setting the same key to another value is reported.
type fieldSet struct {
	m    map[string]any
	from map[string]string
}

func newFieldSet() *fieldSet {
	return &fieldSet{m: map[string]any{}, from: map[string]string{}}
}

func (e *entry) put(fs *fieldSet, key string, v any, field string) {
	if prev, ok := fs.from[key]; ok {
		if !reflect.DeepEqual(fs.m[key], v) {
			e.invalid(field, "differs from %s", prev)
		}
		return
	}
	fs.m[key] = v
	fs.from[key] = field
}

// driverInfo maps the pm_* fields onto the driver's driver_info and merges
// the entry's driver_info map into it.
func (imp *importer) driverInfo(e *entry, n *Node) *fieldSet {
	di := newFieldSet()
	v, ok := e.field("pm_type")
	if !ok {
		e.invalid("pm_type", "is required: one of %s", strings.Join(sortedKeys(pmTypes), ", "))
	} else if s, ok := e.str("pm_type", v); ok {
		if n.Driver, ok = pmTypes[s]; !ok {
			e.invalid("pm_type", "%q is not a known power management type: use one of %s",
				s, strings.Join(sortedKeys(pmTypes), ", "))
		}
	}
	if n.Driver != "" {
		for _, f := range bmcFields {
			if _, ok := e.field(f); ok && !slices.Contains(driverFields[n.Driver], f) {
				if f == "pm_port" && n.Driver == DriverRedfish {
					e.invalid(f, "is not used by the redfish driver: give the port in pm_addr")
				} else {
					e.invalid(f, "is not used by the %s driver", n.Driver)
				}
			}
		}
	}

	switch n.Driver {
	case DriverIPMI:
		if v, ok := e.field("pm_addr"); ok {
			if s, ok := e.str("pm_addr", v); ok {
				if addr, ok := e.ipmiAddress("pm_addr", s); ok {
					e.put(di, "ipmi_address", addr, "pm_addr")
				}
			}
		}
		if v, ok := e.field("pm_port"); ok {
			if p, ok := e.integer("pm_port", v, 1, math.MaxUint16); ok {
				e.put(di, "ipmi_port", p, "pm_port")
			}
		}
		e.credentials(di, "ipmi")
	case DriverRedfish:
		if v, ok := e.field("pm_addr"); ok {
			if s, ok := e.str("pm_addr", v); ok {
				if addr, ok := e.redfishAddress("pm_addr", s); ok {
					e.put(di, "redfish_address", addr, "pm_addr")
				}
			}
		}
		if v, ok := e.field("pm_system_id"); ok {
			if s, ok := e.nonEmpty("pm_system_id", v); ok {
				e.put(di, "redfish_system_id", s, "pm_system_id")
			}
		}
		e.credentials(di, "redfish")
		if v, ok := e.field("redfish_verify_ca"); ok {
			if ca, ok := e.verifyCA("redfish_verify_ca", v); ok {
				e.put(di, "redfish_verify_ca", ca, "redfish_verify_ca")
			}
		}
	}

	if v, ok := e.field("driver_info"); ok {
		if m, ok := e.object("driver_info", v); ok {
			for _, k := range sortedKeys(m) {
				if m[k] == nil {
					continue
				}
				if val, ok := e.driverInfoValue("driver_info."+k, k, m[k]); ok {
					e.put(di, k, val, "driver_info."+k)
				}
			}
		}
	}

	var addrKey string
	switch n.Driver {
	case DriverIPMI:
		addrKey = "ipmi_address"
	case DriverRedfish:
		addrKey = "redfish_address"
	}
	if _, given := e.field("pm_addr"); addrKey != "" && !given && di.m[addrKey] == nil {
		e.invalid("pm_addr", "is required by the %s driver", n.Driver)
	}
	if id := bmcIdentity(n.Driver, di.m); id != "" {
		if j, dup := imp.bmcs[id]; dup {
			e.invalid("pm_addr", "%s is already the BMC of %s", id, imp.label(j))
		} else {
			imp.bmcs[id] = e.index
		}
	}
	return di
}

func (e *entry) credentials(di *fieldSet, prefix string) {
	if v, ok := e.field("pm_user"); ok {
		if s, ok := e.str("pm_user", v); ok {
			e.put(di, prefix+"_username", s, "pm_user")
		}
	}
	if v, ok := e.field("pm_password"); ok {
		if s, ok := e.str("pm_password", v); ok {
			e.put(di, prefix+"_password", s, "pm_password")
		}
	}
}

// driverInfoValue checks the driver_info keys that the pm_* fields also
// set, so that both forms give the same value; other keys pass as given.
func (e *entry) driverInfoValue(field, key string, v any) (any, bool) {
	switch key {
	case "ipmi_address":
		if s, ok := e.str(field, v); ok {
			return e.ipmiAddress(field, s)
		}
		return nil, false
	case "ipmi_port":
		return e.integer(field, v, 1, math.MaxUint16)
	case "redfish_address":
		if s, ok := e.str(field, v); ok {
			return e.redfishAddress(field, s)
		}
		return nil, false
	case "redfish_verify_ca":
		return e.verifyCA(field, v)
	case "ipmi_username", "ipmi_password", "redfish_username", "redfish_password", "redfish_system_id":
		return e.str(field, v)
	}
	return plain(v), true
}

// bmcIdentity names the BMC (and, for Redfish, the system behind it) that
// a node's driver_info points at, or "" when there is none.
func bmcIdentity(driver string, di map[string]any) string {
	switch driver {
	case DriverIPMI:
		addr, _ := di["ipmi_address"].(string)
		if addr == "" {
			return ""
		}
		port, ok := di["ipmi_port"].(int)
		if !ok {
			port = 623
		}
		return "ipmi " + net.JoinHostPort(strings.ToLower(addr), strconv.Itoa(port))
	case DriverRedfish:
		addr, _ := di["redfish_address"].(string)
		u, err := url.Parse(addr)
		if addr == "" || err != nil {
			return ""
		}
		id := "redfish " + strings.ToLower(u.Host) + strings.TrimSuffix(u.Path, "/")
		if sys, _ := di["redfish_system_id"].(string); sys != "" {
			id += " system " + sys
		}
		return id
	}
	return ""
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// ipmiAddress checks an IPMI BMC address: a host name or an IP address.
func (e *entry) ipmiAddress(field, s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		e.invalid(field, "is empty")
		return "", false
	}
	if _, err := netip.ParseAddr(s); err == nil || hostnameRE.MatchString(s) {
		return s, true
	}
	if strings.Contains(s, "@") {
		e.invalid(field, "is not a host name or IP address")
	} else {
		e.invalid(field, "%q is not a host name or IP address", s)
	}
	return "", false
}

// redfishAddress checks a Redfish BMC address and gives it the https://
// scheme when it has none.
func (e *entry) redfishAddress(field, s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		e.invalid(field, "is empty")
		return "", false
	}
	if !strings.Contains(s, "://") {
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			s = "[" + s + "]"
		}
		s = "https://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil:
		// Never quote it: the password would be in the message.
		e.invalid(field, "must not carry credentials: give them in pm_user and pm_password")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "":
		if strings.Contains(s, "@") {
			e.invalid(field, "is not an http or https URL")
		} else {
			e.invalid(field, "%q is not an http or https URL", s)
		}
	default:
		return s, true
	}
	return "", false
}

// verifyCA is redfish_verify_ca: true, false, or the path of a CA bundle.
func (e *entry) verifyCA(field string, v any) (any, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		s := strings.TrimSpace(x)
		if b, err := strconv.ParseBool(s); err == nil {
			return b, true
		}
		if s != "" {
			return s, true
		}
	}
	e.invalid(field, "must be true, false or the path of a CA bundle, not %s", kind(v))
	return nil, false
}

// properties maps cpu, memory, disk, arch, capabilities, profile and
// root_device onto Ironic's properties and merges the entry's properties
// map into them.
func (e *entry) properties() *fieldSet {
	props := newFieldSet()
	if v, ok := e.field("cpu"); ok {
		if x, ok := e.integer("cpu", v, 1, math.MaxInt32); ok {
			e.put(props, "cpus", x, "cpu")
		}
	}
	if v, ok := e.field("memory"); ok {
		if x, ok := e.integer("memory", v, 1, math.MaxInt32); ok {
			e.put(props, "memory_mb", x, "memory")
		}
	}
	if v, ok := e.field("disk"); ok {
		if x, ok := e.integer("disk", v, 0, math.MaxInt32); ok {
			e.put(props, "local_gb", x, "disk")
		}
	}
	if v, ok := e.field("arch"); ok {
		if s, ok := e.nonEmpty("arch", v); ok {
			e.put(props, "cpu_arch", s, "arch")
		}
	}
	if v, ok := e.field("root_device"); ok {
		if hints, ok := e.rootDevice("root_device", v); ok {
			e.put(props, "root_device", hints, "root_device")
		}
	}

	var caps capabilities
	if v, ok := e.field("capabilities"); ok {
		e.addCapabilities(&caps, "capabilities", v)
	}
	if v, ok := e.field("profile"); ok {
		if s, ok := e.nonEmpty("profile", v); ok {
			if strings.ContainsAny(s, ",:") {
				e.invalid("profile", "%q must not contain , or :", s)
			} else {
				e.addCapability(&caps, "profile", capability{"profile", s})
			}
		}
	}

	if v, ok := e.field("properties"); ok {
		if m, ok := e.object("properties", v); ok {
			for _, k := range sortedKeys(m) {
				if m[k] == nil {
					continue
				}
				field := "properties." + k
				switch k {
				case "cpus", "memory_mb":
					if x, ok := e.integer(field, m[k], 1, math.MaxInt32); ok {
						e.put(props, k, x, field)
					}
				case "local_gb":
					if x, ok := e.integer(field, m[k], 0, math.MaxInt32); ok {
						e.put(props, k, x, field)
					}
				case "cpu_arch":
					if s, ok := e.nonEmpty(field, m[k]); ok {
						e.put(props, k, s, field)
					}
				case "root_device":
					if hints, ok := e.rootDevice(field, m[k]); ok {
						e.put(props, k, hints, field)
					}
				case "capabilities":
					e.addCapabilities(&caps, field, m[k])
				default:
					e.put(props, k, plain(m[k]), field)
				}
			}
		}
	}
	if len(caps.list) > 0 {
		props.m["capabilities"] = caps.String()
	}
	return props
}

func (e *entry) rootDevice(field string, v any) (map[string]any, bool) {
	m, ok := e.object(field, v)
	if !ok {
		return nil, false
	}
	hints := map[string]any{}
	for _, k := range sortedKeys(m) {
		switch {
		case !slices.Contains(rootDeviceHints, k):
			e.invalid(field+"."+k, "is not a root device hint: use one of %s", strings.Join(rootDeviceHints, ", "))
			ok = false
		case !isScalar(m[k]):
			e.invalid(field+"."+k, "must be a string, number or boolean, not %s", kind(m[k]))
			ok = false
		default:
			hints[k] = plain(m[k])
		}
	}
	if ok && len(hints) == 0 {
		e.invalid(field, "names no hint")
		ok = false
	}
	return hints, ok
}

// capability is one key:value pair of a node's capabilities.
type capability struct{ key, value string }

// capabilities are gathered from several fields in the order given; from
// remembers the field that set each key.
type capabilities struct {
	list []capability
	from map[string]string
}

// String is Ironic's form of capabilities: "k:v,k:v".
func (c *capabilities) String() string {
	parts := make([]string, len(c.list))
	for i, cp := range c.list {
		parts[i] = cp.key + ":" + cp.value
	}
	return strings.Join(parts, ",")
}

func (e *entry) addCapability(c *capabilities, field string, cp capability) {
	if c.from == nil {
		c.from = map[string]string{}
	}
	for _, have := range c.list {
		if have.key == cp.key {
			if have.value != cp.value {
				e.invalid(field, "sets %s to %q but %s sets it to %q", cp.key, cp.value, c.from[cp.key], have.value)
			}
			return
		}
	}
	c.list = append(c.list, cp)
	c.from[cp.key] = field
}

// addCapabilities parses capabilities given as a "k:v,k:v" string or as a
// map, a map in the order of its keys.
func (e *entry) addCapabilities(c *capabilities, field string, v any) {
	var parsed []capability
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return
		}
		seen := map[string]bool{}
		for item := range strings.SplitSeq(x, ",") {
			k, val, ok := strings.Cut(item, ":")
			k, val = strings.TrimSpace(k), strings.TrimSpace(val)
			switch {
			case !ok || k == "":
				e.invalid(field, "%q is not a key:value pair", strings.TrimSpace(item))
				return
			case seen[k]:
				e.invalid(field, "%s is given twice", k)
				return
			}
			seen[k] = true
			parsed = append(parsed, capability{k, val})
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			var val string
			switch y := x[k].(type) {
			case nil:
				continue
			case string:
				val = y
			case json.Number:
				val = y.String()
			case bool:
				val = strconv.FormatBool(y)
			default:
				e.invalid(field+"."+k, "must be a string, number or boolean, not %s", kind(y))
				return
			}
			switch {
			case k == "" || strings.ContainsAny(k, ",:"):
				e.invalid(field, "%q is not a capability name", k)
				return
			case strings.Contains(val, ","):
				e.invalid(field+"."+k, "%q must not contain a comma", val)
				return
			}
			parsed = append(parsed, capability{k, val})
		}
	default:
		e.invalid(field, `must be a string like "profile:control,boot_mode:uefi" or an object, not %s`, kind(v))
		return
	}
	for _, cp := range parsed {
		e.addCapability(c, field, cp)
	}
}

// ports gathers the entry's ports and its older mac list.
func (imp *importer) ports(e *entry) []Port {
	var ports []Port
	if v, ok := e.field("ports"); ok {
		if list, ok := e.list("ports", v); ok {
			for j, pv := range list {
				field := fmt.Sprintf("ports[%d]", j)
				if m, ok := e.object(field, pv); ok {
					if p, ok := imp.port(e, field, m); ok {
						ports = append(ports, p)
					}
				}
			}
		}
	}
	if v, ok := e.field("mac"); ok {
		if list, ok := e.list("mac", v); ok {
			for j, mv := range list {
				field := fmt.Sprintf("mac[%d]", j)
				if s, ok := e.str(field, mv); ok {
					if mac, ok := imp.mac(e, field, s); ok {
						ports = append(ports, Port{Address: mac, PXEEnabled: true, PhysicalNetwork: importPhysicalNetwork})
					}
				}
			}
		}
	}
	return ports
}

func (imp *importer) port(e *entry, field string, m map[string]any) (Port, bool) {
	p := Port{PXEEnabled: true, PhysicalNetwork: importPhysicalNetwork}
	ok := true
	for _, k := range sortedKeys(m) {
		if !slices.Contains(portFields, k) {
			e.invalid(field+"."+k, "unknown field")
			ok = false
		}
	}
	if v := m["address"]; v == nil {
		e.invalid(field+".address", "is required")
		ok = false
	} else if s, sok := e.str(field+".address", v); !sok {
		ok = false
	} else if p.Address, sok = imp.mac(e, field+".address", s); !sok {
		ok = false
	}
	if v := m["physical_network"]; v != nil {
		var sok bool
		if p.PhysicalNetwork, sok = e.str(field+".physical_network", v); !sok {
			ok = false
		}
	}
	if v := m["pxe_enabled"]; v != nil {
		var bok bool
		if p.PXEEnabled, bok = e.boolean(field+".pxe_enabled", v); !bok {
			ok = false
		}
	}
	if v := m["local_link_connection"]; v != nil {
		llc, lok := e.object(field+".local_link_connection", v)
		if lok && len(llc) > 0 {
			p.LocalLinkConnection = map[string]string{}
		}
		for _, k := range sortedKeys(llc) {
			f := field + ".local_link_connection." + k
			if !slices.Contains(localLinkFields, k) {
				e.invalid(f, "unknown field: use %s", strings.Join(localLinkFields, ", "))
				lok = false
			} else if s, sok := e.str(f, llc[k]); sok {
				p.LocalLinkConnection[k] = s
			} else {
				lok = false
			}
		}
		ok = ok && lok
	}
	return p, ok
}

// mac normalizes a MAC address and checks that the file lists it once.
func (imp *importer) mac(e *entry, field, s string) (string, bool) {
	mac, err := ParseMAC(s)
	if err != nil {
		e.invalid(field, "%q is not a valid MAC address", s)
		return "", false
	}
	where := entryLabel(e.index, e.name) + " " + field
	if prev, dup := imp.macs[mac]; dup {
		e.invalid(field, "%s is already listed at %s", mac, prev)
		return "", false
	}
	imp.macs[mac] = where
	return mac, true
}

// Typed access to the decoded values. Each reports what is wrong and says
// whether the value was good. A message names the type of a bad value,
// and quotes it only where it can not be a password.

func (e *entry) str(field string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		e.invalid(field, "must be a string, not %s", kind(v))
	}
	return s, ok
}

func (e *entry) nonEmpty(field string, v any) (string, bool) {
	s, ok := e.str(field, v)
	if ok && strings.TrimSpace(s) == "" {
		e.invalid(field, "is empty")
		return "", false
	}
	return s, ok
}

func (e *entry) object(field string, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		e.invalid(field, "must be an object, not %s", kind(v))
	}
	return m, ok
}

func (e *entry) list(field string, v any) ([]any, bool) {
	l, ok := v.([]any)
	if !ok {
		e.invalid(field, "must be a list, not %s", kind(v))
	}
	return l, ok
}

// integer accepts a whole number, or a string that holds one.
func (e *entry) integer(field string, v any, lo, hi int) (int, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		e.invalid(field, "must be a whole number, not %s", kind(v))
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			e.invalid(field, "must be a whole number, not %q", s)
			return 0, false
		}
		n = int64(f)
	}
	if n < int64(lo) || n > int64(hi) {
		e.invalid(field, "must be between %d and %d, not %d", lo, hi, n)
		return 0, false
	}
	return int(n), true
}

// boolean accepts true or false, or a string that holds one.
func (e *entry) boolean(field string, v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, true
		}
	}
	e.invalid(field, "must be true or false, not %s", kind(v))
	return false, false
}

// kind names the JSON type of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

// plain turns decoded numbers into int (or float64 when not whole), so
// that values read as they would from a node record.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(x.String(), 10, 0); err == nil {
			return int(n)
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = plain(y)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = plain(y)
		}
		return out
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeDocument decodes JSON, or YAML turned into JSON, keeping numbers
// as json.Number.
func decodeDocument(data []byte) (any, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if rest := bytes.TrimLeft(data, " \t\r\n"); len(rest) > 0 && (rest[0] == '{' || rest[0] == '[') {
		return decodeJSON(data)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		return nil, Invalid("", "not valid YAML: %s", msg)
	}
	return decodeJSON(j)
}

// decodeJSON decodes one JSON document, refusing a key given twice in an
// object (encoding/json would keep the last one silently).
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	off := dec.InputOffset()
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the end of the document")
			off += int64(len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n")))
		}
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of the document")
		}
		line, col := position(data, off)
		return nil, Invalid("", "not valid JSON: line %d, column %d: %v", line, col, err)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("key %q is given twice", k)
			}
			if m[k], err = decodeValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token()
		return m, err
	case json.Delim('['):
		l := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token()
		return l, err
	}
	return tok, nil
}

// position turns a byte offset into a line and column, from 1.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}
