package ipmi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/lab/bmc"
)

func TestConfigRefusals(t *testing.T) {
	sim := bmc.NewSim(testHardware())
	for name, cfg := range map[string]Config{
		"no machine":        {Username: "u"},
		"long user name":    {Machine: sim, Username: strings.Repeat("u", 17)},
		"long password":     {Machine: sim, Password: strings.Repeat("p", 21)},
		"OEM privilege":     {Machine: sim, Privilege: PrivilegeOEM},
		"negative sessions": {Machine: sim, MaxSessions: -1},
		"negative timeout":  {Machine: sim, SessionTimeout: -time.Second},
		"unresolvable addr": {Machine: sim, Addr: "nowhere:623"},
		"not a udp address": {Machine: sim, Addr: "127.0.0.1:99999"},
	} {
		if srv, err := New(cfg); err == nil {
			srv.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestServe checks the socket's life: a ping over UDP, one Serve at a
// time, and Close ending Serve.
func TestServe(t *testing.T) {
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: bmc.NewSim(testHardware())})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()

	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x07, 0x00, 0x00}
	buf := make([]byte, 64)
	// UDP may lose a datagram even on loopback: ping until a pong, for a
	// while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := conn.Write(ping); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err == nil {
			if n != 28 || buf[8] != asfTypePong || buf[9] != 0x07 {
				t.Errorf("pong %x", buf[:n])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pong: %v", err)
		}
	}

	if err := srv.Serve(context.Background()); err == nil {
		t.Error("a second Serve ran")
	}
	srv.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not end Serve")
	}
	if err := srv.Serve(context.Background()); err == nil {
		t.Error("Serve ran after Close")
	}
}

func TestPresencePing(t *testing.T) {
	u := newUnserved(t, nil)
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x2a, 0x00, 0x00}
	got := newConsole(u.Server).send(ping)
	want := []byte{
		0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x40, 0x2a, 0x00, 0x10,
		0x00, 0x00, 0x11, 0xbe, 0, 0, 0, 0, 0x81, 0x00, 0, 0, 0, 0, 0, 0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pong (-want +got):\n%s", diff)
	}
}

func TestChannelAuthCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name string
		user string
		pass string
		req  []byte
		want []byte // response data after the completion code
		cc   byte
	}{
		{name: "v2 data", user: "admin", pass: "x", req: []byte{0x8e, 0x04}, want: []byte{1, 0x80, 0x04, 0x02, 0, 0, 0, 0}},
		{name: "v1.5 only", user: "admin", pass: "x", req: []byte{0x0e, 0x04}, want: []byte{1, 0x00, 0x04, 0x00, 0, 0, 0, 0}},
		{name: "null user", user: "", pass: "x", req: []byte{0x8e, 0x04}, want: []byte{1, 0x80, 0x02, 0x02, 0, 0, 0, 0}},
		{name: "anonymous", user: "", pass: "", req: []byte{0x81, 0x02}, want: []byte{1, 0x80, 0x01, 0x02, 0, 0, 0, 0}},
		{name: "other channel", user: "admin", req: []byte{0x82, 0x04}, cc: ccInvalidField},
		{name: "bad privilege", user: "admin", req: []byte{0x8e, 0x06}, cc: ccInvalidField},
		{name: "short", user: "admin", req: []byte{0x8e}, cc: ccBadLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnserved(t, func(c *Config) { c.Username, c.Password = tc.user, tc.pass })
			msg := []byte{bmcAddr, netFnApp << 2}
			msg = append(msg, checksum(msg), 0x81, 0, 0x38)
			msg = append(msg, tc.req...)
			msg = append(msg, checksum(msg[3:]))
			out := newConsole(u.Server).send(v15Packet(msg))
			if out == nil {
				t.Fatal("no answer")
			}
			resp, err := v15Message(out)
			if err != nil {
				t.Fatal(err)
			}
			if cc := resp[6]; cc != tc.cc {
				t.Fatalf("completion code %#x, want %#x", cc, tc.cc)
			}
			if diff := cmp.Diff(tc.want, resp[7:len(resp)-1], cmpEmpty); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })

