package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/stratacloud/strata/lab/bmc"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestResources compares every resource with its golden file.
func TestResources(t *testing.T) {
	ts := newTestServer(t, 2, nil)
	if err := ts.sims["node-1"].PowerOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		auth       bool
	}{
		{"redfish", "/redfish", false},
		{"root", "/redfish/v1/", false},
		{"odata", "/redfish/v1/odata", false},
		{"systems", "/redfish/v1/Systems", true},
		{"system", "/redfish/v1/Systems/node-0", true},
		{"system_on", "/redfish/v1/Systems/node-1", true},
		{"ethernet_interfaces", "/redfish/v1/Systems/node-0/EthernetInterfaces", true},
		{"ethernet_interface", "/redfish/v1/Systems/node-0/EthernetInterfaces/eth0", true},
		{"simple_storages", "/redfish/v1/Systems/node-0/SimpleStorage", true},
		{"simple_storage", "/redfish/v1/Systems/node-0/SimpleStorage/1", true},
		{"storages", "/redfish/v1/Systems/node-0/Storage", true},
		{"storage", "/redfish/v1/Systems/node-0/Storage/1", true},
		{"drive", "/redfish/v1/Systems/node-0/Storage/1/Drives/sda", true},
		{"processors", "/redfish/v1/Systems/node-0/Processors", true},
		{"processor", "/redfish/v1/Systems/node-0/Processors/CPU1", true},
		{"memories", "/redfish/v1/Systems/node-0/Memory", true},
		{"memory", "/redfish/v1/Systems/node-0/Memory/DIMM0", true},
		{"managers", "/redfish/v1/Managers", true},
		{"manager", "/redfish/v1/Managers/node-0", true},
		{"chassis_collection", "/redfish/v1/Chassis", true},
		{"chassis", "/redfish/v1/Chassis/node-1", true},
		{"session_service", "/redfish/v1/SessionService", true},
		{"sessions", "/redfish/v1/SessionService/Sessions", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []reqOption
			if tt.auth {
				opts = append(opts, admin)
				// Without credentials the resource is refused.
				wantError(t, do(ts.Handler(), "GET", tt.path, ""), http.StatusUnauthorized, "NoValidSession")
			}
			w := do(ts.Handler(), "GET", tt.path, "", opts...)
			wantStatus(t, w, http.StatusOK)
			if got := w.Header().Get("OData-Version"); got != "4.0" {
				t.Errorf("OData-Version %q", got)
			}
			got := decode(t, w)
			if id, ok := got["@odata.id"].(string); ok {
				if strings.TrimSuffix(id, "/") != strings.TrimSuffix(tt.path, "/") {
					t.Errorf("@odata.id %q at %s", id, tt.path)
				}
				if got["@odata.type"] == nil {
					t.Errorf("no @odata.type")
				}
				if w.Header().Get("ETag") == "" {
					t.Errorf("no ETag")
				}
			}
			golden(t, filepath.Join("testdata", tt.name+".json"), w.Body.Bytes())
		})
	}
}

// golden compares a JSON document with a golden file, after unmarshalling
// both; with -update it rewrites the file.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	var g any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if *update {
		b, _ := json.MarshalIndent(g, "", "  ")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestTrailingSlashAndHead(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	for _, p := range []string{"/redfish/v1", "/redfish/v1/", "/redfish/", "/redfish/v1/Systems/", "/redfish/v1/Systems/node-0/"} {
		w := do(ts.Handler(), "GET", p, "", admin)
		wantStatus(t, w, http.StatusOK)
	}
	w := do(ts.Handler(), "HEAD", "/redfish/v1/Systems/node-0", "", admin)
	wantStatus(t, w, http.StatusOK)
	if w.Header().Get("ETag") == "" {
		t.Errorf("HEAD: no ETag")
	}
}

