package api_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/undercloud/api"
)

func TestRequestLogAndMetrics(t *testing.T) {
	ts := newServer(t)
	id := ts.createNode(t, map[string]any{"name": "obs", "driver_info": map[string]any{"ipmi_password": "hunter2"}})
	r := ts.do(t, req{method: "GET", path: "/v1/nodes/obs"})
	r.expect(t, 200)
	reqID := r.header.Get("X-Openstack-Request-Id")
	ts.do(t, req{method: "GET", path: "/v1/nodes/ghost"}).expect(t, 404)
	ts.do(t, req{method: "GET", path: "/v1/nowhere"}).expect(t, 404)

	// One JSON line per request, with what an operator needs.
	var found bool
	sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line["request_id"] != reqID {
			continue
		}
		found = true
		for k, want := range map[string]any{"msg": "request", "method": "GET", "path": "/v1/nodes/obs", "status": 200.0, "route": "/v1/nodes/{node}", "version": "1.87", "user": "admin"} {
			if line[k] != want {
				t.Errorf("log %s = %v, want %v", k, line[k], want)
			}
		}
		if _, ok := line["duration"]; !ok {
			t.Error("log line without duration")
		}
	}
	if !found {
		t.Errorf("no log line for request %s:\n%s", reqID, ts.logs.String())
	}
	if strings.Contains(ts.logs.String(), "hunter2") {
		t.Error("a BMC password appears in the log")
	}

	for _, tc := range []struct {
		route, status string
		want          float64
	}{
		{"/v1/nodes/{node}", "200", 1},
		{"/v1/nodes/{node}", "404", 1},
		{"/v1/nodes", "201", 1},
		{"unmatched", "404", 1},
	} {
		method := "GET"
		if tc.status == "201" {
			method = "POST"
		}
		got := sample(t, ts.reg, "strata_api_requests_total", map[string]string{"method": method, "route": tc.route, "status": tc.status})
		if got != tc.want {
			t.Errorf("requests_total{%s %s %s} = %v, want %v", method, tc.route, tc.status, got, tc.want)
		}
	}
	if got := sample(t, ts.reg, "strata_api_request_duration_seconds", map[string]string{"method": "GET", "route": "/v1/nodes/{node}"}); got != 2 {
		t.Errorf("latency observations of GET /v1/nodes/{node} = %v, want 2", got)
	}
	_ = id
}

// sample is the value of a counter, or the count of a histogram, with
// exactly these labels.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestTwoHandlersShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := newServer(t).store
	for range 2 {
		api.New(api.Config{Nodes: st, Conductor: &fakeConductor{nodes: st}, Registry: reg})
	}
}
