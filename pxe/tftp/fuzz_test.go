package tftp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/tftp"
)

// FuzzRequest sends arbitrary datagrams to a running server, the way a
// hostile or broken client on the boot network would, and checks what must
// hold whatever arrives:
//   - the server keeps serving (a probe request after each datagram);
//   - a well-formed request always gets an answer, and a write request
//     only ever an error;
//   - the server never acknowledges anything (it only sends);
//   - the first data block of any transfer is the start of a file inside
//     the root or of a virtual file, never of the secret outside the root
//     that symbolic links in the root point to;
//   - nothing is written, in the root or out of it.
//
// Parsing of requests is pin/tftp's and the name rules are cleanName's;
// this exercises both together, over real UDP.
func FuzzRequest(f *testing.F) {
	const secret = "SECRET-OUTSIDE-THE-ROOT"
	letters := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 60) // no CR or LF, so netascii leaves it alone
	virtual := "virtual file for the node"
	outside := f.TempDir()
	root := f.TempDir()
	for name, content := range map[string]string{
		"hello.txt":     letters,
		"sub/small.txt": "small",
		"probe":         "probe",
		"EMPTY":         "",
		"../secret.txt": secret, // next to the root, in its parent
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link-out"))
	os.Symlink(outside, filepath.Join(root, "dir-out"))
	allowed := [][]byte{[]byte(letters), []byte("small"), []byte("probe"), []byte(virtual)}
	before, beforeOutside := tree(f, root), tree(f, outside)
	parent := tree(f, filepath.Dir(root))

	s, err := tftp.New(tftp.Config{
		Addr:        "127.0.0.1:0",
		Root:        root,
		Concurrency: 64,
		Timeout:     200 * time.Millisecond,
		Retries:     1,
		Virtual: func(path string, _ netip.Addr) (io.ReadSeekCloser, int64, bool) {
			if path == "node/virtual" {
				return nopCloser{bytes.NewReader([]byte(virtual))}, int64(len(virtual)), true
			}
			return nil, 0, false
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		<-done
	})
	server := net.UDPAddrFromAddrPort(s.Addr())

	for _, p := range [][]byte{
		packet(opRRQ, "hello.txt", "octet"),
		packet(opRRQ, "hello.txt", "netascii", "blksize", "1024", "tsize", "0"),
		packet(opRRQ, "hello.txt", "octet", "blksize", "65464", "tsize", "0", "timeout", "1", "windowsize", "8"),
		packet(opRRQ, "hello.txt", "octet", "blksize", "8"),
		packet(opRRQ, "hello.txt", "octet", "blksize", "99999999999999999999"),
		packet(opRRQ, "sub/small.txt", "OCTET"),
		packet(opRRQ, "node/virtual", "octet", "tsize", "0"),
		packet(opRRQ, "EMPTY", "octet", "tsize", "0"),
		packet(opRRQ, "../secret.txt", "octet"),
		packet(opRRQ, "/etc/passwd", "octet"),
		packet(opRRQ, `..\secret.txt`, "octet"),
		packet(opRRQ, "link-out", "octet"),
		packet(opRRQ, "dir-out/secret", "octet"),
		packet(opRRQ, "sub", "octet"),
		packet(opRRQ, "", "octet"),
		packet(opRRQ, "hello.txt", ""),
		packet(opWRQ, "new.txt", "octet", "tsize", "5"),
		packet(opWRQ, "hello.txt", "octet"),
		packet(opWRQ, "../escape.txt", "netascii"),
		{0, opRRQ, 'h', 'e', 'l', 'l', 'o', '.', 't', 'x', 't'}, // no terminators
		{0, opRRQ},
		{0, opDATA, 0, 1, 'x'},
		{0, opACK, 0, 0},
		{0, opERROR, 0, 0, 0},
		{0, opOACK, 'a', 0, 'b', 0},
		{0xff, 0xff},
		{},
		append(packet(opRRQ, "hello.txt", "octet"), bytes.Repeat([]byte("x"), 1000)...),
	} {
		f.Add(p)
	}

	f.Fuzz(func(t *testing.T, pkt []byte) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.WriteToUDP(pkt, server); err != nil {
			t.Fatal(err)
		}
		if op, ok := request(pkt); ok {
			checkAnswer(t, c, op, allowed, secret)
		}
		probe(t, server)
		if after := tree(t, root); after != before {
			t.Fatalf("the root changed:\n%s\nnow:\n%s", before, after)
		}
		if after := tree(t, outside); after != beforeOutside {
			t.Fatalf("the directory outside the root changed")
		}
		if after := tree(t, filepath.Dir(root)); after != parent {
			t.Fatalf("the root's parent changed:\n%s\nnow:\n%s", parent, after)
		}
	})
}

// request says whether pkt is a request the server must answer: a read or
// write request with at least a file name terminated by a zero byte, in
// the first 516 bytes (what the server reads of a datagram).
func request(pkt []byte) (uint16, bool) {
	if len(pkt) > 516 {
		pkt = pkt[:516]
	}
	if len(pkt) < 4 {
		return 0, false
	}
	op := binary.BigEndian.Uint16(pkt)
	if op != opRRQ && op != opWRQ {
		return 0, false
	}
	return op, bytes.IndexByte(pkt[2:], 0) >= 0
}

// checkAnswer reads the server's answer to a request and ends the transfer
// it started, if any.
func checkAnswer(t *testing.T, c *net.UDPConn, op uint16, allowed [][]byte, secret string) {
	t.Helper()
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no answer to a request: %v", err)
		}
		if n < 2 {
			t.Fatalf("a %d-byte answer", n)
		}
		got := binary.BigEndian.Uint16(buf)
		end := func() {
			c.WriteToUDP([]byte{0, opERROR, 0, 0, 'e', 'n', 'd', 0}, from)
		}
		switch {
		case got == opERROR:
			return
		case op == opWRQ:
			end()
			t.Fatalf("a write request was answered with opcode %d", got)
		case got == opOACK:
			c.WriteToUDP([]byte{0, opACK, 0, 0}, from)
		case got == opDATA:
			end()
			if n < 4 || binary.BigEndian.Uint16(buf[2:]) != 1 {
				t.Fatalf("the first data packet is %x", buf[:min(n, 8)])
			}
			data := buf[4:n]
			if bytes.Contains(data, []byte(secret)) {
				t.Fatalf("served the secret from outside the root")
			}
			for _, a := range allowed {
				if bytes.HasPrefix(a, data) {
					return
				}
			}
			if len(data) == 0 {
				return // an empty file
			}
			t.Fatalf("served %q, which starts no file in the root", data[:min(len(data), 64)])
		default:
			end()
			t.Fatalf("answered with opcode %d", got)
		}
	}
}

// probe fetches a small file to see that the server still serves.
func probe(t *testing.T, server *net.UDPAddr) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteToUDP(packet(opRRQ, "probe", "octet"), server)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 600)
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the server stopped answering: %v", err)
	}
	if !bytes.Equal(buf[:n], []byte{0, opDATA, 0, 1, 'p', 'r', 'o', 'b', 'e'}) {
		t.Fatalf("the probe got %q", buf[:n])
	}
	c.WriteToUDP([]byte{0, opACK, 0, 1}, from)
}
