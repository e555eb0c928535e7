package ipmi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
)

// A console is a small RMCP+ remote console for the tests that need to
// craft what ipmitool never sends: it talks to a Server's handle directly,
// with no socket.
type console struct {
	srv       *Server
	from      netip.AddrPort
	user      string
	password  string
	suite     suite
	role      byte
	consoleID uint32

	bmcID uint32
	rakp  rakpParams
	keys  sessionKeys
	seq   uint32
	rqSeq byte
}

func newConsole(srv *Server) *console {
	return &console{
		srv:       srv,
		from:      netip.MustParseAddrPort("192.0.2.10:49152"),
		user:      testUser,
		password:  testPassword,
		suite:     suites[1],
		role:      0x10 | byte(PrivilegeAdministrator),
		consoleID: 0x11223344,
	}
}

func (c *console) send(pkt []byte) []byte {
	return c.srv.handle(context.Background(), pkt, c.from)
}

// presession sends a pre-session RMCP+ payload and returns the payload of
// the answer, or nil if there is none.
func (c *console) presession(ptype byte, payload []byte) ([]byte, error) {
	out := c.send(plusPacket(ptype, 0, 0, payload, nil))
	if out == nil {
		return nil, nil
	}
	h, err := parsePlus(out)
	if err != nil {
		return nil, err
	}
	if h.payloadType != ptype+1 {
		return nil, fmt.Errorf("answered with payload type %#x", h.payloadType)
	}
	return out[plusPayloadOffset:h.payloadEnd], nil
}

// openRequest is an Open Session Request proposing the console's suite.
func (c *console) openRequest(priv Privilege) []byte {
	p := []byte{0, byte(priv), 0, 0}
	p = binary.LittleEndian.AppendUint32(p, c.consoleID)
	p = append(p, 0, 0, 0, 8, c.suite.auth, 0, 0, 0)
	p = append(p, 1, 0, 0, 8, c.suite.integrity, 0, 0, 0)
	return append(p, 2, 0, 0, 8, c.suite.conf, 0, 0, 0)
}

// rakpError is a non-zero status in an Open Session Response or RAKP
// message.
type rakpError struct {
	stage  string
	status byte
}

func (e rakpError) Error() string { return fmt.Sprintf("%s: status %#x", e.stage, e.status) }

// login opens a session: Open Session, RAKP 1 to 4. It checks the BMC's
// RAKP 2 code and RAKP 4 ICV with the console's password, but sends RAKP 3
// even if RAKP 2 fails (as a console that wants to see RAKP 4 would).
func (c *console) login() error {
	resp, err := c.presession(payloadOpenRequest, c.openRequest(0))
	if err != nil {
		return err
	}
	if resp == nil {
		return errors.New("no open session response")
	}
	if resp[1] != rakpOK {
		return rakpError{"open session", resp[1]}
	}
	c.bmcID = binary.LittleEndian.Uint32(resp[8:12])

	c.rakp = rakpParams{consoleID: c.consoleID, bmcID: c.bmcID, role: c.role, user: []byte(c.user)}
	for i := range c.rakp.rm {
		c.rakp.rm[i] = byte(i * 7)
	}
	r1 := []byte{0, 0, 0, 0}
	r1 = binary.LittleEndian.AppendUint32(r1, c.bmcID)
	r1 = append(r1, c.rakp.rm[:]...)
	r1 = append(r1, c.role, 0, 0, byte(len(c.user)))
	r1 = append(r1, c.user...)
	resp, err = c.presession(payloadRAKP1, r1)
	if err != nil {
		return err
	}
	if resp == nil {
		return errors.New("no RAKP 2")
	}
	if resp[1] != rakpOK {
		return rakpError{"RAKP 2", resp[1]}
	}
	copy(c.rakp.rc[:], resp[8:24])
	copy(c.rakp.guid[:], resp[24:40])
	key := kuid(c.password)
	rakp2OK := equal(resp[40:], rakp2Code(c.suite, key, c.rakp))

	r3 := []byte{0, 0, 0, 0}
	r3 = binary.LittleEndian.AppendUint32(r3, c.bmcID)
	r3 = append(r3, rakp3Code(c.suite, key, c.rakp)...)
	resp, err = c.presession(payloadRAKP3, r3)
	if err != nil {
		return err
	}
	if resp == nil {
		return errors.New("no RAKP 4")
	}
	if resp[1] != rakpOK {
		return rakpError{"RAKP 4", resp[1]}
	}
	if !rakp2OK {
		return errors.New("RAKP 2 code is wrong, yet RAKP 4 came")
	}
	c.keys = deriveKeys(c.suite, key, c.rakp)
	if !equal(resp[8:], rakp4ICV(c.suite, c.keys.sik, c.rakp)) {
		return errors.New("RAKP 4 ICV is wrong")
	}
	c.seq = 1
	return nil
}

