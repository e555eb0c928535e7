package ipmi

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/stratacloud/strata/lab/bmc"
)

// Network functions.
const (
	netFnChassis = 0x00
	netFnApp     = 0x06
)

// Completion codes (IPMI v2.0 table 5-2).
const (
	ccOK                 = 0x00
	ccParamUnsupported   = 0x80 // command-specific: parameter not supported
	ccSetInProgress      = 0x81 // command-specific: set already in progress
	ccPrivilegeTooHigh   = 0x81 // Set Session Privilege Level: above the limit
	ccInvalidSessionID   = 0x87 // Close Session
	ccInvalidHandle      = 0x88 // Close Session
	ccInvalidCommand     = 0xc1
	ccTimeout            = 0xc3
	ccBadLength          = 0xc7
	ccInvalidField       = 0xcc
	ccInsufficientPriv   = 0xd4
	ccNotInPresentState  = 0xd5
	ccSubFunctionUnavail = 0xd6
	ccUnspecified        = 0xff
)

// request is an IPMI request with what the command may need of its session.
type request struct {
	message
	sessionID uint32    // zero outside a session
	priv      Privilege // the session's current privilege level
	maxPriv   Privilege // the session's limit
}

// command is an entry of the command table.
type command struct {
	// priv is the privilege level the command needs; privNone allows it
	// outside a session.
	priv Privilege
	// changes marks a command that changes state: a retransmission of it
	// gets the first response instead of being carried out again.
	changes bool
	run     func(s *Server, ctx context.Context, rq *request) (cc byte, data []byte)
}

type commandKey struct{ netFn, cmd byte }

// commands are the commands the BMC carries out, with the privilege each
// needs (IPMI v2.0 appendix G).
var commands = map[commandKey]command{
	{netFnApp, 0x01}: {priv: PrivilegeUser, run: (*Server).getDeviceID},
	{netFnApp, 0x04}: {priv: PrivilegeUser, run: (*Server).getSelfTest},
	{netFnApp, 0x07}: {priv: PrivilegeUser, run: (*Server).getACPIPowerState},
	{netFnApp, 0x08}: {priv: PrivilegeUser, run: (*Server).getGUID},
	{netFnApp, 0x37}: {priv: PrivilegeUser, run: (*Server).getGUID},
	{netFnApp, 0x38}: {priv: privNone, run: (*Server).getChannelAuthCapabilities},
	{netFnApp, 0x3b}: {priv: PrivilegeCallback, run: (*Server).setSessionPrivilege},
	{netFnApp, 0x3c}: {priv: PrivilegeCallback, changes: true, run: (*Server).closeSession},
	{netFnApp, 0x54}: {priv: privNone, run: (*Server).getChannelCipherSuites},

	{netFnChassis, 0x01}: {priv: PrivilegeUser, run: (*Server).getChassisStatus},
	{netFnChassis, 0x02}: {priv: PrivilegeOperator, changes: true, run: (*Server).chassisControl},
	{netFnChassis, 0x08}: {priv: PrivilegeOperator, changes: true, run: (*Server).setBootOptions},
	{netFnChassis, 0x09}: {priv: PrivilegeOperator, run: (*Server).getBootOptions},
}

// dispatch carries out a request and returns the response message.
func (s *Server) dispatch(ctx context.Context, rq *request) []byte {
	resp, _ := s.run(ctx, rq)
	return resp
}

// run carries out a request; it also reports whether the command changes
// state.
func (s *Server) run(ctx context.Context, rq *request) (resp []byte, changes bool) {
	c, ok := commands[commandKey{rq.netFn, rq.cmd}]
	if !ok {
		return rq.response(ccInvalidCommand, nil), false
	}
	if rq.priv < c.priv {
		return rq.response(ccInsufficientPriv, nil), false
	}
	cc, data := c.run(s, ctx, rq)
	if cc != ccOK {
		data = nil
	}
	return rq.response(cc, data), c.changes
}

