package ipmi

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false,
	"capture real ipmitool conversations into testdata/fuzz/FuzzPacket")

// A fuzz input is a conversation: packets, each after a two-byte
// big-endian header holding its length. A header with its top bit set
// marks a sealed frame: the bytes are an IPMI request message that the
// harness encrypts and signs for the session the conversation opened, so
// that the fuzzer reaches the command handlers with data of its own, past
// the integrity check it could never forge.
const sealedFrame = 0x8000

type frame struct {
	sealed bool
	b      []byte
}

func encodeConversation(frames []frame) []byte {
	var out []byte
	for _, f := range frames {
		h := uint16(len(f.b))
		if f.sealed {
			h |= sealedFrame
		}
		out = binary.BigEndian.AppendUint16(out, h)
		out = append(out, f.b...)
	}
	return out
}

func decodeConversation(b []byte) []frame {
	var frames []frame
	for len(b) >= 2 {
		h := binary.BigEndian.Uint16(b)
		n := min(int(h&^sealedFrame), len(b)-2)
		frames = append(frames, frame{sealed: h&sealedFrame != 0, b: b[2 : 2+n]})
		b = b[2+n:]
	}
	return frames
}

// replayStats tells how deep a conversation went.
type replayStats struct {
	answers       int
	sessionAnswer int // answers inside a session
	sealedAnswers int
}

// replay plays a conversation against a fresh BMC whose random source is
// the one the conversation was captured with, so that captured logins
// succeed again. It fails the test on a malformed answer or a password in
// the log; a panic fails it by itself.
func replay(t testing.TB, conv []byte) replayStats {
	u := newUnserved(t, nil)
	from := netip.MustParseAddrPort("192.0.2.1:623")
	ctx := context.Background()
	var st replayStats
	for _, f := range decodeConversation(conv) {
		pkt := f.b
		if f.sealed {
			pkt = u.sealForActiveSession(f.b)
		}
		out := u.handle(ctx, pkt, from)
		if out == nil {
			continue
		}
		st.answers++
		if len(out) < 4 || out[0] != rmcpVersion1 || out[2] != rmcpNoAck {
			t.Fatalf("answer is not RMCP: %x", out)
		}
		if out[3] == rmcpClassIPMI && len(out) > 5 && out[4] == authTypeRMCPPlus && out[5]&payloadAuthenticated != 0 {
			st.sessionAnswer++
			if f.sealed {
				st.sealedAnswers++
			}
		}
	}
	if strings.Contains(u.log.String(), testPassword) {
		t.Fatal("the password is in the log")
	}
	return st
}

// sealForActiveSession wraps an IPMI message as the remote console of the
// active session with the lowest ID would; with no active session, the
// bytes go out as they are.
func (u *unserved) sealForActiveSession(msg []byte) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	var sess *session
	for _, s := range u.sessions {
		if s.state == stateActive && (sess == nil || s.id < sess.id) {
			sess = s
		}
	}
	if sess == nil {
		return msg
	}
	seq := sess.window.highest + 1
	iv := bytes.Repeat([]byte{0x5a}, aesBlock)
	return plusPacket(payloadIPMI|payloadEncrypted|payloadAuthenticated, sess.id, seq, sealAES(sess.keys.k2, iv, msg),
		func(covered []byte) []byte { return authcode(sess.suite, sess.keys.k1, covered) })
}

// FuzzPacket feeds conversations to the whole request path: RMCP, ASF,
// IPMI v1.5 and RMCP+ parsing, the RAKP handshake, integrity, sequence
// numbers, decryption, and the commands. The seed corpus under
// testdata/fuzz/FuzzPacket holds real ipmitool conversations (see
// TestFuzzCorpus); go test runs every seed as a regression test.
func FuzzPacket(f *testing.F) {
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}
	f.Add(encodeConversation([]frame{{b: ping}}))
	authCap := []byte{bmcAddr, netFnApp << 2, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04}
	authCap = append(authCap, checksum(authCap[3:]))
	f.Add(encodeConversation([]frame{{b: v15Packet(authCap)}}))
	f.Fuzz(func(t *testing.T, conv []byte) {
		replay(t, conv)
	})
}

