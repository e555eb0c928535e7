package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/api"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// bootsRamdisk is fake-hardware whose inspection leaves the node waiting
// for its agent, as a real driver's does once it has powered the node on.
type bootsRamdisk struct{ conductor.Fake }

func (d bootsRamdisk) Phase(ctx context.Context, n *inventory.Node, p conductor.Phase) error {
	if p == conductor.PhaseInspect {
		return conductor.ErrWaitAgent
	}
	return d.Fake.Phase(ctx, n, p)
}

// syncWriter is the agent's console, read while the agent writes.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestInspectionAgainstTheUndercloud runs the agent's work, from lookup
// to the end of its boot, against the undercloud's real API and
// conductor, on a machine whose /proc and /sys are a rendered tree.
func TestInspectionAgainstTheUndercloud(t *testing.T) {
	lookupRetry, heartbeatInterval = 50*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := nodestore.New(store.New(etcdtest.Run(t), "/strata/undercloud/"))
	c := conductor.New(conductor.Config{Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverFake: bootsRamdisk{}}}, nodes)
	runCtx, stop := context.WithCancel(ctx)
	ready, stopped := make(chan struct{}), make(chan struct{})
	go func() { c.Run(runCtx, ready); close(stopped) }()
	defer func() { stop(); <-stopped }()
	<-ready
	srv := httptest.NewServer(api.New(api.Config{Nodes: nodes, Conductor: c}))
	defer srv.Close()

	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	n, err := nodes.CreateNode(ctx, &inventory.Node{Driver: inventory.DriverFake, Name: "vm0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.CreatePort(ctx, &inventory.Port{NodeUUID: n.UUID, Address: mac.String()}); err != nil {
		t.Fatal(err)
	}
	hw := inventory.Hardware{
		CPU:    inventory.CPU{Count: 2, Architecture: "x86_64", ModelName: "QEMU TCG CPU", Flags: []string{"fpu", "lm"}},
		Memory: inventory.Memory{Total: 1536 << 20},
		Disks: []inventory.Disk{
			{Name: "/dev/vda", Size: 4 << 30, Serial: "vm0-disk0", Rotational: true},
			{Name: "/dev/vdb", Size: 8 << 30, Serial: "vm0-disk1", Rotational: true},
		},
		Interfaces:   []inventory.Interface{{Name: "eth0", MACAddress: mac.String(), HasCarrier: true, Driver: "virtio_net"}},
		SystemVendor: inventory.SystemVendor{Manufacturer: "QEMU", ProductName: "Strata lab VM", SerialNumber: "vm0"},
		Boot:         inventory.Boot{CurrentBootMode: "bios"},
		Hostname:     "localhost",
	}
	root := t.TempDir()
	if err := hwinfo.Render(root, hw); err != nil {
		t.Fatal(err)
	}

	for _, verb := range []string{"manage", "inspect"} {
		if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: verb}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, nodes, n.UUID, map[string]string{"manage": "manageable", "inspect": "inspect wait"}[verb])
	}
	u, _ := url.Parse(srv.URL)
	out := &syncWriter{}
	nic := BootNIC{Name: "eth0", MAC: mac, Addr: netip.MustParsePrefix("192.168.24.150/24")}
	err = work(ctx, root+"/", Params{BootMAC: mac, API: u}, nic, newClient(u), out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("work: %v\n%s", err, out)
	}
	for _, want := range []string{
		"node " + n.UUID + " is inspect wait", "found 2 x86_64 CPUs, 1536 MiB, 2 disks (4 GiB, 8 GiB), 1 NIC, bios",
		"inventory sent", "the undercloud is done with this boot",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the agent's console lacks %q:\n%s", want, out)
		}
	}
	got := waitFor(t, nodes, n.UUID, "manageable")
	if got.Properties["cpus"] != float64(2) || got.Properties["memory_mb"] != float64(1536) || got.Properties["local_gb"] != float64(4) {
		t.Errorf("properties: %v", got.Properties)
	}
	inv, err := nodes.Inventory(ctx, n.UUID)
	if err != nil || !strings.Contains(string(inv.Inventory), `"ipv4_address":"192.168.24.150"`) || !strings.Contains(string(inv.Inventory), `"pxe_interface":"52:54:00:12:34:56"`) {
		t.Errorf("stored inventory: %s, %v", inv.Inventory, err)
	}
}

func waitFor(t *testing.T, nodes *nodestore.Store, id, state string) *inventory.Node {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _, err := nodes.GetNode(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if n.ProvisionState == state && n.Reservation == "" {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node is %s (%s), want %s", n.ProvisionState, n.LastError, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