// machineCC translates a machine's error into a completion code.
func (s *Server) machineCC(op string, err error) byte {
	switch {
	case err == nil:
		return ccOK
	case errors.Is(err, bmc.ErrUnsupported):
		return ccSubFunctionUnavail
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("ipmi: machine timed out", "op", op)
		return ccTimeout
	}
	s.log.Warn("ipmi: machine failed", "op", op, "err", err)
	return ccUnspecified
}

func (s *Server) getDeviceID(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 0 {
		return ccBadLength, nil
	}
	return ccOK, []byte{
		0x20,       // device ID
		0x01,       // device revision; no device SDRs
		0x01, 0x00, // firmware 1.00, device available
		0x02,             // IPMI version 2.0
		0x80,             // additional device support: chassis device
		0x00, 0x00, 0x00, // manufacturer ID: unspecified
		0x00, 0x00, // product ID
		0x00, 0x00, 0x00, 0x00, // auxiliary firmware revision
	}
}

func (s *Server) getSelfTest(context.Context, *request) (byte, []byte) {
	return ccOK, []byte{0x55, 0x00} // no error
}

func (s *Server) getACPIPowerState(ctx context.Context, _ *request) (byte, []byte) {
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	on, err := s.cfg.Machine.PoweredOn(ctx)
	if cc := s.machineCC("power state", err); cc != ccOK {
		return cc, nil
	}
	system := byte(0x05) // S5/G2, soft off
	if on {
		system = 0x00 // S0/G0, working
	}
	return ccOK, []byte{system, 0x00} // device: D0
}

func (s *Server) getGUID(context.Context, *request) (byte, []byte) {
	return ccOK, append([]byte(nil), s.guid[:]...)
}

// channelOK reports whether a channel number names the LAN channel: its
// number, or Eh, "this channel".
func channelOK(b byte) bool {
	ch := b & 0x0f
	return ch == 0x0e || ch == lanChannel
}

func (s *Server) getChannelAuthCapabilities(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 2 {
		return ccBadLength, nil
	}
	if !channelOK(rq.data[0]) {
		return ccInvalidField, nil
	}
	if p := Privilege(rq.data[1] & 0x0f); p < PrivilegeCallback || p > PrivilegeOEM {
		return ccInvalidField, nil
	}
	v2 := rq.data[0]&0x80 != 0
	var authTypes, ext byte // no IPMI v1.5 authentication type: RMCP+ only
	if v2 {
		authTypes, ext = 0x80, 0x02 // extended data; IPMI v2.0 connections
	}
	var login byte // per-message and user-level authentication enabled
	switch {
	case s.cfg.Username != "":
		login |= 0x04 // non-null user names
	case s.cfg.Password != "":
		login |= 0x02 // a null user name with a password
	default:
		login |= 0x01 // anonymous login
	}
	return ccOK, []byte{lanChannel, authTypes, login, ext, 0, 0, 0, 0}
}

// cipherSuiteRecords lists the suites as Get Channel Cipher Suites does:
// a start-of-record byte, the suite ID, and the algorithms tagged as
// authentication (00b), integrity (01b) and confidentiality (10b).
func cipherSuiteRecords(bySuite bool) []byte {
	var out []byte
	seen := map[byte]bool{}
	add := func(tagged byte) {
		if !seen[tagged] {
			seen[tagged] = true
			out = append(out, tagged)
		}
	}
	for i := len(suites) - 1; i >= 0; i-- { // by suite ID, ascending
		su := suites[i]
		if bySuite {
			out = append(out, 0xc0, su.id, su.auth, 0x40|su.integrity, 0x80|su.conf)
			continue
		}
		add(su.auth)
		add(0x40 | su.integrity)
		add(0x80 | su.conf)
	}
	return out
}

