package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
)

func newStore(t *testing.T) *store.Store {
	return store.New(etcdtest.Run(t), "/test/")
}

func TestCreateGetUpdateDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	rev, err := s.Create(ctx, "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", []byte("2")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	r, err := s.Get(ctx, "a")
	if err != nil || string(r.Value) != "1" || r.ModRevision != rev {
		t.Fatalf("get: %+v %v", r, err)
	}
	if _, err := s.Update(ctx, "a", []byte("3"), rev-1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: got %v, want ErrConflict", err)
	}
	rev2, err := s.Update(ctx, "a", []byte("3"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a", rev); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: got %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, "a", rev2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: got %v, want ErrNotFound", err)
	}
}

func TestCommitNamesFailedKey(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Create(ctx, "idx/mac/aa", []byte("n1")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Commit(ctx,
		[]store.Cond{store.Absent("nodes/n2"), store.Absent("idx/mac/aa")},
		[]store.Op{store.Put("nodes/n2", []byte("{}")), store.Put("idx/mac/aa", []byte("n2"))})
	var ce *store.CondError
	if !errors.As(err, &ce) || ce.Key != "idx/mac/aa" || !errors.Is(err, store.ErrExists) {
		t.Fatalf("got %v, want ErrExists on idx/mac/aa", err)
	}
	if _, err := s.Get(ctx, "nodes/n2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed commit wrote nodes/n2: %v", err)
	}
}

func TestListPages(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := 0; i < 25; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("n/%02d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	o := store.ListOptions{Limit: 10}
	for {
		p, err := s.List(ctx, "n/", o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			keys = append(keys, r.Key)
		}
		if !p.More {
			break
		}
		o.After = p.Records[len(p.Records)-1].Key
	}
	if len(keys) != 25 || keys[0] != "n/00" || keys[24] != "n/24" {
		t.Fatalf("paged keys = %v", keys)
	}
	all, _, err := s.ListAll(ctx, "n/", 7)
	if err != nil || len(all) != 25 {
		t.Fatalf("ListAll: %d records, %v", len(all), err)
	}
	if n, err := s.Count(ctx, "n/"); err != nil || n != 25 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func TestModifyUnderContention(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	type counter struct{ N int }
	if _, err := s.Commit(ctx, nil, []store.Op{store.PutJSON("c", counter{})}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, _, err := store.Modify(ctx, s, "c", func(c *counter) error { c.N++; return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	c, _, err := store.GetJSON[counter](ctx, s, "c")
	if err != nil || c.N != 40 {
		t.Fatalf("counter = %d, %v; want 40", c.N, err)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	ch := s.Watch(ctx, "w/", 0)
	rev, err := s.Create(ctx, "w/1", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "w/1", rev); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Deleted || ev.Record.Key != "w/1" || string(ev.Record.Value) != "a" {
		t.Fatalf("first event %+v", ev)
	}
	ev = <-ch
	if !ev.Deleted || ev.Record.Key != "w/1" {
		t.Fatalf("second event %+v", ev)
	}
}

func TestOversizedValueRefused(t *testing.T) {
	s := newStore(t)
	big := make([]byte, store.MaxValueSize+1)
	if _, err := s.Create(context.Background(), "big", big); err == nil {
		t.Fatal("oversized value was accepted")
	}
}
