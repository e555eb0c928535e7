// Package ipmi is the lab's virtual IPMI BMC: an IPMI v2.0 server over
// RMCP+ on UDP (what `ipmitool -I lanplus` and bmclib's ipmitool provider
// speak) that controls a bmc.Machine.
//
// It answers RMCP presence pings and the session-less Get Channel
// Authentication Capabilities and Get Channel Cipher Suites, and opens
// RMCP+ sessions for one configured user with the RAKP handshake, using
// cipher suite 3 (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) or 17
// (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128). Suite 0 and every other
// suite are refused, as a real BMC refuses them by default. Within a
// session it carries out Get Device ID, Get Self Test Results, Get ACPI
// Power State, the GUID commands, Set Session Privilege Level, Close
// Session, Get Chassis Status, Chassis Control, and Set/Get System Boot
// Options (parameters 0 to 5); anything else is answered with completion
// code C1h (invalid command).
//
// A wrong user name is refused in RAKP 2 (status 0Dh, unauthorized name).
// A wrong password makes the BMC's RAKP 2 code fail the remote console's
// check, and a RAKP 3 made with it fails the BMC's (RAKP 4 status 0Fh,
// invalid integrity check value). Packets that are malformed, fail their
// integrity check, name an unknown session or repeat a sequence number
// are dropped without an answer. A retransmitted state-changing request
// (same rqSeq and data, as ipmitool retries) gets the first answer again
// rather than being carried out twice.
//
// Not supported: IPMI v1.5 sessions, Serial over LAN and other payloads,
// SDR, SEL, FRU, LAN configuration and user management.
//
// Use:
//
//	srv, err := ipmi.New(ipmi.Config{Addr: "127.0.0.1:0", Username: "admin", Password: pw, Machine: m})
//	if err != nil { … }
//	go srv.Serve(ctx) // until ctx ends
//	// ipmitool -I lanplus -H 127.0.0.1 -p <srv.Addr().Port()> -U admin -P … power on
package ipmi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/lab/bmc"
)

// Config configures a BMC. Addr and Machine are required; every other
// field has a working zero value.
type Config struct {
	// Addr is the UDP address to listen on: "127.0.0.1:0" for a free
	// loopback port, or an address in a lab network namespace with port
	// 623, IPMI's.
	Addr string
	// Username and Password are the credentials of the BMC's one user.
	// IPMI limits a user name to 16 bytes and a password to 20. An empty
	// Username is IPMI's null user.
	Username string
	Password string
	// Privilege is the highest privilege level the user may take.
	// Default PrivilegeAdministrator.
	Privilege Privilege
	// Machine is the machine the BMC controls.
	Machine bmc.Machine
	// GUID is the BMC's GUID, used in the RAKP handshake and returned by
	// Get System GUID. Zero derives it from the machine's UUID, or makes a
	// random one if the machine has none.
	GUID [16]byte
	// MaxSessions bounds the sessions open at once, counting those still
	// in their handshake. Default 8.
	MaxSessions int
	// SessionTimeout closes a session idle this long. Default 60s.
	SessionTimeout time.Duration
	// Logger receives the BMC's log; nil discards it. Passwords and keys
	// never reach it.
	Logger *slog.Logger
}

const (
	// handshakeTimeout ends a session whose RAKP exchange stalled.
	handshakeTimeout = 10 * time.Second
	// machineTimeout bounds each call to the machine.
	machineTimeout = 5 * time.Second
	// retryWindow is how long a state-changing request's response is kept
	// for a retransmission of the request.
	retryWindow = 20 * time.Second
	// workers bounds the packets handled at once; queued bounds those
	// waiting. A packet beyond both is dropped, and the remote console
	// retransmits.
	workers = 4
	queued  = 64
	// maxPacket is larger than any packet this BMC accepts.
	maxPacket = 1024
	// lanChannel is the channel number of the BMC's LAN channel.
	lanChannel = 1
)

// Server is a virtual BMC. New binds its socket; Serve answers on it
// until its context ends.
type Server struct {
	cfg  Config
	log  *slog.Logger
	conn *net.UDPConn
	guid [16]byte
	kuid []byte

	// Seams for tests: randomness, time, and a tap on every packet handled
	// and its answer.
	rand io.Reader
	now  func() time.Time
	tap  func(in, out []byte)

	serving   sync.Mutex // held by Serve
	closeOnce sync.Once
	closed    atomic.Bool

	mu       sync.Mutex
	sessions map[uint32]*session
	boot     bootState
	// poweredByCommand records that the last power-on came from Chassis
	// Control, for Get Chassis Status.
	poweredByCommand bool
}

// New checks cfg, fills in its defaults, and binds the BMC's UDP socket.
// The caller runs Serve, or Close to release the socket without serving.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		return nil, errors.New("ipmi: addr: required")
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	udp, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ipmi: addr %q: %w", cfg.Addr, err)
	}
	s.conn, err = net.ListenUDP("udp", udp)
	if err != nil {
		return nil, fmt.Errorf("ipmi: listen: %w", err)
	}
	return s, nil
}

