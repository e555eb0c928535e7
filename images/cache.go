package images

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/stratacloud/strata/images/blob"
)

// Cache is the undercloud's cache of deploy images, as raw disks in
// a blob store: each image is downloaded once, checked against its
// SHA-256, converted from qcow2 when it is one (qemu-img, once per
// source), and then served to every node that deploys it.
type Cache struct {
	store  *blob.Store
	conv   *Converter
	client *http.Client
	group  singleflight.Group
}

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
		store:  s,
		conv:   &Converter{Store: s},
		client: &http.Client{Timeout: 6 * time.Hour},
	}, nil
}

// Raw returns the raw disk of the image at source whose SHA-256 is sum,
// fetching and converting it first if the cache does not hold it yet.
// Concurrent requests for one image share one download.
func (c *Cache) Raw(ctx context.Context, source, sum string) (blob.Blob, error) {
	if b, err := c.store.Stat(blob.Algorithm + sum); err == nil {
		return b, nil // a raw image, already here
	}
	if b, err := c.store.Ref(convertedRef, sum); err == nil {
		return b, nil // converted before
	}
	v, err, _ := c.group.Do(sum+" "+source, func() (any, error) {
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
	})
	if err != nil {
		return blob.Blob{}, err
	}
	return v.(blob.Blob), nil
}

// Open opens a raw image of the cache.
func (c *Cache) Open(digest string) (*os.File, error) { return c.store.Open(digest) }
