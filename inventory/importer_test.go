package inventory_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata and docs/states.md)")

// password is the BMC password of every test file; no error may quote it.
const password = "s3cret"

// goldenFile returns the golden content at path, first writing got there
// when -update is given.
func goldenFile(t *testing.T, path string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./inventory -run Golden -update to create it)", err)
	}
	return want
}

// goodImports are the files under testdata/import that parse; each has a
// .golden.json next to it.
var goodImports = []string{
	"instackenv.json",
	"instackenv-list.json",
	"nodes.yaml",
}

func TestImportGolden(t *testing.T) {
	for _, name := range goodImports {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "import", name)
			specs, err := inventory.ParseImportFile(path)
			if err != nil {
				t.Fatalf("ParseImportFile: %v", err)
			}
			got, err := json.MarshalIndent(specs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			want := goldenFile(t, strings.TrimSuffix(path, filepath.Ext(path))+".golden.json", got)
			var wantV, gotV any
			if err := json.Unmarshal(want, &wantV); err != nil {
				t.Fatalf("golden file: %v", err)
			}
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("ParseImportFile(%s) (-want +got):\n%s", path, diff)
			}
		})
	}
}

// TestImportYAMLIsJSON checks that nodes.yaml, which has the nodes of
// instackenv.json as YAML, gives the same specs.
func TestImportYAMLIsJSON(t *testing.T) {
	fromJSON, err := inventory.ParseImportFile(filepath.Join("testdata", "import", "instackenv.json"))
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := inventory.ParseImportFile(filepath.Join("testdata", "import", "nodes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromJSON, fromYAML); diff != "" {
		t.Errorf("(-json +yaml):\n%s", diff)
	}
}

// badImports are the files under testdata/import/bad, each with the entry
// and field of the first problem reported (index -1 for a problem with the
// whole file). The full message is in a golden file next to it, named
// for the input with .err added.
var badImports = []struct {
	file  string
	index int
	name  string
	field string
	count int // problems reported
}{
	{file: "missing-pm-type.json", index: 1, name: "node-1", field: "pm_type", count: 1},
	{file: "unknown-pm-type.json", index: 0, name: "node-0", field: "pm_type", count: 1},
	{file: "pm-type-not-string.yaml", index: 0, name: "node-0", field: "pm_type", count: 1},
	{file: "bad-mac.json", index: 0, name: "node-0", field: "ports[0].address", count: 1},
	{file: "bad-mac-list.yaml", index: 0, name: "node-0", field: "mac[1]", count: 1},
	{file: "mac-not-list.json", index: 0, name: "node-0", field: "mac", count: 1},
	{file: "duplicate-mac.json", index: 1, name: "node-1", field: "mac[0]", count: 1},
	{file: "duplicate-mac-same-node.yaml", index: 0, field: "mac[0]", count: 1},
	{file: "duplicate-name.json", index: 2, field: "name", count: 1},
	{file: "invalid-name.json", index: 0, field: "name", count: 1},
	{file: "uuid-name.json", index: 0, field: "name", count: 1},
	{file: "name-not-string.yaml", index: 0, field: "name", count: 1},
	{file: "bad-uuid.json", index: 0, name: "node-0", field: "uuid", count: 1},
	{file: "duplicate-uuid.json", index: 1, name: "node-1", field: "uuid", count: 1},
	{file: "missing-pm-addr.json", index: 0, field: "pm_addr", count: 1},
	{file: "missing-redfish-addr.json", index: 0, name: "node-0", field: "pm_addr", count: 1},
	{file: "unknown-field.json", index: 0, name: "node-0", field: "kernel_id", count: 2},
	{file: "field-not-for-driver.json", index: 0, name: "node-0", field: "pm_system_id", count: 4},
	{file: "bad-numbers.json", index: 0, name: "node-0", field: "pm_port", count: 4},
	{file: "number-type.yaml", index: 0, name: "node-0", field: "cpu", count: 2},
	{file: "bad-capabilities.json", index: 0, name: "node-0", field: "capabilities", count: 5},
	{file: "capability-conflict.json", index: 0, name: "node-0", field: "profile", count: 2},
	{file: "driver-info-conflict.json", index: 0, name: "node-0", field: "driver_info.ipmi_address", count: 2},
	{file: "properties-conflict.yaml", index: 0, name: "node-0", field: "properties.cpus", count: 1},
	{file: "duplicate-bmc.json", index: 1, name: "node-1", field: "pm_addr", count: 2},
	{file: "bad-bmc-address.json", index: 0, name: "node-0", field: "pm_addr", count: 6},
	{file: "bad-verify-ca.json", index: 0, name: "node-0", field: "redfish_verify_ca", count: 1},
	{file: "bad-root-device.json", index: 0, name: "node-0", field: "root_device.colour", count: 4},
	{file: "bad-ports.json", index: 0, name: "node-0", field: "ports[0].pxe_enabled", count: 7},
	{file: "bad-types.json", index: 0, name: "node-0", field: "description", count: 7},
	{file: "long-resource-class.yaml", index: 0, name: "node-0", field: "resource_class", count: 1},
	{file: "entry-not-object.json", index: 1, field: "", count: 2},
	{file: "several-nodes.json", index: 1, name: "node-1", field: "mac[0]", count: 3},
	{file: "syntax.json", index: -1, count: 1},
	{file: "truncated.json", index: -1, count: 1},
	{file: "duplicate-key.json", index: -1, count: 1},
	{file: "trailing-data.json", index: -1, count: 1},
	{file: "deep.json", index: -1, count: 1},
	{file: "syntax.yaml", index: -1, count: 1},
	{file: "duplicate-key.yaml", index: -1, count: 1},
	{file: "empty.yaml", index: -1, count: 1},
	{file: "comment-only.yaml", index: -1, count: 1},
	{file: "scalar.yaml", index: -1, count: 1},
	{file: "no-nodes.json", index: -1, field: "nodes", count: 1},
	{file: "nodes-not-list.json", index: -1, field: "nodes", count: 1},
	{file: "empty-list.json", index: -1, field: "nodes", count: 1},
}

func TestImportErrorsGolden(t *testing.T) {
	for _, tt := range badImports {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "import", "bad", tt.file)
			specs, err := inventory.ParseImportFile(path)
			if err == nil {
				t.Fatalf("ParseImportFile(%s) = %d nodes, want an error", path, len(specs))
			}
			if specs != nil {
				t.Errorf("ParseImportFile returned nodes with its error")
			}
			msg := err.Error()
			want := goldenFile(t, path+".err", []byte(msg+"\n"))
			if diff := cmp.Diff(string(want), msg+"\n"); diff != "" {
				t.Errorf("error message (-want +got):\n%s", diff)
			}

			if !errors.Is(err, inventory.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			if strings.Contains(msg, password) {
				t.Errorf("the message quotes a password:\n%s", msg)
			}
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("the message does not start with the file's path:\n%s", msg)
			}
			problems := problemsOf(err)
			if len(problems) != tt.count {
				t.Errorf("%d problems reported, want %d:\n%s", len(problems), tt.count, msg)
			}
			for _, p := range problems {
				checkMessage(t, p)
			}

			var ie *inventory.ImportError
			switch {
			case tt.index < 0 && errors.As(err, &ie):
				t.Errorf("a problem of the whole file is reported for nodes[%d]", ie.Index)
			case tt.index >= 0 && !errors.As(err, &ie):
				t.Fatalf("error is not an *ImportError:\n%s", msg)
			case tt.index >= 0 && (ie.Index != tt.index || ie.Name != tt.name):
				t.Errorf("first problem is in nodes[%d] named %q, want nodes[%d] named %q", ie.Index, ie.Name, tt.index, tt.name)
			}
			var inv *inventory.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error wraps no *InvalidError:\n%s", msg)
			}
			if inv.Field != tt.field {
				t.Errorf("first problem is with field %q, want %q", inv.Field, tt.field)
			}
		})
	}
}

