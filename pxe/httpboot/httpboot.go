// Package httpboot is the undercloud's HTTP boot service: the iPXE script
// each machine asks for when it network-boots, chosen from its node's
// provision state, and the kernels, ramdisks and images those scripts
// fetch, with ranges and validators (Range, If-Range, ETag,
// If-None-Match, If-Modified-Since) as http.ServeContent serves them.
//
// Routes of the handler New returns:
//
//	GET /boot.ipxe             the entry script: chains to the machine's own script by the MAC it booted from
//	GET /boot/{mac}.ipxe       the machine's script (MAC as 52:54:00:12:34:56 or 52-54-00-12-34-56)
//	GET /images/{name...}      a boot artifact
//
// What a machine boots, by its node's provision state:
//
//	inspecting, inspect wait, cleaning, clean wait, clean hold, deploying,
//	wait call-back, deploy hold, servicing, service wait, service hold
//	        the deploy kernel and ramdisk (driver_info deploy_kernel and deploy_ramdisk, or the configured defaults)
//	rescuing, rescue wait, rescue
//	        the rescue kernel and ramdisk (driver_info rescue_kernel and rescue_ramdisk), or the deploy ones
//	active, adopting, unrescuing, deploy complete
//	        the local disk: sanboot of drive 0x80 in BIOS mode, exit to the UEFI boot manager in UEFI mode
//	anything else (enroll, manageable, available, the failed states, ...)
//	        exit: nothing to boot, the firmware goes on to its next boot device
//	an unknown MAC
//	        the deploy ramdisk in discovery mode if Discovery is on, else exit
//
// The ramdisk's kernel command line carries BOOTIF=01-<mac> (the PXELINUX
// form Ironic uses), strata.api=<APIURL>, strata.node=<uuid> (or
// strata.discovery=1), the consoles, Config.KernelArgs and the node's
// driver_info kernel_append_params.
package httpboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/ipxe"
)

// Nodes finds the node a network interface belongs to.
type Nodes interface {
	// Lookup returns the node with a port of this MAC address, or an
	// error matching inventory.ErrNotFound when there is none.
	Lookup(ctx context.Context, mac net.HardwareAddr) (*inventory.Node, error)
}

// NodesFunc adapts a function to Nodes.
type NodesFunc func(ctx context.Context, mac net.HardwareAddr) (*inventory.Node, error)

// Lookup calls f.
func (f NodesFunc) Lookup(ctx context.Context, mac net.HardwareAddr) (*inventory.Node, error) {
	return f(ctx, mac)
}

// Artifacts opens boot artifacts (kernels, ramdisks, images) by name: a
// valid io/fs path, never absolute and without "..".
type Artifacts interface {
	// Open returns the artifact, or an error matching fs.ErrNotExist.
	Open(ctx context.Context, name string) (*Artifact, error)
}

// Artifact is an open boot artifact.
type Artifact struct {
	Content io.ReadSeekCloser
	// ModTime is when the content last changed; zero if unknown.
	ModTime time.Time
	// ETag is the entity tag, quoted as in HTTP (`"sha256:…"`); empty if
	// none. A content-addressed store's digest makes the best one.
	ETag string
}

// ArtifactsFunc adapts a function to Artifacts.
type ArtifactsFunc func(ctx context.Context, name string) (*Artifact, error)

// Open calls f.
func (f ArtifactsFunc) Open(ctx context.Context, name string) (*Artifact, error) {
	return f(ctx, name)
}

