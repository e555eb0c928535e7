package images

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/stratacloud/strata/images/blob"
)

// Cache is the undercloud's cache of deploy images, as raw disks in
// a blob store: each image is downloaded once, checked against its
// SHA-256, converted from qcow2 when it is one (qemu-img, once per
// source), and then served to every node that deploys it.
//
// It holds at most MaxBytes of disk, evicting the images used least
// recently (an agent streaming an evicted image keeps its open file; the
// next deploy of it fetches it again), and fetches at most MaxFetches
// images at once (the rest wait their turn), so that a burst of deploys
// of different images neither fills the disk nor saturates the network.
type Cache struct {
	store   *blob.Store
	conv    *Converter
	client  *http.Client
	group   singleflight.Group
	fetches chan struct{}
	// MaxBytes bounds the disk space the cache takes; 0 is unbounded.
	MaxBytes int64
	mu       sync.Mutex // serializes evictions
}

// Defaults of a cache's bounds: Ironic's image cache size (20 GiB), and
// four fetches at once.
const (
	DefaultCacheMaxBytes   = 20 << 30
	DefaultCacheMaxFetches = 4
)

// NewCache opens (or makes) the cache in dir and clears what an earlier
// run left half-written.
func NewCache(dir string) (*Cache, error) {
	s, err := blob.New(dir)
	if err != nil {
		return nil, err
	}
	if err := s.RemoveTemps(); err != nil {
		return nil, err
	}
	return &Cache{
		store:    s,
		conv:     &Converter{Store: s},
		client:   &http.Client{Timeout: 6 * time.Hour},
		fetches:  make(chan struct{}, DefaultCacheMaxFetches),
		MaxBytes: DefaultCacheMaxBytes,
	}, nil
}

// SetMaxFetches bounds the images fetched (and converted) at once; call
// it before the cache is used.
func (c *Cache) SetMaxFetches(n int) { c.fetches = make(chan struct{}, max(n, 1)) }

// Raw returns the raw disk of the image at source whose SHA-256 is sum,
// fetching and converting it first if the cache does not hold it yet.
// Concurrent requests for one image share one download.
func (c *Cache) Raw(ctx context.Context, source, sum string) (blob.Blob, error) {
	if b, err := c.store.Stat(blob.Algorithm + sum); err == nil {
		c.store.Touch(b.Digest)
		return b, nil // a raw image, already here
	}
	if b, err := c.store.Ref(convertedRef, sum); err == nil {
		c.store.Touch(b.Digest)
		return b, nil // converted before
	}
	v, err, _ := c.group.Do(sum+" "+source, func() (any, error) {
		select {
		case c.fetches <- struct{}{}:
			defer func() { <-c.fetches }()
		case <-ctx.Done():
			return blob.Blob{}, ctx.Err()
		}
		b, err := c.fetch(ctx, source, sum)
		if err == nil {
			c.evict(b.Digest)
		}
		return b, err
	})
	if err != nil {
		return blob.Blob{}, err
	}
	return v.(blob.Blob), nil
}

// fetch downloads the image and stores it as a raw disk.
func (c *Cache) fetch(ctx context.Context, source, sum string) (blob.Blob, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, source, nil)
	if err != nil {
		return blob.Blob{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return blob.Blob{}, fmt.Errorf("image %s: %w", source, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return blob.Blob{}, fmt.Errorf("image %s: %s", source, resp.Status)
	}
	return c.conv.ToRaw(ctx, resp.Body, "", sum)
}

// evict removes the least recently used images until the cache fits in
// MaxBytes, sparing keep (the image just fetched).
func (c *Cache) evict(keep string) {
	if c.MaxBytes <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	blobs, err := c.store.List()
	if err != nil {
		return
	}
	var total int64
	for _, b := range blobs {
		total += b.Allocated
	}
	slices.SortFunc(blobs, func(a, b blob.Blob) int { return a.ModTime.Compare(b.ModTime) })
	for _, b := range blobs {
		if total <= c.MaxBytes {
			return
		}
		if b.Digest == keep {
			continue
		}
		if c.store.Delete(b.Digest) == nil {
			total -= b.Allocated
		}
	}
}

// Open opens a raw image of the cache.
func (c *Cache) Open(digest string) (*os.File, error) { return c.store.Open(digest) }
