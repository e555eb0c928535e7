package tftp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/pxe/tftp"
)

// BenchmarkTFTP64MiB fetches a 64 MiB file with the same client (curl's
// TFTP, asking for the same blksize) from Strata's server, from tftpd-hpa's
// in.tftpd and from dnsmasq's TFTP server, each on its own loopback
// address, one after the other in every iteration (the order rotating), and
// reports each server's MB/s (10^6 bytes per second, from curl's own
// transfer time) and Strata's ratio to each. dnsmasq caps blksize to its
// packet buffer, sized by --edns-packet-max, so it runs with that raised to
// grant the same blksize as the others; the benchmark fails if any server
// grants a different blksize.
//
//	go test -run '^$' -bench TFTP64MiB -benchtime 5x ./pxe/tftp
func BenchmarkTFTP64MiB(b *testing.B) {
	curl := tool(b, "curl", "curl")
	root := b.TempDir()
	const size = 64 << 20
	writeRandom(b, root, "big.bin", size)
	servers := []struct{ name, host string }{
		{"strata", strataServer(b, root)},
		{"tftpd-hpa", tftpdHPA(b, root)},
		{"dnsmasq", dnsmasq(b, root)},
	}
	oack := regexp.MustCompile(`blksize parsed from OACK \((\d+)\)`)
	total := regexp.MustCompile(`(?m)^time_total=([0-9.]+)$`)
	for _, blksize := range []int{65464, 1468} {
		b.Run(fmt.Sprintf("blksize=%d", blksize), func(b *testing.B) {
			elapsed := make([]float64, len(servers))
			i := 0
			for b.Loop() {
				for k := range servers {
					j := (i + k) % len(servers)
					out, err := run(b, os.TempDir(), curl, "-sS", "-v", "--tftp-blksize", strconv.Itoa(blksize),
						"-o", "/dev/null", "-w", "\ntime_total=%{time_total}\nsize=%{size_download}\n",
						"tftp://"+servers[j].host+"/big.bin")
					if err != nil || !strings.Contains(out, "\nsize="+strconv.Itoa(size)+"\n") {
						b.Fatalf("%s: curl: %v\n%s", servers[j].name, err, out)
					}
					if m := oack.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(blksize) {
						b.Fatalf("%s granted blksize %v, not %d", servers[j].name, m, blksize)
					}
					m := total.FindStringSubmatch(out)
					if m == nil {
						b.Fatalf("no time_total in curl's output:\n%s", out)
					}
					sec, _ := strconv.ParseFloat(m[1], 64)
					elapsed[j] += sec
				}
				i++
			}
			rate := make([]float64, len(servers))
			for j, s := range servers {
				rate[j] = float64(size) * float64(i) / elapsed[j] / 1e6
				b.ReportMetric(rate[j], s.name+"-MB/s")
			}
			for j := 1; j < len(servers); j++ {
				b.ReportMetric(rate[0]/rate[j], "strata/"+servers[j].name)
			}
		})
	}
}

// strataServer runs Strata's server on a loopback port.
func strataServer(b *testing.B, root string) string {
	s, err := tftp.New(tftp.Config{Addr: "127.0.0.1:0", Root: root})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return s.Addr().String()
}

// tftpdHPA runs tftpd-hpa's server in the foreground on a free loopback
// port, chrooted to root.
func tftpdHPA(b *testing.B, root string) string {
	bin := tool(b, "in.tftpd", "tftpd-hpa")
	addr := "127.0.0.1:" + freeUDPPort(b)
	start(b, bin, "--foreground", "--address", addr, "--secure", "--user", "root", root)
	waitServing(b, addr)
	return addr
}

// dnsmasq runs dnsmasq as a TFTP server only (no DNS, no DHCP), in the
// foreground. Its TFTP port is always 69, so it gets an address of its own
// in 127.0.0.0/8.
func dnsmasq(b *testing.B, root string) string {
	bin := tool(b, "dnsmasq", "dnsmasq-base")
	ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(250))
	start(b, bin, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--no-hosts", "--no-resolv",
		"--edns-packet-max=65535", "--enable-tftp", "--tftp-root="+root, "--listen-address="+ip,
		"--bind-interfaces", "--user=root", "--pid-file=", "--log-facility=-", "--quiet-tftp")
	addr := ip + ":69"
	waitServing(b, addr)
	return addr
}

// freeUDPPort returns a UDP port that was free a moment ago.
func freeUDPPort(b *testing.B) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}

// waitServing polls a TFTP server with a request for a missing file until
// it answers.
func waitServing(b *testing.B, addr string) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 600)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.WriteToUDP(packet(opRRQ, "strata-benchmark-no-such-file", "octet"), ua)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := c.ReadFromUDP(buf); err == nil && n >= 2 && buf[1] == opERROR {
			return
		}
	}
	b.Fatalf("no TFTP server answers on %s", addr)
}