// The conversations the corpus holds: real ipmitool runs. Those named
// "login" open a session; "refused" ones are turned away.
var corpusRuns = []struct {
	name     string
	user     string
	password string
	args     []string
}{
	{"login-power-status-suite3", testUser, testPassword, []string{"-C", "3", "power", "status"}},
	{"login-power-on-suite17", testUser, testPassword, []string{"-C", "17", "power", "on"}},
	{"login-power-reset-auto", testUser, testPassword, []string{"power", "reset"}},
	{"login-bootdev-efi-persistent", testUser, testPassword, []string{"chassis", "bootdev", "pxe", "options=efiboot,persistent"}},
	{"login-bootparam-get-5", testUser, testPassword, []string{"-C", "3", "chassis", "bootparam", "get", "5"}},
	{"login-mc-info", testUser, testPassword, []string{"mc", "info"}},
	{"login-getciphers", testUser, testPassword, []string{"channel", "getciphers", "ipmi"}},
	{"refused-password", testUser, "wrong", []string{"power", "on"}},
	{"refused-user", "root", testPassword, []string{"power", "on"}},
	{"refused-suite0", testUser, testPassword, []string{"-C", "0", "power", "on"}},
}

// sealedRequests are IPMI requests appended, sealed, to a captured login
// (its Close Session removed) for the "sealed" seed.
var sealedRequests = [][]byte{
	{netFnApp, 0x3b, byte(PrivilegeAdministrator)},
	{netFnChassis, 0x02, chassisPowerUp},
	{netFnChassis, 0x08, 0, setInProgress},
	{netFnChassis, 0x08, 5, 0xe0, 0x04, 0, 0, 0},
	{netFnChassis, 0x09, 5, 0, 0},
	{netFnChassis, 0x02, chassisPowerCycle},
	{netFnChassis, 0x01},
	{netFnApp, 0x54, 0x0e, 0, 0x80},
	{netFnApp, 0x3c, 0, 0, 0, 0},
}

func sealedMessage(rqSeq byte, req []byte) []byte {
	msg := []byte{bmcAddr, req[0] << 2}
	msg = append(msg, checksum(msg), 0x81, rqSeq<<2, req[1])
	msg = append(msg, req[2:]...)
	return append(msg, checksum(msg[3:]))
}

const corpusDir = "testdata/fuzz/FuzzPacket"

// TestFuzzCorpus checks that the seed corpus is alive: every captured
// login still logs in and gets answers inside its session when replayed,
// so that the fuzzer starts deep. With -update-corpus it first captures
// the conversations again from the real ipmitool.
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		captureCorpus(t)
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFuzzCorpus -update-corpus)", err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		seen[name] = true
		conv := readCorpusFile(t, filepath.Join(corpusDir, name))
		st := replay(t, conv)
		switch {
		case strings.HasPrefix(name, "login-") && st.sessionAnswer == 0:
			t.Errorf("%s: no answer inside a session on replay; recapture with -update-corpus", name)
		case strings.HasPrefix(name, "sealed-") && st.sealedAnswers != len(sealedRequests):
			t.Errorf("%s: %d of %d sealed requests answered", name, st.sealedAnswers, len(sealedRequests))
		case st.answers == 0:
			t.Errorf("%s: no answer at all", name)
		}
	}
	for _, r := range corpusRuns {
		if !seen[r.name] {
			t.Errorf("corpus lacks %s; run go test -run TestFuzzCorpus -update-corpus", r.name)
		}
	}
}

func captureCorpus(t *testing.T) {
	ipmitoolPath(t)
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var sealedBase [][]byte
	for _, r := range corpusRuns {
		var mu sync.Mutex
		var pkts [][]byte
		tb := newBMC(t, nil, func(s *Server) {
			s.rand = deterministic()
			s.tap = func(in, _ []byte) {
				mu.Lock()
				defer mu.Unlock()
				pkts = append(pkts, slices.Clone(in))
			}
		})
		out, err := tb.ipmitool(t, r.user, r.password, r.args...)
		if strings.HasPrefix(r.name, "login-") && err != nil {
			t.Fatalf("%s: %v\n%s", r.name, err, out)
		}
		mu.Lock()
		frames := make([]frame, len(pkts))
		for i, p := range pkts {
			frames[i] = frame{b: p}
		}
		if r.name == "login-power-status-suite3" {
			sealedBase = pkts[:len(pkts)-1] // without its Close Session
		}
		mu.Unlock()
		writeCorpusFile(t, r.name, encodeConversation(frames))
	}
	var frames []frame
	for _, p := range sealedBase {
		frames = append(frames, frame{b: p})
	}
	for i, req := range sealedRequests {
		frames = append(frames, frame{sealed: true, b: sealedMessage(byte(10+i), req)})
	}
	writeCorpusFile(t, "sealed-commands", encodeConversation(frames))
}

func writeCorpusFile(t *testing.T, name string, conv []byte) {
	t.Helper()
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(conv)))
	if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a go test fuzz v1 []byte file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
