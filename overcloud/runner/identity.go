package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacloud/strata/overcloud/identity"
)

// BootstrapPasswordEnv names the environment variable that carries the
// admin password for the first start (safer than a flag, which other
// users of the machine can read in the process list).
const BootstrapPasswordEnv = "STRATA_BOOTSTRAP_PASSWORD"

// IdentityOptions are the flags of `overcloud run identity`.
type IdentityOptions struct {
	Listen            string
	DataDir           string
	EtcdEndpoints     string
	BootstrapPassword string
	PublicURL         string
	TokenExpiration   time.Duration
	KeyRotation       time.Duration
	PasswordCost      int
	LogLevel          string

	Stderr io.Writer
	// Ready, if set, is called with the listening address once the
	// service serves (tests use it to learn the port of --listen :0).
	Ready func(addr net.Addr)

	listen    netip.AddrPort
	endpoints []string
	log       *slog.Logger
}

// Bind registers the flags on fs.
func (o *IdentityOptions) Bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:5000", "`ADDR:PORT` to serve the API on (port 0 picks a free port)")
	fs.StringVar(&o.DataDir, "data-dir", "", "`DIR` for the embedded etcd's data (when no --etcd-endpoints)")
	fs.StringVar(&o.EtcdEndpoints, "etcd-endpoints", "", "comma-separated `URLS` of an external etcd cluster")
	fs.StringVar(&o.BootstrapPassword, "bootstrap-password", "", "admin password for the first start (prefer $"+BootstrapPasswordEnv+")")
	fs.StringVar(&o.PublicURL, "public-url", "", "identity `URL` to publish in the catalog on the first start (default http://ADDR:PORT/v3)")
	fs.DurationVar(&o.TokenExpiration, "token-expiration", time.Hour, "how long tokens are valid")
	fs.DurationVar(&o.KeyRotation, "key-rotation", 24*time.Hour, "how often the token keys rotate (negative: never)")
	fs.IntVar(&o.PasswordCost, "password-cost", 12, "bcrypt `cost` of password and secret hashes (4-31)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
}

// Complete fills what the flags leave: the password from the environment.
func (o *IdentityOptions) Complete(getenv func(string) string) error {
	if o.BootstrapPassword == "" && getenv != nil {
		o.BootstrapPassword = getenv(BootstrapPasswordEnv)
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	log, err := NewLogger(o.Stderr, o.LogLevel)
	if err != nil {
		return err
	}
	o.log = log
	return nil
}

// Validate checks the flags.
func (o *IdentityOptions) Validate() error {
	ap, err := netip.ParseAddrPort(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want ADDR:PORT, such as 127.0.0.1:5000", o.Listen)
	}
	o.listen = ap
	if o.EtcdEndpoints != "" {
		for _, e := range strings.Split(o.EtcdEndpoints, ",") {
			u, err := url.Parse(strings.TrimSpace(e))
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return fmt.Errorf("--etcd-endpoints: %q is not an http(s) URL", e)
			}
			o.endpoints = append(o.endpoints, strings.TrimSpace(e))
		}
	} else if o.DataDir == "" {
		return errors.New("give --data-dir (embedded etcd) or --etcd-endpoints")
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("--public-url %q is not an http(s) URL", o.PublicURL)
		}
	}
	if o.PasswordCost < 4 || o.PasswordCost > 31 {
		return fmt.Errorf("--password-cost %d is outside 4..31", o.PasswordCost)
	}
	if o.TokenExpiration < time.Minute {
		return fmt.Errorf("--token-expiration %s is shorter than a minute", o.TokenExpiration)
	}
	return nil
}

func (o *IdentityOptions) logger() *slog.Logger {
	if o.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.log
}

// Run starts etcd (or connects to it), the identity service, bootstraps
// it on the first start, and serves until ctx ends.
func (o *IdentityOptions) Run(ctx context.Context) error {
	log := o.logger().With("service", "identity")
	cli, closeEtcd, err := ConnectEtcd(ctx, EtcdConfig{Endpoints: o.endpoints, DataDir: o.DataDir})
	if err != nil {
		return err
	}
	defer closeEtcd()

	svc, err := identity.New(ctx, identity.Config{
		Etcd:            cli,
		TokenExpiration: o.TokenExpiration,
		KeyRotation:     o.KeyRotation,
		PasswordCost:    o.PasswordCost,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen.String())
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	public := o.PublicURL
	if public == "" {
		host := addr.Addr()
		if host.IsUnspecified() {
			host = netip.MustParseAddr("127.0.0.1")
			log.Warn("listening on all addresses: the catalog will say 127.0.0.1; set --public-url to an address clients can reach")
		}
		public = "http://" + net.JoinHostPort(host.Unmap().String(), strconv.Itoa(int(addr.Port()))) + "/v3"
	}
	err = svc.Bootstrap(ctx, identity.Bootstrap{Password: o.BootstrapPassword, PublicURL: public})
	if errors.Is(err, identity.ErrNoBootstrapPassword) {
		ln.Close()
		return fmt.Errorf("first start: set $%s (or --bootstrap-password) to the admin password to create", BootstrapPasswordEnv)
	}
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "auth_url", public)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	err = Serve(ctx, ln, svc.Handler(), log)
	cancel()
	wg.Wait()
	if err == nil {
		log.Info("stopped")
	}
	return err
}
