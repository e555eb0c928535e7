package ipmi

import (
	"encoding/binary"
	"net/netip"
)

// RMCP+ and RAKP message status codes (IPMI v2.0 table 13-15).
const (
	rakpOK                   = 0x00
	rakpNoResources          = 0x01
	rakpInvalidSessionID     = 0x02
	rakpInvalidAuthAlg       = 0x04
	rakpInvalidIntegrityAlg  = 0x05
	rakpInvalidRole          = 0x09
	rakpUnauthorizedRole     = 0x0a
	rakpInvalidNameLength    = 0x0c
	rakpUnauthorizedName     = 0x0d
	rakpInvalidIntegrityCode = 0x0f
	rakpInvalidConfAlg       = 0x10
	rakpNoCipherSuite        = 0x11
	rakpIllegalParameter     = 0x12
)

// Open Session Request layout (IPMI v2.0 table 13-9): tag, requested
// maximum privilege, two reserved bytes, the remote console's session ID,
// then three 8-byte algorithm payloads (type, two reserved bytes, length,
// algorithm, three reserved bytes).
const openRequestLen = 32

// openSession answers an Open Session Request: it picks the cipher suite
// and creates the session, which then waits for RAKP 1.
func (s *Server) openSession(p []byte, from netip.AddrPort) []byte {
	if len(p) < 8 {
		return s.drop(from, errMalformed)
	}
	tag, consoleID := p[0], binary.LittleEndian.Uint32(p[4:8])
	refuse := func(status byte) []byte {
		s.log.Info("ipmi open session refused", "remote", from, "status", status)
		out := []byte{tag, status, 0, 0}
		return plusPacket(payloadOpenResponse, 0, 0, binary.LittleEndian.AppendUint32(out, consoleID), nil)
	}
	if len(p) != openRequestLen {
		return refuse(rakpIllegalParameter)
	}
	if consoleID == 0 {
		return refuse(rakpInvalidSessionID)
	}
	priv := Privilege(p[1] & 0x0f)
	switch {
	case p[1]&0xf0 != 0 || priv > PrivilegeAdministrator:
		// The LAN channel's limit is Administrator; OEM is not offered.
		return refuse(rakpInvalidRole)
	case priv == 0:
		priv = PrivilegeAdministrator // "the highest level available"
	}
	var algs [3]byte
	var wild [3]bool
	for i := range 3 {
		rec := p[8+8*i : 16+8*i]
		if rec[0] != byte(i) {
			return refuse(rakpIllegalParameter)
		}
		switch rec[3] {
		case 0:
			wild[i] = true // a null payload: the BMC chooses
		case 8:
			algs[i] = rec[4] & 0x3f
		default:
			return refuse(rakpIllegalParameter)
		}
	}
	su, status := pickSuite(algs, wild)
	if status != rakpOK {
		return refuse(status)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	if len(s.sessions) >= s.cfg.MaxSessions && !s.evictHandshake() {
		return refuse(rakpNoResources)
	}
	sess := &session{
		id:        s.newSessionID(),
		consoleID: consoleID,
		addr:      from,
		state:     stateOpened,
		suite:     su,
		openPriv:  priv,
		lastSeen:  now,
	}
	s.sessions[sess.id] = sess

	out := []byte{tag, rakpOK, byte(priv), 0}
	out = binary.LittleEndian.AppendUint32(out, consoleID)
	out = binary.LittleEndian.AppendUint32(out, sess.id)
	out = append(out, 0, 0, 0, 8, su.auth, 0, 0, 0)
	out = append(out, 1, 0, 0, 8, su.integrity, 0, 0, 0)
	out = append(out, 2, 0, 0, 8, su.conf, 0, 0, 0)
	return plusPacket(payloadOpenResponse, 0, 0, out, nil)
}

// pickSuite returns the most preferred suite that has the proposed
// algorithms, or the status that refuses them.
func pickSuite(algs [3]byte, wild [3]bool) (suite, byte) {
	known := [3]bool{wild[0], wild[1], wild[2]}
	for _, su := range suites {
		have := [3]byte{su.auth, su.integrity, su.conf}
		match := true
		for i := range 3 {
			if wild[i] || have[i] == algs[i] {
				known[i] = true
			} else {
				match = false
			}
		}
		if match {
			return su, rakpOK
		}
	}
	switch {
	case !known[0]:
		return suite{}, rakpInvalidAuthAlg
	case !known[1]:
		return suite{}, rakpInvalidIntegrityAlg
	case !known[2]:
		return suite{}, rakpInvalidConfAlg
	}
	return suite{}, rakpNoCipherSuite
}

// evictHandshake makes room by forgetting the oldest session still in its
// handshake, so that half-open sessions can not lock out a remote console
// that authenticates. It reports whether it made room. The caller holds
// s.mu.
func (s *Server) evictHandshake() bool {
	var oldest *session
	for _, sess := range s.sessions {
		if sess.state != stateActive && (oldest == nil || sess.lastSeen.Before(oldest.lastSeen)) {
			oldest = sess
		}
	}
	if oldest == nil {
		return false
	}
	s.endSession(oldest, "evicted for a new session")
	return true
}

// newSessionID returns an unused, non-zero, random session ID. The caller
// holds s.mu.
func (s *Server) newSessionID() uint32 {
	var b [4]byte
	for {
		s.fill(b[:])
		id := binary.LittleEndian.Uint32(b[:])
		if id != 0 && s.sessions[id] == nil {
			return id
		}
	}
}

// RAKP 1 layout (IPMI v2.0 table 13-11): tag, three reserved bytes, the
// BMC's session ID, Rm (16), requested role, two reserved bytes, user name
// length, user name (up to 16 bytes).
const rakp1MinLen = 28

// rakp1 checks the user and the requested role, and answers RAKP 2 with
// the BMC's random number and its key exchange authentication code.
func (s *Server) rakp1(p []byte, from netip.AddrPort) []byte {
	if len(p) < rakp1MinLen {
		return s.drop(from, errMalformed)
	}
	tag, id := p[0], binary.LittleEndian.Uint32(p[4:8])
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	answer := func(status byte, consoleID uint32, rest []byte) []byte {
		out := []byte{tag, status, 0, 0}
		out = binary.LittleEndian.AppendUint32(out, consoleID)
		return plusPacket(payloadRAKP2, 0, 0, append(out, rest...), nil)
	}
	if sess == nil || sess.state == stateActive {
		return answer(rakpInvalidSessionID, 0, nil)
	}
	if sess.expired(s.now(), s.cfg.SessionTimeout, handshakeTimeout) {
		s.endSession(sess, "timed out")
		return answer(rakpInvalidSessionID, 0, nil)
	}
	refuse := func(status byte, why string) []byte {
		s.endSession(sess, why)
		return answer(status, sess.consoleID, nil)
	}
	role := p[24]
	n := int(p[27])
	if n > 16 || len(p) < rakp1MinLen+n || len(p) > rakp1MinLen+16 {
		return refuse(rakpInvalidNameLength, "bad name length")
	}
	user := string(p[28 : 28+n])
	priv := Privilege(role & 0x0f)
	if role&0xe0 != 0 || priv < PrivilegeCallback || priv > PrivilegeOEM {
		return refuse(rakpInvalidRole, "invalid role")
	}
	if user != s.cfg.Username {
		s.log.Warn("ipmi login refused: unknown user", "remote", from, "user", user)
		return refuse(rakpUnauthorizedName, "unknown user")
	}
	if priv > s.cfg.Privilege || priv > sess.openPriv {
		s.log.Warn("ipmi login refused: privilege above the user's", "remote", from, "user", user, "privilege", priv)
		return refuse(rakpUnauthorizedRole, "privilege above the user's")
	}

	sess.rakp = rakpParams{consoleID: sess.consoleID, bmcID: sess.id, guid: s.guid, role: role, user: []byte(user)}
	copy(sess.rakp.rm[:], p[8:24])
	s.fill(sess.rakp.rc[:])
	sess.maxPriv = priv
	sess.state = stateRAKP2
	sess.lastSeen = s.now()
	sess.addr = from

	rest := make([]byte, 0, 64)
	rest = append(rest, sess.rakp.rc[:]...)
	rest = append(rest, sess.rakp.guid[:]...)
	rest = append(rest, rakp2Code(sess.suite, s.kuid, sess.rakp)...)
	return answer(rakpOK, sess.consoleID, rest)
}

// rakp3 checks the remote console's key exchange authentication code,
// which proves it knows the password; if it holds, the session becomes
// active and RAKP 4 carries the BMC's integrity check value.
func (s *Server) rakp3(p []byte, from netip.AddrPort) []byte {
	if len(p) < 8 {
		return s.drop(from, errMalformed)
	}
	tag, status, id := p[0], p[1], binary.LittleEndian.Uint32(p[4:8])
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	answer := func(status byte, consoleID uint32, icv []byte) []byte {
		out := []byte{tag, status, 0, 0}
		out = binary.LittleEndian.AppendUint32(out, consoleID)
		return plusPacket(payloadRAKP4, 0, 0, append(out, icv...), nil)
	}
	if sess == nil || sess.state != stateRAKP2 {
		return answer(rakpInvalidSessionID, 0, nil)
	}
	if sess.expired(s.now(), s.cfg.SessionTimeout, handshakeTimeout) {
		s.endSession(sess, "timed out")
		return answer(rakpInvalidSessionID, 0, nil)
	}
	if status != rakpOK {
		// The remote console refused RAKP 2 (a wrong password on its
		// side, typically) and tells so; nothing to answer.
		s.log.Warn("ipmi login abandoned by the remote console", "remote", from, "user", string(sess.rakp.user), "status", status)
		s.endSession(sess, "refused by the remote console")
		return nil
	}
	if !equal(p[8:], rakp3Code(sess.suite, s.kuid, sess.rakp)) {
		s.log.Warn("ipmi login refused: wrong password", "remote", from, "user", string(sess.rakp.user))
		s.endSession(sess, "wrong password")
		return answer(rakpInvalidIntegrityCode, sess.consoleID, nil)
	}
	sess.keys = deriveKeys(sess.suite, s.kuid, sess.rakp)
	sess.state = stateActive
	sess.priv = min(PrivilegeUser, sess.maxPriv)
	sess.lastSeen = s.now()
	sess.addr = from
	s.log.Info("ipmi session opened", "session", sess.id, "remote", from, "user", string(sess.rakp.user),
		"cipher_suite", sess.suite.id, "max_privilege", sess.maxPriv)
	return answer(rakpOK, sess.consoleID, rakp4ICV(sess.suite, sess.keys.sik, sess.rakp))
}