func TestAuthErrors(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	tests := []struct {
		name string
		opts []reqOption
		key  string
	}{
		{"no credentials", nil, "NoValidSession"},
		{"wrong password", []reqOption{basic(testUser, "wrong")}, "ResourceAtUriUnauthorized"},
		{"wrong user", []reqOption{basic("root", testPassword)}, "ResourceAtUriUnauthorized"},
		{"empty password", []reqOption{basic(testUser, "")}, "ResourceAtUriUnauthorized"},
		{"unknown token", []reqOption{token("not-a-token")}, "NoValidSession"},
		// A bad token is refused even with good Basic credentials.
		{"bad token and basic", []reqOption{token("not-a-token"), admin}, "NoValidSession"},
		{"malformed authorization", []reqOption{header("Authorization", "Basic !!!")}, "NoValidSession"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"/redfish/v1/Systems", "/redfish/v1/Systems/node-0", "/redfish/v1/SessionService/Sessions", "/redfish/v1/NoSuchThing"} {
				w := do(ts.Handler(), "GET", p, "", tt.opts...)
				wantError(t, w, http.StatusUnauthorized, tt.key)
				if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic realm=") {
					t.Errorf("%s: WWW-Authenticate %q", p, got)
				}
			}
			// Nothing changes without credentials.
			w := do(ts.Handler(), "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, tt.opts...)
			wantError(t, w, http.StatusUnauthorized, tt.key)
			w = do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`, tt.opts...)
			wantError(t, w, http.StatusUnauthorized, tt.key)
			if on, _ := ts.sims["node-0"].PoweredOn(t.Context()); on {
				t.Errorf("powered on without credentials")
			}
			if b := ts.sims["node-0"].Boot(); b.Device != bmc.BootNone {
				t.Errorf("boot set without credentials: %+v", b)
			}
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	tests := []struct {
		method, path string
		status       int
		key          string
		words        []string
	}{
		{"GET", "/redfish/v1/Systems/nope", 404, "ResourceNotFound", []string{"ComputerSystem", "'nope'"}},
		{"PATCH", "/redfish/v1/Systems/nope", 404, "ResourceNotFound", []string{"nope"}},
		{"POST", "/redfish/v1/Systems/nope/Actions/ComputerSystem.Reset", 404, "ResourceNotFound", []string{"nope"}},
		{"GET", "/redfish/v1/Systems/nope/EthernetInterfaces", 404, "ResourceNotFound", []string{"nope"}},
		{"GET", "/redfish/v1/Systems/node-0/EthernetInterfaces/eth9", 404, "ResourceNotFound", []string{"EthernetInterface", "eth9"}},
		{"GET", "/redfish/v1/Systems/node-0/SimpleStorage/2", 404, "ResourceNotFound", []string{"SimpleStorage"}},
		{"GET", "/redfish/v1/Systems/node-0/Storage/1/Drives/sdz", 404, "ResourceNotFound", []string{"Drive", "sdz"}},
		{"GET", "/redfish/v1/Systems/node-0/Processors/CPU2", 404, "ResourceNotFound", []string{"Processor", "CPU2"}},
		{"GET", "/redfish/v1/Systems/node-0/Memory/DIMM1", 404, "ResourceNotFound", []string{"Memory"}},
		{"GET", "/redfish/v1/Managers/nope", 404, "ResourceNotFound", []string{"Manager", "nope"}},
		{"GET", "/redfish/v1/Chassis/nope", 404, "ResourceNotFound", []string{"Chassis", "nope"}},
		{"GET", "/redfish/v1/SessionService/Sessions/nope", 404, "ResourceNotFound", []string{"Session"}},
		{"DELETE", "/redfish/v1/SessionService/Sessions/nope", 404, "ResourceNotFound", []string{"Session"}},
		{"GET", "/redfish/v1/NoSuchThing", 404, "InvalidURI", []string{"/redfish/v1/NoSuchThing"}},
		{"GET", "/redfish/v1/Systems/node-0/Bios", 404, "InvalidURI", nil},
		{"GET", "/", 404, "InvalidURI", nil},
		{"DELETE", "/redfish/v1/Systems/node-0", 405, "OperationNotAllowed", nil},
		{"PUT", "/redfish/v1/Systems/node-0", 405, "OperationNotAllowed", nil},
		{"POST", "/redfish/v1/Systems", 405, "OperationNotAllowed", nil},
		{"GET", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", 405, "OperationNotAllowed", nil},
		{"PATCH", "/redfish/v1/Chassis/node-0", 405, "OperationNotAllowed", nil},
		{"POST", "/redfish/v1/", 405, "OperationNotAllowed", nil},
		{"PUT", "/redfish/v1/SessionService/Sessions", 405, "OperationNotAllowed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := do(ts.Handler(), tt.method, tt.path, "", admin)
			wantError(t, w, tt.status, tt.key, tt.words...)
			if tt.status == 405 && w.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	w := do(ts.Handler(), "DELETE", "/redfish/v1/Systems/node-0", "", admin)
	if got, want := w.Header().Get("Allow"), "GET, HEAD, PATCH"; got != want {
		t.Errorf("Allow %q, want %q", got, want)
	}
}

func TestPatchBoot(t *testing.T) {
	tests := []struct {
		name  string
		start bmc.BootConfig
		body  string
		want  bmc.BootConfig
		// wantBoot is the Boot the answer shows (target, enabled, mode).
		wantBoot [3]string
	}{
		{"pxe once uefi", bmc.BootConfig{},
			`{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}`,
			bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, [3]string{"Pxe", "Once", "UEFI"}},
		{"disk continuous legacy", bmc.BootConfig{UEFI: true},
			`{"Boot":{"BootSourceOverrideTarget":"Hdd","BootSourceOverrideEnabled":"Continuous","BootSourceOverrideMode":"Legacy"}}`,
			bmc.BootConfig{Device: bmc.BootDisk, Persistent: true}, [3]string{"Hdd", "Continuous", "Legacy"}},
		{"cd", bmc.BootConfig{}, `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`,
			bmc.BootConfig{Device: bmc.BootCDROM}, [3]string{"Cd", "Once", "Legacy"}},
		{"bios setup", bmc.BootConfig{}, `{"Boot":{"BootSourceOverrideTarget":"BiosSetup","BootSourceOverrideEnabled":"Continuous"}}`,
			bmc.BootConfig{Device: bmc.BootBIOS, Persistent: true}, [3]string{"BiosSetup", "Continuous", "Legacy"}},
		{"target alone enables once", bmc.BootConfig{}, `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`,
			bmc.BootConfig{Device: bmc.BootPXE}, [3]string{"Pxe", "Once", "Legacy"}},
		{"target alone keeps continuous", bmc.BootConfig{Device: bmc.BootDisk, Persistent: true}, `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`,
			bmc.BootConfig{Device: bmc.BootPXE, Persistent: true}, [3]string{"Pxe", "Continuous", "Legacy"}},
		{"mode alone", bmc.BootConfig{Device: bmc.BootPXE}, `{"Boot":{"BootSourceOverrideMode":"UEFI"}}`,
			bmc.BootConfig{Device: bmc.BootPXE, UEFI: true}, [3]string{"Pxe", "Once", "UEFI"}},
		{"mode alone without override", bmc.BootConfig{}, `{"Boot":{"BootSourceOverrideMode":"UEFI"}}`,
			bmc.BootConfig{UEFI: true}, [3]string{"None", "Disabled", "UEFI"}},
		{"disabled", bmc.BootConfig{Device: bmc.BootPXE, Persistent: true, UEFI: true}, `{"Boot":{"BootSourceOverrideEnabled":"Disabled"}}`,
			bmc.BootConfig{UEFI: true}, [3]string{"None", "Disabled", "UEFI"}},
		{"target none", bmc.BootConfig{Device: bmc.BootPXE}, `{"Boot":{"BootSourceOverrideTarget":"None"}}`,
			bmc.BootConfig{}, [3]string{"None", "Disabled", "Legacy"}},
		{"annotations ignored", bmc.BootConfig{}, `{"@odata.type":"#ComputerSystem.v1_13_0.ComputerSystem","Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous"}}`,
			bmc.BootConfig{Device: bmc.BootPXE, Persistent: true}, [3]string{"Pxe", "Continuous", "Legacy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, 1, nil)
			sim := ts.sims["node-0"]
			if err := sim.SetBoot(t.Context(), tt.start); err != nil {
				t.Fatal(err)
			}
			w := do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", tt.body, admin)
			wantStatus(t, w, http.StatusOK)
			if diff := cmp.Diff(tt.want, sim.Boot()); diff != "" {
				t.Errorf("machine boot (-want +got):\n%s", diff)
			}
			boot := decode(t, w)["Boot"].(map[string]any)
			got := [3]string{boot["BootSourceOverrideTarget"].(string), boot["BootSourceOverrideEnabled"].(string), boot["BootSourceOverrideMode"].(string)}
			if got != tt.wantBoot {
				t.Errorf("answer's Boot %v, want %v", got, tt.wantBoot)
			}
			// A GET agrees.
			boot = decode(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/node-0", "", admin))["Boot"].(map[string]any)
			if g := boot["BootSourceOverrideTarget"]; g != tt.wantBoot[0] {
				t.Errorf("GET target %v", g)
			}
		})
	}
}

func TestPatchBootErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		opts   []reqOption
		status int
		key    string
		words  []string
	}{
		{"bad target", `{"Boot":{"BootSourceOverrideTarget":"Floppy","BootSourceOverrideEnabled":"Once"}}`, nil,
			400, "PropertyValueNotInList", []string{"'Floppy'", "BootSourceOverrideTarget"}},
		{"lower-case target", `{"Boot":{"BootSourceOverrideTarget":"pxe"}}`, nil,
			400, "PropertyValueNotInList", []string{"'pxe'", "BootSourceOverrideTarget"}},
		{"bad enabled", `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Always"}}`, nil,
			400, "PropertyValueNotInList", []string{"'Always'", "BootSourceOverrideEnabled"}},
		{"bad mode", `{"Boot":{"BootSourceOverrideMode":"BIOS"}}`, nil,
			400, "PropertyValueNotInList", []string{"'BIOS'", "BootSourceOverrideMode"}},
		{"target not a string", `{"Boot":{"BootSourceOverrideTarget":7}}`, nil,
			400, "PropertyValueTypeError", []string{"'7'", "BootSourceOverrideTarget"}},
		{"boot not an object", `{"Boot":"Pxe"}`, nil,
			400, "PropertyValueTypeError", []string{"Boot"}},
		{"unknown boot property", `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootNext":"0001"}}`, nil,
			400, "PropertyUnknown", []string{"BootNext"}},
		{"read-only boot annotation", `{"Boot":{"BootSourceOverrideTarget@Redfish.AllowableValues":["Pxe"]}}`, nil,
			400, "PropertyNotWritable", []string{"BootSourceOverrideTarget@Redfish.AllowableValues"}},
		{"read-only property", `{"PowerState":"On"}`, nil,
			400, "PropertyNotWritable", []string{"PowerState"}},
		{"unknown property", `{"Boot":{"BootSourceOverrideTarget":"Pxe"},"Colour":"blue"}`, nil,
			400, "PropertyUnknown", []string{"Colour"}},
		{"empty object", `{}`, nil, 400, "EmptyJSON", nil},
		{"empty body", ``, nil, 400, "EmptyJSON", nil},
		{"empty boot", `{"Boot":{}}`, nil, 400, "EmptyJSON", nil},
		{"malformed", `{"Boot":{"BootSourceOverrideTarget":"Pxe"`, nil, 400, "MalformedJSON", nil},
		{"not an object", `["Boot"]`, nil, 400, "MalformedJSON", nil},
		{"null", `null`, nil, 400, "MalformedJSON", nil},
		{"trailing garbage", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}} x`, nil, 400, "MalformedJSON", nil},
		{"stale etag", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`, []reqOption{header("If-Match", `"0123456789abcdef01234567"`)},
			412, "PreconditionFailed", nil},
		{"too large", `{"Boot":{"BootSourceOverrideTarget":"` + strings.Repeat("x", maxBody) + `"}}`, nil,
			413, "PayloadTooLarge", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, 1, nil)
			sim := ts.sims["node-0"]
			start := bmc.BootConfig{Device: bmc.BootDisk, Persistent: true}
			if err := sim.SetBoot(t.Context(), start); err != nil {
				t.Fatal(err)
			}
			w := do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", tt.body, append([]reqOption{admin}, tt.opts...)...)
			wantError(t, w, tt.status, tt.key, tt.words...)
			if diff := cmp.Diff(start, sim.Boot()); diff != "" {
				t.Errorf("bad input changed the boot override (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPatchIfMatch(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	get := do(ts.Handler(), "GET", "/redfish/v1/Systems/node-0", "", admin)
	tag := get.Header().Get("ETag")
	if !strings.HasPrefix(tag, `"`) {
		t.Fatalf("ETag %q is not a strong tag", tag)
	}
	body := `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous"}}`
	w := do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", body, admin, header("If-Match", `"other", `+tag))
	wantStatus(t, w, http.StatusOK)
	newTag := w.Header().Get("ETag")
	if newTag == tag || newTag == "" {
		t.Errorf("ETag after the change %q, before %q", newTag, tag)
	}
	// The old tag is stale now.
	w = do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", body, admin, header("If-Match", tag))
	wantError(t, w, http.StatusPreconditionFailed, "PreconditionFailed")
	w = do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", body, admin, header("If-Match", "*"))
	wantStatus(t, w, http.StatusOK)
	// A power change changes the ETag too.
	if err := ts.sims["node-0"].PowerOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	w = do(ts.Handler(), "PATCH", "/redfish/v1/Systems/node-0", body, admin, header("If-Match", newTag))
	wantError(t, w, http.StatusPreconditionFailed, "PreconditionFailed")
}

func TestReset(t *testing.T) {
	tests := []struct {
		resetType string
		on        bool // the machine's power before
		wantOn    bool
		boots     int // boots the reset causes
	}{
		{"On", false, true, 1},
		{"On", true, true, 0},
		{"ForceOn", false, true, 1},
		{"ForceOff", true, false, 0},
		{"ForceOff", false, false, 0},
		{"GracefulShutdown", true, false, 0},
		{"ForceRestart", true, true, 1},
		{"GracefulRestart", true, true, 1},
		{"PowerCycle", true, true, 1},
		{"PowerCycle", false, true, 1},
		{"PushPowerButton", false, true, 1},
		{"PushPowerButton", true, false, 0},
	}
	for _, tt := range tests {
		name := tt.resetType + "/off"
		if tt.on {
			name = tt.resetType + "/on"
		}
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, 2, nil)
			sim := ts.sims["node-0"]
			if tt.on {
				if err := sim.PowerOn(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			before := len(sim.Boots())
			w := do(ts.Handler(), "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset",
				`{"ResetType":"`+tt.resetType+`"}`, admin)
			wantStatus(t, w, http.StatusNoContent)
			if w.Body.Len() != 0 {
				t.Errorf("204 with a body: %q", w.Body.String())
			}
			if on, _ := sim.PoweredOn(t.Context()); on != tt.wantOn {
				t.Errorf("powered on %v, want %v", on, tt.wantOn)
			}
			if got := len(sim.Boots()) - before; got != tt.boots {
				t.Errorf("%d boots, want %d", got, tt.boots)
			}
			state := decode(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/node-0", "", admin))["PowerState"]
			if want := powerState(tt.wantOn); state != want {
				t.Errorf("PowerState %v, want %v", state, want)
			}
			state = decode(t, do(ts.Handler(), "GET", "/redfish/v1/Chassis/node-0", "", admin))["PowerState"]
			if want := powerState(tt.wantOn); state != want {
				t.Errorf("chassis PowerState %v, want %v", state, want)
			}
			// The other system is untouched.
			if on, _ := ts.sims["node-1"].PoweredOn(t.Context()); on || len(ts.sims["node-1"].Boots()) != 0 {
				t.Errorf("node-1 changed")
			}
		})
	}
}

func TestResetErrors(t *testing.T) {
	tests := []struct {
		name, body string
		key        string
		words      []string
	}{
		{"nmi", `{"ResetType":"Nmi"}`, "ActionParameterValueNotInList", []string{"'Nmi'", "ResetType", "ComputerSystem.Reset"}},
		{"unknown type", `{"ResetType":"Explode"}`, "ActionParameterValueNotInList", []string{"'Explode'", "ResetType"}},
		{"lower-case", `{"ResetType":"on"}`, "ActionParameterValueNotInList", []string{"'on'"}},
		{"missing", `{}`, "ActionParameterMissing", []string{"ResetType", "ComputerSystem.Reset"}},
		{"empty body", ``, "ActionParameterMissing", []string{"ResetType"}},
		{"not a string", `{"ResetType":1}`, "ActionParameterValueTypeError", []string{"'1'", "ResetType"}},
		{"extra parameter", `{"ResetType":"On","Delay":5}`, "ActionParameterUnknown", []string{"Delay"}},
		{"malformed", `{"ResetType":`, "MalformedJSON", nil},
		{"not an object", `"On"`, "MalformedJSON", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, 1, nil)
			w := do(ts.Handler(), "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", tt.body, admin)
			wantError(t, w, http.StatusBadRequest, tt.key, tt.words...)
			sim := ts.sims["node-0"]
			if on, _ := sim.PoweredOn(t.Context()); on || len(sim.Boots()) != 0 {
				t.Errorf("bad input changed the machine")
			}
		})
	}
}

