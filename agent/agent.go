package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// Main is strata-agent's main. As PID 1, the deploy ramdisk's /init, it
// mounts what the kernel leaves to init, loads the ramdisk's modules, and
// never returns, because the kernel panics when init exits.
//
// As any other process it is the init of a simulated machine (the lab's
// sim nodes): --root names the directory that holds the machine's proc,
// sys and dev, which is all the agent reads and writes of it. Nothing is
// mounted and no module is loaded (the host's kernel is not the
// machine's), and it returns when its work is done, or on SIGTERM.
func Main() int {
	out := os.Stdout
	pid1 := os.Getpid() == 1
	root := "/"
	if pid1 {
		// The kernel passes init the words of its command line that
		// are not its own: they are no flags of the agent's.
		if err := setupPID1(); err != nil {
			fmt.Fprintf(out, "strata-agent: %v\n", err)
		}
	} else {
		var err error
		if root, err = parseFlags(os.Args[1:], os.Stderr); err != nil {
			return 2
		}
	}
	fmt.Fprintln(out, Banner)
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slog.SetDefault(log)
	ctx := context.Background()
	if pid1 {
		if n, err := loadModules(root, log); err != nil {
			log.Warn("no modules loaded", "err", err)
		} else {
			log.Info("modules loaded", "count", n)
		}
	} else {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
		defer stop()
	}
	err := run(ctx, root, out, log)
	if err != nil {
		log.Error("strata-agent stopped", "err", err)
	} else {
		log.Info("strata-agent has nothing more to do in this boot")
	}
	if !pid1 {
		if err != nil {
			return 1
		}
		return 0
	}
	for { // init may not exit; the undercloud powers the machine off
		time.Sleep(time.Hour)
	}
}

// parseFlags reads the command line of an agent that is not PID 1 and
// returns the machine's root, ending in a slash.
func parseFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("strata-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "/", "the directory holding the machine's proc, sys and dev (a simulated machine's)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintf(stderr, "strata-agent: %v\n", err)
		return "", err
	}
	if *root == "" {
		err := errors.New("--root: empty")
		fmt.Fprintf(stderr, "strata-agent: %v\n", err)
		return "", err
	}
	// run joins paths onto the root by concatenation.
	r := filepath.Clean(*root)
	if r != "/" {
		r += "/"
	}
	return r, nil
}

// run is the agent's life, on the system rooted at root (which ends in a
// slash).
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
	nic, err := bringUp(ctx, p.BootMAC, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "strata-agent: %s (%s) is %s, leased from %s\n", nic.Name, nic.MAC, nic.Addr, nic.Server)
	return work(ctx, root, p, nic, newClient(p.API), out, log)
}

// Periods of the agent's calls.
var (
	lookupRetry       = 5 * time.Second
	heartbeatInterval = 10 * time.Second
)

// work looks the node up and does what its state asks, heartbeating, until
// the undercloud is done with this boot (it refuses the token, because the
// node moved on) or ctx ends.
func work(ctx context.Context, root string, p Params, nic BootNIC, c *client, out io.Writer, log *slog.Logger) error {
	var n node
	for attempt := 1; ; attempt++ {
		var err error
		n, err = c.lookup(ctx, []net.HardwareAddr{p.BootMAC}, p.Node)
		if err == nil {
			break
		}
		if attempt == 1 || attempt%12 == 0 {
			fmt.Fprintf(out, "strata-agent: lookup failed (attempt %d), retrying: %v\n", attempt, err)
		}
		if err := sleep(ctx, lookupRetry); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "strata-agent: node %s is %s\n", n.UUID, n.ProvisionState)
	inspected, cleaned, deployed := false, false, false
	for {
		switch n.ProvisionState {
		case "inspecting", "inspect wait":
			if !inspected {
				inspected = true
				if err := inspect(ctx, root, nic, c, out); err != nil {
					fmt.Fprintf(out, "strata-agent: inspection failed: %v\n", err)
				}
			}
		case "deploying", "wait call-back":
			if !deployed {
				deployed = true
				if err := deploy(ctx, root, n, c, out); err != nil {
					fmt.Fprintf(out, "strata-agent: deploy failed: %v\n", err)
				}
			}
		case "cleaning", "clean wait":
			if !cleaned {
				cleaned = true
				if err := clean(ctx, root, n.CleanSteps, c, out); err != nil {
					fmt.Fprintf(out, "strata-agent: cleaning failed: %v\n", err)
				}
			}
		}
		if err := sleep(ctx, heartbeatInterval); err != nil {
			return err
		}
		next, err := c.heartbeat(ctx, "idle")
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.status != http.StatusServiceUnavailable && ae.status < 500:
			fmt.Fprintf(out, "strata-agent: the undercloud is done with this boot: %s\n", ae.msg)
			return nil
		case err != nil:
			log.Warn("heartbeat failed", "err", err)
			continue
		}
		if next.ProvisionState != n.ProvisionState {
			fmt.Fprintf(out, "strata-agent: node %s is %s\n", next.UUID, next.ProvisionState)
		}
		n = next
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
