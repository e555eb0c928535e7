package nodestore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

func newStore(t *testing.T) *nodestore.Store {
	return nodestore.New(store.New(etcdtest.Run(t), "/strata/undercloud/"))
}

func TestNodeLifecycle(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)

	n, err := st.CreateNode(ctx, &inventory.Node{Name: "node-0", Driver: inventory.DriverFake})
	if err != nil {
		t.Fatal(err)
	}
	if n.UUID == "" || n.ProvisionState != inventory.StateEnroll || n.CreatedAt.IsZero() {
		t.Fatalf("created node %+v", n)
	}
	if _, err := st.CreateNode(ctx, &inventory.Node{Name: "node-0", Driver: inventory.DriverFake}); !errors.Is(err, inventory.ErrDuplicate) {
		t.Fatalf("duplicate name: got %v", err)
	}
	byName, _, err := st.GetNode(ctx, "node-0")
	if err != nil || byName.UUID != n.UUID {
		t.Fatalf("get by name: %v %v", byName, err)
	}
	if _, _, err := st.GetNode(ctx, "nope"); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}

	// Rename, and the old name is free again.
	if _, _, err := st.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		n.Name = "node-a"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.GetNode(ctx, "node-0"); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("old name still resolves: %v", err)
	}
	other, err := st.CreateNode(ctx, &inventory.Node{Name: "node-0", Driver: inventory.DriverFake})
	if err != nil {
		t.Fatal(err)
	}
	// Renaming onto a taken name fails and changes nothing.
	if _, _, err := st.UpdateNode(ctx, other.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		n.Name = "node-a"
		return nil
	}); !errors.Is(err, inventory.ErrDuplicate) {
		t.Fatalf("rename onto taken name: %v", err)
	}

	// Ports: unique MACs, normalized.
	p, err := st.CreatePort(ctx, &inventory.Port{NodeUUID: "node-a", Address: "52:54:00:AA:BB:01"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Address != "52:54:00:aa:bb:01" || p.NodeUUID != n.UUID {
		t.Fatalf("port %+v", p)
	}
	if _, err := st.CreatePort(ctx, &inventory.Port{NodeUUID: other.UUID, Address: "52:54:00:aa:bb:01"}); !errors.Is(err, inventory.ErrDuplicate) {
		t.Fatalf("duplicate MAC: %v", err)
	}
	if _, err := st.CreatePort(ctx, &inventory.Port{NodeUUID: other.UUID, Address: "not-a-mac"}); !errors.Is(err, inventory.ErrInvalid) {
		t.Fatalf("bad MAC: %v", err)
	}
	if _, err := st.CreatePort(ctx, &inventory.Port{NodeUUID: "missing", Address: "52:54:00:aa:bb:02"}); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("port on missing node: %v", err)
	}
	ports, err := st.ListPorts(ctx, n.UUID)
	if err != nil || len(ports) != 1 {
		t.Fatalf("ports of node: %v %v", ports, err)
	}
	if got, err := st.PortByMAC(ctx, "52:54:00:aa:bb:01"); err != nil || got.UUID != p.UUID {
		t.Fatalf("by MAC: %v %v", got, err)
	}

	// Delete refuses through check, then removes node, ports and indexes.
	refuse := errors.New("refused")
	if err := st.DeleteNode(ctx, n.UUID, func(*inventory.Node) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("check not applied: %v", err)
	}
	if err := st.DeleteNode(ctx, n.UUID, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.GetPort(ctx, p.UUID); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("port survived its node: %v", err)
	}
	if _, err := st.CreatePort(ctx, &inventory.Port{NodeUUID: other.UUID, Address: "52:54:00:aa:bb:01"}); err != nil {
		t.Fatalf("MAC not freed by delete: %v", err)
	}
	hist, err := st.History(ctx, other.UUID)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %v %v", hist, err)
	}
}

func TestUpdateFencedByLock(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	n, err := st.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = st.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		tx.Conds = append(tx.Conds, store.Created(nodestore.LockKey(n.UUID), 12345))
		n.LastError = "x"
		return nil
	})
	if !errors.Is(err, nodestore.ErrFenced) {
		t.Fatalf("got %v, want ErrFenced", err)
	}
	got, _, _ := st.GetNode(ctx, n.UUID)
	if got.LastError != "" {
		t.Fatal("fenced update was written")
	}
}
