package bmc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/bmc"
)

func TestAccessFromNode(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	ipmi := func(di map[string]any) *inventory.Node {
		return &inventory.Node{UUID: "n1", Driver: inventory.DriverIPMI, DriverInfo: di}
	}
	redfish := func(di map[string]any) *inventory.Node {
		return &inventory.Node{UUID: "n1", Driver: inventory.DriverRedfish, DriverInfo: di}
	}
	for _, tc := range []struct {
		name    string
		node    *inventory.Node
		want    bmc.Access
		wantKey string
		// wantErr is the driver_info key the error must name; the error
		// is then an *inventory.InvalidError.
		wantErr string
	}{
		// IPMI.
		{
			name:    "ipmi minimal",
			node:    ipmi(map[string]any{"ipmi_address": "10.0.0.5"}),
			want:    bmc.Access{Driver: inventory.DriverIPMI, Host: "10.0.0.5", Port: 623},
			wantKey: "10.0.0.5:623",
		},
		{
			name: "ipmi every field, numbers as JSON decodes them",
			node: ipmi(map[string]any{
				"ipmi_address": "bmc-5.example.org", "ipmi_port": float64(6230),
				"ipmi_username": "admin", "ipmi_password": "pw", "ipmi_cipher_suite": float64(17),
			}),
			want:    bmc.Access{Driver: inventory.DriverIPMI, Host: "bmc-5.example.org", Port: 6230, Username: "admin", Password: "pw", CipherSuite: "17"},
			wantKey: "bmc-5.example.org:6230",
		},
		{
			name:    "ipmi port and cipher suite as strings",
			node:    ipmi(map[string]any{"ipmi_address": "10.0.0.5", "ipmi_port": "1623", "ipmi_cipher_suite": "3"}),
			want:    bmc.Access{Driver: inventory.DriverIPMI, Host: "10.0.0.5", Port: 1623, CipherSuite: "3"},
			wantKey: "10.0.0.5:1623",
		},
		{
			name:    "ipmi empty port and cipher suite are the defaults",
			node:    ipmi(map[string]any{"ipmi_address": "10.0.0.5", "ipmi_port": "", "ipmi_cipher_suite": nil}),
			want:    bmc.Access{Driver: inventory.DriverIPMI, Host: "10.0.0.5", Port: 623},
			wantKey: "10.0.0.5:623",
		},
		{
			name:    "ipmi IPv6 in brackets",
			node:    ipmi(map[string]any{"ipmi_address": "[fd00::5]", "ipmi_port": 6230}),
			want:    bmc.Access{Driver: inventory.DriverIPMI, Host: "fd00::5", Port: 6230},
			wantKey: "[fd00::5]:6230",
		},
		{name: "ipmi without address", node: ipmi(map[string]any{"ipmi_username": "admin"}), wantErr: "ipmi_address"},
		{name: "ipmi with an empty address", node: ipmi(map[string]any{"ipmi_address": ""}), wantErr: "ipmi_address"},
		{name: "ipmi without driver_info", node: ipmi(nil), wantErr: "ipmi_address"},
		{name: "ipmi port not a number", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_port": "ipmi"}), wantErr: "ipmi_port"},
		{name: "ipmi port zero", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_port": float64(0)}), wantErr: "ipmi_port"},
		{name: "ipmi port too big", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_port": float64(65536)}), wantErr: "ipmi_port"},
		{name: "ipmi port fractional", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_port": 623.5}), wantErr: "ipmi_port"},
		{name: "ipmi cipher suite not a number", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_cipher_suite": "aes"}), wantErr: "ipmi_cipher_suite"},
		{name: "ipmi cipher suite out of range", node: ipmi(map[string]any{"ipmi_address": "h", "ipmi_cipher_suite": float64(18)}), wantErr: "ipmi_cipher_suite"},

		// Redfish.
		{
			name:    "redfish minimal: https is assumed, and verification",
			node:    redfish(map[string]any{"redfish_address": "10.0.0.6:8443"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.6:8443", VerifyCA: "true"},
			wantKey: "https://10.0.0.6:8443",
		},
		{
			name: "redfish every field",
			node: redfish(map[string]any{
				"redfish_address": "https://bmc.example.org", "redfish_system_id": "/redfish/v1/Systems/1",
				"redfish_username": "root", "redfish_password": "calvin", "redfish_verify_ca": false,
			}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://bmc.example.org", SystemID: "/redfish/v1/Systems/1", Username: "root", Password: "calvin", VerifyCA: "false"},
			wantKey: "https://bmc.example.org/redfish/v1/Systems/1",
		},
		{
			name:    "redfish plain http",
			node:    redfish(map[string]any{"redfish_address": "http://10.0.0.6:8000"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "http://10.0.0.6:8000", VerifyCA: "true"},
			wantKey: "http://10.0.0.6:8000",
		},
		{
			name:    "redfish system from the address's path",
			node:    redfish(map[string]any{"redfish_address": "https://10.0.0.6/redfish/v1/Systems/abc-1"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.6", SystemID: "/redfish/v1/Systems/abc-1", VerifyCA: "true"},
			wantKey: "https://10.0.0.6/redfish/v1/Systems/abc-1",
		},
		{
			name:    "redfish system id wins over the address's path",
			node:    redfish(map[string]any{"redfish_address": "https://10.0.0.6/redfish/v1/Systems/a", "redfish_system_id": "/redfish/v1/Systems/b"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.6", SystemID: "/redfish/v1/Systems/b", VerifyCA: "true"},
			wantKey: "https://10.0.0.6/redfish/v1/Systems/b",
		},
		{
			name:    "redfish system id with a trailing slash",
			node:    redfish(map[string]any{"redfish_address": "https://10.0.0.6/", "redfish_system_id": "/redfish/v1/Systems/b/"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://10.0.0.6", SystemID: "/redfish/v1/Systems/b", VerifyCA: "true"},
			wantKey: "https://10.0.0.6/redfish/v1/Systems/b",
		},
		{
			name:    "redfish verify_ca as a string",
			node:    redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": "False"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://h", VerifyCA: "false"},
			wantKey: "https://h",
		},
		{
			name:    "redfish verify_ca no",
			node:    redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": "no"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://h", VerifyCA: "false"},
			wantKey: "https://h",
		},
		{
			name:    "redfish verify_ca yes",
			node:    redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": "yes"}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://h", VerifyCA: "true"},
			wantKey: "https://h",
		},
		{
			name:    "redfish verify_ca true",
			node:    redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": true}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://h", VerifyCA: "true"},
			wantKey: "https://h",
		},
		{
			name:    "redfish verify_ca a CA file",
			node:    redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": caFile}),
			want:    bmc.Access{Driver: inventory.DriverRedfish, Endpoint: "https://h", VerifyCA: caFile},
			wantKey: "https://h",
		},
		{name: "redfish without address", node: redfish(map[string]any{"redfish_username": "root"}), wantErr: "redfish_address"},
		{name: "redfish address of another scheme", node: redfish(map[string]any{"redfish_address": "ftp://10.0.0.6"}), wantErr: "redfish_address"},
		{name: "redfish address without a host", node: redfish(map[string]any{"redfish_address": "https://"}), wantErr: "redfish_address"},
		{name: "redfish address not a URL", node: redfish(map[string]any{"redfish_address": "https://[::1"}), wantErr: "redfish_address"},
		{name: "redfish address with a path that is no system", node: redfish(map[string]any{"redfish_address": "https://10.0.0.6/redfish/v1"}), wantErr: "redfish_address"},
		{name: "redfish system id of a chassis", node: redfish(map[string]any{"redfish_address": "h", "redfish_system_id": "/redfish/v1/Chassis/1"}), wantErr: "redfish_system_id"},
		{name: "redfish system id of the collection", node: redfish(map[string]any{"redfish_address": "h", "redfish_system_id": "/redfish/v1/Systems/"}), wantErr: "redfish_system_id"},
		{name: "redfish system id too deep", node: redfish(map[string]any{"redfish_address": "h", "redfish_system_id": "/redfish/v1/Systems/1/Bios"}), wantErr: "redfish_system_id"},
		{name: "redfish system id relative", node: redfish(map[string]any{"redfish_address": "h", "redfish_system_id": "1"}), wantErr: "redfish_system_id"},
		{name: "redfish verify_ca a missing file", node: redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": filepath.Join(dir, "missing.pem")}), wantErr: "redfish_verify_ca"},
		{name: "redfish verify_ca a directory", node: redfish(map[string]any{"redfish_address": "h", "redfish_verify_ca": dir}), wantErr: "redfish_verify_ca"},

		// Neither.
		{name: "fake-hardware has no BMC", node: &inventory.Node{Driver: inventory.DriverFake}, wantErr: "driver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bmc.AccessFromNode(tc.node)
			if tc.wantErr != "" {
				var ie *inventory.InvalidError
				if !errors.As(err, &ie) || !errors.Is(err, inventory.ErrInvalid) {
					t.Fatalf("AccessFromNode = %+v, %v; want an invalid input error", got, err)
				}
				named := ie.Field == tc.wantErr || strings.HasPrefix(ie.Reason, tc.wantErr+" ")
				if !named {
					t.Errorf("error %q does not name %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AccessFromNode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("access (-want +got):\n%s", diff)
			}
			if got.Key() != tc.wantKey {
				t.Errorf("Key() = %q, want %q", got.Key(), tc.wantKey)
			}
		})
	}
}