func TestManagerReset(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	const p = "/redfish/v1/Managers/node-0/Actions/Manager.Reset"
	wantStatus(t, do(ts.Handler(), "POST", p, `{"ResetType":"GracefulRestart"}`, admin), http.StatusNoContent)
	wantStatus(t, do(ts.Handler(), "POST", p, ``, admin), http.StatusNoContent)
	wantError(t, do(ts.Handler(), "POST", p, `{"ResetType":"On"}`, admin), 400, "ActionParameterValueNotInList", "'On'", "Manager.Reset")
	wantError(t, do(ts.Handler(), "POST", p, `{"ResetType":true}`, admin), 400, "ActionParameterValueTypeError")
	wantError(t, do(ts.Handler(), "POST", p, `{"Force":true}`, admin), 400, "ActionParameterUnknown", "Force")
	wantError(t, do(ts.Handler(), "POST", "/redfish/v1/Managers/nope/Actions/Manager.Reset", `{}`, admin), 404, "ResourceNotFound")
}

// brokenMachine fails as a machine can: its power state can not be read,
// or it can not do a graceful shutdown.
type brokenMachine struct {
	*bmc.Sim
	stateErr error
}

func (m brokenMachine) PoweredOn(ctx context.Context) (bool, error) {
	if m.stateErr != nil {
		return false, m.stateErr
	}
	return m.Sim.PoweredOn(ctx)
}

