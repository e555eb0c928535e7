package keyring

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSealUnseal(t *testing.T) {
	ctx := context.Background()
	st := store.New(etcdtest.Run(t), "/test/")
	k, err := Load(ctx, st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Seal([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Unseal(ctx, tok)
	if err != nil || string(got) != "hello" {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x01
		if _, err := k.Unseal(ctx, base64.RawURLEncoding.EncodeToString(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("flipping a bit of byte %d gave %v, want ErrInvalid", i, err)
		}
	}
	for _, s := range []string{"", "x", "!!!", base64.RawURLEncoding.EncodeToString(make([]byte, 40))} {
		if _, err := k.Unseal(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Unseal(%q) = %v", s, err)
		}
	}
	if _, err := Load(ctx, st, Config{MaxActive: 2}); err == nil {
		t.Error("MaxActive 2 was accepted")
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	cli := etcdtest.Run(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, err := Load(ctx, store.New(cli, "/test/"), Config{MaxActive: 4, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	// A second process on the same etcd shares the key set.
	b, err := Load(ctx, store.New(cli, "/test/"), Config{MaxActive: 4, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	sealed := []string{}
	for i := range 4 {
		tok, _ := a.Seal([]byte{byte(i)})
		sealed = append(sealed, tok)
		if err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		keys := a.Keys()
		if keys[0].State != Staged || keys[1].State != Primary || len(keys) > 4 {
			t.Fatalf("after rotation %d: %+v", i+1, keys)
		}
	}
	// b has not reread the key set: a token sealed with a's current
	// primary names a key b does not know, so b rereads and opens it.
	c.advance(2 * time.Second)
	fresh, _ := a.Seal([]byte("fresh"))
	if _, err := b.Unseal(ctx, fresh); err != nil {
		t.Fatalf("b cannot open a token sealed after rotations: %v", err)
	}
	// With 4 keys kept, the last two primaries still open; older do not.
	for i, tok := range sealed {
		_, errA := a.Unseal(ctx, tok)
		_, errB := b.Unseal(ctx, tok)
		wantOK := i >= 2
		if (errA == nil) != wantOK || (errB == nil) != wantOK {
			t.Errorf("token %d: a %v, b %v, want valid = %v", i, errA, errB, wantOK)
		}
	}
	tok, _ := b.Seal([]byte("b"))
	if _, err := a.Unseal(ctx, tok); err != nil {
		t.Errorf("a cannot open b's token: %v", err)
	}
}

func TestRotateIfOlderOnce(t *testing.T) {
	ctx := context.Background()
	cli := etcdtest.Run(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var rings []*Keyring
	for range 4 {
		k, err := Load(ctx, store.New(cli, "/test/"), Config{Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		rings = append(rings, k)
	}
	c.advance(25 * time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	rotations := 0
	for _, k := range rings {
		wg.Go(func() {
			ok, err := k.RotateIfOlder(ctx, 24*time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				rotations++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if rotations != 1 {
		t.Errorf("%d processes rotated, want exactly 1", rotations)
	}
}

func TestWatchFollowsRotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli := etcdtest.Run(t)
	a, _ := Load(ctx, store.New(cli, "/test/"), Config{})
	b, _ := Load(ctx, store.New(cli, "/test/"), Config{})
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Watch(ctx) }()
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	want := a.Keys()[1].ID
	deadline := time.Now().Add(20 * time.Second)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for b.primaryID() != want {
		if time.Now().After(deadline) {
			t.Fatal("b never saw the rotation")
		}
		<-poll.C
	}
	cancel()
	<-done
}