// newServer is New without the socket: what tests and the fuzzer drive
// through handle.
func newServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Machine == nil:
		return nil, errors.New("ipmi: machine: required")
	case len(cfg.Username) > 16:
		return nil, errors.New("ipmi: username: longer than 16 bytes")
	case len(cfg.Password) > kuidLen:
		return nil, errors.New("ipmi: password: longer than 20 bytes")
	case cfg.Privilege != 0 && (cfg.Privilege < PrivilegeCallback || cfg.Privilege > PrivilegeAdministrator):
		return nil, fmt.Errorf("ipmi: privilege: %d is not callback, user, operator or administrator", cfg.Privilege)
	case cfg.MaxSessions < 0:
		return nil, errors.New("ipmi: max sessions: negative")
	case cfg.SessionTimeout < 0:
		return nil, errors.New("ipmi: session timeout: negative")
	}
	if cfg.Privilege == 0 {
		cfg.Privilege = PrivilegeAdministrator
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 8
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 60 * time.Second
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		guid:     cfg.GUID,
		kuid:     kuid(cfg.Password),
		rand:     rand.Reader,
		now:      time.Now,
		sessions: make(map[uint32]*session),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.guid == ([16]byte{}) {
		if id, err := uuid.Parse(cfg.Machine.Hardware().UUID); err == nil {
			// IPMI sends a GUID least significant byte first.
			for i := range id {
				s.guid[i] = id[len(id)-1-i]
			}
		} else {
			s.fill(s.guid[:])
		}
	}
	return s, nil
}

// Addr returns the address the BMC answers on.
func (s *Server) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close releases the socket, which also ends Serve. Serve calls it when
// its context ends.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = s.conn.Close()
	})
	return err
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// Serve answers IPMI requests until ctx ends or Close is called, then
// closes the socket and returns nil once every packet in hand is done. It
// returns an error if the socket fails, if the Server is already serving,
// or if it was closed.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.TryLock() {
		return errors.New("ipmi: already serving")
	}
	defer s.serving.Unlock()
	if s.closed.Load() {
		return errors.New("ipmi: closed")
	}
	s.log.Info("ipmi bmc serving", "addr", s.Addr(), "user", s.cfg.Username)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	in := make(chan datagram, queued)
	g.Go(func() error {
		<-ctx.Done()
		s.Close() // ends the reader
		return nil
	})
	g.Go(func() error {
		defer stop() // ends the closer when the socket is closed under us
		defer close(in)
		for {
			buf := make([]byte, maxPacket)
			n, from, err := s.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				return fmt.Errorf("ipmi: read: %w", err)
			}
			if n == len(buf) {
				continue // too large for IPMI; perhaps truncated
			}
			select {
			case in <- datagram{buf[:n], from}:
			default:
				s.log.Debug("ipmi: busy, dropped a packet", "from", from)
			}
		}
	})
	for range workers {
		g.Go(func() error {
			for d := range in {
				out := s.handle(ctx, d.b, d.from)
				if out == nil {
					continue
				}
				if _, err := s.conn.WriteToUDPAddrPort(out, d.from); err != nil && ctx.Err() == nil {
					s.log.Debug("ipmi: send failed", "to", d.from, "err", err)
				}
			}
			return nil
		})
	}
	err := g.Wait()
	s.log.Info("ipmi bmc stopped", "addr", s.Addr())
	return err
}

// fill reads random bytes. The default source, crypto/rand, never fails;
// a test's deterministic source must not either.
func (s *Server) fill(b []byte) {
	if _, err := io.ReadFull(s.rand, b); err != nil {
		panic("ipmi: random source failed: " + err.Error())
	}
}

var (
	errBadAuthcode = errors.New("integrity check failed")
	errSequence    = errors.New("sequence number outside the window or repeated")
)

// handle answers one datagram, or returns nil to drop it.
func (s *Server) handle(ctx context.Context, pkt []byte, from netip.AddrPort) []byte {
	out := s.answer(ctx, pkt, from)
	if s.tap != nil {
		s.tap(pkt, out)
	}
	return out
}

func (s *Server) answer(ctx context.Context, pkt []byte, from netip.AddrPort) []byte {
	if len(pkt) < 5 || pkt[0] != rmcpVersion1 {
		return nil
	}
	switch pkt[3] {
	case rmcpClassASF:
		return pong(pkt)
	case rmcpClassIPMI:
	default:
		return nil
	}
	switch pkt[4] {
	case authTypeNone:
		b, err := v15Message(pkt)
		if err != nil {
			return s.drop(from, err)
		}
		m, err := parseMessage(b)
		if err != nil {
			return s.drop(from, err)
		}
		return v15Packet(s.dispatch(ctx, &request{message: m}))
	case authTypeRMCPPlus:
		return s.answerPlus(ctx, pkt, from)
	}
	return s.drop(from, errors.New("IPMI v1.5 sessions are not supported"))
}

