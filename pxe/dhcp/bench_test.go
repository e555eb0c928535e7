package dhcp_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/etcdleases"
)

var (
	doraRate    = flag.Int("dora.rate", 5000, "DORA exchanges per second perfdhcp attempts (-r)")
	doraClients = flag.Int("dora.clients", 1000, "distinct clients perfdhcp simulates (-R)")
	doraSeconds = flag.Int("dora.seconds", 10, "seconds each server is loaded (-p)")
	doraWorkers = flag.Int("dora.workers", 0, "Strata's Config.Workers (0: the default)")
	doraServers = flag.String("dora.servers", "", "comma-separated servers to measure (default: all)")
)

// BenchmarkDORA loads Strata's server, dnsmasq and Kea one after the other
// with the same perfdhcp (Kea's load generator) on the same veth pair
// between two network namespaces, and reports each one's DORA/s and the
// ratios. Each server keeps its leases durably, as it would in production:
// Strata in etcd (embedded, on disk), dnsmasq in its lease file, Kea in its
// memfile CSV; Strata with in-memory leases and dnsmasq without a lease
// file are measured too, to show what the storage costs.
//
//	go test -run '^$' -bench DORA -benchtime 1x ./pxe/dhcp/ [-args -dora.rate 5000 -dora.clients 1000 -dora.seconds 10]
func BenchmarkDORA(b *testing.B) {
	requireTool(b, "perfdhcp", "kea-admin")
	requireTool(b, "dnsmasq", "dnsmasq-base")
	requireTool(b, "kea-dhcp4", "kea-dhcp4-server")
	l := newLab(b)
	sns, cns := l.ns("s"), l.ns("c")
	l.ip("-n", sns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", cns)
	l.ip("-n", sns, "addr", "add", "10.214.0.1/16", "dev", "eth0")
	l.ip("-n", cns, "addr", "add", "10.214.0.2/16", "dev", "eth0")
	l.ip("-n", sns, "link", "set", "eth0", "up")
	l.ip("-n", cns, "link", "set", "eth0", "up")
	const poolStart, poolEnd = "10.214.1.0", "10.214.200.255"

	strata := func(leases dhcp.Leases) func(b *testing.B) func() {
		return func(b *testing.B) func() {
			cfg := dhcp.Config{
				Interface: "eth0", Netns: nsPath(sns), ServerIP: netip.MustParseAddr("10.214.0.1"),
				Subnet:    netip.MustParsePrefix("10.214.0.0/16"),
				Pool:      dhcp.Range{Start: netip.MustParseAddr(poolStart), End: netip.MustParseAddr(poolEnd)},
				Directory: directory{}, Discovery: true, Leases: leases, ProbeTimeout: 500 * time.Millisecond,
				Workers: *doraWorkers,
			}
			r := startServer(b, cfg)
			return func() {
				if err := r.stop(); err != nil {
					b.Error(err)
				}
			}
		}
	}
	dnsmasq := func(leasefile bool) func(b *testing.B) func() {
		return func(b *testing.B) func() {
			dir := b.TempDir()
			args := []string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
				"--interface=eth0", "--bind-interfaces", "--no-ping", "--dhcp-lease-max=1000000",
				"--dhcp-range=" + poolStart + "," + poolEnd + ",1h", "--pid-file=" + filepath.Join(dir, "pid")}
			if leasefile {
				args = append(args, "--dhcp-leasefile="+filepath.Join(dir, "leases"))
			} else {
				args = append(args, "--leasefile-ro")
			}
			return start(b, sns, nil, args...).stop
		}
	}
	kea := func(b *testing.B) func() {
		dir := b.TempDir()
		conf := filepath.Join(dir, "kea-dhcp4.json")
		err := os.WriteFile(conf, []byte(fmt.Sprintf(`{"Dhcp4": {
  "interfaces-config": {"interfaces": ["eth0"], "dhcp-socket-type": "raw"},
  "lease-database": {"type": "memfile", "persist": true, "name": %q, "lfc-interval": 0},
  "valid-lifetime": 3600,
  "subnet4": [{"id": 1, "subnet": "10.214.0.0/16", "pools": [{"pool": "%s - %s"}]}],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": %q}], "severity": "WARN"}]
}}`, filepath.Join(dir, "leases.csv"), poolStart, poolEnd, filepath.Join(dir, "kea.log"))), 0o644)
		if err != nil {
			b.Fatal(err)
		}
		env := []string{"KEA_PIDFILE_DIR=" + dir, "KEA_LOCKFILE_DIR=" + dir}
		return start(b, sns, env, "kea-dhcp4", "-c", conf).stop
	}

	servers := []struct {
		name  string
		start func(b *testing.B) func()
	}{
		{"strata", strata(nil)}, // leases in etcd: filled in below
		{"strata-memory", strata(dhcp.NewMemoryLeases())},
		{"dnsmasq", dnsmasq(true)},
		{"dnsmasq-no-leasefile", dnsmasq(false)},
		{"kea", kea},
	}
	servers[0].start = func(b *testing.B) func() {
		return strata(etcdleases.New(store.New(etcdtest.Run(b), "/strata/undercloud/")))(b)
	}

	rates := map[string]float64{}
	for range b.N {
		for _, s := range servers {
			if *doraServers != "" && !slices.Contains(strings.Split(*doraServers, ","), s.name) {
				continue
			}
			stop := s.start(b)
			waitOffer(b, cns)
			res := perfdhcp(b, cns, *doraRate, *doraClients, *doraSeconds)
			stop()
			rates[s.name] = res.rate
			b.Logf("%-22s %8.1f DORA/s  (DISCOVER-OFFER drops %s, REQUEST-ACK drops %s, avg delay %s / %s ms)",
				s.name, res.rate, res.drops[0], res.drops[1], res.delay[0], res.delay[1])
		}
	}
	for _, s := range servers {
		b.ReportMetric(rates[s.name], s.name+"-DORA/s")
	}
	for _, peer := range []string{"dnsmasq", "kea"} {
		if rates[peer] > 0 {
			b.ReportMetric(rates["strata"]/rates[peer], "strata/"+peer)
			b.Logf("strata/%s = %.2f, strata-memory/%s = %.2f", peer, rates["strata"]/rates[peer], peer, rates["strata-memory"]/rates[peer])
		}
	}
}

