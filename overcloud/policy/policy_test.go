package policy

import (
	"strings"
	"testing"
)

type subject struct {
	attrs map[string]string
	roles []string
}

func (s subject) Attr(name string) (string, bool) {
	v, ok := s.attrs[name]
	return v, ok && v != ""
}

func (s subject) HasRole(name string) bool {
	for _, r := range s.roles {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

func TestAllowed(t *testing.T) {
	rules := map[string]string{
		"admin_required":   "role:admin or is_admin:1",
		"system_reader":    "role:reader and system_scope:all",
		"owner":            "user_id:%(target.user.id)s",
		"get":              "rule:admin_required or rule:system_reader or (role:reader and domain_id:%(target.domain_id)s) or rule:owner",
		"open":             "",
		"always":           "@",
		"never":            "!",
		"not_member":       "not role:member",
		"literal":          "project_id:'p1'",
		"precedence":       "role:a or role:b and role:c",
		"nested":           "((role:a) and (not (role:b or role:c)))",
		"role_from_target": "role:%(target.role.name)s",
	}
	e, err := New(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := subject{roles: []string{"admin", "member", "reader"}}
	sysReader := subject{attrs: map[string]string{"system_scope": "all", "user_id": "u1"}, roles: []string{"reader"}}
	domReader := subject{attrs: map[string]string{"domain_id": "d1", "user_id": "u2"}, roles: []string{"Reader"}}
	owner := subject{attrs: map[string]string{"user_id": "u3", "project_id": "p1"}, roles: []string{"member"}}
	tests := []struct {
		name   string
		action string
		s      subject
		target Target
		want   bool
	}{
		{"admin", "get", admin, nil, true},
		{"system reader", "get", sysReader, nil, true},
		{"domain reader, own domain", "get", domReader, Target{"target.domain_id": "d1"}, true},
		{"domain reader, other domain", "get", domReader, Target{"target.domain_id": "d2"}, false},
		{"domain reader, no target", "get", domReader, nil, false},
		{"owner", "get", owner, Target{"target.user.id": "u3"}, true},
		{"not owner", "get", owner, Target{"target.user.id": "u4"}, false},
		{"empty target value never matches", "get", subject{attrs: map[string]string{"user_id": ""}}, Target{"target.user.id": ""}, false},
		{"empty rule", "open", subject{}, nil, true},
		{"@", "always", subject{}, nil, true},
		{"!", "never", admin, nil, false},
		{"not", "not_member", owner, nil, false},
		{"not, true", "not_member", sysReader, nil, true},
		{"literal", "literal", owner, nil, true},
		{"and binds tighter than or", "precedence", subject{roles: []string{"b"}}, nil, false},
		{"and binds tighter than or, both", "precedence", subject{roles: []string{"b", "c"}}, nil, true},
		{"nested", "nested", subject{roles: []string{"a"}}, nil, true},
		{"nested, excluded", "nested", subject{roles: []string{"a", "c"}}, nil, false},
		{"role from target", "role_from_target", owner, Target{"target.role.name": "member"}, true},
		{"unknown action", "nope", admin, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.Allowed(tc.action, tc.s, tc.target); got != tc.want {
				t.Errorf("Allowed(%s) = %v, want %v", tc.action, got, tc.want)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	e, err := New(map[string]string{"a": "role:admin"}, map[string]string{"a": "role:member"})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Allowed("a", subject{roles: []string{"member"}}, nil) || e.Allowed("a", subject{roles: []string{"admin"}}, nil) {
		t.Error("the override did not replace the default")
	}
}

func TestParseErrors(t *testing.T) {
	for _, rule := range []string{"role:a and", "(role:a", "role:a)", "or role:a", "justaword", "role:", ":x", "role:a role:b"} {
		if err := Check(rule); err == nil {
			t.Errorf("Check(%q) accepted a malformed rule", rule)
		}
	}
	if _, err := New(map[string]string{"a": "rule:missing"}, nil); err == nil {
		t.Error("a reference to a missing rule was accepted")
	}
	e, err := New(map[string]string{"a": "rule:b", "b": "rule:a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Allowed("a", subject{}, nil) {
		t.Error("a cycle was allowed")
	}
}
