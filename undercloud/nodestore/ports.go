package nodestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
)

// CreatePort stores a new port for an existing node. The MAC must be
// unique across all nodes (inventory.ErrDuplicate otherwise).
func (st *Store) CreatePort(ctx context.Context, p *inventory.Port) (*inventory.Port, error) {
	mac, err := inventory.ParseMAC(p.Address)
	if err != nil {
		return nil, err
	}
	p.Address = mac
	if p.UUID == "" {
		p.UUID = uuid.NewString()
	} else if !inventory.IsUUID(p.UUID) {
		return nil, inventory.Invalid("uuid", "%q is not a valid UUID", p.UUID)
	}
	p.Schema = inventory.SchemaVersion
	p.CreatedAt = st.now()
	if p.LocalLinkConnection == nil {
		p.LocalLinkConnection = map[string]string{}
	}
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	for attempt := 0; attempt < 16; attempt++ {
		n, _, err := st.GetNode(ctx, p.NodeUUID)
		if err != nil {
			return nil, err
		}
		p.NodeUUID = n.UUID
		ids, psRev, err := st.portIDs(ctx, n.UUID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, p.UUID)
		conds := []store.Cond{
			store.Exists(NodeKey(n.UUID)),
			store.Unchanged(portsetPrefix+n.UUID, psRev),
			store.Absent(macsPrefix + mac),
			store.Absent(portsPrefix + p.UUID),
		}
		ops := []store.Op{
			store.PutJSON(portsPrefix+p.UUID, p),
			store.Put(macsPrefix+mac, []byte(p.UUID)),
			store.PutJSON(portsetPrefix+n.UUID, ids),
		}
		_, err = st.s.Commit(ctx, conds, ops)
		var ce *store.CondError
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &ce) && strings.HasPrefix(ce.Key, macsPrefix):
			return nil, fmt.Errorf("a port with MAC address %s already exists: %w", mac, inventory.ErrDuplicate)
		case errors.As(err, &ce) && strings.HasPrefix(ce.Key, portsPrefix):
			return nil, fmt.Errorf("a port with UUID %s already exists: %w", p.UUID, inventory.ErrDuplicate)
		case errors.As(err, &ce) && strings.HasPrefix(ce.Key, nodesPrefix):
			return nil, notFound("node", p.NodeUUID)
		case errors.Is(err, store.ErrConflict):
			continue
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("ports of node %s: %w", p.NodeUUID, store.ErrConflict)
}

func (st *Store) portIDs(ctx context.Context, node string) ([]string, int64, error) {
	r, err := st.s.Get(ctx, portsetPrefix+node)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	if err := json.Unmarshal(r.Value, &ids); err != nil {
		return nil, 0, fmt.Errorf("%s: decode: %w", r.Key, err)
	}
	return ids, r.ModRevision, nil
}

// GetPort returns the port with uuid id, or the port with MAC address id.
func (st *Store) GetPort(ctx context.Context, id string) (*inventory.Port, int64, error) {
	key := id
	if !inventory.IsUUID(id) {
		mac, err := inventory.ParseMAC(id)
		if err != nil {
			return nil, 0, notFound("port", id)
		}
		r, err := st.s.Get(ctx, macsPrefix+mac)
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, notFound("port", id)
		}
		if err != nil {
			return nil, 0, err
		}
		key = string(r.Value)
	}
	p, rev, err := store.GetJSON[inventory.Port](ctx, st.s, portsPrefix+strings.ToLower(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, notFound("port", id)
	}
	if err != nil {
		return nil, 0, err
	}
	return &p, rev, nil
}

// PortByMAC returns the port with the given MAC address.
func (st *Store) PortByMAC(ctx context.Context, mac string) (*inventory.Port, error) {
	p, _, err := st.GetPort(ctx, mac)
	return p, err
}

// ListPorts returns the ports of one node (by uuid or name), or every port
// when node is empty, oldest first.
func (st *Store) ListPorts(ctx context.Context, node string) ([]*inventory.Port, error) {
	if node != "" {
		n, _, err := st.GetNode(ctx, node)
		if err != nil {
			return nil, err
		}
		ports, _, err := st.portsOf(ctx, n.UUID)
		return ports, err
	}
	recs, _, err := st.s.ListAll(ctx, portsPrefix, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]*inventory.Port, 0, len(recs))
	for _, r := range recs {
		var p inventory.Port
		if err := json.Unmarshal(r.Value, &p); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", r.Key, err)
		}
		out = append(out, &p)
	}
	slices.SortStableFunc(out, func(a, b *inventory.Port) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out, nil
}

// UpdatePort applies fn to a port and writes it back. A changed MAC is
// checked for uniqueness; moving a port to another node is refused.
func (st *Store) UpdatePort(ctx context.Context, id string, fn func(*inventory.Port) error) (*inventory.Port, error) {
	for attempt := 0; attempt < 16; attempt++ {
		p, rev, err := st.GetPort(ctx, id)
		if err != nil {
			return nil, err
		}
		old := *p
		if err := fn(p); err != nil {
			return nil, err
		}
		mac, err := inventory.ParseMAC(p.Address)
		if err != nil {
			return nil, err
		}
		p.Address = mac
		if p.NodeUUID != old.NodeUUID {
			return nil, inventory.Invalid("node_uuid", "a port can not be moved to another node")
		}
		now := st.now()
		p.UpdatedAt = &now
		conds := []store.Cond{store.Unchanged(portsPrefix+p.UUID, rev)}
		ops := []store.Op{store.PutJSON(portsPrefix+p.UUID, p)}
		if mac != old.Address {
			conds = append(conds, store.Absent(macsPrefix+mac))
			ops = append(ops, store.Del(macsPrefix+old.Address), store.Put(macsPrefix+mac, []byte(p.UUID)))
		}
		_, err = st.s.Commit(ctx, conds, ops)
		var ce *store.CondError
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &ce) && strings.HasPrefix(ce.Key, macsPrefix):
			return nil, fmt.Errorf("a port with MAC address %s already exists: %w", mac, inventory.ErrDuplicate)
		case errors.Is(err, store.ErrConflict):
			continue
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("port %s: %w", id, store.ErrConflict)
}

// DeletePort removes a port, if check (when given) accepts the port's node.
func (st *Store) DeletePort(ctx context.Context, id string, check func(*inventory.Node) error) error {
	for attempt := 0; attempt < 16; attempt++ {
		p, rev, err := st.GetPort(ctx, id)
		if err != nil {
			return err
		}
		if check != nil {
			n, _, err := st.GetNode(ctx, p.NodeUUID)
			if err != nil {
				return err
			}
			if err := check(n); err != nil {
				return err
			}
		}
		ids, psRev, err := st.portIDs(ctx, p.NodeUUID)
		if err != nil {
			return err
		}
		ids = slices.DeleteFunc(ids, func(s string) bool { return s == p.UUID })
		conds := []store.Cond{store.Unchanged(portsPrefix+p.UUID, rev), store.Unchanged(portsetPrefix+p.NodeUUID, psRev)}
		ops := []store.Op{
			store.Del(portsPrefix + p.UUID),
			store.Del(macsPrefix + p.Address),
			store.PutJSON(portsetPrefix+p.NodeUUID, ids),
		}
		_, err = st.s.Commit(ctx, conds, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("port %s: %w", id, store.ErrConflict)
}
