// Package redfish is the lab's virtual Redfish BMC: a Redfish service over
// HTTPS in front of one or many bmc.Machines, in the manner of sushy-tools'
// emulator, answering what bmclib's redfish provider (gofish) and Ironic's
// redfish hardware type ask of a BMC.
//
// One Server serves many systems, keyed by id: /redfish/v1/Systems/{id},
// each with a Manager (/redfish/v1/Managers/{id}) and a Chassis
// (/redfish/v1/Chassis/{id}) of the same id. A client that names the system
// it drives (Ironic's redfish_system_id, gofish) uses the Server's main
// address. A client that drives every system a BMC lists, as bmclib does,
// needs a BMC with one system: Expose serves one system alone on an address
// of its own, and SystemHandler is the same view as an http.Handler.
//
// Every resource except the service root (and /redfish, /redfish/v1/odata)
// asks for HTTP Basic credentials or a session token (X-Auth-Token) from
// the SessionService. Power and boot operations on one system are carried
// out one at a time; different systems proceed in parallel.
package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/lab/bmc"
)

// Config configures a Server. The zero value of every field but Username
// and Password has a usable default.
type Config struct {
	// Addr is the TCP address of the main listener, host:port. Port 0
	// picks a free port (see Server.Addr). Default "127.0.0.1:0".
	Addr string
	// Username and Password are the BMC's credentials. Both are required.
	Username, Password string
	// Systems are the machines served at start, by system id. An id is 1
	// to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or
	// a digit. AddSystem and RemoveSystem change the set later.
	Systems map[string]bmc.Machine
	// CertPEM and KeyPEM are the TLS certificate (chain) and private key,
	// PEM-encoded. When both are empty the Server generates a self-signed
	// ECDSA P-256 certificate for the listen IP, localhost, the loopback
	// addresses and CertHosts.
	CertPEM, KeyPEM []byte
	// CertHosts are extra IP addresses and DNS names for the generated
	// certificate, for example the addresses given to Expose.
	CertHosts []string
	// SessionTimeout is how long a session lives without being used.
	// Default 30 minutes, the Redfish default.
	SessionTimeout time.Duration
	// MaxSessions is how many sessions each BMC (the main listener, and
	// each exposed system) holds at once. Default 64.
	MaxSessions int
	// MaxConns bounds the connections each listener serves at once; more
	// wait to be accepted. Default 1024.
	MaxConns int
	// UUID is the service root's UUID. Default: a random one.
	UUID string
	// Logger receives the log; it never sees a password or a token.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for session expiry. Default time.Now.
	Now func() time.Time
}

// Server is a Redfish service for a set of machines.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tls      *tls.Config
	certPEM  []byte
	sessions *sessionStore
	main     *view

	mu      sync.RWMutex
	systems map[string]*system

	run struct {
		sync.Mutex
		started, stopped bool
		cancel           context.CancelFunc
		group            *errgroup.Group
		addr             netip.AddrPort
		servers          []*http.Server
		exposed          map[string][]*http.Server
	}
}

var _ http.Handler = (*view)(nil)

// New validates cfg, fills in its defaults and prepares the TLS
// certificate. It listens on nothing yet: see Start and Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("redfish: username and password are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("redfish: addr: %w", err)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 30 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.UUID == "" {
		cfg.UUID = uuid.NewString()
	} else if _, err := uuid.Parse(cfg.UUID); err != nil {
		return nil, fmt.Errorf("redfish: uuid: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	var cert tls.Certificate
	var certPEM []byte
	var err error
	switch {
	case len(cfg.CertPEM) == 0 && len(cfg.KeyPEM) == 0:
		cert, certPEM, err = selfSigned(certHosts(cfg.Addr, cfg.CertHosts), cfg.Now())
	case len(cfg.CertPEM) == 0 || len(cfg.KeyPEM) == 0:
		err = errors.New("give both the certificate and the key, or neither")
	default:
		cert, err = tls.X509KeyPair(cfg.CertPEM, cfg.KeyPEM)
		certPEM = slices.Clone(cfg.CertPEM)
	}
	if err != nil {
		return nil, fmt.Errorf("redfish: tls: %w", err)
	}

	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		certPEM:  certPEM,
		sessions: newSessionStore(cfg.SessionTimeout, cfg.MaxSessions, cfg.Now),
		systems:  map[string]*system{},
	}
	s.cfg.Systems = nil // the Server's own map is the one that counts
	for id, m := range cfg.Systems {
		if err := s.AddSystem(id, m); err != nil {
			return nil, err
		}
	}
	s.main = newView(s, "")
	return s, nil
}

// ErrSystemExists is returned by AddSystem for an id already in use.
var ErrSystemExists = errors.New("redfish: system id already in use")