// Config configures the handler.
type Config struct {
	// Nodes finds a machine's node by MAC. Required.
	Nodes Nodes
	// Artifacts serves /images/. Required.
	Artifacts Artifacts
	// BaseURL is where machines reach this handler, such as
	// http://192.0.2.1:8080; scripts fetch /boot/ and /images/ under it.
	// Required.
	BaseURL string
	// APIURL is the undercloud API the ramdisk's agent calls
	// (strata.api=). Optional.
	APIURL string
	// DeployKernel and DeployRamdisk name the deploy kernel and ramdisk
	// for nodes whose driver_info names none, and for discovery: an
	// artifact name, or an http(s) URL.
	DeployKernel, DeployRamdisk string
	// Discovery boots machines with an unknown MAC into the deploy
	// ramdisk (with strata.discovery=1) instead of sending them away.
	Discovery bool
	// KernelArgs are added to every ramdisk's command line.
	KernelArgs []string
	// Console is the serial console for the ramdisk's kernel;
	// "ttyS0,115200n8" by default.
	Console string
	// Attempts is how many times a script tries its fetches; see
	// ipxe.DefaultAttempts.
	Attempts int
	// Logger gets each script handed out and each error; it discards by
	// default.
	Logger *slog.Logger
	// Registerer, when set, gets the handler's metrics (namespace strata,
	// subsystem httpboot).
	Registerer prometheus.Registerer
}

// DefaultConsole is the ramdisk's serial console.
const DefaultConsole = "ttyS0,115200n8"

type handler struct {
	cfg  Config
	base string
	log  *slog.Logger
	m    *metrics
	mux  *http.ServeMux
}

var _ http.Handler = (*handler)(nil)

// New checks cfg and returns the handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Nodes == nil {
		return nil, errors.New("httpboot: nodes: none given")
	}
	if cfg.Artifacts == nil {
		return nil, errors.New("httpboot: artifacts: none given")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("httpboot: base URL: %q is not an http(s) URL without query", cfg.BaseURL)
	}
	if cfg.APIURL != "" {
		if u, err := url.Parse(cfg.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("httpboot: API URL: %q is not an http(s) URL", cfg.APIURL)
		}
	}
	for field, v := range map[string]string{"deploy kernel": cfg.DeployKernel, "deploy ramdisk": cfg.DeployRamdisk} {
		if v != "" {
			if _, err := artifactURL("", v); err != nil {
				return nil, fmt.Errorf("httpboot: %s: %w", field, err)
			}
		}
	}
	if cfg.Discovery && (cfg.DeployKernel == "" || cfg.DeployRamdisk == "") {
		return nil, errors.New("httpboot: discovery needs the deploy kernel and ramdisk")
	}
	if cfg.Console == "" {
		cfg.Console = DefaultConsole
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		cfg:  cfg,
		base: strings.TrimRight(cfg.BaseURL, "/"),
		log:  cfg.Logger,
		m:    newMetrics(cfg.Registerer),
		mux:  http.NewServeMux(),
	}
	// Everything a script would contain that does not depend on the node
	// is checked now, by rendering the entry script and a sample.
	if _, err := ipxe.Bytes(h.entryScript()); err != nil {
		return nil, fmt.Errorf("httpboot: %w", err)
	}
	sample := &inventory.Node{UUID: "00000000-0000-0000-0000-000000000000", ProvisionState: inventory.StateDeploying,
		DriverInfo: map[string]any{"deploy_kernel": "k", "deploy_ramdisk": "r"}}
	s, err := h.script(sample, "00:00:00:00:00:00", "")
	if err == nil {
		_, err = ipxe.Bytes(s)
	}
	if err == nil {
		_, err = ipxe.Bytes(h.unknownScript("00:00:00:00:00:00"))
	}
	if err != nil {
		return nil, fmt.Errorf("httpboot: %w", err)
	}
	h.mux.Handle("GET /boot.ipxe", h.instrument("entry", http.HandlerFunc(h.serveEntry)))
	h.mux.Handle("GET /boot/{file}", h.instrument("script", http.HandlerFunc(h.serveScript)))
	h.mux.Handle("GET /images/{name...}", h.instrument("image", http.HandlerFunc(h.serveImage)))
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// entryScript chains to the machine's own script, named by the MAC of
// the interface iPXE booted from, telling the firmware it runs on.
func (h *handler) entryScript() ipxe.Script {
	return ipxe.Script{
		Action:   ipxe.Chain,
		Title:    "Strata: fetching the script of this machine by the MAC it booted from",
		URL:      h.base + "/boot/${mac:hexhyp}.ipxe?platform=${platform}",
		Attempts: h.cfg.Attempts,
	}
}

