// Package runner runs overcloud services as processes: the `overcloud run
// <service>` command line, the connection to etcd (an embedded member
// under the data directory, or an external cluster), and an HTTP server
// that shuts down cleanly when its context ends.
package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/stratacloud/strata/internal/etcdserver"
)

// Main runs the overcloud command line: `run <service> [flags]`. It
// returns the process exit code; ctx ending (SIGTERM) stops the service
// cleanly, with exit code 0.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 1 && args[0] == "services" {
		// What this binary can run, one per line: service images are
		// built for each.
		for _, s := range Services {
			fmt.Fprintln(stdout, s)
		}
		return 0
	}
	if len(args) >= 1 && args[0] == "node" {
		return runNode(ctx, args[1:], stderr)
	}
	if len(args) < 2 || args[0] != "run" {
		fmt.Fprintln(stderr, "usage: overcloud run <service> [flags]\n       overcloud node [--config-drive PATH] [--state-dir DIR]\n       overcloud services\n\nservices:\n  identity   the Keystone v3-compatible identity service")
		return 2
	}
	switch args[1] {
	case "identity":
		return runIdentity(ctx, &IdentityOptions{Stderr: stderr}, args[2:], getenv)
	default:
		fmt.Fprintf(stderr, "overcloud run: unknown service %q (known: identity)\n", args[1])
		return 2
	}
}

// Services are the services `overcloud run` starts.
var Services = []string{"identity"}

// runIdentity parses, completes, validates and runs `run identity`.
func runIdentity(ctx context.Context, o *IdentityOptions, args []string, getenv func(string) string) int {
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(o.Stderr, "overcloud run identity: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := o.Complete(getenv); err != nil {
		fmt.Fprintf(o.Stderr, "overcloud run identity: %v\n", err)
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(o.Stderr, "overcloud run identity: %v\n", err)
		return 2
	}
	if err := o.Run(ctx); err != nil {
		o.logger().Error("identity stopped", "err", err)
		return 1
	}
	return 0
}

func newFlagSet(o *IdentityOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("overcloud run identity", flag.ContinueOnError)
	fs.SetOutput(o.Stderr)
	o.Bind(fs)
	return fs
}

// NewLogger returns a JSON logger at level ("debug", "info", "warn",
// "error") writing to w.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// EtcdConfig says which etcd a service uses.
type EtcdConfig struct {
	// Endpoints of an external cluster; when empty, an embedded member
	// runs with its data under DataDir/etcd.
	Endpoints []string
	DataDir   string
}

// ConnectEtcd returns a client of the configured etcd and a function that
// closes it (and stops the embedded member, if there is one).
func ConnectEtcd(ctx context.Context, cfg EtcdConfig) (*clientv3.Client, func(), error) {
	if len(cfg.Endpoints) > 0 {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.Endpoints,
			DialTimeout: 5 * time.Second,
			Context:     ctx,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
		}
		// Fail now, with a clear error, if the cluster cannot be reached.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := cli.Status(sctx, cfg.Endpoints[0]); err != nil {
			cli.Close()
			return nil, nil, fmt.Errorf("etcd %s: %w", cfg.Endpoints[0], err)
		}
		return cli, func() { cli.Close() }, nil
	}
	if cfg.DataDir == "" {
		return nil, nil, errors.New("a data directory (or etcd endpoints) is required")
	}
	// etcd's own log stays off: its shutdown is noisy and its errors
	// reach us as client errors anyway.
	srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: filepath.Join(cfg.DataDir, "etcd")})
	if err != nil {
		return nil, nil, err
	}
	cli, err := srv.Client()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return cli, func() { cli.Close(); srv.Close() }, nil
}

// Serve serves h on ln until ctx ends, then stops accepting, lets the
// requests in flight finish (for up to 10s) and returns.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	var shutdownErr error
	stopped := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownErr = srv.Shutdown(sctx)
	})
	err := srv.Serve(ln)
	close(stopped)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return shutdownErr
	}
	return err
}
