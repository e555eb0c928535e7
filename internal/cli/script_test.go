package cli

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary run as the strata command inside the
// scripts under testdata/script.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"strata": func() {
			os.Exit(Execute(context.Background(), os.Args[1:], IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
		},
	})
}

// TestScripts runs the end-to-end scripts: the real strata command, in its
// own process, against an undercloud API started for each script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               startUndercloud,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// startUndercloud starts the bare metal API a script talks to and points
// strata at it through the environment, as an operator's shell would:
// OS_AUTH_TYPE=none, OS_ENDPOINT, and a short STRATA_POLL_INTERVAL so that
// --wait follows quick transitions quickly. The API is the recording fake
// of fake_test.go until the undercloud daemon is wired in here.
func startUndercloud(env *testscript.Env) error {
	f := startFakeIronic()
	env.Defer(f.Close)
	env.Setenv("OS_AUTH_TYPE", "none")
	env.Setenv("OS_ENDPOINT", f.URL)
	env.Setenv("STRATA_POLL_INTERVAL", "10ms")
	// Under -race, each strata process would otherwise sleep a second as
	// it exits.
	env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return nil
}