// problemsOf splits a joined error into the problems it reports.
func problemsOf(err error) []error {
	for {
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			return e.Unwrap()
		case *inventory.ImportError, *inventory.InvalidError:
			return []error{err}
		}
		if err = errors.Unwrap(err); err == nil {
			return nil
		}
	}
}

// TestImportTestdataCovered checks that every file under testdata/import
// is an input of a test case or the golden file of one.
func TestImportTestdataCovered(t *testing.T) {
	want := map[string]bool{}
	for _, name := range goodImports {
		want[name] = true
		want[strings.TrimSuffix(name, filepath.Ext(name))+".golden.json"] = true
	}
	for _, tt := range badImports {
		name := filepath.Join("bad", tt.file)
		if want[name] {
			t.Errorf("%s is listed twice", name)
		}
		want[name] = true
		want[name+".err"] = true
	}
	root := filepath.Join("testdata", "import")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if !want[rel] {
			t.Errorf("%s belongs to no test case", path)
		}
		delete(want, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !*update {
		for name := range want {
			t.Errorf("%s is missing", filepath.Join(root, name))
		}
	}
}

func TestParseImportFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "instackenv.json")
	_, err := inventory.ParseImportFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ParseImportFile(%s) = %v, want fs.ErrNotExist", path, err)
	}
	if errors.Is(err, inventory.ErrInvalid) {
		t.Errorf("a missing file is reported as invalid input")
	}
}

