// Package tftp is the undercloud's TFTP server: read-only, for network boot.
// It serves the files under one root directory, which nothing escapes
// (names with "..", absolute names and symbolic links that lead out of the
// root are refused), and per-node virtual files that a caller makes up per
// request. Transfers negotiate blksize up to 65464 bytes (RFC 2348) and
// tsize (RFC 2349); write requests are refused. The number of transfers
// at a time is bounded.
//
// The protocol is github.com/pin/tftp/v3's. Two of its limits show through:
// every error packet carries error code 1 (the reason is in the message),
// and the windowsize option (RFC 7440) is not negotiated: v3.1.0 only has
// an unnegotiated "anticipate" mode that lock-step clients are not ready
// for, so it stays off.
//
// The server serves in the network namespace of its socket, which need not
// be that of the goroutines that run it: New binds Addr in the namespace
// of the thread that calls it, or the caller hands it a socket opened
// anywhere (Config.Conn). pin/tftp's loop, which opens each transfer's
// socket and caps blksize by the MTU of the interface a request came in
// on (looked up by index), then runs on a thread moved into the socket's
// namespace (which takes CAP_SYS_ADMIN and CAP_NET_ADMIN, as entering the
// namespace to open the socket did).
//
// Each transfer has a socket of its own on a random port, as RFC 1350 has
// it. pin/tftp v3.1.0's single-port mode, all transfers through port 69,
// is not offered: it measured about five times slower here, a stray
// packet from a port with no transfer left that port unanswered for good,
// and its loop raced with the end of transfers (a send on a closed
// channel, and data races the race detector reports).
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Defaults for Config.
const (
	DefaultAddr        = ":69"
	DefaultBlockSize   = 65464
	DefaultConcurrency = 64
	DefaultTimeout     = 2 * time.Second
	DefaultRetries     = 5
)

// Config configures a Server. Zero values take the defaults.
type Config struct {
	// Addr is the UDP address to listen on: DefaultAddr, or a test address
	// such as "127.0.0.1:0".
	Addr string
	// Conn, when set, is the socket to serve from, and Addr is ignored:
	// one the caller opened, for example inside the network namespace of
	// the provisioning interface while the server runs in another. New
	// takes it over: the server closes it, also when New fails.
	Conn *net.UDPConn
	// Root is the directory whose files are served. It must exist.
	Root string
	// Virtual, when set, is asked first about every request that passed
	// the name checks, with the cleaned path (slash-separated, relative to
	// the root) and the client's address. It answers with the content and
	// its size (negative when unknown) and true, or false to fall back to
	// the root. The server closes what it returns. This is how per-node
	// files (a script or a configuration for the machine at remote) are
	// served without writing them to disk.
	Virtual func(path string, remote netip.Addr) (io.ReadSeekCloser, int64, bool)
	// MaxBlockSize caps the negotiated blksize; DefaultBlockSize (the
	// largest RFC 2348 allows) by default, between 513 and 65464. The
	// block size is also capped to fit the MTU of the interface the
	// request came in on.
	MaxBlockSize int
	// Concurrency bounds the transfers in flight; a request beyond it is
	// refused with "server busy", and the client tries again.
	Concurrency int
	// Timeout is how long a sent packet waits for its acknowledgement
	// before it is sent again; Retries is how many times.
	Timeout time.Duration
	Retries int
	// Logger gets refusals and failed transfers; it discards by default.
	Logger *slog.Logger
	// Registerer, when set, gets the server's metrics (namespace strata,
	// subsystem tftp).
	Registerer prometheus.Registerer
}

// Server is a TFTP server. Make one with New and run it with Run.
type Server struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	root *os.Root
	conn *net.UDPConn
	lib  *tftp.Server
	sem  chan struct{}

	// done is closed when the server shuts down: transfers still reading
	// their source stop at their next block.
	done      chan struct{}
	ran       atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
}

// Errors sent to clients. pin/tftp sends each as the message of an error
// packet with code 1.
var (
	errNotFound = errors.New("file not found")
	errDenied   = errors.New("access violation")
	errBusy     = errors.New("server busy: too many transfers, try again")
	errReadOnly = errors.New("access violation: this server is read-only")
	errShutdown = errors.New("server shutting down")
)

// New checks cfg, opens the root and binds the UDP socket (or takes over
// cfg.Conn), so that Addr is known before Run. It binds in the network
// namespace of the calling thread, and the server then serves in that
// namespace, whichever thread runs Run. Close releases a server that is
// never run.
func New(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil && cfg.Conn != nil {
		cfg.Conn.Close()
	}
	return s, err
}

