package inventory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"lower-case colons", "52:54:00:aa:bb:01", "52:54:00:aa:bb:01"},
		{"upper case", "52:54:00:AA:BB:01", "52:54:00:aa:bb:01"},
		{"dashes", "52-54-00-aa-bb-01", "52:54:00:aa:bb:01"},
		{"cisco dots", "5254.00aa.bb01", ""},
		{"no separators", "525400AABB01", ""},
		{"surrounding space", "  52:54:00:aa:bb:01\n", "52:54:00:aa:bb:01"},
		{"zero", "00:00:00:00:00:00", "00:00:00:00:00:00"},
		{"broadcast", "ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"},

		{"empty", "", ""},
		{"space only", "   ", ""},
		{"too short", "52:54:00:aa:bb", ""},
		{"EUI-64", "52:54:00:aa:bb:01:02:03", ""},
		{"infiniband", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", ""},
		{"not hex", "52:54:00:aa:bb:zz", ""},
		{"mixed separators", "52:54-00:aa:bb:01", ""},
		{"one-digit group", "52:54:0:aa:bb:01", ""},
		{"inner space", "52:54:00 aa:bb:01", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventory.ParseMAC(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseMAC(%q) = %q, want an error", tt.in, got)
				}
				checkInvalid(t, err, "address")
				checkMessage(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ParseMAC(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseMAC(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// checkInvalid checks that err is an *InvalidError for field.
func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, inventory.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var ie *inventory.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error %T is not an *InvalidError", err)
	}
	if ie.Field != field {
		t.Errorf("field %q, want %q", ie.Field, field)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"empty means no name", "", true},
		{"plain", "node-0", true},
		{"one letter", "a", true},
		{"digits only", "0123", true},
		{"unreserved characters", "Node_1.rack-2~a", true},
		{"longest", strings.Repeat("n", 255), true},
		{"uuid with a letter changed", "1be26c0b-03f2-4d2e-ae87-c02d7f33c12g", true},

		{"too long", strings.Repeat("n", 256), false},
		{"space", "node 0", false},
		{"slash", "rack/node", false},
		{"colon", "node:0", false},
		{"percent", "node%20", false},
		{"non-ascii", "nœud", false},
		{"uuid", "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", false},
		{"upper-case uuid", "1BE26C0B-03F2-4D2E-AE87-C02D7F33C123", false},
		{"uuid without dashes", "1be26c0b03f24d2eae87c02d7f33c123", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := inventory.ValidateName(tt.in)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateName(%q): %v", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateName(%q) = nil, want an error", tt.in)
			}
			checkInvalid(t, err, "name")
			checkMessage(t, err)
		})
	}
}

func TestIsUUID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1be26c0b-03f2-4d2e-ae87-c02d7f33c123", true},
		{"1BE26C0B-03F2-4D2E-AE87-C02D7F33C123", true},
		{"1be26c0b03f24d2eae87c02d7f33c123", true},
		{"", false},
		{"node-0", false},
		{"1be26c0b-03f2-4d2e-ae87-c02d7f33c12", false},
		{"1be26c0b-03f2-4d2e-ae87-c02d7f33c123a", false},
		{"{1be26c0b-03f2-4d2e-ae87-c02d7f33c123}", false},
	}
	for _, tt := range tests {
		if got := inventory.IsUUID(tt.in); got != tt.want {
			t.Errorf("IsUUID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"ipmi_password", true},
		{"redfish_password", true},
		{"IPMI_PASSWORD", true},
		{"password", true},
		{"snmp_auth_key", true},
		{"snmp_priv_key", true},
		{"client_secret", true},
		{"agent_token", true},
		{"ipmi_address", false},
		{"ipmi_username", false},
		{"ipmi_port", false},
		{"redfish_address", false},
		{"redfish_system_id", false},
		{"redfish_verify_ca", false},
		{"deploy_kernel", false},
		{"keyboard_layout", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := inventory.IsSecretKey(tt.key); got != tt.want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestMaskedDriverInfo(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{
			name: "ipmi",
			in:   map[string]any{"ipmi_address": "10.0.0.1", "ipmi_port": 623, "ipmi_username": "admin", "ipmi_password": "s3cret"},
			want: map[string]any{"ipmi_address": "10.0.0.1", "ipmi_port": 623, "ipmi_username": "admin", "ipmi_password": "******"},
		},
		{
			name: "redfish",
			in:   map[string]any{"redfish_address": "https://10.0.0.2", "redfish_password": "s3cret", "redfish_verify_ca": false},
			want: map[string]any{"redfish_address": "https://10.0.0.2", "redfish_password": "******", "redfish_verify_ca": false},
		},
		{
			name: "non-string secret",
			in:   map[string]any{"snmp_auth_key": 12345},
			want: map[string]any{"snmp_auth_key": "******"},
		},
		{
			name: "empty and null secrets stay as they are",
			in:   map[string]any{"ipmi_password": "", "redfish_password": nil},
			want: map[string]any{"ipmi_password": "", "redfish_password": nil},
		},
		{
			name: "empty",
			in:   map[string]any{},
			want: map[string]any{},
		},
		{
			name: "nil",
			in:   nil,
			want: map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneMap(tt.in)
			got := inventory.MaskedDriverInfo(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.in); diff != "" {
				t.Errorf("MaskedDriverInfo changed its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestInvalidError(t *testing.T) {
	err := inventory.Invalid("pm_port", "must be between %d and %d", 1, 65535)
	if got, want := err.Error(), "pm_port: must be between 1 and 65535"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	checkInvalid(t, err, "pm_port")
	if got, want := inventory.Invalid("", "the file is empty").Error(), "the file is empty"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