// importOne parses a file of one node given as JSON.
func importOne(t *testing.T, node string) (inventory.NodeSpec, error) {
	t.Helper()
	specs, err := inventory.ParseImport([]byte(`{"nodes": [` + node + `]}`))
	if err != nil {
		return inventory.NodeSpec{}, err
	}
	if len(specs) != 1 {
		t.Fatalf("%d nodes, want 1", len(specs))
	}
	return specs[0], nil
}

func TestImportPMTypes(t *testing.T) {
	tests := []struct {
		pmType, driver string
	}{
		{"ipmi", inventory.DriverIPMI},
		{"pxe_ipmitool", inventory.DriverIPMI},
		{"ipmi_ipmitool", inventory.DriverIPMI},
		{"redfish", inventory.DriverRedfish},
		{"fake", inventory.DriverFake},
		{"fake-hardware", inventory.DriverFake},
		{"fake_pxe", inventory.DriverFake},

		{"IPMI", ""},
		{"agent_ipmitool", ""},
		{"idrac", ""},
		{"pxe_ssh", ""},
		{"manual-management", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.pmType, func(t *testing.T) {
			node := fmt.Sprintf(`{"pm_type": %q, "pm_addr": "10.0.0.1"}`, tt.pmType)
			if tt.driver == inventory.DriverFake {
				node = fmt.Sprintf(`{"pm_type": %q}`, tt.pmType)
			}
			spec, err := importOne(t, node)
			if tt.driver == "" {
				var inv *inventory.InvalidError
				if !errors.As(err, &inv) || inv.Field != "pm_type" {
					t.Fatalf("err = %v, want an error for pm_type", err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.pmType)) {
					t.Errorf("the message does not quote the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Node.Driver != tt.driver {
				t.Errorf("driver %q, want %q", spec.Node.Driver, tt.driver)
			}
			if !slices.Contains(inventory.Drivers, spec.Node.Driver) {
				t.Errorf("driver %q is not one of Drivers", spec.Node.Driver)
			}
		})
	}
}

func TestImportRedfishAddress(t *testing.T) {
	tests := []struct {
		pmAddr, want string
	}{
		{"192.168.24.12", "https://192.168.24.12"},
		{"192.168.24.12:8000", "https://192.168.24.12:8000"},
		{"bmc-12.lab.example", "https://bmc-12.lab.example"},
		{"fd00::12", "https://[fd00::12]"},
		{"[fd00::12]:8000", "https://[fd00::12]:8000"},
		{"https://192.168.24.12", "https://192.168.24.12"},
		{"http://192.168.24.12:8000/", "http://192.168.24.12:8000/"},
		{"HTTPS://bmc-12.lab.example", "HTTPS://bmc-12.lab.example"},
		{" https://192.168.24.12 ", "https://192.168.24.12"},
	}
	for _, tt := range tests {
		t.Run(tt.pmAddr, func(t *testing.T) {
			spec, err := importOne(t, fmt.Sprintf(`{"pm_type": "redfish", "pm_addr": %q}`, tt.pmAddr))
			if err != nil {
				t.Fatal(err)
			}
			if got := spec.Node.DriverInfo["redfish_address"]; got != tt.want {
				t.Errorf("redfish_address = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImportNumbers(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  any // the int, or nil for an error
	}{
		{"number", `4`, 4},
		{"string", `"4"`, 4},
		{"padded string", `" 4 "`, 4},
		{"whole float", `4.0`, 4},
		{"exponent", `4e0`, 4},
		{"fraction", `4.5`, nil},
		{"zero", `0`, nil},
		{"negative", `-4`, nil},
		{"hex string", `"0x4"`, nil},
		{"empty string", `""`, nil},
		{"words", `"four"`, nil},
		{"boolean", `true`, nil},
		{"huge", `1e300`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := importOne(t, `{"pm_type": "fake", "cpu": `+tt.value+`}`)
			if tt.want == nil {
				var inv *inventory.InvalidError
				if !errors.As(err, &inv) || inv.Field != "cpu" {
					t.Fatalf("err = %v, want an error for cpu", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, spec.Node.Properties["cpus"]); diff != "" {
				t.Errorf("cpus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImportCapabilities(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"string", `"profile:control,boot_mode:uefi"`, "profile:control,boot_mode:uefi"},
		{"string with spaces", `" profile : control , boot_mode:uefi "`, "profile:control,boot_mode:uefi"},
		{"value with a colon", `"node:rack:1"`, "node:rack:1"},
		{"empty value", `"profile:"`, "profile:"},
		{"map, sorted", `{"profile": "control", "boot_mode": "uefi"}`, "boot_mode:uefi,profile:control"},
		{"map with other types", `{"cpu_vt": true, "cores": 8, "skip": null}`, "cores:8,cpu_vt:true"},
		{"empty string", `""`, ""},
		{"empty map", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := importOne(t, `{"pm_type": "fake", "capabilities": `+tt.value+`}`)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := spec.Node.Properties["capabilities"]
			if tt.want == "" {
				if ok {
					t.Errorf("capabilities = %q, want none", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("capabilities = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImportDefaults(t *testing.T) {
	spec, err := importOne(t, `{"pm_type": "fake", "mac": ["52:54:00:aa:bb:01"], "ports": [{"address": "52:54:00:aa:bb:02"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := inventory.NodeSpec{
		Node: inventory.Node{
			Driver:        inventory.DriverFake,
			DriverInfo:    map[string]any{},
			Properties:    map[string]any{},
			ResourceClass: "baremetal",
		},
		Ports: []inventory.Port{
			{Address: "52:54:00:aa:bb:02", PXEEnabled: true, PhysicalNetwork: "ctlplane"},
			{Address: "52:54:00:aa:bb:01", PXEEnabled: true, PhysicalNetwork: "ctlplane"},
		},
	}
	if diff := cmp.Diff(want, spec); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestImportDetectsFormat(t *testing.T) {
	tests := []struct {
		name, data string
	}{
		{"json object", `{"nodes": [{"name": "node-0", "pm_type": "fake"}]}`},
		{"json list", `[{"name": "node-0", "pm_type": "fake"}]`},
		{"json after space", "\n\t  [{\"name\": \"node-0\", \"pm_type\": \"fake\"}]"},
		{"json after a byte order mark", "\xEF\xBB\xBF{\"nodes\": [{\"name\": \"node-0\", \"pm_type\": \"fake\"}]}"},
		{"yaml", "nodes:\n  - name: node-0\n    pm_type: fake\n"},
		{"yaml list", "- name: node-0\n  pm_type: fake\n"},
		{"yaml document marker", "---\n- {name: node-0, pm_type: fake}\n"},
		{"yaml with a comment before json", "# nodes\n{\"nodes\": [{\"name\": \"node-0\", \"pm_type\": \"fake\"}]}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := inventory.ParseImport([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != 1 || specs[0].Node.Name != "node-0" || specs[0].Node.Driver != inventory.DriverFake {
				t.Errorf("got %+v, want node-0 with driver fake-hardware", specs)
			}
		})
	}
}

// TestImportKeepsSecretsOutOfErrors feeds the password into every field
// where a wrong value is reported, and checks that no message quotes it.
func TestImportKeepsSecretsOutOfErrors(t *testing.T) {
	nodes := []string{
		`{"pm_type": "ipmi", "pm_addr": "admin:` + password + `@10.0.0.1"}`,
		`{"pm_type": "redfish", "pm_addr": "https://admin:` + password + `@10.0.0.1"}`,
		`{"pm_type": "redfish", "pm_addr": "https://admin:` + password + ` @10.0.0.1"}`,
		`{"pm_type": "fake", "pm_password": "` + password + `"}`,
		`{"pm_type": "ipmi", "pm_addr": "10.0.0.1", "pm_password": ["` + password + `"]}`,
		`{"pm_type": "ipmi", "pm_addr": "10.0.0.1", "pm_password": {"` + password + `": 1}}`,
		`{"pm_type": "ipmi", "pm_addr": "10.0.0.1", "pm_password": "a", "driver_info": {"ipmi_password": "` + password + `"}}`,
		`{"pm_type": "ipmi", "pm_addr": "10.0.0.1", "ipmi_password": "` + password + `"}`,
		`{"pm_type": "redfish", "pm_addr": "10.0.0.1", "redfish_verify_ca": {"path": "` + password + `"}}`,
	}
	for _, node := range nodes {
		_, err := importOne(t, node)
		if err == nil {
			t.Errorf("%s: no error", node)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: the message quotes the password: %v", node, err)
		}
	}
}
