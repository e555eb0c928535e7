package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Main is strata-agent's main: it never returns while it is PID 1,
// because the kernel panics when init exits.
func Main() int {
	out := os.Stdout
	pid1 := os.Getpid() == 1
	if pid1 {
		if err := setupPID1(); err != nil {
			fmt.Fprintf(out, "strata-agent: %v\n", err)
		}
	}
	fmt.Fprintln(out, Banner)
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slog.SetDefault(log)
	err := run(context.Background(), "/", out, log)
	log.Error("strata-agent stopped", "err", err)
	if !pid1 {
		return 1
	}
	for { // init may not exit; the undercloud powers the machine off
		time.Sleep(time.Hour)
	}
}

// run is the agent's life, on the system rooted at root.
func run(ctx context.Context, root string, out io.Writer, log *slog.Logger) error {
	cmdline, err := os.ReadFile(root + "proc/cmdline")
	if err != nil {
		return err
	}
	p, err := ParseCmdline(string(cmdline))
	if err != nil {
		return err
	}
	log.Info("parameters", "boot_mac", p.BootMAC.String(), "api", p.API, "node", p.Node, "discovery", p.Discovery)
	n, err := loadModules(root, log)
	if err != nil {
		log.Warn("no modules loaded", "err", err)
	} else {
		log.Info("modules loaded", "count", n)
	}
	nic, err := bringUp(ctx, p.BootMAC, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "strata-agent: %s (%s) is %s, leased from %s\n", nic.Name, nic.MAC, nic.Addr, nic.Server)
	<-ctx.Done()
	return ctx.Err()
}
