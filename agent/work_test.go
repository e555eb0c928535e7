package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacloud/strata/agent/hwinfo"
	"github.com/stratacloud/strata/images"
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
	if p == conductor.PhaseInspect || p == conductor.PhaseClean {
		return conductor.ErrWaitAgent
	}
	if written, _ := n.DriverInternalInfo["agent_image_written"].(bool); p == conductor.PhaseDeploy && !written {
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

// TestAgentAgainstTheUndercloud runs the agent's work, from lookup
// to the end of each boot, against the undercloud's real API and
// conductor, on a machine whose /proc and /sys are a rendered tree and
// whose disks are files: inspection, cleaning, a deploy with a wrong
// checksum, and one with the right one.
func TestAgentAgainstTheUndercloud(t *testing.T) {
	lookupRetry, heartbeatInterval = 50*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := nodestore.New(store.New(etcdtest.Run(t), "/strata/undercloud/"))
	c := conductor.New(conductor.Config{Name: "c", Drivers: map[string]conductor.Driver{inventory.DriverFake: bootsRamdisk{}}}, nodes)
	t.Cleanup(func() { lookupRetry, heartbeatInterval = 5*time.Second, 10*time.Second })
	runCtx, stop := context.WithCancel(ctx)
	ready, stopped := make(chan struct{}), make(chan struct{})
	go func() { c.Run(runCtx, ready); close(stopped) }()
	defer func() { stop(); <-stopped }()
	<-ready
	cache, err := images.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Nodes: nodes, Conductor: c, Images: cache}))
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

	// provide: the next boot cleans. The disks are files here, with a GPT
	// at both ends and a filesystem in a partition.
	disk := writeDisk(t, root, "vda", 4<<30, [2]int64{2048, 1 << 20})
	writeDisk(t, root, "vdb", 8<<30)
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "provide"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nodes, n.UUID, "clean wait")
	out = &syncWriter{}
	if err := work(ctx, root+"/", Params{BootMAC: mac, API: u}, nic, newClient(u), out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("work: %v\n%s", err, out)
	}
	for _, want := range []string{"clean step deploy.erase_devices_metadata", "erased the metadata of /dev/vda (1 partitions), /dev/vdb (0 partitions)", "cleaning done"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the agent's console lacks %q:\n%s", want, out)
		}
	}
	waitFor(t, nodes, n.UUID, "available")
	checkErased(t, disk, 4<<30, [2]int64{2048, 1 << 20})

	// deploy: the image goes onto the root disk, the smallest of at least
	// 4 GiB, checked against its SHA-256. First with a wrong one.
	image := bytes.Repeat([]byte("strata image "), 300_000)
	sum := sha256.Sum256(image)
	qcow2Disk := bytes.Repeat([]byte("qcow2 contents "), 200_000)
	qcow2Image := makeQcow2(t, qcow2Disk)
	gptPath := filepath.Join(t.TempDir(), "gpt.raw")
	os.WriteFile(gptPath, nil, 0o644)
	os.Truncate(gptPath, 16<<20)
	sf := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", gptPath)
	sf.Stdin = strings.NewReader("label: gpt\nstart=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	gptImage, _ := os.ReadFile(gptPath)
	gptSum := sha256.Sum256(gptImage)
	imgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/img.gpt" {
			w.Write(gptImage)
			return
		}
		if r.URL.Path == "/img.qcow2" {
			w.Write(qcow2Image)
			return
		}
		w.Write(image)
	}))
	defer imgSrv.Close()
	setRawInfo := func(checksum string) {
		_, _, err := nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
			n.InstanceInfo = map[string]any{"image_source": imgSrv.URL + "/img.raw", "image_os_hash_algo": "sha256", "image_os_hash_value": checksum}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	bootOnce := func(wantState string) string {
		waitFor(t, nodes, n.UUID, "wait call-back")
		out := &syncWriter{}
		if err := work(ctx, root+"/", Params{BootMAC: mac, API: u}, nic, newClient(u), out, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("work: %v\n%s", err, out)
		}
		waitFor(t, nodes, n.UUID, wantState)
		return out.String()
	}
	setRawInfo(strings.Repeat("ab", 32))
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "active"}); err != nil {
		t.Fatal(err)
	}
	console := bootOnce("deploy failed")
	if got, _, _ := nodes.GetNode(ctx, n.UUID); !strings.Contains(got.LastError, "it is not the one asked for") || !strings.Contains(console, "deploy failed") {
		t.Errorf("a wrong checksum: last_error %q, console:\n%s", got.LastError, console)
	}
	setRawInfo(hex.EncodeToString(sum[:]))
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "active"}); err != nil {
		t.Fatal(err)
	}
	console = bootOnce("active")
	if !strings.Contains(console, fmt.Sprintf("wrote %d bytes onto /dev/vda", len(image))) {
		t.Errorf("console:\n%s", console)
	}
	written := make([]byte, len(image))
	f, _ := os.Open(disk)
	f.ReadAt(written, 0)
	f.Close()
	if !bytes.Equal(written, image) {
		t.Error("the disk does not hold the image")
	}

	// A qcow2 image: the undercloud converts it; the agent writes the raw
	// disk it describes.
	setInfo := func(path string, sum []byte) {
		_, _, err := nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
			n.InstanceInfo = map[string]any{"image_source": imgSrv.URL + path, "image_checksum": hex.EncodeToString(sum)}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	qsum := sha256.Sum256(qcow2Image)
	setInfo("/img.qcow2", qsum[:])
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "rebuild"}); err != nil {
		t.Fatal(err)
	}
	console = bootOnce("active")
	written = make([]byte, len(qcow2Disk))
	f, _ = os.Open(disk)
	f.ReadAt(written, 0)
	f.Close()
	if !bytes.Equal(written, qcow2Disk) {
		t.Errorf("the disk does not hold the qcow2 image's disk; console:\n%s", console)
	}

	// A GPT image with a config drive: the agent adds a partition at the
	// end of the disk and writes the drive the undercloud built into it.
	_, _, err = nodes.UpdateNode(ctx, n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		n.InstanceInfo = map[string]any{"image_source": imgSrv.URL + "/img.gpt", "image_checksum": hex.EncodeToString(gptSum[:]),
			"configdrive": map[string]any{"meta_data": map[string]any{"hostname": "gpt-host"}, "user_data": "#cloud-config\n"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "rebuild"}); err != nil {
		t.Fatal(err)
	}
	console = bootOnce("active")
	if !strings.Contains(console, "wrote the config drive") {
		t.Errorf("console:\n%s", console)
	}
	checkConfigDrive(t, disk, n.UUID, "gpt-host")
}

