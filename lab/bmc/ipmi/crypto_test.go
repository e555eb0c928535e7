package ipmi

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func arr16(t *testing.T, s string) [16]byte {
	var a [16]byte
	if n := copy(a[:], unhex(t, s)); n != 16 {
		t.Fatalf("%q: %d bytes, want 16", s, n)
	}
	return a
}

// The known answers below were printed by ipmitool 1.8.19 itself (OpenSSL
// underneath) at -vvvvv, logging in as "admin" with the password
// "Sup3r-Secret-Pw" and role byte 14h (Administrator, name-only lookup):
// its random number, the BMC's, the keys it derived, the RAKP codes it
// computed, and the first packet it sent in the session (Set Session
// Privilege Level, rqSeq 1, with its IV and AuthCode).
var knownAnswers = []struct {
	name      string
	suite     suite
	bmcID     uint32
	rm, rc    string
	rakp2     string
	rakp3     string
	sik       string
	k1, k2    string
	rakp4     string // untruncated; the ICV is its first 12 or 16 bytes
	iv        string
	plain     string // the IPMI message
	packet    string // as ipmitool sent it
	packetSeq uint32
}{
	{
		name:      "suite 3",
		suite:     suites[1],
		bmcID:     0x859d8cd6,
		rm:        "059741089a8c211030d7ff60f299f1d5",
		rc:        "7fbace6fac0888312c76fcd0b7d35767",
		rakp2:     "01146349a6d5eb6cd35743edfcca8272e86a9c15",
		rakp3:     "352a7a5795d9fc0f89192280b00d4a85cc9f52c6",
		sik:       "0562be0915c56773d1fd7e63edc9c7f654436c1b",
		k1:        "eb06fadce2d0ff3e9a2825c0cb8891e66cc03852",
		k2:        "a49bdb939570cf544a2faed831426e0cb5c929a3",
		rakp4:     "c1420eb7a5652745335b2293ab5d71be7dcadda7",
		iv:        "be5cd2a1b0d71ba2f9f79c6b11953f5f",
		plain:     "2018c881043b043c",
		packet:    "0600ff0706c0d68c9d85030000002000be5cd2a1b0d71ba2f9f79c6b11953f5f362a30d7ef5a723ace7268563714e700ffff02078d0530dfd437b26bd823b698",
		packetSeq: 3,
	},
	{
		name:      "suite 17",
		suite:     suites[0],
		bmcID:     0x47be3f6a,
		rm:        "ca14de0474f50f209c99d7f2547311e5",
		rc:        "e85c3bd6dcadce3c3bccccfd76bc5a6d",
		rakp2:     "e2248d7852900ea0df0fd3317050b423e9bc70942f5a1855bc62cadefb8b26cf",
		rakp3:     "073a0f49dd892c6eff936e77bb78075165a978bdd5b7069d0727119cd7a4115f",
		sik:       "00b5a35a66d8343c36556468a52904bfde7303ffb93c9aeb9fd4bec79888c4fc",
		k1:        "4659eb57560419a73175c5a952fa8bb4e59c3f82273cfd69e5c377352b44fb3a",
		k2:        "746b4230dc62856fb3c4940b15f5e2357418c983d7b847759b65b3a7a82a74d8",
		rakp4:     "86b07ab984e45c42c288b38afdced3ae6444d270127c4ba46d15a0bfc0f94ff4",
		iv:        "1c407f433a679d7b513378a2697ce6d1",
		plain:     "2018c881043b043c",
		packet:    "0600ff0706c06a3fbe470300000020001c407f433a679d7b513378a2697ce6d1ae5ad512846803ece9d37b1ad53f036effff020748e2fb94fe553233afa53c3bf95f6155",
		packetSeq: 3,
	},
}

