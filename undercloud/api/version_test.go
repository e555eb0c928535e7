package api_test

import (
	"net/http"
	"regexp"
	"testing"
)

func TestDiscovery(t *testing.T) {
	ts := newServer(t)
	for _, tc := range []struct {
		path, golden string
	}{
		{"/", "root.json"},
		{"/v1", "v1.json"},
		{"/v1/", "v1.json"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: tc.path, version: "-"})
			r.expect(t, http.StatusOK)
			golden(t, tc.golden, r.body)
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
}

// reqIDRE is the form of Ironic's request ids.
var reqIDRE = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestVersionNegotiation(t *testing.T) {
	ts := newServer(t)
	for _, tc := range []struct {
		name    string
		header  http.Header
		version string
		status  int
		want    string // negotiated version, or words of the error
	}{
		{name: "no header is the minimum", version: "-", status: 200, want: "1.1"},
		{name: "explicit", version: "1.50", status: 200, want: "1.50"},
		{name: "latest", version: "latest", status: 200, want: "1.87"},
		{name: "LATEST", version: "LATEST", status: 200, want: "1.87"},
		{name: "maximum", version: "1.87", status: 200, want: "1.87"},
		{name: "standard header", version: "-", header: http.Header{"Openstack-Api-Version": {"baremetal 1.40"}}, status: 200, want: "1.40"},
		{name: "standard header wins", version: "1.20", header: http.Header{"Openstack-Api-Version": {"compute 2.1, baremetal 1.31"}}, status: 200, want: "1.31"},
		{name: "standard header for another service", version: "1.20", header: http.Header{"Openstack-Api-Version": {"compute 2.90"}}, status: 200, want: "1.20"},
		{name: "too new", version: "1.99", status: 406,
			want: "Version 1.99 was requested but the minor version is not supported by this service. The supported version range is: [1.1, 1.87]."},
		{name: "too old", version: "1.0", status: 406, want: "Version 1.0 was requested but the minor version is not supported"},
		{name: "other major", version: "2.1", status: 406, want: "Version 2.1 requested but not supported by this service"},
		{name: "malformed", version: "one.two", status: 400, want: `Invalid value "one.two" for the X-OpenStack-Ironic-API-Version header`},
		{name: "no minor", version: "1", status: 400, want: "expected 1.N or latest"},
		{name: "malformed standard header", version: "-", header: http.Header{"Openstack-Api-Version": {"baremetal x"}}, status: 400, want: "OpenStack-API-Version header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, req{method: "GET", path: "/v1/nodes", version: tc.version, header: tc.header})
			r.expect(t, tc.status, tc.want)
			if got := r.header.Get("X-OpenStack-Ironic-API-Minimum-Version"); got != "1.1" {
				t.Errorf("minimum version header = %q", got)
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Maximum-Version"); got != "1.87" {
				t.Errorf("maximum version header = %q", got)
			}
			if got := r.header.Get("X-Openstack-Request-Id"); !reqIDRE.MatchString(got) {
				t.Errorf("request id = %q", got)
			}
			if got := r.header.Get("Vary"); got == "" {
				t.Error("no Vary header")
			}
			if tc.status != 200 {
				return
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Version"); got != tc.want {
				t.Errorf("version header = %q, want %q", got, tc.want)
			}
			if got := r.header.Get("OpenStack-API-Version"); got != "baremetal "+tc.want {
				t.Errorf("OpenStack-API-Version = %q", got)
			}
		})
	}
}

func TestTooNewVersionChangesNothing(t *testing.T) {
	ts := newServer(t)
	ts.createNode(t, map[string]any{"name": "v"})
	for _, rq := range []req{
		{method: "POST", path: "/v1/nodes", version: "1.99", body: map[string]any{"driver": "ipmi"}},
		{method: "PATCH", path: "/v1/nodes/v", version: "1.88", body: []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}}},
		{method: "DELETE", path: "/v1/nodes/v", version: "3.0"},
		{method: "PUT", path: "/v1/nodes/v/states/provision", version: "bogus", body: map[string]any{"target": "manage"}},
	} {
		t.Run(rq.method+" "+rq.version, func(t *testing.T) {
			before := ts.snapshot(t)
			r := ts.do(t, rq)
			want := http.StatusNotAcceptable
			if rq.version == "bogus" {
				want = http.StatusBadRequest
			}
			r.expect(t, want, rq.version)
			ts.unchanged(t, before)
		})
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	ts := newServer(t)
	for _, tc := range []struct {
		name, method, path string
		version            string
		status             int
		want               string
	}{
		{"unknown resource", "GET", "/v1/chassis", "", 404, "could not be found"},
		{"unknown root path", "GET", "/v2", "", 404, "could not be found"},
		{"method not allowed", "PUT", "/v1/nodes", "", 405, "PUT is not allowed"},
		{"history before 1.78", "GET", "/v1/nodes/abc/history", "1.77", 404, "could not be found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, req{method: tc.method, path: tc.path, version: tc.version})
			r.expect(t, tc.status, tc.want)
		})
	}
}
