// Package testbin builds the project's commands for tests that run them
// as separate processes, as an operator would.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build builds the command cmd (e.g. "overcloud", for ./cmd/overcloud)
// as a static binary in a directory of the test's, and returns its path.
func Build(t testing.TB, cmd string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), cmd)
	build := exec.Command("go", "build", "-o", bin, "github.com/stratacloud/strata/cmd/"+cmd)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", cmd, err, out)
	}
	return bin
}
