package ipmi

import (
	"encoding/binary"
	"errors"
)

// RMCP (ASF 2.0 section 3.2.2) and the IPMI sessions it carries (IPMI v2.0
// section 13.6 and 13.8).
const (
	rmcpVersion1  = 0x06
	rmcpNoAck     = 0xff
	rmcpClassASF  = 0x06
	rmcpClassIPMI = 0x07

	asfIANA     = 0x000011be
	asfTypePing = 0x80
	asfTypePong = 0x40

	// Session AuthType / Format values.
	authTypeNone     = 0x00
	authTypeRMCPPlus = 0x06

	// RMCP+ payload types.
	payloadIPMI         = 0x00
	payloadOEM          = 0x02
	payloadOpenRequest  = 0x10
	payloadOpenResponse = 0x11
	payloadRAKP1        = 0x12
	payloadRAKP2        = 0x13
	payloadRAKP3        = 0x14
	payloadRAKP4        = 0x15

	payloadEncrypted     = 0x80
	payloadAuthenticated = 0x40
	payloadTypeMask      = 0x3f

	// nextHeaderIPMI is the Next Header byte of an RMCP+ session trailer.
	nextHeaderIPMI = 0x07

	// bmcAddr is the BMC's IPMB slave address.
	bmcAddr = 0x20
)

var errMalformed = errors.New("malformed packet")

// pong answers an ASF presence ping (ASF 2.0 section 3.2.4.3), or returns
// nil for any other ASF message.
func pong(pkt []byte) []byte {
	// RMCP header (4), IANA (4), type, tag, reserved, data length.
	if len(pkt) < 12 || binary.BigEndian.Uint32(pkt[4:8]) != asfIANA || pkt[8] != asfTypePing {
		return nil
	}
	out := []byte{rmcpVersion1, 0, rmcpNoAck, rmcpClassASF}
	out = binary.BigEndian.AppendUint32(out, asfIANA)
	out = append(out, asfTypePong, pkt[9], 0, 16)
	out = binary.BigEndian.AppendUint32(out, asfIANA) // no OEM extension
	out = append(out, 0, 0, 0, 0)                     // OEM-defined
	out = append(out, 0x81)                           // IPMI supported, ASF 1.0
	out = append(out, 0)                              // supported interactions
	out = append(out, 0, 0, 0, 0, 0, 0)
	return out
}

// v15Message extracts the IPMI message of a session-less IPMI v1.5 packet
// (AuthType none, session ID 0). Packets of IPMI v1.5 sessions are not
// supported: this BMC speaks RMCP+ only.
func v15Message(pkt []byte) ([]byte, error) {
	// RMCP (4), AuthType, sequence (4), session ID (4), length.
	if len(pkt) < 14 || pkt[4] != authTypeNone {
		return nil, errMalformed
	}
	if binary.LittleEndian.Uint32(pkt[9:13]) != 0 {
		return nil, errMalformed
	}
	n := int(pkt[13])
	if len(pkt) != 14+n {
		return nil, errMalformed
	}
	return pkt[14:], nil
}

// v15Packet wraps an IPMI message in a session-less IPMI v1.5 packet.
func v15Packet(msg []byte) []byte {
	out := []byte{rmcpVersion1, 0, rmcpNoAck, rmcpClassIPMI, authTypeNone, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(msg))}
	return append(out, msg...)
}

// plusHeader is the RMCP+ session header of a packet (IPMI v2.0 table 13-8).
type plusHeader struct {
	encrypted     bool
	authenticated bool
	payloadType   byte
	sessionID     uint32
	seq           uint32
	// payloadEnd is the offset in the packet just past the payload.
	payloadEnd int
}

const plusPayloadOffset = 16