// request builds the next session packet carrying an IPMI request.
func (c *console) request(netFn, cmd byte, data ...byte) []byte {
	c.rqSeq = (c.rqSeq + 1) & 0x3f
	return c.requestSeq(c.rqSeq, netFn, cmd, data...)
}

// requestSeq builds a session packet with a given rqSeq, as a
// retransmission has.
func (c *console) requestSeq(rqSeq, netFn, cmd byte, data ...byte) []byte {
	msg := []byte{bmcAddr, netFn << 2}
	msg = append(msg, checksum(msg))
	msg = append(msg, 0x81, rqSeq<<2, cmd)
	msg = append(msg, data...)
	msg = append(msg, checksum(msg[3:]))
	iv := bytes.Repeat([]byte{byte(c.seq)}, aesBlock)
	pkt := plusPacket(payloadIPMI|payloadEncrypted|payloadAuthenticated, c.bmcID, c.seq, sealAES(c.keys.k2, iv, msg),
		func(covered []byte) []byte { return authcode(c.suite, c.keys.k1, covered) })
	c.seq++
	return pkt
}

// reply checks and opens the BMC's answer to a session packet.
func (c *console) reply(out []byte) (cc byte, data []byte, err error) {
	if out == nil {
		return 0, nil, errNoAnswer
	}
	h, err := parsePlus(out)
	if err != nil {
		return 0, nil, err
	}
	if h.sessionID != c.consoleID || !h.authenticated || !h.encrypted {
		return 0, nil, fmt.Errorf("answer header %+v", h)
	}
	covered, code, err := checkTrailer(out, h, c.suite.authcodeLen())
	if err != nil {
		return 0, nil, err
	}
	if !equal(code, authcode(c.suite, c.keys.k1, covered)) {
		return 0, nil, errors.New("answer fails its integrity check")
	}
	msg, err := openAES(c.keys.k2, out[plusPayloadOffset:h.payloadEnd])
	if err != nil {
		return 0, nil, err
	}
	if len(msg) < 8 || checksum(msg[:2]) != msg[2] || checksum(msg[3:len(msg)-1]) != msg[len(msg)-1] {
		return 0, nil, fmt.Errorf("bad response message %x", msg)
	}
	return msg[6], msg[7 : len(msg)-1], nil
}

var errNoAnswer = errors.New("no answer")

// call sends a request in the session and returns the answer.
func (c *console) call(netFn, cmd byte, data ...byte) (byte, []byte, error) {
	return c.reply(c.send(c.request(netFn, cmd, data...)))
}

// lockedReader makes a math/rand source safe for the Server's workers.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// deterministic returns a random source that gives the same bytes on every
// run: the fuzzer replays captured conversations against it.
func deterministic() io.Reader {
	return &lockedReader{r: rand.NewChaCha8([32]byte{'s', 't', 'r', 'a', 't', 'a'})}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// unserved is a Server with no socket, a Sim behind it, a deterministic
// random source and a fake clock, driven through handle.
type unserved struct {
	*Server
	sim   *bmc.Sim
	clock *fakeClock
	log   *logBuffer
}

func newUnserved(t testing.TB, edit func(*Config)) *unserved {
	t.Helper()
	u := &unserved{
		sim:   bmc.NewSim(testHardware()),
		clock: &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		log:   &logBuffer{},
	}
	cfg := Config{
		Username: testUser,
		Password: testPassword,
		Machine:  u.sim,
		Logger:   slog.New(slog.NewTextHandler(u.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.rand = deterministic()
	srv.now = u.clock.Now
	u.Server = srv
	return u
}