func newServer(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBlockSize == 0 {
		cfg.MaxBlockSize = DefaultBlockSize
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Root == "":
		return nil, errors.New("tftp: root: no directory given")
	case cfg.MaxBlockSize < 513 || cfg.MaxBlockSize > 65464:
		return nil, fmt.Errorf("tftp: max block size: %d is not between 513 and 65464", cfg.MaxBlockSize)
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("tftp: concurrency: %d is negative", cfg.Concurrency)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("tftp: timeout: %v is negative", cfg.Timeout)
	case cfg.Retries < 0:
		return nil, fmt.Errorf("tftp: retries: %d is negative", cfg.Retries)
	}
	var ap *net.UDPAddr
	if cfg.Conn == nil {
		var err error
		if ap, err = net.ResolveUDPAddr("udp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("tftp: addr: %w", err)
		}
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: root: %w", err)
	}
	conn := cfg.Conn
	if conn == nil {
		if conn, err = net.ListenUDP("udp", ap); err != nil {
			root.Close()
			return nil, fmt.Errorf("tftp: %w", err)
		}
	}
	s := &Server{
		cfg:  cfg,
		log:  cfg.Logger,
		m:    newMetrics(cfg.Registerer),
		root: root,
		conn: conn,
		sem:  make(chan struct{}, cfg.Concurrency),
		done: make(chan struct{}),
	}
	s.lib = tftp.NewServer(s.read, s.write)
	s.lib.SetBlockSize(cfg.MaxBlockSize)
	s.lib.SetTimeout(cfg.Timeout)
	s.lib.SetRetries(cfg.Retries)
	// The timeout is the retransmission interval; no random extra wait.
	s.lib.SetBackoff(func(int) time.Duration { return 0 })
	s.lib.SetHook(hook{s})
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Run serves until ctx ends, then stops taking requests, ends the
// transfers in flight (each within one Timeout×Retries at most) and
// releases the socket and the root.
func (s *Server) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return errors.New("tftp: Run called twice")
	}
	if s.closed.Load() {
		return errors.New("tftp: Run called after Close")
	}
	defer s.release()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.serve(); err != nil {
			return fmt.Errorf("tftp: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		close(s.done)
		s.lib.Shutdown()
		return nil
	})
	return g.Wait()
}

// Close releases the socket and the root of a server that was never run;
// Run releases them itself when it returns.
func (s *Server) Close() error {
	if s.ran.Load() {
		return nil
	}
	return s.release()
}

func (s *Server) release() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = errors.Join(s.conn.Close(), s.root.Close())
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// read serves one read request.
func (s *Server) read(filename string, rf io.ReaderFrom) error {
	start := time.Now()
	s.m.requests.WithLabelValues("read").Inc()
	var remote netip.Addr
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ra := ot.RemoteAddr()
		remote = ra.AddrPort().Addr().Unmap()
	}
	log := s.log.With("file", filename, "remote", remote)

	name, err := cleanName(filename)
	if err != nil {
		s.m.errors.WithLabelValues("denied").Inc()
		log.Warn("tftp: refused a read request", "reason", err)
		return fmt.Errorf("%w: %v", errDenied, err)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.m.errors.WithLabelValues("busy").Inc()
		log.Warn("tftp: refused a read request: too many transfers", "limit", s.cfg.Concurrency)
		return errBusy
	}
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()

	src, size, err := s.open(name, remote)
	if err != nil {
		switch {
		case errors.Is(err, errNotFound):
			s.m.errors.WithLabelValues("not_found").Inc()
			log.Debug("tftp: no such file")
		default:
			s.m.errors.WithLabelValues("denied").Inc()
			log.Warn("tftp: refused a read request", "reason", err)
		}
		return err
	}
	defer src.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok && size >= 0 {
		ot.SetSize(size)
	}
	n, err := rf.ReadFrom(&source{r: src, done: s.done, sent: s.m.bytes})
	d := time.Since(start)
	if err != nil {
		s.m.errors.WithLabelValues("transfer").Inc()
		s.m.latency.WithLabelValues("error").Observe(d.Seconds())
		log.Warn("tftp: transfer failed", "bytes", n, "err", err)
		return nil // pin/tftp has already told the client
	}
	s.m.latency.WithLabelValues("ok").Observe(d.Seconds())
	log.Debug("tftp: sent", "bytes", n, "duration", d)
	return nil
}

// open finds name among the virtual files, then under the root. A file
// that exists but can not be served (a directory, a device, a link out of
// the root, one the server may not read) is an access violation.
func (s *Server) open(name string, remote netip.Addr) (io.ReadCloser, int64, error) {
	if s.cfg.Virtual != nil {
		if r, size, ok := s.cfg.Virtual(name, remote); ok {
			if r == nil {
				return nil, 0, errNotFound
			}
			return r, size, nil
		}
	}
	// O_NONBLOCK so that a FIFO in the root can not hang the open; it
	// does nothing to regular files.
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, errNotFound
		}
		return nil, 0, fmt.Errorf("%w: %s", errDenied, reason(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s", errDenied, reason(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: not a regular file", errDenied)
	}
	return f, fi.Size(), nil
}

// reason is the part of an open error that may go to a client: what went
// wrong, without the server's paths.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "can not open"
}

// write refuses a write request: nothing is ever written.
func (s *Server) write(filename string, _ io.WriterTo) error {
	s.m.requests.WithLabelValues("write").Inc()
	s.m.errors.WithLabelValues("read_only").Inc()
	s.log.Warn("tftp: refused a write request", "file", filename)
	return errReadOnly
}

// source is what a transfer reads: it counts the bytes and stops when the
// server shuts down.
type source struct {
	r    io.Reader
	done <-chan struct{}
	sent prometheus.Counter
}

func (r *source) Read(p []byte) (int, error) {
	select {
	case <-r.done:
		return 0, errShutdown
	default:
	}
	n, err := r.r.Read(p)
	r.sent.Add(float64(n))
	return n, err
}

// hook counts the packets pin/tftp could not make a request of. Transfer
// outcomes are counted in read and write.
type hook struct{ s *Server }

func (h hook) OnSuccess(tftp.TransferStats) {}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.RemoteAddr != nil || err == nil {
		return
	}
	h.s.m.errors.WithLabelValues("bad_packet").Inc()
	h.s.log.Debug("tftp: ignored a packet", "err", err)
}