func (s *Server) drop(from netip.AddrPort, why error) []byte {
	s.log.Debug("ipmi: dropped a packet", "from", from, "reason", why)
	return nil
}

func (s *Server) answerPlus(ctx context.Context, pkt []byte, from netip.AddrPort) []byte {
	h, err := parsePlus(pkt)
	if err != nil {
		return s.drop(from, err)
	}
	if h.sessionID == 0 {
		if h.encrypted || h.authenticated {
			return s.drop(from, errors.New("protected payload outside a session"))
		}
		payload := pkt[plusPayloadOffset:h.payloadEnd]
		switch h.payloadType {
		case payloadIPMI:
			m, err := parseMessage(payload)
			if err != nil {
				return s.drop(from, err)
			}
			return plusPacket(payloadIPMI, 0, 0, s.dispatch(ctx, &request{message: m}), nil)
		case payloadOpenRequest:
			return s.openSession(payload, from)
		case payloadRAKP1:
			return s.rakp1(payload, from)
		case payloadRAKP3:
			return s.rakp3(payload, from)
		}
		return s.drop(from, fmt.Errorf("payload type %#x outside a session", h.payloadType))
	}
	if h.payloadType != payloadIPMI {
		return s.drop(from, fmt.Errorf("payload type %#x is not supported", h.payloadType))
	}

	s.mu.Lock()
	sess, m, resp, err := s.receive(pkt, h, from)
	if err != nil || resp != nil {
		var out []byte
		if resp != nil {
			out = sess.seal(resp, s.iv())
		}
		s.mu.Unlock()
		if err != nil {
			return s.drop(from, err)
		}
		return out
	}
	key := newRequestKey(m)
	inflight := &key
	sess.inflight = inflight
	rq := &request{message: m, sessionID: sess.id, priv: sess.priv, maxPriv: sess.maxPriv}
	s.mu.Unlock()

	resp, changes := s.run(ctx, rq)

	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.inflight == inflight {
		sess.inflight = nil
	}
	if changes {
		sess.done = &doneRequest{key: key, resp: resp, at: s.now()}
	}
	return sess.seal(resp, s.iv())
}

// receive checks a session packet and returns its session and request.
// A retransmission of the request in progress is an error (its answer is
// on its way); a retransmission of one already done returns its response.
// The caller holds s.mu.
func (s *Server) receive(pkt []byte, h plusHeader, from netip.AddrPort) (*session, message, []byte, error) {
	sess := s.sessions[h.sessionID]
	if sess == nil || sess.state != stateActive {
		return nil, message{}, nil, errors.New("no such session")
	}
	now := s.now()
	if sess.expired(now, s.cfg.SessionTimeout, handshakeTimeout) {
		s.endSession(sess, "timed out")
		return nil, message{}, nil, errors.New("session timed out")
	}
	payload, err := sess.open(pkt, h)
	if err != nil {
		return nil, message{}, nil, err
	}
	m, err := parseMessage(payload)
	if err != nil {
		return nil, message{}, nil, err
	}
	sess.lastSeen, sess.addr = now, from
	key := newRequestKey(m)
	if sess.inflight != nil && *sess.inflight == key {
		return nil, message{}, nil, errors.New("retransmission of the request in progress")
	}
	if d := sess.done; d != nil && d.key == key && now.Sub(d.at) < retryWindow {
		return sess, m, d.resp, nil
	}
	return sess, m, nil, nil
}

// iv returns a fresh AES initialization vector.
func (s *Server) iv() []byte {
	b := make([]byte, aesBlock)
	s.fill(b)
	return b
}

// endSession forgets a session. The caller holds s.mu.
func (s *Server) endSession(sess *session, why string) {
	if s.sessions[sess.id] != sess {
		return
	}
	delete(s.sessions, sess.id)
	if sess.state == stateActive {
		s.log.Info("ipmi session closed", "session", sess.id, "remote", sess.addr, "reason", why)
	} else {
		s.log.Debug("ipmi handshake abandoned", "session", sess.id, "remote", sess.addr, "reason", why)
	}
}

// sweep forgets expired sessions. The caller holds s.mu.
func (s *Server) sweep(now time.Time) {
	for _, sess := range s.sessions {
		if sess.expired(now, s.cfg.SessionTimeout, handshakeTimeout) {
			s.endSession(sess, "timed out")
		}
	}
}

// alive reports whether a session exists and has not expired. The caller
// holds s.mu.
func (s *Server) alive(id uint32) bool {
	sess := s.sessions[id]
	return sess != nil && !sess.expired(s.now(), s.cfg.SessionTimeout, handshakeTimeout)
}
