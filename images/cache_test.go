package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacloud/strata/images"
)

// imageServer serves /NAME as NAME repeated to 1 MiB of distinct bytes,
// counting the downloads of each and the most at once.
type imageServer struct {
	*httptest.Server
	mu      sync.Mutex
	gets    map[string]int
	active  atomic.Int32
	most    atomic.Int32
	release chan struct{} // when set, each download waits for it
}

func newImageServer(t *testing.T) *imageServer {
	s := &imageServer{gets: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.active.Add(1)
		defer s.active.Add(-1)
		for {
			m := s.most.Load()
			if n <= m || s.most.CompareAndSwap(m, n) {
				break
			}
		}
		s.mu.Lock()
		s.gets[r.URL.Path]++
		rel := s.release
		s.mu.Unlock()
		if rel != nil {
			<-rel
		}
		w.Write(image(r.URL.Path))
	}))
	t.Cleanup(s.Close)
	return s
}

func image(name string) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%-16s", name)), 1<<16) }

func sum(name string) string {
	h := sha256.Sum256(image(name))
	return hex.EncodeToString(h[:])
}

func (s *imageServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[name]
}

// TestCacheEvictsTheLeastRecentlyUsed: with room for two 1 MiB images,
// a third evicts the one used least recently, which is fetched again
// when asked for.
func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	srv := newImageServer(t)
	c, err := images.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.MaxBytes = 2<<20 + 512<<10
	get := func(name string) {
		t.Helper()
		if _, err := c.Raw(context.Background(), srv.URL+name, sum(name)); err != nil {
			t.Fatal(err)
		}
	}
	get("/a")
	time.Sleep(20 * time.Millisecond) // distinct modification times
	get("/b")
	time.Sleep(20 * time.Millisecond)
	get("/a") // a hit: /a is now the most recent
	time.Sleep(20 * time.Millisecond)
	get("/c") // evicts /b
	get("/a")
	if n := srv.count("/a"); n != 1 {
		t.Errorf("/a was fetched %d times, want once (it was used recently)", n)
	}
	get("/b")
	if n := srv.count("/b"); n != 2 {
		t.Errorf("/b was fetched %d times, want twice (evicted, then asked for again)", n)
	}
}

// TestCacheBoundsFetches: six different images asked for at once are
// fetched two at a time.
func TestCacheBoundsFetches(t *testing.T) {
	srv := newImageServer(t)
	srv.release = make(chan struct{})
	c, err := images.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.SetMaxFetches(2)
	var wg sync.WaitGroup
	for i := range 6 {
		name := fmt.Sprintf("/img%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Raw(context.Background(), srv.URL+name, sum(name)); err != nil {
				t.Error(err)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.active.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // would a third start?
	close(srv.release)
	wg.Wait()
	if m := srv.most.Load(); m != 2 {
		t.Errorf("%d fetches at once, want 2", m)
	}
}