// waitOffer polls from ns until some DHCP server offers an address.
func waitOffer(b *testing.B, ns string) {
	b.Helper()
	eventually(b, 30*time.Second, "a DHCP server answers", func() (bool, string) {
		var c *nclient4.Client
		err := dhcp.InNetns(nsPath(ns), func() error {
			var err error
			c, err = nclient4.New("eth0", nclient4.WithTimeout(500*time.Millisecond), nclient4.WithRetry(1))
			return err
		})
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		offer, err := c.DiscoverOffer(context.Background(), dhcpv4.WithBroadcast(true))
		return err == nil && offer != nil, fmt.Sprint(err)
	})
}

type perfResult struct {
	rate  float64
	drops [2]string // DISCOVER-OFFER, REQUEST-ACK
	delay [2]string
}

var (
	rateRE  = regexp.MustCompile(`Rate: ([0-9.]+) 4-way exchanges/second`)
	dropsRE = regexp.MustCompile(`drops ratio: ([0-9.]+ ?%)`)
	delayRE = regexp.MustCompile(`avg delay: ([0-9.]+) ms`)
)

// perfdhcp runs Kea's load generator in ns for seconds and parses its report.
func perfdhcp(b *testing.B, ns string, rate, clients, seconds int) perfResult {
	b.Helper()
	p := start(b, ns, nil, "perfdhcp", "-4", "-l", "eth0", "-r", strconv.Itoa(rate), "-R", strconv.Itoa(clients),
		"-p", strconv.Itoa(seconds))
	p.wait(time.Duration(seconds)*time.Second + 60*time.Second) // perfdhcp exits non-zero when packets were dropped
	out := p.out.String()
	m := rateRE.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("perfdhcp printed no rate:\n%s", out)
	}
	var r perfResult
	r.rate, _ = strconv.ParseFloat(m[1], 64)
	for i, d := range dropsRE.FindAllStringSubmatch(out, 2) {
		r.drops[i] = strings.ReplaceAll(d[1], " ", "")
	}
	for i, d := range delayRE.FindAllStringSubmatch(out, 2) {
		r.delay[i] = d[1]
	}
	return r
}
