package ipmi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
)

// Algorithm numbers of the Open Session payloads (IPMI v2.0 table 13-17,
// 13-18, 13-19).
const (
	authRAKPNone       = 0x00
	authRAKPHMACSHA1   = 0x01
	authRAKPHMACMD5    = 0x02
	authRAKPHMACSHA256 = 0x03

	integrityNone          = 0x00
	integrityHMACSHA196    = 0x01
	integrityHMACMD5128    = 0x02
	integrityMD5128        = 0x03
	integrityHMACSHA256128 = 0x04

	confNone      = 0x00
	confAESCBC128 = 0x01
)

// suite is a cipher suite: one authentication, integrity and
// confidentiality algorithm (IPMI v2.0 table 22-20).
type suite struct {
	id        byte
	auth      byte
	integrity byte
	conf      byte
}

// suites are the cipher suites the BMC offers, most preferred first. Suite 0
// (no authentication, no integrity, no confidentiality) is deliberately
// absent: a real BMC refuses it by default, and so does this one.
var suites = []suite{
	{id: 17, auth: authRAKPHMACSHA256, integrity: integrityHMACSHA256128, conf: confAESCBC128},
	{id: 3, auth: authRAKPHMACSHA1, integrity: integrityHMACSHA196, conf: confAESCBC128},
}

// hashFor returns the hash behind an authentication or integrity
// algorithm of the suite.
func (su suite) authHash() func() hash.Hash {
	if su.auth == authRAKPHMACSHA256 {
		return sha256.New
	}
	return sha1.New
}

func (su suite) integrityHash() func() hash.Hash {
	if su.integrity == integrityHMACSHA256128 {
		return sha256.New
	}
	return sha1.New
}

// icvLen is the length of the RAKP 4 integrity check value: the
// authentication HMAC truncated to 96 bits for SHA-1, 128 bits for SHA-256.
func (su suite) icvLen() int {
	if su.auth == authRAKPHMACSHA256 {
		return 16
	}
	return 12
}

// authcodeLen is the length of the AuthCode that ends every authenticated
// session packet: HMAC-SHA1-96 or HMAC-SHA256-128.
func (su suite) authcodeLen() int {
	if su.integrity == integrityHMACSHA256128 {
		return 16
	}
	return 12
}

// kuidLen is the size of the user key Kuid: the password, zero-padded to
// 20 bytes, for every algorithm (what ipmitool and the specification use).
const kuidLen = 20

// kuid returns the user key for a password of at most kuidLen bytes.
func kuid(password string) []byte {
	k := make([]byte, kuidLen)
	copy(k, password)
	return k
}

// rakpParams are the values the RAKP exchange authenticates.
type rakpParams struct {
	consoleID uint32   // SIDm, the remote console's session ID
	bmcID     uint32   // SIDc, the BMC's session ID
	rm        [16]byte // the remote console's random number
	rc        [16]byte // the BMC's random number
	guid      [16]byte // the BMC's GUID
	role      byte     // the whole requested-role byte of RAKP 1
	user      []byte   // the user name of RAKP 1
}

func mac(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// rakp2Code is the key exchange authentication code of RAKP 2:
// HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm).
func rakp2Code(su suite, key []byte, p rakpParams) []byte {
	return mac(su.authHash(), key, le32(p.consoleID), le32(p.bmcID), p.rm[:], p.rc[:],
		p.guid[:], []byte{p.role, byte(len(p.user))}, p.user)
}

// rakp3Code is the key exchange authentication code RAKP 3 must carry:
// HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm, UNAMEm).
func rakp3Code(su suite, key []byte, p rakpParams) []byte {
	return mac(su.authHash(), key, p.rc[:], le32(p.consoleID), []byte{p.role, byte(len(p.user))}, p.user)
}

// sessionKeys are the keys of an established session.
type sessionKeys struct {
	sik []byte // session integrity key
	k1  []byte // integrity key
	k2  []byte // confidentiality key; AES-128 uses its first 16 bytes
}

var (
	const1 = []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	const2 = []byte{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}
)

// deriveKeys computes SIK = HMAC_Kuid(Rm, Rc, ROLEm, ULENGTHm, UNAMEm),
// K1 = HMAC_SIK(20 × 0x01) and K2 = HMAC_SIK(20 × 0x02).
func deriveKeys(su suite, key []byte, p rakpParams) sessionKeys {
	h := su.authHash()
	sik := mac(h, key, p.rm[:], p.rc[:], []byte{p.role, byte(len(p.user))}, p.user)
	return sessionKeys{sik: sik, k1: mac(h, sik, const1), k2: mac(h, sik, const2)}
}

// rakp4ICV is the integrity check value of RAKP 4: HMAC_SIK(Rm, SIDc,
// GUIDc), truncated.
func rakp4ICV(su suite, sik []byte, p rakpParams) []byte {
	return mac(su.authHash(), sik, p.rm[:], le32(p.bmcID), p.guid[:])[:su.icvLen()]
}

// authcode computes the AuthCode of a session packet over its bytes from
// the AuthType/Format field to the Next Header field.
func authcode(su suite, k1, covered []byte) []byte {
	return mac(su.integrityHash(), k1, covered)[:su.authcodeLen()]
}

// equal compares MACs in constant time.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

const aesBlock = aes.BlockSize

// sealAES encrypts a payload with AES-CBC-128 the IPMI way: the payload, pad
// bytes 1, 2, 3, …, and a pad-length byte make a whole number of blocks;
// the result is the IV followed by the cipher text.
func sealAES(key, iv, payload []byte) []byte {
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err) // the key is always 16 bytes
	}
	pad := (aesBlock - (len(payload)+1)%aesBlock) % aesBlock
	plain := make([]byte, 0, len(payload)+pad+1)
	plain = append(plain, payload...)
	for i := 1; i <= pad; i++ {
		plain = append(plain, byte(i))
	}
	plain = append(plain, byte(pad))
	out := make([]byte, aesBlock+len(plain))
	copy(out, iv[:aesBlock])
	cipher.NewCBCEncrypter(block, iv[:aesBlock]).CryptBlocks(out[aesBlock:], plain)
	return out
}

var errBadCipherText = errors.New("malformed encrypted payload")

// openAES reverses sealAES. It refuses a payload whose length is not an IV
// and whole blocks, or whose padding is not 1, 2, 3, … with a pad length
// below the block size.
func openAES(key, data []byte) ([]byte, error) {
	if len(data) < 2*aesBlock || len(data)%aesBlock != 0 {
		return nil, errBadCipherText
	}
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err)
	}
	plain := make([]byte, len(data)-aesBlock)
	cipher.NewCBCDecrypter(block, data[:aesBlock]).CryptBlocks(plain, data[aesBlock:])
	pad := int(plain[len(plain)-1])
	if pad >= aesBlock || pad+1 > len(plain) {
		return nil, errBadCipherText
	}
	n := len(plain) - 1 - pad
	for i := 0; i < pad; i++ {
		if plain[n+i] != byte(i+1) {
			return nil, errBadCipherText
		}
	}
	return plain[:n], nil
}
