package identity

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
)

// A revocation event revokes every token issued up to IssuedBefore that
// matches all of its set fields: one token (by audit ID, which also takes
// the tokens rescoped from it), a user's tokens (password changed, user
// disabled or deleted), a project's, a domain's, or an application
// credential's. Events live in etcd, so that every identity process, and
// every cache in front of one, refuses the same tokens; each process
// keeps them in memory, current through a watch and a periodic resync,
// and forgets them once every token they could match has expired.
type revocation struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id,omitempty"`
	ProjectID    string    `json:"project_id,omitempty"`
	DomainID     string    `json:"domain_id,omitempty"`
	AuditID      string    `json:"audit_id,omitempty"`
	AppCredID    string    `json:"application_credential_id,omitempty"`
	IssuedBefore time.Time `json:"issued_before"`
	PruneAfter   time.Time `json:"prune_after"`
}

func (ev *revocation) matches(c *api.Credentials) bool {
	if c.IssuedAt.After(ev.IssuedBefore) {
		return false
	}
	if ev.UserID != "" && ev.UserID != c.UserID {
		return false
	}
	if ev.ProjectID != "" && ev.ProjectID != c.ProjectID {
		return false
	}
	if ev.DomainID != "" && ev.DomainID != c.DomainID && ev.DomainID != c.UserDomainID && ev.DomainID != c.ProjectDomainID {
		return false
	}
	if ev.AuditID != "" && !slices.Contains(c.AuditIDs, ev.AuditID) {
		return false
	}
	if ev.AppCredID != "" && ev.AppCredID != c.AppCredID {
		return false
	}
	return true
}

type revocations struct {
	st       *store.Store
	now      func() time.Time
	lifetime time.Duration // the longest a token lives
	log      *slog.Logger

	mu     sync.RWMutex
	events map[string]revocation
}

func newRevocations(st *store.Store, now func() time.Time, lifetime time.Duration, log *slog.Logger) *revocations {
	return &revocations{st: st, now: now, lifetime: lifetime, log: log, events: map[string]revocation{}}
}

// IsRevoked implements api.RevocationChecker.
func (r *revocations) IsRevoked(c *api.Credentials) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, ev := range r.events {
		if ev.matches(c) {
			return true
		}
	}
	return false
}

// revoke records an event in etcd and in this process at once.
func (r *revocations) revoke(ctx context.Context, ev revocation) error {
	ev.ID = newID()
	if ev.IssuedBefore.IsZero() {
		ev.IssuedBefore = r.now().UTC()
	}
	// A second of slack for clocks that differ between processes.
	ev.PruneAfter = ev.IssuedBefore.Add(r.lifetime + time.Second)
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := r.st.Create(ctx, revocationsPrefix+ev.ID, b); err != nil {
		return err
	}
	r.mu.Lock()
	r.events[ev.ID] = ev
	r.mu.Unlock()
	return nil
}

// load replaces the in-memory events with etcd's, and returns the
// revision it read at.
func (r *revocations) load(ctx context.Context) (int64, error) {
	recs, rev, err := r.st.ListAll(ctx, revocationsPrefix, 0)
	if err != nil {
		return 0, err
	}
	events := make(map[string]revocation, len(recs))
	for _, rec := range recs {
		var ev revocation
		if err := json.Unmarshal(rec.Value, &ev); err != nil {
			r.log.Warn("revocation event unreadable, ignored", "key", rec.Key, "err", err)
			continue
		}
		events[ev.ID] = ev
	}
	r.mu.Lock()
	// Keep events this process wrote after the listing's revision: they
	// are in etcd too and the next load will see them.
	for id, ev := range r.events {
		if _, ok := events[id]; !ok && ev.IssuedBefore.After(r.now().Add(-time.Minute)) {
			events[id] = ev
		}
	}
	r.events = events
	r.mu.Unlock()
	return rev, nil
}

// prune deletes the events that can no longer match an unexpired token.
func (r *revocations) prune(ctx context.Context) {
	now := r.now()
	recs, _, err := r.st.ListAll(ctx, revocationsPrefix, 0)
	if err != nil {
		return
	}
	for _, rec := range recs {
		var ev revocation
		if json.Unmarshal(rec.Value, &ev) == nil && now.After(ev.PruneAfter) {
			// Another process may prune the same event: a conflict is fine.
			_ = r.st.Delete(ctx, rec.Key, rec.ModRevision)
			r.mu.Lock()
			delete(r.events, ev.ID)
			r.mu.Unlock()
		}
	}
}

// run keeps the events current until ctx ends: a watch applies changes
// as they happen, and every resync period (and whenever the watch breaks)
// the whole list is reread and the expired events are pruned.
func (r *revocations) run(ctx context.Context, resync time.Duration) {
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for ctx.Err() == nil {
		rev, err := r.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("revocation list: reload failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			continue
		}
		r.prune(ctx)
		wctx, cancel := context.WithCancel(ctx)
		events := r.st.Watch(wctx, revocationsPrefix, rev+1)
		broken := false
	watching:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					broken = true
					break watching
				}
				r.apply(ev)
			case <-ticker.C:
				break watching
			}
		}
		cancel()
		if broken && ctx.Err() == nil {
			// The watch ended (compaction, a lost leader): pause a moment
			// so a broken cluster is not spun on, then resync.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (r *revocations) apply(e store.Event) {
	id := unseg(e.Record.Key[len(revocationsPrefix):])
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Deleted {
		delete(r.events, id)
		return
	}
	var ev revocation
	if json.Unmarshal(e.Record.Value, &ev) == nil {
		r.events[ev.ID] = ev
	}
}
