package bmc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stmcginnis/gofish/common"

	"github.com/stratacloud/strata/inventory"
)

func TestRefused(t *testing.T) {
	status := func(code int) error {
		return common.ConstructError(code, []byte(`{"error":{"code":"Base.1.8.GeneralError","message":"no"}}`))
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "unauthorized", err: status(401), want: true},
		{name: "forbidden", err: status(403), want: true},
		{name: "not found", err: status(404), want: true},
		{name: "bad request, wrapped", err: fmt.Errorf("patch: %w", status(400)), want: true},
		{name: "request timeout", err: status(408)},
		{name: "conflict", err: status(409)},
		{name: "stale etag", err: status(412)},
		{name: "rate limited", err: status(429)},
		{name: "server error", err: status(500)},
		{name: "unavailable", err: status(503)},
		{name: "not an HTTP status", err: errors.New("connection refused")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refused(tc.err); got != tc.want {
				t.Errorf("refused(%v) = %t, want %t", tc.err, got, tc.want)
			}
			if got := errors.Is(refusal(tc.err), ErrRefused); got != tc.want {
				t.Errorf("refusal(%v) is ErrRefused: %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestParseIPMIPower(t *testing.T) {
	for _, tc := range []struct {
		out, want string
		wantErr   bool
	}{
		{out: "Chassis Power is on\n", want: inventory.PowerOn},
		{out: "Chassis Power is off\n", want: inventory.PowerOff},
		{out: "Chassis Power is ON", want: inventory.PowerOn},
		{out: "", wantErr: true},
		{out: "Chassis Power is unknown\n", wantErr: true},
		{out: "Error: Unable to establish IPMI v2 / RMCP+ session\n", wantErr: true},
	} {
		got, err := parseIPMIPower(tc.out)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseIPMIPower(%q) = %q, %v", tc.out, got, err)
		}
	}
}
