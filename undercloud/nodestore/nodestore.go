// Package nodestore keeps the undercloud's nodes, ports and node history in
// etcd, with the uniqueness of node names and port MAC addresses enforced in
// the same transactions that write the records.
//
// Keys, under the undercloud's prefix:
//
//	nodes/<uuid>                  the node record
//	names/<name>                  node uuid, for uniqueness and lookup by name
//	ports/<uuid>                  the port record
//	macs/<mac>                    port uuid, for uniqueness and lookup by MAC
//	portset/<node uuid>           bumped by every port change of the node
//	history/<node uuid>/<seq>     the node's history, in time order
//	locks/<node uuid>             the reservation of a conductor, on its lease
//	inventory/<node uuid>         the hardware inventory inspection stored
package nodestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
)

// Key prefixes.
const (
	nodesPrefix     = "nodes/"
	namesPrefix     = "names/"
	portsPrefix     = "ports/"
	macsPrefix      = "macs/"
	portsetPrefix   = "portset/"
	historyPrefix   = "history/"
	locksPrefix     = "locks/"
	inventoryPrefix = "inventory/"
)

// InventoryKey is the key of a node's stored inventory.
func InventoryKey(id string) string { return inventoryPrefix + id }

// StoredInventory is a node's inventory as its agent sent it, with when.
type StoredInventory struct {
	Inventory  json.RawMessage `json:"inventory"`
	PluginData json.RawMessage `json:"plugin_data,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

// Inventory returns the inventory stored for the node with this uuid.
func (st *Store) Inventory(ctx context.Context, node string) (*StoredInventory, error) {
	inv, _, err := store.GetJSON[StoredInventory](ctx, st.s, InventoryKey(node))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no inventory is stored for node %s: %w", node, inventory.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

// NodeKey is the key of a node record.
func NodeKey(id string) string { return nodesPrefix + id }

// LockKey is the key of a node's reservation.
func LockKey(id string) string { return locksPrefix + id }

// Store is the undercloud's node inventory on etcd.
type Store struct {
	s   *store.Store
	now func() time.Time
	seq atomic.Uint64
}

// New returns a node store over s.
func New(s *store.Store) *Store {
	return &Store{s: s, now: func() time.Time { return time.Now().UTC() }}
}

// Records is the record store underneath, for leases and locks.
func (st *Store) Records() *store.Store { return st.s }

// SetClock replaces the clock (tests).
func (st *Store) SetClock(now func() time.Time) { st.now = now }

// Now is the store's clock.
func (st *Store) Now() time.Time { return st.now() }

func notFound(kind, ident string) error {
	return fmt.Errorf("%s %s could not be found: %w", kind, ident, inventory.ErrNotFound)
}

// NewHistory returns a history event stamped with the store's clock.
func (st *Store) NewHistory(eventType, severity, event string) inventory.HistoryEvent {
	return inventory.HistoryEvent{
		UUID:      uuid.NewString(),
		CreatedAt: st.now(),
		Severity:  severity,
		EventType: eventType,
		Event:     event,
	}
}

// historyKey orders a node's events by time; the sequence number breaks
// ties within one clock tick.
func (st *Store) historyKey(node string, at time.Time) string {
	return fmt.Sprintf("%s%s/%020d-%06d", historyPrefix, node, at.UnixNano(), st.seq.Add(1)%1000000)
}

type userKey struct{}

// WithUser returns a context that names the user acting, for the history
// entries the store writes on its own (such as a node's creation).
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

func userFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// CreateNode stores a new node. It fills in the uuid (unless given), the
// creation time and the initial state (enroll) and fails with
// inventory.ErrDuplicate when the uuid or name is taken.
func (st *Store) CreateNode(ctx context.Context, n *inventory.Node) (*inventory.Node, error) {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	} else if !inventory.IsUUID(n.UUID) {
		return nil, inventory.Invalid("uuid", "%q is not a valid UUID", n.UUID)
	} else {
		n.UUID = strings.ToLower(n.UUID)
	}
	if err := inventory.ValidateName(n.Name); err != nil {
		return nil, err
	}
	n.Schema = inventory.SchemaVersion
	n.CreatedAt = st.now()
	if n.ProvisionState == "" {
		n.ProvisionState = inventory.StateEnroll
	}
	fillMaps(n)

	conds := []store.Cond{store.Absent(NodeKey(n.UUID))}
	ops := []store.Op{store.PutJSON(NodeKey(n.UUID), n)}
	if n.Name != "" {
		conds = append(conds, store.Absent(namesPrefix+n.Name))
		ops = append(ops, store.Put(namesPrefix+n.Name, []byte(n.UUID)))
	}
	ev := st.NewHistory("provisioning", "INFO", "node created in state "+n.ProvisionState)
	ev.To = n.ProvisionState
	ev.User = userFrom(ctx)
	ops = append(ops, store.PutJSON(st.historyKey(n.UUID, ev.CreatedAt), ev))
	if _, err := st.s.Commit(ctx, conds, ops); err != nil {
		return nil, duplicateOr(err, n)
	}
	return n, nil
}

func fillMaps(n *inventory.Node) {
	if n.DriverInfo == nil {
		n.DriverInfo = map[string]any{}
	}
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = map[string]any{}
	}
	if n.Properties == nil {
		n.Properties = map[string]any{}
	}
	if n.InstanceInfo == nil {
		n.InstanceInfo = map[string]any{}
	}
	if n.Extra == nil {
		n.Extra = map[string]any{}
	}
	if n.Traits == nil {
		n.Traits = []string{}
	}
}

func duplicateOr(err error, n *inventory.Node) error {
	var ce *store.CondError
	if errors.As(err, &ce) && errors.Is(err, store.ErrExists) {
		switch {
		case strings.HasPrefix(ce.Key, namesPrefix):
			return fmt.Errorf("a node with name %s already exists: %w", n.Name, inventory.ErrDuplicate)
		case strings.HasPrefix(ce.Key, nodesPrefix):
			return fmt.Errorf("a node with UUID %s already exists: %w", n.UUID, inventory.ErrDuplicate)
		}
	}
	return err
}

// GetNode returns the node with the given uuid or name, and its revision.
func (st *Store) GetNode(ctx context.Context, ident string) (*inventory.Node, int64, error) {
	id := ident
	if !inventory.IsUUID(ident) {
		r, err := st.s.Get(ctx, namesPrefix+ident)
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, notFound("node", ident)
		}
		if err != nil {
			return nil, 0, err
		}
		id = string(r.Value)
	}
	n, rev, err := store.GetJSON[inventory.Node](ctx, st.s, NodeKey(strings.ToLower(id)))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, notFound("node", ident)
	}
	if err != nil {
		return nil, 0, err
	}
	fillMaps(&n)
	return &n, rev, nil
}

// ListNodes returns every node, oldest first (Ironic's default order).
func (st *Store) ListNodes(ctx context.Context) ([]*inventory.Node, error) {
	recs, _, err := st.s.ListAll(ctx, nodesPrefix, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]*inventory.Node, 0, len(recs))
	for _, r := range recs {
		var n inventory.Node
		if err := json.Unmarshal(r.Value, &n); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
		fillMaps(&n)
		out = append(out, &n)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].UUID < out[j].UUID
	})
	return out, nil
}

// Tx collects what an update writes beside the node record: history
// entries, extra preconditions (a lock's fencing check) and extra writes.
type Tx struct {
	History []inventory.HistoryEvent
	Conds   []store.Cond
	Ops     []store.Op
}

// Record appends a history event.
func (tx *Tx) Record(ev inventory.HistoryEvent) { tx.History = append(tx.History, ev) }

// ErrFenced is returned when an update's extra precondition failed: the
// lock it was made under is no longer held.
var ErrFenced = errors.New("lost the node's reservation")

// UpdateNode applies fn to the node with uuid id and writes it back with a
// compare-and-swap, retrying on conflicting writes to the node. fn may add
// history, conditions and writes to tx; if one of its conditions fails the
// update returns ErrFenced. A rename is checked for uniqueness. fn may run
// more than once and must not have side effects; returning
// store.ErrNoChange leaves the node untouched.
func (st *Store) UpdateNode(ctx context.Context, id string, fn func(n *inventory.Node, tx *Tx) error) (*inventory.Node, int64, error) {
	for attempt := 0; attempt < 64; attempt++ {
		n, rev, err := st.GetNode(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		oldName := n.Name
		tx := &Tx{}
		if err := fn(n, tx); err != nil {
			if errors.Is(err, store.ErrNoChange) {
				return n, rev, nil
			}
			return nil, 0, err
		}
		if err := inventory.ValidateName(n.Name); err != nil {
			return nil, 0, err
		}
		now := st.now()
		n.UpdatedAt = &now
		conds := append([]store.Cond{store.Unchanged(NodeKey(n.UUID), rev)}, tx.Conds...)
		ops := append([]store.Op{store.PutJSON(NodeKey(n.UUID), n)}, tx.Ops...)
		if n.Name != oldName {
			if oldName != "" {
				ops = append(ops, store.Del(namesPrefix+oldName))
			}
			if n.Name != "" {
				conds = append(conds, store.Absent(namesPrefix+n.Name))
				ops = append(ops, store.Put(namesPrefix+n.Name, []byte(n.UUID)))
			}
		}
		for _, ev := range tx.History {
			ops = append(ops, store.PutJSON(st.historyKey(n.UUID, ev.CreatedAt), ev))
		}
		newRev, err := st.s.Commit(ctx, conds, ops)
		var ce *store.CondError
		switch {
		case err == nil:
			return n, newRev, nil
		case errors.As(err, &ce) && ce.Key == NodeKey(n.UUID), errors.As(err, &ce) && ce.Key == "":
			continue
		case errors.As(err, &ce) && strings.HasPrefix(ce.Key, namesPrefix):
			return nil, 0, duplicateOr(err, n)
		case errors.As(err, &ce):
			return nil, 0, fmt.Errorf("%s: %w", ce.Key, ErrFenced)
		default:
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("node %s: %w", id, store.ErrConflict)
}

// DeleteNode removes a node with its ports, name, and history, if check
// (when given) accepts the node as it is at the time of the delete.
func (st *Store) DeleteNode(ctx context.Context, ident string, check func(*inventory.Node) error) error {
	for attempt := 0; attempt < 16; attempt++ {
		n, rev, err := st.GetNode(ctx, ident)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(n); err != nil {
				return err
			}
		}
		ports, psRev, err := st.portsOf(ctx, n.UUID)
		if err != nil {
			return err
		}
		conds := []store.Cond{store.Unchanged(NodeKey(n.UUID), rev), store.Unchanged(portsetPrefix+n.UUID, psRev)}
		ops := []store.Op{
			store.Del(NodeKey(n.UUID)),
			store.Del(portsetPrefix + n.UUID),
			store.DelPrefix(historyPrefix + n.UUID + "/"),
			store.Del(InventoryKey(n.UUID)),
		}
		if n.Name != "" {
			ops = append(ops, store.Del(namesPrefix+n.Name))
		}
		for _, p := range ports {
			ops = append(ops, store.Del(portsPrefix+p.UUID), store.Del(macsPrefix+p.Address))
		}
		_, err = st.s.Commit(ctx, conds, ops)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) {
			continue
		}
		return err
	}
	return fmt.Errorf("node %s: %w", ident, store.ErrConflict)
}

// portsOf returns a node's ports and the revision of its port set.
func (st *Store) portsOf(ctx context.Context, node string) ([]*inventory.Port, int64, error) {
	var psRev int64
	r, err := st.s.Get(ctx, portsetPrefix+node)
	switch {
	case err == nil:
		psRev = r.ModRevision
	case errors.Is(err, store.ErrNotFound):
	default:
		return nil, 0, err
	}
	ids := []string{}
	if len(r.Value) > 0 {
		if err := json.Unmarshal(r.Value, &ids); err != nil {
			return nil, 0, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
	}
	out := make([]*inventory.Port, 0, len(ids))
	for _, id := range ids {
		p, _, err := st.GetPort(ctx, id)
		if errors.Is(err, inventory.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
	}
	return out, psRev, nil
}

// History returns a node's history, oldest first.
func (st *Store) History(ctx context.Context, node string) ([]inventory.HistoryEvent, error) {
	recs, _, err := st.s.ListAll(ctx, historyPrefix+node+"/", 1000)
	if err != nil {
		return nil, err
	}
	out := make([]inventory.HistoryEvent, 0, len(recs))
	for _, r := range recs {
		var ev inventory.HistoryEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// AppendHistory records events for a node outside of an update.
func (st *Store) AppendHistory(ctx context.Context, node string, evs ...inventory.HistoryEvent) error {
	ops := make([]store.Op, 0, len(evs))
	for _, ev := range evs {
		ops = append(ops, store.PutJSON(st.historyKey(node, ev.CreatedAt), ev))
	}
	_, err := st.s.Commit(ctx, []store.Cond{}, ops)
	return err
}