// checkConfigDrive has sfdisk, blkid and isoinfo find the config drive in
// the last partition of disk, holding the node's uuid and hostname.
func checkConfigDrive(t *testing.T, disk, uuid, hostname string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var tb sfdiskTable
	if err := json.Unmarshal(out, &tb); err != nil || len(tb.PartitionTable.Partitions) != 2 {
		t.Fatalf("partitions: %s (%v), want the image's and the config drive's", out, err)
	}
	p := tb.PartitionTable.Partitions[1]
	if p.Name != "config-2" {
		t.Errorf("the last partition is %+v, not config-2", p)
	}
	off := strconv.FormatInt(p.Start*512, 10)
	if out, err := exec.Command("blkid", "-p", "-O", off, "-o", "export", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "LABEL=config-2") {
		t.Errorf("blkid at %s: %v\n%s", off, err, out)
	}
	iso := filepath.Join(t.TempDir(), "cd.iso")
	if out, err := exec.Command("dd", "if="+disk, "of="+iso, "bs=512", "skip="+strconv.FormatInt(p.Start, 10), "count="+strconv.FormatInt(p.Size, 10)).CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	meta, err := exec.Command("isoinfo", "-i", iso, "-x", "/OPENSTACK/LATEST/META_DATA.JSON;1").Output()
	if err != nil || !strings.Contains(string(meta), `"uuid":"`+uuid+`"`) || !strings.Contains(string(meta), `"hostname":"`+hostname+`"`) {
		t.Errorf("meta_data.json on the drive: %s (%v)", meta, err)
	}
}

// writeDisk makes root/dev/NAME a sparse file of size bytes with
// signatures where erase_devices_metadata must erase them: the protective
// MBR, both GPT headers, and an ext4 superblock at the start of each
// partition (start and length in sectors), which /sys/block lists.
func writeDisk(t *testing.T, root, name string, size int64, parts ...[2]int64) string {
	t.Helper()
	path := filepath.Join(root, "dev", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	put := func(off int64, b []byte) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	put(510, []byte{0x55, 0xaa})
	put(512, []byte("EFI PART"))
	put(size-512, []byte("EFI PART"))
	for i, p := range parts {
		put(p[0]*512+1024+56, []byte{0x53, 0xef})
		dir := filepath.Join(root, "sys/block", name, fmt.Sprintf("%s%d", name, i+1))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "partition"), []byte(fmt.Sprint(i+1)), 0o644)
		os.WriteFile(filepath.Join(dir, "start"), []byte(fmt.Sprint(p[0])), 0o644)
		os.WriteFile(filepath.Join(dir, "size"), []byte(fmt.Sprint(p[1])), 0o644)
	}
	return path
}

func checkErased(t *testing.T, path string, size int64, parts ...[2]int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	offs := []int64{510, 512, size - 512}
	for _, p := range parts {
		offs = append(offs, p[0]*512+1024+56)
	}
	for _, off := range offs {
		b := make([]byte, 8)
		f.ReadAt(b, off)
		if !bytes.Equal(b, make([]byte, 8)) {
			t.Errorf("%s: % x left at offset %d", path, b, off)
		}
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

// makeQcow2 returns a qcow2 image of the disk, made by qemu-img.
func makeQcow2(t *testing.T, disk []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	raw, qcow := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2")
	if err := os.WriteFile(raw, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img (make deps installs qemu-utils): %v\n%s", err, out)
	}
	b, err := os.ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