// parsePlus reads the RMCP+ session header of pkt; the payload is
// pkt[16:h.payloadEnd], and whatever follows it is the session trailer.
func parsePlus(pkt []byte) (plusHeader, error) {
	if len(pkt) < plusPayloadOffset || pkt[4] != authTypeRMCPPlus {
		return plusHeader{}, errMalformed
	}
	h := plusHeader{
		encrypted:     pkt[5]&payloadEncrypted != 0,
		authenticated: pkt[5]&payloadAuthenticated != 0,
		payloadType:   pkt[5] & payloadTypeMask,
		sessionID:     binary.LittleEndian.Uint32(pkt[6:10]),
		seq:           binary.LittleEndian.Uint32(pkt[10:14]),
	}
	if h.payloadType == payloadOEM {
		// An OEM explicit payload has an IANA number and a payload ID
		// before its length; none is supported.
		return plusHeader{}, errMalformed
	}
	h.payloadEnd = plusPayloadOffset + int(binary.LittleEndian.Uint16(pkt[14:16]))
	if h.payloadEnd > len(pkt) {
		return plusHeader{}, errMalformed
	}
	if !h.authenticated && h.payloadEnd != len(pkt) {
		return plusHeader{}, errMalformed
	}
	return h, nil
}

// checkTrailer verifies the session trailer of an authenticated packet:
// integrity pad (0xFF bytes), pad length, next header, and an AuthCode of
// authLen bytes that ends the packet. It returns the bytes the AuthCode
// covers and the AuthCode.
func checkTrailer(pkt []byte, h plusHeader, authLen int) (covered, code []byte, err error) {
	end := len(pkt) - authLen
	if end-2 < h.payloadEnd {
		return nil, nil, errMalformed
	}
	if pkt[end-1] != nextHeaderIPMI {
		return nil, nil, errMalformed
	}
	pad := int(pkt[end-2])
	if h.payloadEnd+pad+2 != end {
		return nil, nil, errMalformed
	}
	for _, b := range pkt[h.payloadEnd : h.payloadEnd+pad] {
		if b != 0xff {
			return nil, nil, errMalformed
		}
	}
	return pkt[4:end], pkt[end:], nil
}

// plusPacket builds an RMCP+ packet around a payload that is already
// encrypted if it should be. With a non-nil sign, the packet gets a
// session trailer whose AuthCode sign computes over the covered bytes.
func plusPacket(ptype byte, sessionID, seq uint32, payload []byte, sign func(covered []byte) []byte) []byte {
	out := make([]byte, 0, plusPayloadOffset+len(payload)+4+32)
	out = append(out, rmcpVersion1, 0, rmcpNoAck, rmcpClassIPMI, authTypeRMCPPlus, ptype)
	out = binary.LittleEndian.AppendUint32(out, sessionID)
	out = binary.LittleEndian.AppendUint32(out, seq)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(payload)))
	out = append(out, payload...)
	if sign == nil {
		return out
	}
	// Pad so that the covered bytes, from AuthType to Next Header, are a
	// multiple of four.
	pad := (4 - (len(out)-4+2)%4) % 4
	for i := 0; i < pad; i++ {
		out = append(out, 0xff)
	}
	out = append(out, byte(pad), nextHeaderIPMI)
	return append(out, sign(out[4:])...)
}

// message is an IPMI LAN request message (IPMI v2.0 section 13.8).
type message struct {
	rsAddr byte
	netFn  byte
	rsLUN  byte
	rqAddr byte
	rqSeq  byte
	rqLUN  byte
	cmd    byte
	data   []byte
}

func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// parseMessage reads a request and checks both its checksums.
func parseMessage(b []byte) (message, error) {
	if len(b) < 7 || checksum(b[:2]) != b[2] || checksum(b[3:len(b)-1]) != b[len(b)-1] {
		return message{}, errMalformed
	}
	if b[1]>>2&1 != 0 {
		return message{}, errMalformed // a response, not a request
	}
	return message{
		rsAddr: b[0],
		netFn:  b[1] >> 2,
		rsLUN:  b[1] & 3,
		rqAddr: b[3],
		rqSeq:  b[4] >> 2,
		rqLUN:  b[4] & 3,
		cmd:    b[5],
		data:   b[6 : len(b)-1],
	}, nil
}

// response builds the response message to m.
func (m message) response(cc byte, data []byte) []byte {
	out := make([]byte, 0, 8+len(data))
	out = append(out, m.rqAddr, (m.netFn|1)<<2|m.rqLUN)
	out = append(out, checksum(out[0:2]))
	out = append(out, m.rsAddr, m.rqSeq<<2|m.rsLUN, m.cmd, cc)
	out = append(out, data...)
	return append(out, checksum(out[3:]))
}
