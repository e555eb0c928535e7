package undercloud_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/bmc/ipmi"
	"github.com/stratacloud/strata/lab/bmc/redfish"
	"github.com/stratacloud/strata/undercloud"
)

// BenchmarkManage measures `manage` (the conductor verifying every BMC's
// credentials) for 1, 10 and 50 nodes, half behind IPMI BMCs (through
// ipmitool) and half behind one Redfish service (through gofish); then the
// time of a power-sync round over all of them, and the heap the BMC
// emulators take.
func BenchmarkManage(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchManage(b, n)
			}
		})
	}
}

func benchManage(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const pw = "bench-pw"

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	systems := map[string]bmc.Machine{}
	var ipmiPorts []uint16
	for i := 0; i < n; i++ {
		m := bmc.NewSim(bmc.Hardware{})
		if i%2 == 1 {
			systems[fmt.Sprintf("sys-%d", i)] = m
			continue
		}
		s, err := ipmi.New(ipmi.Config{Addr: "127.0.0.1:0", Username: "admin", Password: pw, Machine: m})
		if err != nil {
			b.Fatal(err)
		}
		go s.Serve(ctx)
		defer s.Close()
		ipmiPorts = append(ipmiPorts, s.Addr().Port())
	}
	rf, err := redfish.New(redfish.Config{Addr: "127.0.0.1:0", Username: "admin", Password: pw, Systems: systems})
	if err != nil {
		b.Fatal(err)
	}
	if err := rf.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer rf.Close()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	dir := b.TempDir()
	cfg := undercloud.Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0",
		Conductor: undercloud.ConductorConfig{PowerSyncInterval: undercloud.Duration(time.Second), PowerSyncWorkers: 8, ShutdownGrace: undercloud.Duration(time.Second)}}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- undercloud.Run(ctx, cfg, nil, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() { cancel(); <-done }()

	var names []string
	for i, port := range ipmiPorts {
		name := fmt.Sprintf("ipmi-%d", i)
		names = append(names, name)
		mustCreate(b, addr, map[string]any{"name": name, "driver": "ipmi", "driver_info": map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": pw, "ipmi_cipher_suite": "3"}})
	}
	for id := range systems {
		names = append(names, id)
		mustCreate(b, addr, map[string]any{"name": id, "driver": "redfish", "driver_info": map[string]any{
			"redfish_address": fmt.Sprintf("https://127.0.0.1:%d", rf.Addr().Port()), "redfish_system_id": "/redfish/v1/Systems/" + id,
			"redfish_username": "admin", "redfish_password": pw, "redfish_verify_ca": false}})
	}

	start := time.Now()
	for _, name := range names {
		if code, body, err := call(addr, "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}); err != nil || code != 202 {
			b.Fatalf("manage %s: %d %s %v", name, code, body, err)
		}
	}
	for _, name := range names {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			_, body, _ := call(addr, "GET", "/v1/nodes/"+name, nil)
			var m map[string]any
			_ = jsonUnmarshal(body, &m)
			if m["provision_state"] == "manageable" {
				break
			}
			if m["provision_state"] == "enroll" || time.Now().After(deadline) {
				b.Fatalf("%s: %v (%v)", name, m["provision_state"], m["last_error"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.ReportMetric(time.Since(start).Seconds(), "s/manage-all")

	// Power sync: two rounds that start after every node is managed.
	c0, s0 := syncHistogram(b, addr)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		count, sum := syncHistogram(b, addr)
		if count >= c0+3 {
			// Rounds over the managed nodes only.
			b.ReportMetric((sum-s0)/(count-c0), "s/sync-round")
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no power sync rounds")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ReportMetric(float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))/float64(n)/1024, "KiB-heap/BMC")
}

func mustCreate(b *testing.B, addr string, body map[string]any) {
	if code, resp, err := call(addr, "POST", "/v1/nodes", body); err != nil || code != 201 {
		b.Fatalf("create: %d %s %v", code, resp, err)
	}
}

// syncHistogram reads the power-sync round histogram's count and sum.
func syncHistogram(b *testing.B, addr string) (count, sum float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "strata_conductor_power_sync_seconds_count":
			count = v
		case "strata_conductor_power_sync_seconds_sum":
			sum = v
		}
	}
	return count, sum
}
