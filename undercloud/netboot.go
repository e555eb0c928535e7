package undercloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/etcdleases"
	"github.com/stratacloud/strata/pxe/httpboot"
	"github.com/stratacloud/strata/pxe/ra"
	"github.com/stratacloud/strata/pxe/tftp"
)

// IPXEDir is where Debian's ipxe package installs the iPXE loaders that
// the TFTP server hands to network-booting machines.
const IPXEDir = "/usr/lib/ipxe"

// ipxeLoaders are copied from IPXEDir into the TFTP root at start:
// undionly.kpxe for BIOS, snponly.efi for UEFI (and ipxe.efi, with its own
// drivers, for NICs without SNP).
var ipxeLoaders = []string{"undionly.kpxe", "snponly.efi", "ipxe.efi"}

// portNodes is what the network-boot adapters need of the node store.
type portNodes interface {
	PortByMAC(ctx context.Context, mac string) (*inventory.Port, error)
	GetNode(ctx context.Context, ident string) (*inventory.Node, int64, error)
}

// directory is the DHCP server's view of the node store.
type directory struct{ nodes portNodes }

var _ dhcp.Directory = directory{}

// Host finds the port of mac and its node's boot mode.
func (d directory) Host(ctx context.Context, mac net.HardwareAddr) (dhcp.Host, error) {
	p, err := d.nodes.PortByMAC(ctx, mac.String())
	if errors.Is(err, inventory.ErrNotFound) {
		return dhcp.Host{}, fmt.Errorf("%w: %v", dhcp.ErrUnknownHost, mac)
	}
	if err != nil {
		return dhcp.Host{}, err
	}
	h := dhcp.Host{NodeUUID: p.NodeUUID, PXE: p.PXEEnabled}
	n, _, err := d.nodes.GetNode(ctx, p.NodeUUID)
	if errors.Is(err, inventory.ErrNotFound) {
		// The node went away under its port: nothing to boot.
		return dhcp.Host{}, fmt.Errorf("%w: %v", dhcp.ErrUnknownHost, mac)
	}
	if err != nil {
		return dhcp.Host{}, err
	}
	h.BootMode = nodeBootMode(n)
	return h, nil
}

// nodeBootMode is the node's boot_mode, else its boot_mode capability, else
// unknown ("").
func nodeBootMode(n *inventory.Node) string {
	switch n.BootMode {
	case "uefi", "bios":
		return n.BootMode
	}
	if caps, ok := n.Properties["capabilities"].(string); ok {
		for c := range strings.SplitSeq(caps, ",") {
			k, v, _ := strings.Cut(c, ":")
			if strings.TrimSpace(k) == "boot_mode" {
				switch v = strings.TrimSpace(v); v {
				case "uefi", "bios":
					return v
				}
			}
		}
	}
	return ""
}

// lookupNode is the HTTP boot server's view of the node store.
func lookupNode(nodes portNodes) httpboot.NodesFunc {
	return func(ctx context.Context, mac net.HardwareAddr) (*inventory.Node, error) {
		p, err := nodes.PortByMAC(ctx, mac.String())
		if err != nil {
			return nil, err
		}
		n, _, err := nodes.GetNode(ctx, p.NodeUUID)
		return n, err
	}
}

// netboot runs the network-boot services of a provisioning network.
type netboot struct {
	dhcp *dhcp.Server
	tftp *tftp.Server
	ra   *ra.Server // nil when router advertisements are off
	http *http.Server
	ln   net.Listener
	log  *slog.Logger
}