func (s *Server) getChannelCipherSuites(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 3 {
		return ccBadLength, nil
	}
	if !channelOK(rq.data[0]) {
		return ccInvalidField, nil
	}
	out := []byte{lanChannel}
	if rq.data[1]&0x3f != payloadIPMI {
		return ccOK, out // no suite carries another payload type
	}
	list := cipherSuiteRecords(rq.data[2]&0x80 != 0)
	const chunk = 16
	if start := int(rq.data[2]&0x3f) * chunk; start < len(list) {
		out = append(out, list[start:min(start+chunk, len(list))]...)
	}
	return ccOK, out
}

func (s *Server) setSessionPrivilege(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 1 {
		return ccBadLength, nil
	}
	p := Privilege(rq.data[0] & 0x0f)
	switch {
	case p == 0:
		return ccOK, []byte{byte(rq.priv)}
	case p < PrivilegeUser || p > PrivilegeOEM:
		return ccInvalidField, nil
	case p > rq.maxPriv:
		return ccPrivilegeTooHigh, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[rq.sessionID]; sess != nil {
		sess.priv = p
	}
	return ccOK, []byte{byte(p)}
}

func (s *Server) closeSession(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 4 && len(rq.data) != 5 {
		return ccBadLength, nil
	}
	id := binary.LittleEndian.Uint32(rq.data)
	if id == 0 {
		return ccInvalidHandle, nil // sessions are named by ID only
	}
	if id != rq.sessionID && rq.priv < PrivilegeAdministrator {
		return ccInsufficientPriv, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess == nil || sess.state != stateActive {
		return ccInvalidSessionID, nil
	}
	s.endSession(sess, "closed by the remote console")
	return ccOK, nil
}

func (s *Server) getChassisStatus(ctx context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 0 {
		return ccBadLength, nil
	}
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	on, err := s.cfg.Machine.PoweredOn(ctx)
	if cc := s.machineCC("power state", err); cc != ccOK {
		return cc, nil
	}
	var power, event byte // power restore policy: always off
	if on {
		power |= 0x01
	}
	s.mu.Lock()
	if s.poweredByCommand {
		event |= 0x10 // last power event: on by command
	}
	s.mu.Unlock()
	return ccOK, []byte{power, event, 0x00, 0x00}
}

// Chassis Control sub-functions (IPMI v2.0 section 28.3).
const (
	chassisPowerDown   = 0x00
	chassisPowerUp     = 0x01
	chassisPowerCycle  = 0x02
	chassisHardReset   = 0x03
	chassisDiagPulse   = 0x04
	chassisSoftOffACPI = 0x05
)

func (s *Server) chassisControl(ctx context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 1 {
		return ccBadLength, nil
	}
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	m := s.cfg.Machine
	var err error
	switch rq.data[0] & 0x0f {
	case chassisPowerDown:
		err = m.PowerOff(ctx, false)
	case chassisPowerUp:
		if err = m.PowerOn(ctx); err == nil {
			s.setPoweredByCommand()
		}
	case chassisPowerCycle:
		// The specification recommends refusing a cycle of a machine that
		// is off, rather than powering it on.
		var on bool
		if on, err = m.PoweredOn(ctx); err == nil && !on {
			return ccNotInPresentState, nil
		}
		if err == nil {
			err = m.PowerOff(ctx, false)
		}
		if err == nil {
			err = m.PowerOn(ctx)
		}
		if err == nil {
			s.setPoweredByCommand()
		}
	case chassisHardReset:
		if err = m.Reset(ctx, false); err == nil {
			s.setPoweredByCommand()
		}
	case chassisSoftOffACPI:
		err = m.PowerOff(ctx, true)
	case chassisDiagPulse:
		return ccSubFunctionUnavail, nil
	default:
		return ccInvalidField, nil
	}
	s.log.Info("ipmi chassis control", "control", rq.data[0]&0x0f, "err", err)
	return s.machineCC("chassis control", err), nil
}

func (s *Server) setPoweredByCommand() {
	s.mu.Lock()
	s.poweredByCommand = true
	s.mu.Unlock()
}
