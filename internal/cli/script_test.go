package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stratacloud/strata/undercloud"
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
		Cmds:                scriptCommands,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// startUndercloud starts a real undercloud daemon (API, conductor and an
// embedded etcd of its own) for the script, and points strata at it
// through the environment, as an operator's shell would: OS_AUTH_TYPE=none,
// OS_ENDPOINT, and a short STRATA_POLL_INTERVAL so that --wait follows
// quick transitions quickly.
func startUndercloud(env *testscript.Env) error {
	dir, err := os.MkdirTemp("", "strata-script-")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- undercloud.Run(ctx, undercloud.Config{
			DataDir: dir,
			Listen:  "127.0.0.1:0",
			Conductor: undercloud.ConductorConfig{
				Name:          "script",
				ShutdownGrace: undercloud.Duration(time.Second),
				// One node per phase at a time: a bulk command over
				// several nodes meets the limit and must wait for slots.
				MaxConcurrentInspect: 1,
				MaxConcurrentClean:   1,
				MaxConcurrentDeploy:  1,
			},
		}, nil, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		os.RemoveAll(dir)
		return fmt.Errorf("start undercloud: %w", err)
	}
	env.Defer(func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	})
	env.Setenv("OS_AUTH_TYPE", "none")
	env.Setenv("OS_ENDPOINT", "http://"+addr)
	env.Setenv("STRATA_POLL_INTERVAL", "10ms")
	// Under -race, each strata process would otherwise sleep a second as
	// it exits.
	env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return nil
}
