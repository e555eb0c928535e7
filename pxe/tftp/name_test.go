package tftp

import (
	"io/fs"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"undionly.kpxe", "undionly.kpxe", true},
		{"pxelinux.cfg/01-52-54-00-12-34-56", "pxelinux.cfg/01-52-54-00-12-34-56", true},
		{"./a//b/./c", "a/b/c", true},
		{`boot\x86\wdsnbp.com`, "boot/x86/wdsnbp.com", true},
		{"a/", "a", true},
		{"", "", false},
		{".", "", false},
		{"./", "", false},
		{"/etc/passwd", "", false},
		{`\etc\passwd`, "", false},
		{"../etc/passwd", "", false},
		{"a/../b", "", false},
		{`a\..\..\b`, "", false},
		{"a/..", "", false},
		{"a\nb", "", false},
		{"a\x00b", "", false},
		{strings.Repeat("a", 256), "", false},
		{"...", "...", true}, // a file name, not a parent
		{"a..b", "a..b", true},
	}
	for _, tc := range tests {
		got, err := cleanName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzName checks what cleanName promises for any name: what it accepts is
// a valid io/fs path with no ".." element, and cleaning it again changes
// nothing.
func FuzzName(f *testing.F) {
	for _, s := range []string{"a", "../a", "/a", `a\..\b`, "a/./b", "", ".", "..", "a/..", "....//a", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := cleanName(name)
		if err != nil {
			if p != "" {
				t.Fatalf("refused %q but returned %q", name, p)
			}
			return
		}
		if !fs.ValidPath(p) || p == "." {
			t.Fatalf("cleanName(%q) = %q, not a valid path", name, p)
		}
		for e := range strings.SplitSeq(p, "/") {
			if e == ".." {
				t.Fatalf("cleanName(%q) = %q, which has a .. element", name, p)
			}
		}
		if strings.HasPrefix(strings.ReplaceAll(name, `\`, "/"), "/") {
			t.Fatalf("cleanName accepted the absolute name %q", name)
		}
		again, err := cleanName(p)
		if err != nil || again != p {
			t.Fatalf("cleanName(%q) = %q, %v; want %q again", p, again, err, p)
		}
	})
}