func TestKnownAnswers(t *testing.T) {
	for _, ka := range knownAnswers {
		t.Run(ka.name, func(t *testing.T) {
			p := rakpParams{
				consoleID: 0xa0a2a3a4, // ipmitool's
				bmcID:     ka.bmcID,
				rm:        arr16(t, ka.rm),
				rc:        arr16(t, ka.rc),
				guid:      arr16(t, "6b5a4f3e2d1c009f1e4a4c3b0e5f7a8d"),
				role:      0x14,
				user:      []byte("admin"),
			}
			key := kuid("Sup3r-Secret-Pw")
			check := func(what string, got []byte, want string) {
				t.Helper()
				if !bytes.Equal(got, unhex(t, want)) {
					t.Errorf("%s = %x, want %s", what, got, want)
				}
			}
			check("RAKP 2 code", rakp2Code(ka.suite, key, p), ka.rakp2)
			check("RAKP 3 code", rakp3Code(ka.suite, key, p), ka.rakp3)
			keys := deriveKeys(ka.suite, key, p)
			check("SIK", keys.sik, ka.sik)
			check("K1", keys.k1, ka.k1)
			check("K2", keys.k2, ka.k2)
			check("RAKP 4 ICV", rakp4ICV(ka.suite, keys.sik, p), ka.rakp4[:2*ka.suite.icvLen()])

			// The session packet: encrypted with K2 and the IV, signed with K1.
			iv := unhex(t, ka.iv)
			sealed := sealAES(keys.k2, iv, unhex(t, ka.plain))
			packet := plusPacket(payloadIPMI|payloadEncrypted|payloadAuthenticated, ka.bmcID, ka.packetSeq, sealed,
				func(covered []byte) []byte { return authcode(ka.suite, keys.k1, covered) })
			check("packet", packet, ka.packet)

			// And the BMC's side: it opens what ipmitool sent.
			sess := &session{suite: ka.suite, keys: keys}
			h, err := parsePlus(unhex(t, ka.packet))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := sess.open(unhex(t, ka.packet), h)
			if err != nil {
				t.Fatal(err)
			}
			check("opened payload", plain, ka.plain)
		})
	}
}

func TestAESPadding(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 20)
	iv := bytes.Repeat([]byte{9}, 16)
	for n := range 50 {
		payload := bytes.Repeat([]byte{0xab}, n)
		sealed := sealAES(key, iv, payload)
		// IV, then whole blocks holding the payload, its pad and the pad
		// length: the least number that fits.
		if want := 16 + (n/16+1)*16; len(sealed) != want {
			t.Errorf("%d bytes sealed into %d, want %d", n, len(sealed), want)
		}
		got, err := openAES(key, sealed)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: open = %x, %v", n, got, err)
		}
	}
}

func TestAESRefusals(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 20)
	iv := bytes.Repeat([]byte{9}, 16)
	sealed := sealAES(key, iv, []byte("hello"))
	// A tampered pad: decrypt, change a pad byte, re-encrypt by hand.
	badPad := func() []byte {
		plain := []byte("hello\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0a")
		plain[8] = 0xee
		return encryptRaw(t, key, iv, plain)
	}
	padTooLong := encryptRaw(t, key, iv, bytes.Repeat([]byte{16}, 16))
	for name, in := range map[string][]byte{
		"empty":        nil,
		"IV only":      sealed[:16],
		"not blocks":   sealed[:len(sealed)-1],
		"bad pad byte": badPad(),
		"pad too long": padTooLong,
	} {
		if _, err := openAES(key, in); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// encryptRaw encrypts whole blocks with no IPMI padding.
func encryptRaw(t *testing.T, key, iv, plain []byte) []byte {
	t.Helper()
	if len(plain)%16 != 0 {
		t.Fatal("not whole blocks")
	}
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16+len(plain))
	copy(out, iv)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out[16:], plain)
	return out
}

func TestSeqWindow(t *testing.T) {
	var w seqWindow
	steps := []struct {
		seq  uint32
		want bool
	}{
		{0, false},  // never valid
		{7, true},   // the first sets the window
		{7, false},  // replay
		{8, true},   // next
		{6, true},   // late, unseen
		{6, false},  // replay of a late one
		{24, true},  // 16 ahead
		{41, false}, // 17 ahead
		{9, true},   // 15 behind, unseen
		{8, false},  // 16 behind: outside
		{25, true},
		{0xffffffff, false}, // far behind, by wrap-around
		{24 + 0x80000000, false},
	}
	for i, s := range steps {
		if got := w.accept(s.seq); got != s.want {
			t.Errorf("step %d: accept(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}

	// Wrap-around: ipmitool skips zero.
	w = seqWindow{}
	for _, seq := range []uint32{0xfffffffe, 0xffffffff, 1, 2} {
		if !w.accept(seq) {
			t.Errorf("accept(%#x) across the wrap = false", seq)
		}
	}
	if w.accept(0xffffffff) {
		t.Error("replay across the wrap accepted")
	}
}

func TestChecksum(t *testing.T) {
	// From ipmitool's Set Session Privilege Level above.
	m := unhex(t, "2018c881043b043c")
	if checksum(m[:2]) != m[2] || checksum(m[3:7]) != m[7] {
		t.Error("checksums differ from ipmitool's")
	}
	msg, err := parseMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if msg.netFn != netFnApp || msg.cmd != 0x3b || msg.rqSeq != 1 || !bytes.Equal(msg.data, []byte{4}) {
		t.Errorf("parsed %+v", msg)
	}
}
