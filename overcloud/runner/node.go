package runner

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/stratacloud/strata/overcloud/node"
)

// runNode is `overcloud node`: what a deployed node's image runs. It
// reads the node's config drive (found by its label unless named), pulls
// its services' images by digest and supervises them until SIGTERM.
func runNode(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("overcloud node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	drive := fs.String("config-drive", "", "the config drive (`PATH` of the partition or an image of it; default: the block device labelled config-2)")
	state := fs.String("state-dir", "/var/lib/strata/node", "`DIR` for the unpacked images and the services' logs")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := NewLogger(stderr, *level)
	if err != nil {
		fmt.Fprintf(stderr, "overcloud node: %v\n", err)
		return 2
	}
	path := *drive
	if path == "" {
		if path, err = node.FindConfigDrive("/"); err != nil {
			fmt.Fprintf(stderr, "overcloud node: %v\n", err)
			return 1
		}
	}
	cfg, err := node.ReadConfigDrive(path)
	if err != nil {
		fmt.Fprintf(stderr, "overcloud node: %v\n", err)
		return 1
	}
	log.Info("node configured", "hostname", cfg.Hostname, "role", cfg.Role, "stack", cfg.Stack, "services", len(cfg.Services), "config_drive", path)
	if err := node.Run(ctx, cfg, node.RunnerConfig{StateDir: *state, Logger: log}); err != nil {
		log.Error("node runner stopped", "err", err)
		return 1
	}
	return 0
}