func (h *handler) serveEntry(w http.ResponseWriter, r *http.Request) {
	b, err := ipxe.Bytes(h.entryScript())
	if err != nil { // checked in New
		h.fail(w, "render", http.StatusInternalServerError, err)
		return
	}
	writeScript(w, b)
}

func (h *handler) serveScript(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	s, ok := strings.CutSuffix(file, ".ipxe")
	if !ok {
		h.fail(w, "bad_request", http.StatusNotFound, fmt.Errorf("%q is not a script name", file))
		return
	}
	mac, err := inventory.ParseMAC(s)
	if err != nil {
		h.fail(w, "bad_request", http.StatusNotFound, err)
		return
	}
	hw, _ := net.ParseMAC(mac)
	platform := r.URL.Query().Get("platform")
	log := h.log.With("mac", mac)

	node, err := h.cfg.Nodes.Lookup(r.Context(), hw)
	var script ipxe.Script
	kind := ""
	switch {
	case errors.Is(err, inventory.ErrNotFound):
		script = h.unknownScript(mac)
		if h.cfg.Discovery {
			kind = "discovery"
		}
		log.Info("httpboot: unknown machine", "discovery", h.cfg.Discovery)
	case err != nil:
		// The store is unreachable: the script retries.
		h.fail(w, "lookup", http.StatusServiceUnavailable, fmt.Errorf("looking up %s: %w", mac, err))
		return
	default:
		script, err = h.script(node, mac, platform)
		if err == nil {
			// The node's own settings (driver_info) end up in the
			// script: check them by rendering it.
			_, err = ipxe.Bytes(script)
		}
		if err != nil {
			h.m.errors.WithLabelValues("node").Inc()
			log.Warn("httpboot: can not boot the node", "node", node.UUID, "state", node.ProvisionState, "err", err)
			script = ipxe.Script{Action: ipxe.Exit, Title: fmt.Sprintf("Strata: node %s (%s) can not boot: see the undercloud log", node.UUID, mac)}
		} else {
			log.Info("httpboot: script", "node", node.UUID, "state", node.ProvisionState, "action", script.Action.String())
		}
	}
	b, err := ipxe.Bytes(script)
	if err != nil {
		h.fail(w, "render", http.StatusInternalServerError, err)
		return
	}
	if kind == "" {
		kind = script.Action.String()
	}
	h.m.scripts.WithLabelValues(kind).Inc()
	writeScript(w, b)
}

func writeScript(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (h *handler) serveImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !fs.ValidPath(name) || name == "." {
		h.fail(w, "bad_request", http.StatusNotFound, fmt.Errorf("%q is not an artifact name", name))
		return
	}
	a, err := h.cfg.Artifacts.Open(r.Context(), name)
	if errors.Is(err, fs.ErrNotExist) {
		h.fail(w, "not_found", http.StatusNotFound, fmt.Errorf("artifact %s: %w", name, err))
		return
	}
	if errors.Is(err, fs.ErrPermission) {
		h.fail(w, "denied", http.StatusForbidden, fmt.Errorf("artifact %s: %w", name, err))
		return
	}
	if err != nil {
		h.fail(w, "artifact", http.StatusInternalServerError, fmt.Errorf("artifact %s: %w", name, err))
		return
	}
	defer a.Content.Close()
	if a.ETag != "" {
		w.Header().Set("ETag", a.ETag)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, a.ModTime, a.Content)
}

// fail answers with status and records why. The body says only what the
// client may know.
func (h *handler) fail(w http.ResponseWriter, reason string, status int, err error) {
	h.m.errors.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if status == http.StatusNotFound {
		level = slog.LevelDebug
	}
	h.log.Log(context.Background(), level, "httpboot: request failed", "status", status, "err", err)
	http.Error(w, http.StatusText(status), status)
}
