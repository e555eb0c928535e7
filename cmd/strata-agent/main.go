// Command strata-agent is the deploy ramdisk's /init: see package agent.
package main

import (
	"os"

	"github.com/stratacloud/strata/agent"
)

func main() { os.Exit(agent.Main()) }
