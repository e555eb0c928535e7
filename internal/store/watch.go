package store

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Event is one change seen by Watch.
type Event struct {
	// Deleted is true when the record was removed; Record then holds the
	// key and the revision of the delete.
	Deleted bool
	Record  Record
}

// Watch reports changes under prefix from revision rev on (zero: from now)
// until ctx ends or the watch fails, then closes the channel. A watch can
// lose its place (compaction, a partition), so every consumer must also
// resync by listing: the channel closing is that signal.
func (s *Store) Watch(ctx context.Context, prefix string, rev int64) <-chan Event {
	out := make(chan Event, 64)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.watch.Watch(wctx, prefix, opts...)
	go func() {
		defer close(out)
		defer cancel()
		for resp := range wch {
			if resp.Err() != nil {
				return
			}
			for _, ev := range resp.Events {
				e := Event{Deleted: ev.Type == clientv3.EventTypeDelete, Record: fromKV(ev.Kv)}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