func (m brokenMachine) PowerOff(ctx context.Context, graceful bool) error {
	if graceful {
		return fmt.Errorf("graceful shutdown: %w", bmc.ErrUnsupported)
	}
	return m.Sim.PowerOff(ctx, false)
}

func TestMachineErrors(t *testing.T) {
	ts := newTestServer(t, 0, func(c *Config) {
		c.Systems = map[string]bmc.Machine{
			"dead":    brokenMachine{Sim: bmc.NewSim(testHardware(1)), stateErr: errors.New("qmp: connection refused")},
			"limited": brokenMachine{Sim: bmc.NewSim(testHardware(2))},
		}
	})
	wantError(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/dead", "", admin), 500, "InternalError")
	wantError(t, do(ts.Handler(), "GET", "/redfish/v1/Chassis/dead", "", admin), 500, "InternalError")
	if !strings.Contains(ts.log.String(), "qmp: connection refused") {
		t.Errorf("the machine's error is not logged:\n%s", ts.log.String())
	}
	// The collection does not need the machine.
	wantStatus(t, do(ts.Handler(), "GET", "/redfish/v1/Systems", "", admin), 200)

	wantError(t, do(ts.Handler(), "POST", "/redfish/v1/Systems/limited/Actions/ComputerSystem.Reset", `{"ResetType":"GracefulShutdown"}`, admin),
		400, "GeneralError", "graceful shutdown", "not supported")
	wantStatus(t, do(ts.Handler(), "POST", "/redfish/v1/Systems/limited/Actions/ComputerSystem.Reset", `{"ResetType":"ForceOff"}`, admin), 204)
}

func TestSystemsAddRemove(t *testing.T) {
	ts := newTestServer(t, 1, nil)
	for _, id := range []string{"", "a/b", "-x", "a b", "x?", strings.Repeat("a", 65), "%41"} {
		if err := ts.AddSystem(id, bmc.NewSim(bmc.Hardware{})); err == nil {
			t.Errorf("AddSystem(%q) accepted", id)
		}
	}
	if err := ts.AddSystem("node-0", bmc.NewSim(bmc.Hardware{})); !errors.Is(err, ErrSystemExists) {
		t.Errorf("duplicate: %v", err)
	}
	// A machine without a UUID gets a stable one from its id.
	if err := ts.AddSystem("Self", bmc.NewSim(bmc.Hardware{})); err != nil {
		t.Fatal(err)
	}
	got := decode(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/Self", "", admin))["UUID"].(string)
	other := newTestServer(t, 0, func(c *Config) { c.Systems = map[string]bmc.Machine{"Self": bmc.NewSim(bmc.Hardware{})} })
	again := decode(t, do(other.Handler(), "GET", "/redfish/v1/Systems/Self", "", admin))["UUID"].(string)
	if _, err := uuid.Parse(got); err != nil || got != again {
		t.Errorf("UUIDs %q and %q: want one valid UUID", got, again)
	}
	members := decode(t, do(ts.Handler(), "GET", "/redfish/v1/Systems", "", admin))["Members"].([]any)
	if len(members) != 2 {
		t.Errorf("members %v", members)
	}
	if err := ts.RemoveSystem("Self"); err != nil {
		t.Fatal(err)
	}
	if err := ts.RemoveSystem("Self"); !errors.Is(err, ErrNoSystem) {
		t.Errorf("second remove: %v", err)
	}
	wantError(t, do(ts.Handler(), "GET", "/redfish/v1/Systems/Self", "", admin), 404, "ResourceNotFound")
	members = decode(t, do(ts.Handler(), "GET", "/redfish/v1/Managers", "", admin))["Members"].([]any)
	if len(members) != 1 {
		t.Errorf("managers %v", members)
	}
}

// TestSystemView checks the one-system view of SystemHandler.
func TestSystemView(t *testing.T) {
	ts := newTestServer(t, 3, nil)
	h := ts.SystemHandler("node-1")
	for _, p := range []string{"/redfish/v1/Systems", "/redfish/v1/Managers", "/redfish/v1/Chassis"} {
		m := decode(t, do(h, "GET", p, "", admin))
		members := m["Members"].([]any)
		if len(members) != 1 || !strings.HasSuffix(members[0].(map[string]any)["@odata.id"].(string), "/node-1") {
			t.Errorf("%s: members %v", p, members)
		}
	}
	wantStatus(t, do(h, "GET", "/redfish/v1/Systems/node-1", "", admin), 200)
	wantError(t, do(h, "GET", "/redfish/v1/Systems/node-0", "", admin), 404, "ResourceNotFound")
	wantError(t, do(h, "POST", "/redfish/v1/Systems/node-0/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, admin), 404, "ResourceNotFound")
	wantError(t, do(h, "GET", "/redfish/v1/Managers/node-2", "", admin), 404, "ResourceNotFound")
	// A view of a system that is not there (yet) is empty.
	empty := ts.SystemHandler("node-9")
	if m := decode(t, do(empty, "GET", "/redfish/v1/Systems", "", admin)); len(m["Members"].([]any)) != 0 {
		t.Errorf("members %v", m["Members"])
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no username", Config{Password: "x"}},
		{"no password", Config{Username: "x"}},
		{"bad addr", Config{Username: "x", Password: "y", Addr: "nope"}},
		{"bad uuid", Config{Username: "x", Password: "y", UUID: "nope"}},
		{"cert without key", Config{Username: "x", Password: "y", CertPEM: []byte("x")}},
		{"bad cert", Config{Username: "x", Password: "y", CertPEM: []byte("x"), KeyPEM: []byte("y")}},
		{"bad system id", Config{Username: "x", Password: "y", Systems: map[string]bmc.Machine{"a/b": bmc.NewSim(bmc.Hardware{})}}},
		{"nil machine", Config{Username: "x", Password: "y", Systems: map[string]bmc.Machine{"a": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Errorf("New accepted %+v", tt.cfg)
			}
		})
	}
}