func TestSessions(t *testing.T) {
	for _, su := range suites {
		t.Run(fmtSuite(su), func(t *testing.T) {
			u := newUnserved(t, nil)
			c := newConsole(u.Server)
			c.suite = su
			if err := c.login(); err != nil {
				t.Fatal(err)
			}
			cc, data, err := c.call(netFnApp, 0x01)
			if err != nil || cc != ccOK || len(data) != 15 || data[4] != 0x02 {
				t.Fatalf("Get Device ID = %#x %x %v", cc, data, err)
			}
			// The session starts at USER: chassis control needs OPERATOR.
			if cc, _, _ := c.call(netFnChassis, 0x02, chassisPowerUp); cc != ccInsufficientPriv {
				t.Errorf("power up at USER: %#x, want %#x", cc, ccInsufficientPriv)
			}
			if cc, data, _ := c.call(netFnApp, 0x3b, byte(PrivilegeAdministrator)); cc != ccOK || data[0] != 4 {
				t.Errorf("Set Session Privilege Level = %#x %x", cc, data)
			}
			if cc, _, _ := c.call(netFnChassis, 0x02, chassisPowerUp); cc != ccOK {
				t.Errorf("power up: %#x", cc)
			}
			if on, _ := u.sim.PoweredOn(t.Context()); !on {
				t.Error("the machine is off")
			}
			if cc, _, _ := c.call(netFnApp, 0x3c, le32(c.bmcID)...); cc != ccOK {
				t.Errorf("close session: %#x", cc)
			}
			if _, _, err := c.call(netFnApp, 0x01); !errors.Is(err, errNoAnswer) {
				t.Errorf("after close: %v, want no answer", err)
			}
		})
	}
}

func fmtSuite(su suite) string { return fmt.Sprintf("suite %d", su.id) }

func TestOpenSessionRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		suite  suite
		priv   Privilege
		edit   func(p []byte)
		status byte
	}{
		{name: "suite 0", suite: suite{id: 0}, status: rakpInvalidAuthAlg},
		{name: "suite 1", suite: suite{auth: authRAKPHMACSHA1}, status: rakpInvalidIntegrityAlg},
		{name: "suite 2", suite: suite{auth: authRAKPHMACSHA1, integrity: integrityHMACSHA196}, status: rakpInvalidConfAlg},
		{name: "suite 8", suite: suite{auth: authRAKPHMACMD5, integrity: integrityHMACMD5128, conf: confAESCBC128}, status: rakpInvalidAuthAlg},
		{name: "SHA-1 with SHA-256 integrity", suite: suite{auth: authRAKPHMACSHA1, integrity: integrityHMACSHA256128, conf: confAESCBC128}, status: rakpNoCipherSuite},
		{name: "OEM privilege", suite: suites[1], priv: PrivilegeOEM, status: rakpInvalidRole},
		{name: "zero console ID", suite: suites[1], edit: func(p []byte) { copy(p[4:8], []byte{0, 0, 0, 0}) }, status: rakpInvalidSessionID},
		{name: "payloads out of order", suite: suites[1], edit: func(p []byte) { p[8], p[16] = 1, 0 }, status: rakpIllegalParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnserved(t, nil)
			c := newConsole(u.Server)
			c.suite = tc.suite
			req := c.openRequest(tc.priv)
			if tc.edit != nil {
				tc.edit(req)
			}
			resp, err := c.presession(payloadOpenRequest, req)
			if err != nil || len(resp) < 8 {
				t.Fatalf("answer %x, %v", resp, err)
			}
			if resp[1] != tc.status {
				t.Errorf("status %#x, want %#x", resp[1], tc.status)
			}
			if len(u.sessions) != 0 {
				t.Error("a session was created")
			}
		})
	}
}

func TestOpenSessionWildcards(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	req := c.openRequest(0)
	req[11], req[19], req[27] = 0, 0, 0 // null payloads: the BMC chooses
	resp, err := c.presession(payloadOpenRequest, req)
	if err != nil || resp[1] != rakpOK {
		t.Fatalf("answer %x, %v", resp, err)
	}
	if got := []byte{resp[16], resp[24], resp[32]}; !bytes.Equal(got, []byte{authRAKPHMACSHA256, integrityHMACSHA256128, confAESCBC128}) {
		t.Errorf("chose %x, want suite 17", got)
	}
}

func TestLoginRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		privilege Privilege // the user's limit
		user      string
		password  string
		role      byte
		want      rakpError
	}{
		{name: "unknown user", user: "root", password: testPassword, role: 0x14, want: rakpError{"RAKP 2", rakpUnauthorizedName}},
		{name: "wrong password", user: testUser, password: "guess", role: 0x14, want: rakpError{"RAKP 4", rakpInvalidIntegrityCode}},
		{name: "role above the user's", privilege: PrivilegeOperator, user: testUser, password: testPassword, role: 0x14, want: rakpError{"RAKP 2", rakpUnauthorizedRole}},
		{name: "OEM role", user: testUser, password: testPassword, role: 0x15, want: rakpError{"RAKP 2", rakpUnauthorizedRole}},
		{name: "reserved role bits", user: testUser, password: testPassword, role: 0x84, want: rakpError{"RAKP 2", rakpInvalidRole}},
		{name: "no role", user: testUser, password: testPassword, role: 0x10, want: rakpError{"RAKP 2", rakpInvalidRole}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnserved(t, func(c *Config) { c.Privilege = tc.privilege })
			c := newConsole(u.Server)
			c.user, c.password, c.role = tc.user, tc.password, tc.role
			var got rakpError
			if err := c.login(); !errors.As(err, &got) || got != tc.want {
				t.Fatalf("login: %v, want %v", err, tc.want)
			}
			if len(u.sessions) != 0 {
				t.Error("the refused session is still open")
			}
			if strings.Contains(u.log.String(), testPassword) || strings.Contains(u.log.String(), tc.password) {
				t.Error("a password is in the log")
			}
		})
	}
}

func TestLoginAsOperator(t *testing.T) {
	u := newUnserved(t, func(c *Config) { c.Privilege = PrivilegeOperator })
	c := newConsole(u.Server)
	c.role = 0x10 | byte(PrivilegeOperator)
	if err := c.login(); err != nil {
		t.Fatal(err)
	}
	if cc, _, _ := c.call(netFnApp, 0x3b, byte(PrivilegeAdministrator)); cc != ccPrivilegeTooHigh {
		t.Errorf("raise to ADMINISTRATOR: %#x, want %#x", cc, ccPrivilegeTooHigh)
	}
	if cc, data, _ := c.call(netFnApp, 0x3b, byte(PrivilegeOperator)); cc != ccOK || data[0] != byte(PrivilegeOperator) {
		t.Errorf("raise to OPERATOR: %#x %x", cc, data)
	}
	if cc, data, _ := c.call(netFnApp, 0x3b, 0); cc != ccOK || data[0] != byte(PrivilegeOperator) {
		t.Errorf("present level: %#x %x", cc, data)
	}
	if cc, _, _ := c.call(netFnChassis, 0x02, chassisPowerUp); cc != ccOK {
		t.Errorf("power up as OPERATOR: %#x", cc)
	}
}

func TestRAKP3AbandonedByConsole(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	resp, _ := c.presession(payloadOpenRequest, c.openRequest(0))
	id := resp[8:12]
	r1 := append([]byte{0, 0, 0, 0}, id...)
	r1 = append(r1, make([]byte, 16)...)
	r1 = append(r1, 0x14, 0, 0, byte(len(testUser)))
	r1 = append(r1, testUser...)
	if resp, _ := c.presession(payloadRAKP1, r1); resp == nil || resp[1] != rakpOK {
		t.Fatalf("RAKP 2: %x", resp)
	}
	r3 := append([]byte{0, rakpInvalidIntegrityCode, 0, 0}, id...)
	if resp, _ := c.presession(payloadRAKP3, r3); resp != nil {
		t.Errorf("answered an abandoning RAKP 3: %x", resp)
	}
	if len(u.sessions) != 0 {
		t.Error("the abandoned session is still open")
	}
}

