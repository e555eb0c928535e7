package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sync/errgroup"
)

// Server is a DHCPv4 server on one interface.
type Server struct {
	cfg   Config
	h     *Handler
	m     ifaceMetrics
	ready chan struct{}
	// tap, when set, sees every packet that parses (tests record the
	// fuzzer's seed corpus with it).
	tap func(b []byte)
}

// New validates cfg and returns a server; it opens nothing until Run.
func New(cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:   h.cfg,
		h:     h,
		m:     ifaceMetrics{m: newMetrics(h.cfg.Registerer), iface: h.cfg.Interface},
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once the server listens (after the probe).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run checks the interface, probes for another DHCP server (managed mode),
// then serves until ctx ends, which is not an error. Call it once. It fails at once if
// the interface is missing, down or without ServerIP, or if another DHCP
// server answers the probe (a *ForeignServerError).
func (s *Server) Run(ctx context.Context) error {
	log := s.cfg.Logger.With("interface", s.cfg.Interface, "mode", s.cfg.Mode.String())
	if s.cfg.Mode == Managed {
		var p *prober
		err := inNetns(s.cfg.Netns, func() error {
			if err := s.checkInterface(); err != nil {
				return err
			}
			var err error
			p, err = newProber(s.cfg.Interface, s.cfg.ProbeTimeout)
			return err
		})
		if err != nil {
			return err
		}
		if err := p.run(ctx, s.cfg.Interface, s.cfg.ProbeIgnore); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	ports := []uint16{ServerPort}
	if s.cfg.Mode == Proxy {
		ports = append(ports, PXEPort)
	}
	var conns []*net.UDPConn
	err := inNetns(s.cfg.Netns, func() error {
		if err := s.checkInterface(); err != nil {
			return err
		}
		for _, port := range ports {
			c, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{Port: int(port)})
			if err != nil {
				return fmt.Errorf("dhcp: listen on %s port %d: %w", s.cfg.Interface, port, err)
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	q := newQueues(s.cfg.QueueSize)
	for i, c := range conns {
		g.Go(func() error { return s.read(gctx, c, ports[i], q) })
	}
	for range s.cfg.Workers {
		g.Go(func() error { s.work(gctx, q); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		for _, c := range conns {
			c.Close()
		}
		return nil
	})
	log.Info("dhcp server listening", "server_ip", s.cfg.ServerIP.String(), "ports", ports)
	close(s.ready)
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// checkInterface runs in the server's namespace.
func (s *Server) checkInterface() error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("dhcp: interface %s: %w", s.cfg.Interface, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return fmt.Errorf("dhcp: interface %s is down", s.cfg.Interface)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("dhcp: addresses of %s: %w", s.cfg.Interface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := addr4(n.IP); ok && ip == s.cfg.ServerIP {
				return nil
			}
		}
	}
	return fmt.Errorf("dhcp: ServerIP %v is not an address of interface %s", s.cfg.ServerIP, s.cfg.Interface)
}

// A job is a received packet waiting for a worker.
type job struct {
	buf  *[]byte
	n    int
	peer netip.AddrPort
	port uint16
	conn *net.UDPConn
	at   time.Time
}

// bufSize fits any DHCP packet on an Ethernet segment.
const bufSize = 1500

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// queues hold the packets waiting for a worker: DISCOVERs in one, all the
// rest in another that workers serve first, so that under a burst the
// exchanges already under way (REQUESTs after an OFFER) finish rather than
// wait behind new ones, which would only time out.
type queues struct {
	discover, rest chan job
}

func newQueues(size int) queues {
	d := max(size/2, 1)
	return queues{discover: make(chan job, d), rest: make(chan job, max(size-d, 1))}
}

// read queues the packets of c for the workers, dropping them when their
// queue is full: a burst costs at most QueueSize buffers.
func (s *Server) read(ctx context.Context, c *net.UDPConn, port uint16, q queues) error {
	for {
		bp := bufs.Get().(*[]byte)
		n, peer, err := c.ReadFromUDPAddrPort(*bp)
		if err != nil {
			bufs.Put(bp)
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.m.fail(errRead)
			return fmt.Errorf("dhcp: read on %s: %w", s.cfg.Interface, err)
		}
		j := job{buf: bp, n: n, peer: netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()), port: port, conn: c, at: time.Now()}
		queue := q.rest
		if peekType((*bp)[:n]) == dhcpv4.MessageTypeDiscover {
			queue = q.discover
		}
		select {
		case queue <- j:
		default:
			bufs.Put(bp)
			s.m.fail(errQueueFull)
		}
	}
}

func (s *Server) work(ctx context.Context, q queues) {
	for {
		select {
		case j := <-q.rest:
			s.serve(ctx, j)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case j := <-q.rest:
			s.serve(ctx, j)
		case j := <-q.discover:
			s.serve(ctx, j)
		}
	}
}

// peekType finds the message type (option 53) of a raw packet without
// parsing it, or returns 0.
func peekType(b []byte) dhcpv4.MessageType {
	const optionsAt = 240 // fixed header and magic cookie
	for i := optionsAt; i < len(b); {
		switch code := b[i]; code {
		case 0: // pad
			i++
			continue
		case 255: // end
			return 0
		case 53:
			if i+2 < len(b) && b[i+1] == 1 {
				return dhcpv4.MessageType(b[i+2])
			}
			return 0
		}
		if i+1 >= len(b) {
			return 0
		}
		i += 2 + int(b[i+1])
	}
	return 0
}

// serve handles one packet and sends its answer.
func (s *Server) serve(ctx context.Context, j job) {
	raw := (*j.buf)[:j.n]
	msg, err := dhcpv4.FromBytes(raw)
	if s.tap != nil && err == nil {
		s.tap(append([]byte(nil), raw...))
	}
	bufs.Put(j.buf)
	if err != nil {
		s.m.fail(errParse)
		return
	}
	s.m.received(typeLabel(msg.MessageType()), j.n)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	r, err := s.h.Handle(hctx, Packet{Msg: msg, Port: j.port, Peer: j.peer})
	cancel()
	if err != nil {
		s.m.fail(errHandle)
		if ctx.Err() == nil {
			s.cfg.Logger.Error("dhcp request failed", "interface", s.cfg.Interface,
				"mac", msg.ClientHWAddr.String(), "type", msg.MessageType().String(), "err", err)
		}
		return
	}
	if r.Msg == nil {
		s.m.ignore(r.Ignored)
		return
	}
	b := r.Msg.ToBytes()
	if _, err := j.conn.WriteToUDPAddrPort(b, r.To); err != nil {
		s.m.fail(errSend)
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("dhcp send failed", "interface", s.cfg.Interface, "to", r.To.String(), "err", err)
		}
		return
	}
	s.m.sent(typeLabel(r.Msg.MessageType()), len(b), time.Since(j.at))
}

// typeLabel keeps the metric's label set bounded.
func typeLabel(mt dhcpv4.MessageType) string {
	if mt >= dhcpv4.MessageTypeDiscover && mt <= dhcpv4.MessageTypeInform {
		return mt.String()
	}
	return "other"
}
