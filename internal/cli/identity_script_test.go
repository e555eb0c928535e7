package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stratacloud/strata/overcloud/runner"
)

// scriptCommands are the custom commands of the scripts under
// testdata/script, beside the undercloud that Setup starts for each.
var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"identity":      cmdIdentity,
	"setenv-stdout": cmdSetenvStdout,
}

// cmdSetenvStdout is "setenv-stdout NAME": $NAME becomes the standard
// output of the last command, without its trailing newline, as an
// operator's NAME=$(strata ... -f value -c id) does.
func cmdSetenvStdout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: setenv-stdout NAME")
	}
	ts.Setenv(args[0], strings.TrimRight(ts.ReadFile("stdout"), "\n"))
}

// scriptAdminPassword is the admin's password in the identity scripts
// ($OS_PASSWORD there).
const scriptAdminPassword = "script-Admin-pw"

// cmdIdentity is "identity start": it runs Strata's identity service (as
// `overcloud run identity` does, with an embedded etcd of its own, on a
// loopback port) until the script ends, and points strata at it as the
// bootstrap admin, the way an operator's openrc does: OS_AUTH_URL,
// OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME and the domains.
func cmdIdentity(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || args[0] != "start" {
		ts.Fatalf("usage: identity start")
	}
	dir, err := os.MkdirTemp("", "strata-identity-")
	ts.Check(err)
	addrc := make(chan net.Addr, 1)
	o := &runner.IdentityOptions{
		Listen:            "127.0.0.1:0",
		DataDir:           dir,
		BootstrapPassword: scriptAdminPassword,
		TokenExpiration:   time.Hour,
		KeyRotation:       24 * time.Hour,
		PasswordCost:      4,
		LogLevel:          "warn",
		Stderr:            io.Discard,
		Ready:             func(a net.Addr) { addrc <- a },
	}
	if err := o.Complete(nil); err != nil {
		os.RemoveAll(dir)
		ts.Fatalf("identity: %v", err)
	}
	if err := o.Validate(); err != nil {
		os.RemoveAll(dir)
		ts.Fatalf("identity: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		os.RemoveAll(dir)
		ts.Fatalf("identity did not start: %v", err)
	}
	ts.Defer(func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	})
	for k, v := range map[string]string{
		"OS_AUTH_TYPE":           "password",
		"OS_AUTH_URL":            fmt.Sprintf("http://%s", addr),
		"OS_USERNAME":            "admin",
		"OS_PASSWORD":            scriptAdminPassword,
		"OS_PROJECT_NAME":        "admin",
		"OS_USER_DOMAIN_NAME":    "Default",
		"OS_PROJECT_DOMAIN_NAME": "Default",
	} {
		ts.Setenv(k, v)
	}
}