// TestDroppedPackets sends packets a BMC must drop: each gets no answer,
// and the session goes on working.
func TestDroppedPackets(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	if err := c.login(); err != nil {
		t.Fatal(err)
	}
	good := c.request(netFnApp, 0x01)
	if _, _, err := c.reply(c.send(good)); err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		p := c.request(netFnApp, 0x01)
		if i < 0 {
			i += len(p)
		}
		p[i] ^= 0x01
		return p
	}
	withSession := func(id uint32) []byte {
		p := c.request(netFnApp, 0x01)
		binary.LittleEndian.PutUint32(p[6:10], id)
		return p
	}
	withSeq := func(seq uint32) []byte {
		saved := c.seq
		c.seq = seq
		p := c.request(netFnApp, 0x01)
		c.seq = saved
		return p
	}
	plain := func() []byte {
		msg := []byte{bmcAddr, netFnApp << 2}
		msg = append(msg, checksum(msg), 0x81, 0x04, 0x01)
		msg = append(msg, checksum(msg[3:]))
		p := plusPacket(payloadIPMI|payloadAuthenticated, c.bmcID, c.seq, msg,
			func(covered []byte) []byte { return authcode(c.suite, c.keys.k1, covered) })
		c.seq++
		return p
	}
	for name, pkt := range map[string][]byte{
		"replay":                         good,
		"bad authcode":                   flip(-1),
		"bad payload":                    flip(20),
		"bad pad length":                 flip(-14),
		"bad next header":                flip(-13),
		"unknown session":                withSession(c.bmcID + 1),
		"session ID zero, authenticated": withSession(0),
		"far ahead":                      withSeq(c.seq + 100),
		"sequence zero":                  withSeq(0),
		"unencrypted":                    plain(),
		"truncated":                      c.request(netFnApp, 0x01)[:30],
		"payload length too big":         func() []byte { p := c.request(netFnApp, 0x01); p[15] = 0x7f; return p }(),
		"OEM payload":                    func() []byte { p := c.request(netFnApp, 0x01); p[5] = 0xc2; return p }(),
		"SOL payload":                    func() []byte { p := c.request(netFnApp, 0x01); p[5] = 0xc1; return p }(),
		"IPMI v1.5 session":              {0x06, 0x00, 0xff, 0x07, 0x02, 0, 0, 0, 0, 1, 2, 3, 4},
		"not RMCP":                       []byte("GET / HTTP/1.0\r\n\r\n"),
		"RMCP ack":                       {0x06, 0x00, 0x05, 0x86},
		"empty":                          {},
	} {
		if out := c.send(pkt); out != nil {
			t.Errorf("%s: answered %x", name, out)
		}
	}
	if cc, _, err := c.call(netFnApp, 0x01); err != nil || cc != ccOK {
		t.Errorf("the session broke: %#x %v", cc, err)
	}
}

func TestRetransmission(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	if err := c.login(); err != nil {
		t.Fatal(err)
	}
	c.call(netFnApp, 0x3b, byte(PrivilegeAdministrator))
	c.call(netFnChassis, 0x02, chassisPowerUp)
	// A power cycle, then its retransmission: same rqSeq and data, new
	// session sequence number, as ipmitool retries.
	first, _, _ := c.reply(c.send(c.requestSeq(9, netFnChassis, 0x02, chassisPowerCycle)))
	again, _, err := c.reply(c.send(c.requestSeq(9, netFnChassis, 0x02, chassisPowerCycle)))
	if err != nil || first != ccOK || again != ccOK {
		t.Fatalf("cycle: %#x, again: %#x %v", first, again, err)
	}
	if got := len(u.sim.Boots()); got != 2 {
		t.Errorf("%d boots, want 2: the retransmission was carried out", got)
	}
	// Past the retry window, the same request is a new one.
	u.clock.Advance(retryWindow)
	c.reply(c.send(c.requestSeq(9, netFnChassis, 0x02, chassisPowerCycle)))
	if got := len(u.sim.Boots()); got != 3 {
		t.Errorf("%d boots, want 3", got)
	}
	// A read is never served from the cache.
	c.call(netFnChassis, 0x02, chassisPowerDown)
	_, status, _ := c.reply(c.send(c.requestSeq(20, netFnChassis, 0x01)))
	c.call(netFnChassis, 0x02, chassisPowerUp)
	_, again2, _ := c.reply(c.send(c.requestSeq(20, netFnChassis, 0x01)))
	if status[0]&1 != 0 || again2[0]&1 != 1 {
		t.Errorf("chassis status %x then %x, want off then on", status, again2)
	}
}

