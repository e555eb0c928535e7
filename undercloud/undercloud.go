package undercloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/internal/etcdserver"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/api"
	"github.com/stratacloud/strata/undercloud/bmc"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
	"github.com/stratacloud/strata/undercloud/registry"
)

// Run files a running daemon writes under its data directory: the address
// its API listens on (useful with port 0), the client URL of its
// embedded etcd (for etcdctl and benchmarks; loopback only), and its
// registry's address.
const (
	AddrFile         = "api.addr"
	EtcdAddrFile     = "etcd.addr"
	RegistryAddrFile = "registry.addr"
)

// NewLogger builds the daemon's structured logger from the config.
func NewLogger(cfg Config, w *os.File) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log_level: %q is not debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// Run starts the undercloud: etcd (embedded, or a client of an external
// cluster), the conductor and the API, and runs them until ctx ends; then
// it stops accepting requests, lets the conductor finish or abandon its
// work, and stops etcd. ready, if not nil, is called with the API's address
// once requests are served.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(addr string)) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var auth api.Authenticator = api.NoAuth{}
	switch cfg.Auth {
	case AuthHTTPBasic:
		ba, err := api.LoadHTPasswd(cfg.HTPasswd)
		if err != nil {
			return err
		}
		auth = ba
	case AuthKeystone:
		auth = &api.Keystone{Validator: newKeystoneValidator(cfg.Keystone), CacheTTL: time.Duration(cfg.Keystone.CacheTTL)}
	}

	cli, stopEtcd, err := connectEtcd(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopEtcd()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	nodes := nodestore.New(store.New(cli, cfg.Etcd.Prefix))
	bmcPool := &bmc.Pool{}
	cond := conductor.New(conductor.Config{
		Name:                  cfg.Conductor.Name,
		Workers:               cfg.Conductor.Workers,
		LeaseTTL:              time.Duration(cfg.Conductor.LeaseTTL),
		TakeoverInterval:      time.Duration(cfg.Conductor.TakeoverInterval),
		ShutdownGrace:         time.Duration(cfg.Conductor.ShutdownGrace),
		PowerSyncInterval:     time.Duration(cfg.Conductor.PowerSyncInterval),
		PowerSyncWorkers:      cfg.Conductor.PowerSyncWorkers,
		InspectWaitTimeout:    time.Duration(cfg.Conductor.InspectWaitTimeout),
		CleanCallbackTimeout:  time.Duration(cfg.Conductor.CleanCallbackTimeout),
		DeployCallbackTimeout: time.Duration(cfg.Conductor.DeployCallbackTimeout),
		MaxConcurrentInspect:  cfg.Conductor.MaxConcurrentInspect,
		MaxConcurrentClean:    cfg.Conductor.MaxConcurrentClean,
		MaxConcurrentDeploy:   cfg.Conductor.MaxConcurrentDeploy,
		Drivers: map[string]conductor.Driver{
			inventory.DriverFake:    conductor.Fake{StepDelay: time.Duration(cfg.Conductor.FakeStepDelay)},
			inventory.DriverIPMI:    &conductor.Hardware{Type: inventory.DriverIPMI, Pool: bmcPool},
			inventory.DriverRedfish: &conductor.Hardware{Type: inventory.DriverRedfish, Pool: bmcPool},
		},
		Logger:     log.With("part", "conductor"),
		Registerer: reg,
	}, nodes)

	imageCache, err := images.NewCache(filepath.Join(cfg.DataDir, "image-cache"))
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if mb := cfg.ImageCache.MaxSizeMB; mb > 0 {
		imageCache.MaxBytes = mb << 20
	}
	if n := cfg.ImageCache.MaxConcurrentFetches; n > 0 {
		imageCache.SetMaxFetches(n)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var nb *netboot
	if prov, err := cfg.Provisioning.parse(); err != nil {
		ln.Close()
		return err
	} else if prov.Interface != "" {
		nb, err = newNetboot(prov, store.New(cli, cfg.Etcd.Prefix), nodes, apiURLFor(ln.Addr().String(), prov.addr.Addr()), reg, log)
		if err != nil {
			ln.Close()
			return err
		}
	}
	var regSrv *http.Server
	var regLn net.Listener
	var stacks api.Stacks
	if cfg.Registry.Listen != "" {
		var reg *registry.Registry
		reg, regSrv, regLn, err = startRegistry(cfg, auth, log)
		if err != nil {
			ln.Close()
			if nb != nil {
				nb.close()
			}
			return err
		}
		stacks = newStacks(cfg, store.New(cli, cfg.Etcd.Prefix), nodes, cond, reg, ln.Addr().String(), regLn.Addr().String())
	}
	handler := api.New(api.Config{
		Nodes:     nodes,
		Conductor: cond,
		Images:    imageCache,
		Auth:      auth,
		Logger:    log.With("part", "api"),
		Registry:  reg,
		Stacks:    stacks,
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		hctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := cli.Get(hctx, "health"); err != nil {
			http.Error(w, "etcd unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", handler)

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	g, gctx := errgroup.WithContext(ctx)
	condCtx, stopCond := context.WithCancel(context.WithoutCancel(ctx))
	condReady := make(chan struct{})
	g.Go(func() error {
		err := cond.Run(condCtx, condReady)
		if err != nil {
			return fmt.Errorf("conductor: %w", err)
		}
		return nil
	})
	select {
	case <-condReady:
	case <-gctx.Done():
		ln.Close()
		if nb != nil {
			nb.close()
		}
		stopCond()
		return g.Wait()
	}
	if nb != nil {
		nb.run(gctx, g)
		log.Info("network boot serving", "interface", cfg.Provisioning.Interface, "address", cfg.Provisioning.Address)
	}
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	})
	if regSrv != nil {
		g.Go(func() error {
			if err := regSrv.Serve(regLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("registry: %w", err)
			}
			return nil
		})
		log.Info("registry serving", "listen", regLn.Addr().String())
		if err := os.WriteFile(filepath.Join(cfg.DataDir, RegistryAddrFile), []byte(regLn.Addr().String()+"\n"), 0o600); err != nil {
			log.Warn("write registry address file", "err", err)
		}
	}
	addr := ln.Addr().String()
	if err := os.WriteFile(filepath.Join(cfg.DataDir, AddrFile), []byte(addr+"\n"), 0o600); err != nil {
		log.Warn("write address file", "err", err)
	}
	log.Info("undercloud ready", "listen", addr, "auth", cfg.Auth, "conductor", cond.Name(), "etcd", etcdDescription(cfg))
	if ready != nil {
		ready(addr)
	}

	// Shutdown: stop taking requests, then let the conductor wind down.
	g.Go(func() error {
		<-gctx.Done()
		log.Info("undercloud stopping")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if regSrv != nil {
			_ = regSrv.Shutdown(sctx)
		}
		stopCond()
		return nil
	})
	err = g.Wait()
	os.Remove(filepath.Join(cfg.DataDir, AddrFile))
	os.Remove(filepath.Join(cfg.DataDir, EtcdAddrFile))
	os.Remove(filepath.Join(cfg.DataDir, RegistryAddrFile))
	log.Info("undercloud stopped")
	return err
}

func etcdDescription(cfg Config) string {
	if len(cfg.Etcd.Endpoints) == 0 {
		return "embedded"
	}
	return fmt.Sprint(cfg.Etcd.Endpoints)
}

// connectEtcd starts the embedded member or connects to the external
// cluster, and returns a client with a function that releases both.
func connectEtcd(ctx context.Context, cfg Config, log *slog.Logger) (*clientv3.Client, func(), error) {
	ccfg := clientv3.Config{
		DialTimeout:          time.Duration(cfg.Etcd.DialTimeout),
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
		Username:             cfg.Etcd.Username,
		Password:             cfg.Etcd.Password,
	}
	var srv *etcdserver.Server
	if len(cfg.Etcd.Endpoints) == 0 {
		var err error
		srv, err = etcdserver.Start(ctx, etcdserver.Config{
			Dir:       filepath.Join(cfg.DataDir, "etcd"),
			ClientURL: cfg.Etcd.ClientURL,
			PeerURL:   cfg.Etcd.PeerURL,
			Logger:    log,
		})
		if err != nil {
			return nil, nil, err
		}
		ccfg.Endpoints = []string{srv.Endpoint()}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, EtcdAddrFile), []byte(srv.Endpoint()+"\n"), 0o600); err != nil {
			log.Warn("write etcd address file", "err", err)
		}
	} else {
		ccfg.Endpoints = cfg.Etcd.Endpoints
		if cfg.Etcd.CACert != "" || cfg.Etcd.Cert != "" {
			tlsInfo := transport.TLSInfo{TrustedCAFile: cfg.Etcd.CACert, CertFile: cfg.Etcd.Cert, KeyFile: cfg.Etcd.Key}
			tc, err := tlsInfo.ClientConfig()
			if err != nil {
				return nil, nil, fmt.Errorf("etcd TLS: %w", err)
			}
			tc.MinVersion = tls.VersionTLS12
			ccfg.TLS = tc
		}
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		if srv != nil {
			srv.Close()
		}
		return nil, nil, fmt.Errorf("etcd client: %w", err)
	}
	// Fail early and clearly when the cluster can not be reached.
	pctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Etcd.DialTimeout))
	defer cancel()
	if _, err := cli.Get(pctx, "health"); err != nil {
		cli.Close()
		if srv != nil {
			srv.Close()
		}
		return nil, nil, fmt.Errorf("etcd %v unreachable: %w", ccfg.Endpoints, err)
	}
	return cli, func() {
		cli.Close()
		if srv != nil {
			srv.Close()
		}
	}, nil
}