// newNetboot prepares the TFTP root, builds the servers and opens the TFTP
// and HTTP sockets on the provisioning address, in the provisioning
// namespace. apiURL, if not empty, is the API the deploy ramdisk calls.
func newNetboot(p provisioning, s *store.Store, nodes portNodes, apiURL string, reg prometheus.Registerer, log *slog.Logger) (*netboot, error) {
	if err := os.MkdirAll(p.ImagesDir, 0o755); err != nil {
		return nil, fmt.Errorf("provisioning.images_dir: %w", err)
	}
	if err := installLoaders(IPXEDir, p.TFTPRoot); err != nil {
		return nil, fmt.Errorf("provisioning.tftp_root: %w", err)
	}
	addr := p.addr.Addr()
	httpAddr := netip.AddrPortFrom(addr, uint16(p.HTTPPort))
	base := "http://" + httpAddr.String()
	handler, err := httpboot.New(httpboot.Config{
		Nodes:         lookupNode(nodes),
		Artifacts:     httpboot.FS(os.DirFS(p.ImagesDir)),
		BaseURL:       base,
		APIURL:        apiURL,
		DeployKernel:  p.DeployKernel,
		DeployRamdisk: p.DeployRamdisk,
		KernelArgs:    p.KernelArgs,
		Logger:        log.With("part", "httpboot"),
		Registerer:    reg,
	})
	if err != nil {
		return nil, err
	}
	d, err := dhcp.New(dhcp.Config{
		Interface:     p.Interface,
		Netns:         p.Netns,
		Mode:          p.mode,
		ServerIP:      addr,
		Subnet:        p.addr.Masked(),
		Pool:          p.pool,
		Directory:     directory{nodes},
		Leases:        etcdleases.New(s),
		TFTPServer:    addr,
		IPXEScriptURL: func(net.HardwareAddr) string { return base + "/boot.ipxe" },
		Logger:        log.With("part", "dhcp"),
		Registerer:    reg,
	})
	if err != nil {
		return nil, err
	}
	nb := &netboot{dhcp: d, log: log}
	err = inNetns(p.Netns, func() error {
		// Both sockets are bound to the provisioning address, so that they
		// answer on the provisioning network only.
		ln, err := bindToDevice(p.Interface).Listen(context.Background(), "tcp", httpAddr.String())
		if err != nil {
			return fmt.Errorf("httpboot: %w", err)
		}
		nb.ln = ln
		// The TFTP server serves, and opens each transfer's socket, in
		// the namespace of this socket, whichever thread runs it.
		ts, err := tftp.New(tftp.Config{
			Addr:       netip.AddrPortFrom(addr, 69).String(),
			Root:       p.TFTPRoot,
			Logger:     log.With("part", "tftp"),
			Registerer: reg,
		})
		if err != nil {
			ln.Close()
			return err
		}
		nb.tftp = ts
		if p.routerAdvertisements() {
			r, err := ra.New(p.Interface, log.With("part", "ra"))
			if err != nil {
				ts.Close()
				ln.Close()
				return err
			}
			nb.ra = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	nb.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return nb, nil
}

// run serves DHCP, TFTP and HTTP boot in g until ctx ends.
func (nb *netboot) run(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error {
		if err := nb.dhcp.Run(ctx); err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
		return nil
	})
	if nb.tftp != nil {
		g.Go(func() error {
			if err := nb.tftp.Run(ctx); err != nil {
				return fmt.Errorf("tftp: %w", err)
			}
			return nil
		})
	}
	if nb.ra != nil {
		g.Go(func() error { return nb.ra.Run(ctx) })
	}
	g.Go(func() error {
		if err := nb.http.Serve(nb.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("httpboot: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = nb.http.Shutdown(sctx)
		return nil
	})
}

// close releases the sockets of a netboot that never runs.
func (nb *netboot) close() {
	if nb.tftp != nil {
		nb.tftp.Close()
	}
	if nb.ra != nil {
		nb.ra.Close()
	}
	nb.ln.Close()
}

// bindToDevice makes sockets that take packets from iface only
// (SO_BINDTODEVICE), whatever address they arrive for.
func bindToDevice(iface string) *net.ListenConfig {
	return &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, iface)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to %s: %w", iface, serr)
		}
		return nil
	}}
}

// apiURLFor is the API's URL as machines on the provisioning network
// reach it: the API's own address, or the provisioning address when the
// API listens on every address; empty when it listens on loopback only.
func apiURLFor(listen string, prov netip.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	a, err := netip.ParseAddr(host)
	switch {
	case host == "" || (err == nil && a.IsUnspecified()):
		return "http://" + net.JoinHostPort(prov.String(), port)
	case err != nil || a.IsLoopback():
		return ""
	}
	return "http://" + net.JoinHostPort(a.String(), port)
}

// installLoaders copies the iPXE loaders from dir into root (following
// symbolic links: Debian's ipxe.efi is one), replacing older copies.
func installLoaders(dir, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, name := range ipxeLoaders {
		src, err := filepath.EvalSymlinks(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("iPXE loader %s (install Debian's ipxe package): %w", name, err)
		}
		if err := copyFile(src, filepath.Join(root, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// inNetns runs fn on an OS thread in the network namespace at path (the
// caller's when path is empty); sockets fn opens stay in that namespace.
// The thread, locked to a fresh goroutine, returns to its namespace
// afterwards; if it cannot, it stays locked and the runtime retires it
// (or, for the main thread, parks it), so that no other goroutine ever
// runs in the wrong namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("provisioning.netns: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("provisioning.netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("provisioning.netns: enter %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("provisioning.netns: return from %s: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
