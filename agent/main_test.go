package agent

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets a test run the agent's Main as a process of its own: the
// test binary, re-executed with STRATA_AGENT_MAIN set, is strata-agent.
func TestMain(m *testing.M) {
	if os.Getenv("STRATA_AGENT_MAIN") != "" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
		bad  bool
	}{
		{"default", nil, "/", false},
		{"root", []string{"--root", "/var/lib/sim/node-0"}, "/var/lib/sim/node-0/", false},
		{"trailing slash", []string{"--root=/var/lib/sim/node-0/"}, "/var/lib/sim/node-0/", false},
		{"the real root", []string{"--root", "/"}, "/", false},
		{"relative", []string{"--root", "node-0/."}, "node-0/", false},
		{"empty", []string{"--root", ""}, "", true},
		{"unknown flag", []string{"--modules"}, "", true},
		{"argument", []string{"--root", "/x", "quiet"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("parseFlags(%q) = %q, %v; want %q (error: %v)", tc.args, got, err, tc.want, tc.bad)
			}
		})
	}
}

// TestMainWithRoot runs strata-agent as a plain process on a machine
// root that lacks what it needs: it says why and exits 1, having written
// nothing there and loaded nothing (only PID 1 loads modules).
func TestMainWithRoot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline string // "" writes no proc/cmdline
		want    string
	}{
		{"no cmdline", "", "proc/cmdline: no such file or directory"},
		{"no BOOTIF", "console=ttyS0 strata.api=http://192.0.2.1:6385", "no BOOTIF="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.cmdline != "" {
				os.MkdirAll(filepath.Join(root, "proc"), 0o755)
				os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte(tc.cmdline+"\n"), 0o644)
			}
			before := tree(t, root)
			cmd := exec.Command(os.Args[0], "--root", root)
			cmd.Env = append(os.Environ(), "STRATA_AGENT_MAIN=1")
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("strata-agent --root %s: %v, want exit status 1\n%s", root, err, out)
			}
			for _, want := range []string{Banner, tc.want} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "module") {
				t.Errorf("an agent that is not PID 1 spoke of modules:\n%s", out)
			}
			if after := tree(t, root); after != before {
				t.Errorf("the root changed from\n%s\nto\n%s", before, after)
			}
		})
	}
	cmd := exec.Command(os.Args[0], "--root", t.TempDir(), "extra")
	cmd.Env = append(os.Environ(), "STRATA_AGENT_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "unexpected arguments") {
		t.Errorf("an extra argument: %v, want exit status 2 naming it\n%s", err, out)
	}
}

// tree lists the paths under root.
func tree(t *testing.T, root string) string {
	t.Helper()
	var paths []string
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(paths, "\n")
}
