// Command strata-agent is the deploy ramdisk's /init, or, with --root DIR,
// a simulated machine's (the lab's sim nodes): see package agent.
package main

import (
	"os"

	"github.com/stratacloud/strata/agent"
)

func main() { os.Exit(agent.Main()) }
