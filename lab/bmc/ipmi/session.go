package ipmi

import (
	"fmt"
	"net/netip"
	"time"
)

// Privilege is an IPMI privilege level (IPMI v2.0 section 6.8).
type Privilege byte

// Privilege levels.
const (
	PrivilegeCallback      Privilege = 1
	PrivilegeUser          Privilege = 2
	PrivilegeOperator      Privilege = 3
	PrivilegeAdministrator Privilege = 4
	PrivilegeOEM           Privilege = 5
)

// privNone is what a session-less request has.
const privNone Privilege = 0

// String returns the level's name as ipmitool spells it.
func (p Privilege) String() string {
	switch p {
	case privNone:
		return "none"
	case PrivilegeCallback:
		return "CALLBACK"
	case PrivilegeUser:
		return "USER"
	case PrivilegeOperator:
		return "OPERATOR"
	case PrivilegeAdministrator:
		return "ADMINISTRATOR"
	case PrivilegeOEM:
		return "OEM"
	}
	return fmt.Sprintf("Privilege(%d)", byte(p))
}

type sessionState int

const (
	// stateOpened: the Open Session Response went out; RAKP 1 is due.
	stateOpened sessionState = iota
	// stateRAKP2: RAKP 2 went out; RAKP 3 is due.
	stateRAKP2
	// stateActive: RAKP 4 went out; the session carries IPMI messages.
	stateActive
)

// seqWindow is the sliding window over the remote console's session
// sequence numbers (IPMI v2.0 section 6.12.13): a packet is accepted if its
// number is at most seqAhead past the highest accepted one, or at most
// seqBehind before it and not seen yet. Zero is never valid. The first
// packet of a session sets the window wherever it falls, since the remote
// console's numbering starts wherever its pre-session packets left it.
type seqWindow struct {
	started bool
	highest uint32
	// seen has bit i set if highest-i was accepted.
	seen uint32
}

const (
	seqAhead  = 16
	seqBehind = 16
)

// accept records seq and reports whether it is acceptable.
func (w *seqWindow) accept(seq uint32) bool {
	if seq == 0 {
		return false
	}
	if !w.started {
		w.started, w.highest, w.seen = true, seq, 1
		return true
	}
	d := int32(seq - w.highest)
	switch {
	case d > 0 && d <= seqAhead:
		w.seen = w.seen<<uint(d) | 1
		w.highest = seq
		return true
	case d <= 0 && d > -seqBehind:
		bit := uint32(1) << uint(-d)
		if w.seen&bit != 0 {
			return false // a replay
		}
		w.seen |= bit
		return true
	}
	return false
}

// session is an RMCP+ session, from its Open Session Request to its end.
// The Server's mutex guards every field.
type session struct {
	id        uint32 // the BMC's session ID, SIDc
	consoleID uint32 // the remote console's session ID, SIDm
	addr      netip.AddrPort
	state     sessionState
	suite     suite
	// openPriv is the highest privilege the Open Session Request allowed.
	openPriv Privilege
	rakp     rakpParams
	keys     sessionKeys
	// maxPriv is the session's privilege limit, priv its current level.
	maxPriv  Privilege
	priv     Privilege
	lastSeen time.Time
	window   seqWindow
	outSeq   uint32

	// inflight is the request being carried out, so that a retransmission
	// of it is not carried out twice; done is the last state-changing
	// request carried out, with its response, for retransmissions that
	// arrive after it finished.
	inflight *requestKey
	done     *doneRequest
}

// requestKey identifies a request among a session's retransmissions: the
// remote console resends a request with the same rqSeq and data.
type requestKey struct {
	netFn, cmd, rqSeq byte
	data              string
}

type doneRequest struct {
	key  requestKey
	resp []byte // the response message
	at   time.Time
}

func newRequestKey(m message) requestKey {
	return requestKey{netFn: m.netFn, cmd: m.cmd, rqSeq: m.rqSeq, data: string(m.data)}
}

// nextSeq returns the BMC's next outbound session sequence number.
func (s *session) nextSeq() uint32 {
	s.outSeq++
	if s.outSeq == 0 {
		s.outSeq = 1
	}
	return s.outSeq
}

// expired reports whether the session has been idle too long: an active
// one for the session timeout, one still in its handshake for the
// (shorter) handshake timeout.
func (s *session) expired(now time.Time, idle, handshake time.Duration) bool {
	limit := idle
	if s.state != stateActive {
		limit = handshake
	}
	return now.Sub(s.lastSeen) >= limit
}

// seal wraps an IPMI message payload for the session: encrypted, with its
// session trailer.
func (s *session) seal(payload, iv []byte) []byte {
	ptype := byte(payloadIPMI)
	if s.suite.conf == confAESCBC128 {
		payload = sealAES(s.keys.k2, iv, payload)
		ptype |= payloadEncrypted
	}
	ptype |= payloadAuthenticated
	return plusPacket(ptype, s.consoleID, s.nextSeq(), payload, func(covered []byte) []byte {
		return authcode(s.suite, s.keys.k1, covered)
	})
}

// open checks an inbound packet of the active session: its integrity, its
// sequence number, and its encryption. It returns the plain payload.
func (s *session) open(pkt []byte, h plusHeader) ([]byte, error) {
	if !h.authenticated || h.encrypted != (s.suite.conf != confNone) {
		return nil, errMalformed
	}
	covered, code, err := checkTrailer(pkt, h, s.suite.authcodeLen())
	if err != nil {
		return nil, err
	}
	if !equal(code, authcode(s.suite, s.keys.k1, covered)) {
		return nil, errBadAuthcode
	}
	if !s.window.accept(h.seq) {
		return nil, errSequence
	}
	payload := pkt[plusPayloadOffset:h.payloadEnd]
	if h.encrypted {
		return openAES(s.keys.k2, payload)
	}
	return payload, nil
}
