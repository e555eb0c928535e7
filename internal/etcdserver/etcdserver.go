// Package etcdserver runs a single-member etcd inside the calling process,
// the default coordination store of every Strata daemon.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Config says where the embedded member keeps its data and where it listens.
type Config struct {
	// Dir holds the member's data (WAL and snapshots). Required.
	Dir string
	// ClientURL is where clients reach the member. It must be a loopback
	// address; the default, http://127.0.0.1:0, picks a free port.
	ClientURL string
	// PeerURL is the member's peer address. A single member never dials it,
	// but etcd binds it; the default picks a free loopback port.
	PeerURL string
	// StartTimeout bounds how long Start waits for the member to be ready.
	StartTimeout time.Duration
	// Logger receives etcd's own log at warning level and above. Nil discards.
	Logger *slog.Logger
}

// Server is a running embedded etcd member.
type Server struct {
	etcd     *embed.Etcd
	endpoint string
}

// ErrNotLoopback is returned when a listen URL is not on loopback.
var ErrNotLoopback = errors.New("embedded etcd listens on loopback only")

// Start launches the member and waits until it serves requests.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("etcdserver: a data directory is required")
	}
	if cfg.ClientURL == "" {
		cfg.ClientURL = "http://127.0.0.1:0"
	}
	if cfg.PeerURL == "" {
		cfg.PeerURL = "http://127.0.0.1:0"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	curl, err := loopbackURL("client", cfg.ClientURL)
	if err != nil {
		return nil, err
	}
	purl, err := loopbackURL("peer", cfg.PeerURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcdserver: %w", err)
	}

	ec := embed.NewConfig()
	ec.Name = "strata"
	ec.Dir = filepath.Clean(cfg.Dir)
	ec.ListenClientUrls = []url.URL{*curl}
	ec.AdvertiseClientUrls = []url.URL{*curl}
	ec.ListenPeerUrls = []url.URL{*purl}
	ec.AdvertisePeerUrls = []url.URL{*purl}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.LogLevel = "error"
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if cfg.Logger != nil {
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(cfg.Logger))
	}
	// Keep the store compact: a provisioning system rewrites the same
	// records many times, so revisions older than five minutes are
	// compacted away (watchers that fall further behind resync by listing).
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "5m"

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: start: %w", err)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdserver: %w", err)
	case <-timer.C:
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcdserver: not ready after %s", cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	ep := "http://" + e.Clients[0].Addr().String()
	return &Server{etcd: e, endpoint: ep}, nil
}

func loopbackURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: %s URL %q: %w", what, raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("etcdserver: %s URL %q: scheme must be http", what, raw)
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
	default:
		return nil, fmt.Errorf("etcdserver: %s URL %q: %w", what, raw, ErrNotLoopback)
	}
	return u, nil
}

// Endpoint is the client URL of the running member.
func (s *Server) Endpoint() string { return s.endpoint }

// Client returns a new client connected to the member; the caller closes it.
func (s *Server) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// Close stops the member and waits for it to release its files.
func (s *Server) Close() {
	s.etcd.Close()
	<-s.etcd.Server.StopNotify()
}