func TestSessionTimeout(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	if err := c.login(); err != nil {
		t.Fatal(err)
	}
	u.clock.Advance(59 * time.Second)
	if _, _, err := c.call(netFnApp, 0x01); err != nil {
		t.Fatalf("after 59s idle: %v", err)
	}
	u.clock.Advance(60 * time.Second)
	if _, _, err := c.call(netFnApp, 0x01); !errors.Is(err, errNoAnswer) {
		t.Fatalf("after 60s idle: %v, want no answer", err)
	}
	if len(u.sessions) != 0 {
		t.Error("the timed-out session is still there")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	resp, _ := c.presession(payloadOpenRequest, c.openRequest(0))
	u.clock.Advance(handshakeTimeout)
	r1 := append([]byte{0, 0, 0, 0}, resp[8:12]...)
	r1 = append(r1, make([]byte, 16)...)
	r1 = append(r1, 0x14, 0, 0, byte(len(testUser)))
	r1 = append(r1, testUser...)
	if resp, _ := c.presession(payloadRAKP1, r1); resp == nil || resp[1] != rakpInvalidSessionID {
		t.Errorf("RAKP 2 after the handshake timeout: %x", resp)
	}
}

func TestSessionLimit(t *testing.T) {
	u := newUnserved(t, func(c *Config) { c.MaxSessions = 3 })
	var consoles []*console
	for i := range 3 {
		c := newConsole(u.Server)
		c.consoleID += uint32(i)
		if err := c.login(); err != nil {
			t.Fatal(err)
		}
		consoles = append(consoles, c)
	}
	extra := newConsole(u.Server)
	var re rakpError
	if err := extra.login(); !errors.As(err, &re) || re.status != rakpNoResources {
		t.Fatalf("a fourth session: %v, want status %#x", err, rakpNoResources)
	}
	// Half-open sessions give way to new ones.
	consoles[0].call(netFnApp, 0x3c, le32(consoles[0].bmcID)...)
	for range 5 {
		c := newConsole(u.Server)
		c.presession(payloadOpenRequest, c.openRequest(0))
	}
	if err := extra.login(); err != nil {
		t.Fatalf("after a close, among half-open sessions: %v", err)
	}
	for _, c := range consoles[1:] {
		if _, _, err := c.call(netFnApp, 0x01); err != nil {
			t.Errorf("an established session broke: %v", err)
		}
	}
	// Idle sessions expire and make room.
	u.clock.Advance(time.Minute)
	for i := range 3 {
		c := newConsole(u.Server)
		c.consoleID += uint32(100 + i)
		if err := c.login(); err != nil {
			t.Fatalf("after the others expired: %v", err)
		}
	}
}

func TestCloseOtherSession(t *testing.T) {
	u := newUnserved(t, nil)
	a, b := newConsole(u.Server), newConsole(u.Server)
	b.consoleID++
	if err := a.login(); err != nil {
		t.Fatal(err)
	}
	if err := b.login(); err != nil {
		t.Fatal(err)
	}
	if cc, _, _ := a.call(netFnApp, 0x3c, le32(b.bmcID)...); cc != ccInsufficientPriv {
		t.Errorf("USER closing another session: %#x", cc)
	}
	a.call(netFnApp, 0x3b, byte(PrivilegeAdministrator))
	if cc, _, _ := a.call(netFnApp, 0x3c, le32(b.bmcID^0xffff)...); cc != ccInvalidSessionID {
		t.Errorf("closing no session: %#x", cc)
	}
	if cc, _, _ := a.call(netFnApp, 0x3c, 0, 0, 0, 0, 1); cc != ccInvalidHandle {
		t.Errorf("closing by handle: %#x", cc)
	}
	if cc, _, _ := a.call(netFnApp, 0x3c, le32(b.bmcID)...); cc != ccOK {
		t.Errorf("ADMINISTRATOR closing another session: %#x", cc)
	}
	if _, _, err := b.call(netFnApp, 0x01); !errors.Is(err, errNoAnswer) {
		t.Errorf("the closed session answered: %v", err)
	}
}

func TestCommands(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	if err := c.login(); err != nil {
		t.Fatal(err)
	}
	c.call(netFnApp, 0x3b, byte(PrivilegeAdministrator))
	guid := u.guid[:]
	for _, tc := range []struct {
		name      string
		netFn     byte
		cmd       byte
		data      []byte
		cc        byte
		want      []byte
		machineOn *bool
	}{
		{name: "unknown command", netFn: netFnApp, cmd: 0x99, cc: ccInvalidCommand},
		{name: "unknown netfn", netFn: 0x0a, cmd: 0x10, cc: ccInvalidCommand},
		{name: "self test", netFn: netFnApp, cmd: 0x04, want: []byte{0x55, 0}},
		{name: "system GUID", netFn: netFnApp, cmd: 0x37, want: guid},
		{name: "device ID, extra data", netFn: netFnApp, cmd: 0x01, data: []byte{1}, cc: ccBadLength},
		{name: "ACPI state off", netFn: netFnApp, cmd: 0x07, want: []byte{0x05, 0}},
		{name: "status off", netFn: netFnChassis, cmd: 0x01, want: []byte{0, 0, 0, 0}},
		{name: "cycle while off", netFn: netFnChassis, cmd: 0x02, data: []byte{chassisPowerCycle}, cc: ccNotInPresentState, machineOn: ptr(false)},
		{name: "power up", netFn: netFnChassis, cmd: 0x02, data: []byte{chassisPowerUp}, machineOn: ptr(true)},
		{name: "status on", netFn: netFnChassis, cmd: 0x01, want: []byte{1, 0x10, 0, 0}},
		{name: "ACPI state on", netFn: netFnApp, cmd: 0x07, want: []byte{0x00, 0}},
		{name: "diag interrupt", netFn: netFnChassis, cmd: 0x02, data: []byte{chassisDiagPulse}, cc: ccSubFunctionUnavail},
		{name: "bad control", netFn: netFnChassis, cmd: 0x02, data: []byte{0x09}, cc: ccInvalidField},
		{name: "control without data", netFn: netFnChassis, cmd: 0x02, cc: ccBadLength},
		{name: "soft off", netFn: netFnChassis, cmd: 0x02, data: []byte{chassisSoftOffACPI}, machineOn: ptr(false)},
		{name: "ciphers by suite", netFn: netFnApp, cmd: 0x54, data: []byte{0x0e, 0, 0x80},
			want: []byte{1, 0xc0, 3, 1, 0x41, 0x81, 0xc0, 17, 3, 0x44, 0x81}},
		{name: "ciphers, next block", netFn: netFnApp, cmd: 0x54, data: []byte{0x0e, 0, 0x81}, want: []byte{1}},
		{name: "algorithms", netFn: netFnApp, cmd: 0x54, data: []byte{0x01, 0, 0x00}, want: []byte{1, 1, 0x41, 0x81, 3, 0x44}},
		{name: "ciphers for SOL", netFn: netFnApp, cmd: 0x54, data: []byte{0x0e, 1, 0x80}, want: []byte{1}},
		{name: "ciphers, bad channel", netFn: netFnApp, cmd: 0x54, data: []byte{0x05, 0, 0x80}, cc: ccInvalidField},
		{name: "bad privilege level", netFn: netFnApp, cmd: 0x3b, data: []byte{1}, cc: ccInvalidField},
	} {
		cc, data, err := c.call(tc.netFn, tc.cmd, tc.data...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cc != tc.cc {
			t.Errorf("%s: completion code %#x, want %#x", tc.name, cc, tc.cc)
		}
		if diff := cmp.Diff(tc.want, data, cmpEmpty); diff != "" {
			t.Errorf("%s: data (-want +got):\n%s", tc.name, diff)
		}
		if tc.machineOn != nil {
			if on, _ := u.sim.PoweredOn(t.Context()); on != *tc.machineOn {
				t.Errorf("%s: machine on = %v", tc.name, on)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSessionlessCommands(t *testing.T) {
	u := newUnserved(t, nil)
	c := newConsole(u.Server)
	for _, tc := range []struct {
		cmd  byte
		data []byte
		cc   byte
	}{
		{cmd: 0x54, data: []byte{0x0e, 0, 0x80}, cc: ccOK},
		{cmd: 0x38, data: []byte{0x8e, 4}, cc: ccOK},
		{cmd: 0x01, cc: ccInsufficientPriv},
		{cmd: 0x3b, data: []byte{4}, cc: ccInsufficientPriv},
	} {
		msg := []byte{bmcAddr, netFnApp << 2}
		msg = append(msg, checksum(msg), 0x81, 0, tc.cmd)
		msg = append(msg, tc.data...)
		msg = append(msg, checksum(msg[3:]))
		out := c.send(plusPacket(payloadIPMI, 0, 0, msg, nil))
		h, err := parsePlus(out)
		if err != nil {
			t.Fatalf("command %#x: %v", tc.cmd, err)
		}
		resp := out[plusPayloadOffset:h.payloadEnd]
		if resp[6] != tc.cc {
			t.Errorf("command %#x: completion code %#x, want %#x", tc.cmd, resp[6], tc.cc)
		}
	}
}

func TestBootOptions(t *testing.T) {
	u := newUnserved(t, nil)
	a, b := newConsole(u.Server), newConsole(u.Server)
	b.consoleID++
	for _, c := range []*console{a, b} {
		if err := c.login(); err != nil {
			t.Fatal(err)
		}
		c.call(netFnApp, 0x3b, byte(PrivilegeOperator))
	}
	set := func(c *console, data ...byte) byte {
		t.Helper()
		cc, _, err := c.call(netFnChassis, 0x08, data...)
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	get := func(param byte) []byte {
		t.Helper()
		cc, data, err := a.call(netFnChassis, 0x09, param, 0, 0)
		if err != nil || cc != ccOK {
			t.Fatalf("get %d: %#x %v", param, cc, err)
		}
		return data
	}
	// The set-in-progress lock.
	if cc := set(a, 0, setInProgress); cc != ccOK {
		t.Fatalf("take the lock: %#x", cc)
	}
	if cc := set(b, 0, setInProgress); cc != ccSetInProgress {
		t.Errorf("second lock: %#x, want %#x", cc, ccSetInProgress)
	}
	if got := get(0); !bytes.Equal(got, []byte{1, 0, 1}) {
		t.Errorf("param 0 = %x", got)
	}
	a.call(netFnApp, 0x3c, le32(a.bmcID)...) // the lock ends with its session
	if cc := set(b, 0, setInProgress); cc != ccOK {
		t.Errorf("lock after its owner left: %#x", cc)
	}
	set(b, 0, commitWrite)
	set(b, 0, setComplete)
	a = b

	for _, tc := range []struct {
		name string
		set  []byte
		cc   byte
		boot bmc.BootConfig
		get  []byte // parameter 5 data afterwards
	}{
		{name: "pxe once", set: []byte{5, 0x80, 0x04, 0, 0, 0}, boot: bmc.BootConfig{Device: bmc.BootPXE},
			get: []byte{0x80, 0x04, 0, 0, 0}},
		{name: "disk persistent", set: []byte{5, 0xc0, 0x08, 0, 0, 0}, boot: bmc.BootConfig{Device: bmc.BootDisk, Persistent: true},
			get: []byte{0xc0, 0x08, 0, 0, 0}},
		{name: "pxe efi, cmos clear kept", set: []byte{5, 0xa0, 0x84, 0x01, 0x02, 0x03}, boot: bmc.BootConfig{Device: bmc.BootPXE, UEFI: true},
			get: []byte{0xa0, 0x84, 0x01, 0x02, 0x03}},
		{name: "cdrom", set: []byte{5, 0x80, 0x14, 0, 0, 0}, boot: bmc.BootConfig{Device: bmc.BootCDROM}, get: []byte{0x80, 0x14, 0, 0, 0}},
		{name: "bios", set: []byte{5, 0x80, 0x18, 0, 0, 0}, boot: bmc.BootConfig{Device: bmc.BootBIOS}, get: []byte{0x80, 0x18, 0, 0, 0}},
		{name: "safe mode disk", set: []byte{5, 0x80, 0x0c, 0, 0, 0}, boot: bmc.BootConfig{Device: bmc.BootDisk}, get: []byte{0x80, 0x08, 0, 0, 0}},
		{name: "floppy refused", set: []byte{5, 0x80, 0x3c, 0, 0, 0}, cc: ccInvalidField, boot: bmc.BootConfig{Device: bmc.BootDisk}, get: []byte{0x80, 0x08, 0, 0, 0}},
		{name: "not valid: no override", set: []byte{5, 0x00, 0x04, 0, 0, 0}, boot: bmc.BootConfig{}, get: []byte{0x00, 0x00, 0, 0, 0}},
		{name: "short", set: []byte{5, 0x80, 0x04}, cc: ccBadLength, boot: bmc.BootConfig{}, get: []byte{0, 0, 0, 0, 0}},
		{name: "mailbox unsupported", set: []byte{7, 0, 0, 0}, cc: ccParamUnsupported, boot: bmc.BootConfig{}, get: []byte{0, 0, 0, 0, 0}},
	} {
		if cc := set(a, tc.set...); cc != tc.cc {
			t.Errorf("%s: completion code %#x, want %#x", tc.name, cc, tc.cc)
		}
		if got := u.sim.Boot(); got != tc.boot {
			t.Errorf("%s: machine boot %+v, want %+v", tc.name, got, tc.boot)
		}
		if got := get(5); !bytes.Equal(got, append([]byte{1, 5}, tc.get...)) {
			t.Errorf("%s: param 5 = %x, want 0105%x", tc.name, got, tc.get)
		}
	}

	// A one-time override is consumed by the boot, and Get shows it.
	set(a, 5, 0x80, 0x04, 0, 0, 0)
	a.call(netFnChassis, 0x02, chassisPowerUp)
	if got := get(5); got[2]&bootFlagValid != 0 {
		t.Errorf("after the boot, param 5 = %x: still valid", got)
	}

	set(a, 3, 0x1f)
	set(a, 4, 0x01, 0x01)
	set(a, 4, 0x02, 0x00)
	if got := get(3); !bytes.Equal(got, []byte{1, 3, 0x1f}) {
		t.Errorf("param 3 = %x", got)
	}
	if got := get(4); !bytes.Equal(got, []byte{1, 4, 0, 0x01}) {
		t.Errorf("param 4 = %x", got)
	}
	if cc, _, _ := a.call(netFnChassis, 0x09, 7, 0, 0); cc != ccParamUnsupported {
		t.Errorf("get param 7: %#x", cc)
	}
	if cc, _, _ := a.call(netFnChassis, 0x09, 5); cc != ccBadLength {
		t.Errorf("get, short: %#x", cc)
	}
}

// failingMachine is a Sim whose power calls fail as told.
type failingMachine struct {
	*bmc.Sim
	err error
}

func (m *failingMachine) PoweredOn(context.Context) (bool, error)       { return false, m.err }
func (m *failingMachine) PowerOn(context.Context) error                 { return m.err }
func (m *failingMachine) PowerOff(context.Context, bool) error          { return m.err }
func (m *failingMachine) Reset(context.Context, bool) error             { return m.err }
func (m *failingMachine) SetBoot(context.Context, bmc.BootConfig) error { return m.err }

func TestMachineErrors(t *testing.T) {
	for _, tc := range []struct {
		err error
		cc  byte
	}{
		{bmc.ErrUnsupported, ccSubFunctionUnavail},
		{context.DeadlineExceeded, ccTimeout},
		{errors.New("qmp: connection refused"), ccUnspecified},
	} {
		u := newUnserved(t, func(c *Config) { c.Machine = &failingMachine{Sim: bmc.NewSim(testHardware()), err: tc.err} })
		c := newConsole(u.Server)
		if err := c.login(); err != nil {
			t.Fatal(err)
		}
		c.call(netFnApp, 0x3b, byte(PrivilegeAdministrator))
		for _, req := range [][]byte{
			{netFnChassis, 0x01},
			{netFnApp, 0x07},
			{netFnChassis, 0x02, chassisPowerUp},
			{netFnChassis, 0x02, chassisPowerDown},
			{netFnChassis, 0x02, chassisPowerCycle},
			{netFnChassis, 0x02, chassisHardReset},
			{netFnChassis, 0x02, chassisSoftOffACPI},
			{netFnChassis, 0x08, 5, 0x80, 0x04, 0, 0, 0},
		} {
			if cc, _, err := c.call(req[0], req[1], req[2:]...); err != nil || cc != tc.cc {
				t.Errorf("%v: request %x: %#x %v, want %#x", tc.err, req, cc, err, tc.cc)
			}
		}
	}
}

func TestGUID(t *testing.T) {
	guid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want func(*Server) bool
	}{
		{name: "configured", edit: func(c *Config) { c.GUID = guid }, want: func(s *Server) bool { return s.guid == guid }},
		{name: "from the machine's UUID", want: func(s *Server) bool { return s.guid[15] == 0x8d && s.guid[0] == 0x6b }},
		{name: "random", edit: func(c *Config) { c.Machine = bmc.NewSim(bmc.Hardware{}) },
			want: func(s *Server) bool { return s.guid != [16]byte{} }},
	} {
		u := newUnserved(t, tc.edit)
		if !tc.want(u.Server) {
			t.Errorf("%s: GUID %x", tc.name, u.guid)
		}
		c := newConsole(u.Server)
		if err := c.login(); err != nil {
			t.Fatal(err)
		}
		if c.rakp.guid != u.guid {
			t.Errorf("%s: RAKP 2 GUID %x, want %x", tc.name, c.rakp.guid, u.guid)
		}
		if _, data, _ := c.call(netFnApp, 0x37); !bytes.Equal(data, u.guid[:]) {
			t.Errorf("%s: Get System GUID %x", tc.name, data)
		}
	}
}
