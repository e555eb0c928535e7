package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/spf13/cobra"
)

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the first line of stderr
	}{
		{"bad format", []string{"node", "list", "-f", "xml"}, `strata: --format: "xml" is not one of table, json, yaml, value`},
		{"unknown column", []string{"node", "list", "-c", "colour"}, `strata: --column: unknown column "colour"; known columns: uuid, name,`},
		{"unknown flag", []string{"node", "list", "--colour"}, `strata: unknown flag: --colour`},
		{"both maintenance flags", []string{"node", "list", "--maintenance", "--no-maintenance"}, `strata: --maintenance and --no-maintenance can not be used together`},
		{"unknown state", []string{"node", "list", "--provision-state", "sleeping"}, `strata: --provision-state: "sleeping" is not a provision state`},
		{"bad sort", []string{"node", "list", "--sort", "name:up"}, `strata: --sort: direction "up" is not asc or desc`},
		{"negative limit", []string{"node", "list", "--limit", "-1"}, `strata: --limit: must not be negative`},
		{"show without node", []string{"node", "show"}, `strata: expected 1 argument(s), got 0; usage: strata node show NODE`},
		{"bad node name", []string{"node", "show", "a/b"}, `strata: NODE: "a/b" is not a UUID or a name`},
		{"create without driver", []string{"node", "create", "--name", "n"}, `strata: --driver is required (one of fake-hardware, ipmi, redfish)`},
		{"create bad name", []string{"node", "create", "--driver", "ipmi", "--name", "bad name"}, `strata: --name: "bad name" is not a valid name`},
		{"create bad uuid", []string{"node", "create", "--driver", "ipmi", "--uuid", "123"}, `strata: --uuid: "123" is not a UUID`},
		{"create bad property", []string{"node", "create", "--driver", "ipmi", "--property", "cpus"}, `strata: --property: "cpus" is not KEY=VALUE`},
		{"set nothing", []string{"node", "set", "node-0"}, `strata: nothing to set: give at least one of`},
		{"unset key with value", []string{"node", "unset", "node-0", "--extra", "a=b"}, `strata: --extra: "a=b" is not a KEY`},
		{"manage nothing", []string{"node", "manage"}, `strata: name the nodes to manage, or select them with --all or --provision-state`},
		{"abort nothing", []string{"node", "abort"}, `strata: name the nodes to abort`},
		{"names and --all", []string{"node", "provide", "node-0", "--all"}, `strata: give node names, --all or --provision-state: only one of them`},
		{"state the verb can not leave", []string{"node", "provide", "--provision-state", "enroll"}, `strata: --provision-state: nodes in "enroll" can not be provided`},
		{"negative wait", []string{"node", "manage", "node-0", "--wait=-1"}, `strata: --wait: SECONDS must not be negative`},
		{"no concurrency", []string{"node", "manage", "--all", "--concurrency", "0"}, `strata: --concurrency: must be at least 1`},
		{"clean without steps", []string{"node", "clean", "node-0"}, `strata: --clean-steps is required`},
		{"clean steps not JSON", []string{"node", "clean", "node-0", "--clean-steps", "[nope"}, `strata: --clean-steps: not valid JSON for this flag`},
		{"clean steps unknown field", []string{"node", "clean", "node-0", "--clean-steps", `[{"interface": "deploy", "stpe": "x"}]`}, `strata: --clean-steps: not valid JSON for this flag: json: unknown field "stpe"`},
		{"clean flag on manage", []string{"node", "manage", "node-0", "--clean-steps", "[]"}, `strata: unknown flag: --clean-steps`},
		{"config drive array", []string{"node", "deploy", "node-0", "--config-drive", "[1]"}, `strata: --config-drive: not a JSON object`},
		{"soft power on", []string{"node", "power", "on", "node-0", "--soft"}, `strata: unknown flag: --soft`},
		{"bad boot device", []string{"node", "boot", "device", "set", "node-0", "floppy"}, `strata: DEVICE: "floppy" is not one of pxe, disk, cdrom, bios, safe`},
		{"port bad MAC", []string{"port", "create", "zz:zz", "--node", "node-0"}, `strata: ADDRESS: "zz:zz" is not a MAC address such as 52:54:00:aa:bb:01`},
		{"port without node", []string{"port", "create", "52:54:00:aa:bb:01"}, `strata: --node is required`},
		{"port both pxe flags", []string{"port", "create", "52:54:00:aa:bb:01", "--node", "n", "--pxe-enabled", "--no-pxe-enabled"}, `strata: --pxe-enabled and --no-pxe-enabled can not be used together`},
		{"port bad link key", []string{"port", "create", "52:54:00:aa:bb:01", "--node", "n", "--local-link-connection", "vlan=4"}, `strata: --local-link-connection: "vlan" is not one of`},
		{"unknown command", []string{"node", "mange"}, `strata: unknown command "mange" for "strata node" (did you mean manage?)`},
		{"bad api version", []string{"--os-baremetal-api-version", "two", "node", "list"}, `strata: --os-baremetal-api-version: "two" is not an API version such as 1.78`},
		{"import bad concurrency", []string{"node", "import", "x.json", "--concurrency", "0"}, `strata: --concurrency: must be at least 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			r := strata(t, f, tc.args...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, ExitUsage, r.stderr)
			}
			if first, _, _ := strings.Cut(r.stderr, "\n"); !strings.HasPrefix(first, tc.want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", r.stderr, tc.want)
			}
			if !strings.Contains(r.stderr, "See 'strata ") {
				t.Errorf("no pointer to --help in:\n%s", r.stderr)
			}
			if len(f.requests) != 0 {
				t.Errorf("bad input sent requests: %v", f.requestLines())
			}
		})
	}
}

func TestPollIntervalFromEnvironment(t *testing.T) {
	f := newFake(t)
	env := fakeEnv(f)
	env["STRATA_POLL_INTERVAL"] = "soon"
	r := cliRun{env: env}.run(t, "node", "list")
	if r.code != ExitUsage || !strings.HasPrefix(r.stderr, `strata: STRATA_POLL_INTERVAL: "soon" is not a duration`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}

	f.AddNode("node-0", "enroll", nil)
	env["STRATA_POLL_INTERVAL"] = "10s"
	r = cliRun{env: env}.run(t, "node", "manage", "node-0", "--wait").mustSucceed(t)
	if r.stderr != "node-0: verifying (0s)\nnode-0: manageable (10s)\n" {
		t.Errorf("progress at a 10s interval: %q", r.stderr)
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, c := range allCommands(root) {
		if c.Short == "" {
			t.Errorf("%q has no short help", c.CommandPath())
		}
		if c.Runnable() && c.HasParent() && c.Parent().Name() != "completion" && c.Name() != "help" && c.Example == "" && len(c.Commands()) == 0 {
			t.Errorf("%q has no example", c.CommandPath())
		}
	}
	r := cliRun{}.run(t, "--help")
	for _, v := range []string{"OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_AUTH_TYPE", "OS_ENDPOINT", "OS_USERNAME", "OS_PASSWORD", "OS_AUTH_URL", "OS_BAREMETAL_API_VERSION"} {
		if !strings.Contains(r.stdout, v) {
			t.Errorf("root help does not mention %s", v)
		}
	}
	r = cliRun{}.run(t, "node")
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("bare group command: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestNormalizeArgs(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"node", "manage", "n", "--wait", "600"}, []string{"node", "manage", "n", "--wait=600"}},
		{[]string{"node", "manage", "--wait", "n"}, []string{"node", "manage", "--wait", "n"}},
		{[]string{"node", "manage", "--wait"}, []string{"node", "manage", "--wait"}},
		{[]string{"node", "manage", "--", "--wait", "600"}, []string{"node", "manage", "--", "--wait", "600"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, normalizeArgs(tc.in)); diff != "" {
			t.Errorf("normalizeArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseKeyValue(t *testing.T) {
	tests := []struct {
		in    string
		key   string
		value any
	}{
		{"cpus=8", "cpus", json.Number("8")},
		{"flag=true", "flag", true},
		{"list=[1, 2]", "list", []any{json.Number("1"), json.Number("2")}},
		{`obj={"a": "b"}`, "obj", map[string]any{"a": "b"}},
		{"addr=10.0.0.5", "addr", "10.0.0.5"},
		{"mac=52:54:00:aa:bb:01", "mac", "52:54:00:aa:bb:01"},
		{"caps=profile:compute,boot_mode:uefi", "caps", "profile:compute,boot_mode:uefi"},
		{"version=4x", "version", "4x"},
		{"empty=", "empty", ""},
		{`quoted="8"`, "quoted", "8"},
		{"eq=a=b", "eq", "a=b"},
	}
	for _, tc := range tests {
		k, v, err := parseKeyValue("property", tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if k != tc.key || !cmp.Equal(v, tc.value) {
			t.Errorf("%q: %q=%#v, want %q=%#v", tc.in, k, v, tc.key, tc.value)
		}
	}
	for _, bad := range []string{"novalue", "=x", " =x"} {
		if _, _, err := parseKeyValue("property", bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := pointerEscape("a/b~c"); got != "a~1b~0c" {
		t.Errorf("pointerEscape: %q", got)
	}
}

func TestCellText(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "None"},
		{true, "True"},
		{false, "False"},
		{"text", "text"},
		{json.Number("8192"), "8192"},
		{float64(1.5), "1.5"},
		{map[string]any{"b": 1, "a": "<x>"}, `{"a":"<x>","b":1}`},
		{[]any{"x", nil}, `["x",null]`},
	}
	for _, tc := range tests {
		if got := cellText(tc.in); got != tc.want {
			t.Errorf("cellText(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := writeTable(&b, []string{"Node", "Error"}, [][]string{{"nœud-0", "line one\nline two"}, {"n1", ""}}); err != nil {
		t.Fatal(err)
	}
	want := `+--------+----------+
| Node   | Error    |
+--------+----------+
| nœud-0 | line one |
|        | line two |
| n1     |          |
+--------+----------+
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPrinterShowFormats(t *testing.T) {
	rec := record{"name": "node-0", "properties": map[string]any{"cpus": json.Number("8")}, "maintenance": false, "last_error": nil}
	tests := []struct {
		format  string
		columns []string
		want    string
	}{
		{formatJSON, nil, "{\n  \"last_error\": null,\n  \"maintenance\": false,\n  \"name\": \"node-0\",\n  \"properties\": {\n    \"cpus\": 8\n  }\n}\n"},
		{formatYAML, nil, "last_error: null\nmaintenance: false\nname: node-0\nproperties:\n  cpus: 8\n"},
		{formatValue, []string{"name", "maintenance"}, "node-0\nFalse\n"},
		{formatYAML, []string{"Last Error"}, "last_error: null\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		p := &printer{out: &b, format: tc.format, columns: tc.columns}
		if err := p.show(rec); err != nil {
			t.Errorf("%s: %v", tc.format, err)
			continue
		}
		if diff := cmp.Diff(tc.want, b.String()); diff != "" {
			t.Errorf("%s %v (-want +got):\n%s", tc.format, tc.columns, diff)
		}
	}
	p := &printer{out: &bytes.Buffer{}, format: formatTable, columns: []string{"colour"}}
	if err := p.show(rec); err == nil || !strings.Contains(err.Error(), `"colour" is not a field of this output`) {
		t.Errorf("unknown -c on show: %v", err)
	}
}

func TestAPIErrorBodies(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
		code   string
	}{
		{"ironic: fault as a JSON string", 400,
			`{"error_message": "{\"faultstring\": \"Node x is locked.\", \"faultcode\": \"Client\", \"debuginfo\": null}"}`,
			"Node x is locked.", "Client"},
		{"fault as an object", 409, `{"error_message": {"faultstring": "Conflict here", "faultcode": "Client"}}`, "Conflict here", "Client"},
		{"error_message a plain string", 400, `{"error_message": "plain words"}`, "plain words", ""},
		{"keystone", 401, `{"error": {"code": 401, "message": "The request you have made requires authentication."}}`, "The request you have made requires authentication.", ""},
		{"text", 502, "Bad Gateway from the proxy", "Bad Gateway from the proxy", ""},
		{"html", 503, "<html><body>down</body></html>", "the API answered 503 Service Unavailable", ""},
		{"empty", 500, "", "the API answered 500 Internal Server Error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := apiError(gophercloud.ErrUnexpectedResponseCode{Actual: tc.status, Body: []byte(tc.body)})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("%T is not an *APIError", err)
			}
			if ae.Fault != tc.want || ae.Code != tc.code || ae.StatusCode != tc.status {
				t.Errorf("got %+v, want fault %q code %q", ae, tc.want, tc.code)
			}
		})
	}
	nf := resourceError(gophercloud.ErrUnexpectedResponseCode{Actual: 404, Body: []byte(`{}`)}, "node", "x")
	if nf.Error() != `node "x" not found` || !isNotFound(nf) {
		t.Errorf("404: %v", nf)
	}
}

func TestFormatElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1400 * time.Millisecond: "1s", 90 * time.Second: "1m30s", -time.Second: "0s", 3723 * time.Second: "1h2m3s",
	} {
		if got := formatElapsed(d); got != want {
			t.Errorf("formatElapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestJudge(t *testing.T) {
	manage, _ := lookupVerb("manage")
	abort, _ := lookupVerb("abort")
	deploy, _ := lookupVerb("deploy")
	tests := []struct {
		name  string
		verb  provisionVerb
		node  record
		moved bool
		want  verdict
	}{
		{"not moved yet", manage, record{"provision_state": "manageable"}, false, pending},
		{"reached", manage, record{"provision_state": "manageable"}, true, succeeded},
		{"still heading somewhere", deploy, record{"provision_state": "active", "target_provision_state": "active"}, true, succeeded},
		{"on the way", deploy, record{"provision_state": "wait call-back", "target_provision_state": "active"}, true, pending},
		{"failed state with a target", deploy, record{"provision_state": "deploy failed", "target_provision_state": "active"}, true, failed},
		{"verification failed", manage, record{"provision_state": "enroll", "last_error": "bad BMC"}, true, failed},
		{"enroll without error", manage, record{"provision_state": "enroll"}, true, pending},
		{"abort rests in a failed state", abort, record{"provision_state": "clean failed"}, true, succeeded},
		{"abort still going", abort, record{"provision_state": "cleaning"}, true, pending},
	}
	for _, tc := range tests {
		if got := tc.verb.judge(tc.node, tc.moved); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func lookupVerb(name string) (provisionVerb, bool) {
	for _, v := range provisionVerbs {
		if v.Name == name {
			return v, true
		}
	}
	return provisionVerb{}, false
}
