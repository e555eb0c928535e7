package undercloud_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/bmc/ipmi"
	"github.com/stratacloud/strata/lab/bmc/redfish"
	"github.com/stratacloud/strata/undercloud"
)

// TestWrongBMCPassword enrolls one IPMI and one Redfish node whose
// driver_info carries a wrong password, against the lab's real BMC
// servers: manage sends each back to enroll with a last_error that says
// what failed, and neither password appears in any API response or in
// the daemon's log. The same nodes with the right password become
// manageable.
func TestWrongBMCPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	const goodPW, badPW = "right-horse-9", "Wr0ng-Battery-7"
	ipmiBMC, err := ipmi.New(ipmi.Config{Addr: "127.0.0.1:0", Username: "admin", Password: goodPW, Machine: bmc.NewSim(bmc.Hardware{})})
	if err != nil {
		t.Fatal(err)
	}
	go ipmiBMC.Serve(ctx)
	t.Cleanup(func() { ipmiBMC.Close() })
	rf, err := redfish.New(redfish.Config{Addr: "127.0.0.1:0", Username: "admin", Password: goodPW,
		Systems: map[string]bmc.Machine{"sys-1": bmc.NewSim(bmc.Hardware{})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close() })

	dir := t.TempDir()
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cfg := undercloud.Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", LogLevel: "debug", LogFormat: "json",
		Conductor: undercloud.ConductorConfig{ShutdownGrace: undercloud.Duration(time.Second)}}
	log, err := undercloud.NewLogger(cfg, logFile)
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- undercloud.Run(ctx, cfg, log, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })

	var responses strings.Builder
	api := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		code, b, err := call(addr, method, path, body)
		if err != nil {
			t.Fatal(err)
		}
		responses.Write(b)
		var m map[string]any
		_ = jsonUnmarshal(b, &m)
		return code, m
	}
	rfAddr := rf.Addr()
	nodes := map[string]map[string]any{
		"ipmi-node": {"driver": "ipmi", "driver_info": map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": ipmiBMC.Addr().Port(), "ipmi_username": "admin", "ipmi_password": badPW}},
		"redfish-node": {"driver": "redfish", "driver_info": map[string]any{
			"redfish_address": fmt.Sprintf("https://127.0.0.1:%d", rfAddr.Port()), "redfish_system_id": "/redfish/v1/Systems/sys-1",
			"redfish_username": "admin", "redfish_password": badPW, "redfish_verify_ca": false}},
	}
	for name, body := range nodes {
		body["name"] = name
		if code, m := api("POST", "/v1/nodes", body); code != 201 {
			t.Fatalf("create %s: %d %v", name, code, m)
		}
		if code, m := api("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}); code != 202 {
			t.Fatalf("manage %s: %d %v", name, code, m)
		}
	}
	for name := range nodes {
		n := waitSettled(t, addr, name)
		if n["provision_state"] != "enroll" {
			t.Fatalf("%s with a wrong password ended in %v", name, n["provision_state"])
		}
		lastErr, _ := n["last_error"].(string)
		t.Logf("%s: last_error: %s", name, lastErr)
		if !strings.Contains(lastErr, "failed to verify the BMC credentials") {
			t.Errorf("%s: last_error %q does not say what failed", name, lastErr)
		}
		api("GET", "/v1/nodes/"+name+"/history?detail=true", nil)
		api("GET", "/v1/nodes/"+name+"/states", nil)
		api("GET", "/v1/nodes/detail", nil)
	}

	// With the right password, both become manageable.
	for name, di := range map[string]string{"ipmi-node": "ipmi_password", "redfish-node": "redfish_password"} {
		patch := []map[string]any{{"op": "replace", "path": "/driver_info/" + di, "value": goodPW}}
		if code, m := api("PATCH", "/v1/nodes/"+name, patch); code != 200 {
			t.Fatalf("patch %s: %d %v", name, code, m)
		}
		if code, m := api("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}); code != 202 {
			t.Fatalf("manage %s: %d %v", name, code, m)
		}
		if n := waitSettled(t, addr, name); n["provision_state"] != "manageable" {
			t.Fatalf("%s with the right password ended in %v: %v", name, n["provision_state"], n["last_error"])
		}
	}

	logs, _ := os.ReadFile(logPath)
	for _, pw := range []string{goodPW, badPW} {
		if strings.Contains(responses.String(), pw) {
			t.Errorf("a password appears in an API response")
		}
		if strings.Contains(string(logs), pw) {
			t.Errorf("a password appears in the daemon's log")
		}
	}
}

// waitSettled polls a node until it rests: no reservation and no target.
func waitSettled(t *testing.T, addr, name string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, b, err := call(addr, "GET", "/v1/nodes/"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n map[string]any
		_ = jsonUnmarshal(b, &n)
		if n["reservation"] == nil && n["target_provision_state"] == nil && n["provision_state"] != "verifying" {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not settle: %v", name, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
