package etcdleases_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/etcdleases"
	"github.com/stratacloud/strata/pxe/dhcp/leasestest"
)

// BenchmarkPut measures lease writes per second into an embedded etcd,
// from 64 concurrent writers (the server's default worker count), each
// renewing its own lease: the store's cost of one DORA.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	s := etcdleases.New(store.New(etcdtest.Run(b), "/strata/undercloud/"))
	const writers = 64
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{10, 9, 1, byte(w)})
			for n.Add(1) <= int64(b.N) {
				now := time.Now()
				l := dhcp.Lease{MAC: leasestest.MAC(w), IP: ip, State: dhcp.Bound, Expiry: now.Add(time.Hour), Updated: now}
				if err := s.Put(ctx, l, now); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
}