// ErrNoSystem is returned for an id that names no system.
var ErrNoSystem = errors.New("redfish: no such system")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// AddSystem serves m as system id. It is safe to call while serving. The
// machine's Hardware is read once, here.
func (s *Server) AddSystem(id string, m bmc.Machine) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("redfish: system id %q: want 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or a digit", id)
	}
	if m == nil {
		return fmt.Errorf("redfish: system %q: nil machine", id)
	}
	sys := newSystem(id, m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.systems[id]; ok {
		return fmt.Errorf("%w: %q", ErrSystemExists, id)
	}
	s.systems[id] = sys
	return nil
}

// RemoveSystem stops serving system id, and closes the listeners Expose
// opened for it. Operations under way on it finish.
func (s *Server) RemoveSystem(id string) error {
	s.mu.Lock()
	_, ok := s.systems[id]
	delete(s.systems, id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSystem, id)
	}
	s.run.Lock()
	servers := s.run.exposed[id]
	delete(s.run.exposed, id)
	s.run.Unlock()
	for _, srv := range servers {
		srv.Close()
	}
	return nil
}

func (s *Server) system(id string) *system {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.systems[id]
}

// systemIDs returns the ids of the systems, sorted.
func (s *Server) systemIDs() []string {
	s.mu.RLock()
	ids := make([]string, 0, len(s.systems))
	for id := range s.systems {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Handler is the service for all systems, to mount on a server of one's own
// (it expects TLS to be done in front of it) or to test with httptest.
func (s *Server) Handler() http.Handler { return s.main }

// SystemHandler is the service as a BMC with the one system id: its
// collections list that system (and its manager and chassis) alone, and
// its sessions are its own. The system need not exist yet; while it does
// not, the collections are empty.
func (s *Server) SystemHandler(id string) http.Handler { return newView(s, id) }

// CertificatePEM returns the PEM-encoded certificate (chain) the Server
// presents, for clients to trust.
func (s *Server) CertificatePEM() []byte { return slices.Clone(s.certPEM) }

// CertPool returns a pool with the Server's certificate, for Go clients
// (tls.Config.RootCAs, bmclib.WithSecureTLS).
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.certPEM)
	return pool
}

// Start listens on Config.Addr and serves in the background until ctx ends
// or Close is called. It returns once the listener is open, so Addr is
// valid when it returns nil.
func (s *Server) Start(ctx context.Context) error {
	s.run.Lock()
	defer s.run.Unlock()
	if s.run.started {
		return errors.New("redfish: already started")
	}
	ln, err := s.listen(s.cfg.Addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	s.run.started, s.run.cancel, s.run.group = true, cancel, g
	s.run.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	s.run.exposed = map[string][]*http.Server{}
	s.serveLocked(ln, s.main)
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	s.log.Info("redfish BMC listening", "addr", s.run.addr.String(), "systems", len(s.systemIDs()))
	return nil
}

// Serve is Start, then waits until ctx ends or Close is called. It returns
// nil after a shutdown it was asked for, or the error that stopped a
// listener.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	return s.wait()
}

// Close stops every listener, lets requests under way finish (for a few
// seconds at most) and returns what stopped the Server, if that was an
// error. Closing a Server that was never started does nothing.
func (s *Server) Close() error {
	s.run.Lock()
	cancel := s.run.cancel
	s.run.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return s.wait()
}

func (s *Server) wait() error {
	s.run.Lock()
	g := s.run.group
	s.run.Unlock()
	return g.Wait()
}

// Addr returns the address of the main listener, once started.
func (s *Server) Addr() netip.AddrPort {
	s.run.Lock()
	defer s.run.Unlock()
	return s.run.addr
}

// Expose serves system id alone (see SystemHandler) on addr, host:port,
// over TLS with the Server's certificate, until the Server stops or the
// system is removed. It returns the address it listens on. The Server must
// have been started.
func (s *Server) Expose(id, addr string) (netip.AddrPort, error) {
	s.run.Lock()
	defer s.run.Unlock()
	if !s.run.started || s.run.stopped {
		return netip.AddrPort{}, errors.New("redfish: expose: server not running")
	}
	// Checked under s.run, so that a RemoveSystem either comes first or
	// finds this listener to close.
	if s.system(id) == nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrNoSystem, id)
	}
	ln, err := s.listen(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	srv := s.serveLocked(ln, newView(s, id))
	s.run.exposed[id] = append(s.run.exposed[id], srv)
	return ln.Addr().(*net.TCPAddr).AddrPort(), nil
}

func (s *Server) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("redfish: %w", err)
	}
	return tls.NewListener(netutil.LimitListener(ln, s.cfg.MaxConns), s.tls), nil
}

// serveLocked serves h on ln in the Server's group; s.run is locked.
func (s *Server) serveLocked(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.run.servers = append(s.run.servers, srv)
	s.run.group.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("redfish: serve %s: %w", ln.Addr(), err)
		}
		return nil
	})
	return srv
}

// shutdown stops every listener, giving requests under way a few seconds.
func (s *Server) shutdown() {
	s.run.Lock()
	s.run.stopped = true
	servers := slices.Clone(s.run.servers)
	s.run.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		})
	}
	wg.Wait()
	s.log.Info("redfish BMC stopped")
}
