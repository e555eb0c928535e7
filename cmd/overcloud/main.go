// Command overcloud runs Strata's overcloud services: `overcloud run
// identity --listen ADDR:PORT --data-dir DIR`. SIGTERM or SIGINT stops the
// service cleanly.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/stratacloud/strata/overcloud/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := runner.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
