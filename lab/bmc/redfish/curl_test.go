package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlResult is what curl saw: the status, the headers and the body.
type curlResult struct {
	status int
	header http.Header
	body   []byte
}

// runCurl runs curl, trusting the Server's certificate, and returns the
// final response.
func runCurl(t *testing.T, ctx context.Context, ca string, args ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	headers, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	args = append([]string{"--silent", "--show-error", "--cacert", ca,
		"--dump-header", headers, "--output", body, "--write-out", "%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	status, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("curl status %q", out)
	}
	res := curlResult{status: status, header: http.Header{}}
	h, _ := os.ReadFile(headers)
	for _, line := range strings.Split(string(h), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			res.header.Add(k, strings.TrimSpace(v))
		}
	}
	res.body, _ = os.ReadFile(body)
	return res
}

// TestCurl talks to the Server with curl, an independent HTTP and TLS
// stack, verifying the generated certificate by IP address and by name.
func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed (make deps installs it): %v", err)
	}
	ts := newTestServer(t, 2, nil)
	ts.start(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, ts.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	base := "https://" + ts.Addr().String()
	byName := fmt.Sprintf("https://localhost:%d", ts.Addr().Port())

	// The service root is open.
	r := runCurl(t, ctx, ca, byName+"/redfish/v1/")
	if r.status != 200 || !strings.Contains(string(r.body), `"RedfishVersion"`) {
		t.Errorf("root: %d %s", r.status, r.body)
	}

	// Other resources are not.
	r = runCurl(t, ctx, ca, base+"/redfish/v1/Systems/node-0")
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no credentials: %d %v", r.status, r.header)
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Errorf("401 body %s: %v", r.body, err)
	}

	// curl's Basic credentials.
	r = runCurl(t, ctx, ca, "--user", testUser+":"+testPassword, base+"/redfish/v1/Systems/node-0")
	var sys map[string]any
	if err := json.Unmarshal(r.body, &sys); r.status != 200 || err != nil || sys["PowerState"] != "Off" {
		t.Fatalf("system: %d %s", r.status, r.body)
	}

	// A session, then a reset with its token.
	r = runCurl(t, ctx, ca, "--header", "Content-Type: application/json",
		"--data", loginBody, base+"/redfish/v1/SessionService/Sessions")
	tok := r.header.Get("X-Auth-Token")
	if r.status != 201 || tok == "" || !strings.HasPrefix(r.header.Get("Location"), sessionsPath+"/") {
		t.Fatalf("login: %d %v %s", r.status, r.header, r.body)
	}
	r = runCurl(t, ctx, ca, "--header", "X-Auth-Token: "+tok, "--header", "Content-Type: application/json",
		"--data", `{"ResetType":"On"}`, byName+"/redfish/v1/Systems/node-1/Actions/ComputerSystem.Reset")
	if r.status != 204 {
		t.Errorf("reset: %d %s", r.status, r.body)
	}
	if on, _ := ts.sims["node-1"].PoweredOn(ctx); !on {
		t.Errorf("node-1 is not on")
	}
	if on, _ := ts.sims["node-0"].PoweredOn(ctx); on {
		t.Errorf("node-0 is on")
	}
}
