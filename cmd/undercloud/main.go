// Command undercloud is the Strata undercloud daemon.
package main

import (
	"context"
	"os"

	"github.com/stratacloud/strata/undercloud"
)

func main() {
	os.Exit(undercloud.Main(context.Background(), os.Args[1:]))
}
