// Package api is the undercloud's REST API: version 1 of OpenStack Ironic's
// bare metal API, microversions 1.1 to 1.87, so that `openstack baremetal`,
// gophercloud and Metal3 drive the undercloud unchanged.
//
// The API reads and writes nodes and ports in the node store and hands
// provisioning, power and boot-device requests to the conductor, which
// carries them out in the background. New returns an http.Handler; the
// daemon mounts it (and the Prometheus handler for the registry it passes
// in) on its own server.
//
// What is served, by path:
//
//	GET  /, /v1                                   version discovery (no authentication)
//	GET  /v1/nodes[/detail], POST /v1/nodes        list, create
//	GET|PATCH|DELETE /v1/nodes/{node}             show, update (JSON Patch), delete
//	GET  /v1/nodes/{node}/states                  state summary
//	PUT  /v1/nodes/{node}/states/provision|power  provisioning verbs, power targets (202)
//	GET|PUT /v1/nodes/{node}/management/boot_device[/supported]
//	PUT|DELETE /v1/nodes/{node}/maintenance
//	GET  /v1/nodes/{node}/validate
//	GET  /v1/nodes/{node}/history[/detail|/{event}]   (1.78)
//	GET  /v1/nodes/{node}/inventory               what inspection found (1.81)
//	GET  /v1/nodes/{node}/ports[/detail]
//	GET  /v1/ports[/detail], POST /v1/ports, GET|PATCH|DELETE /v1/ports/{port}
//	GET  /v1/lookup, POST /v1/heartbeat/{node}, POST /v1/continue_inspection|cleaning|deploy
//	GET  /v1/agent_image                          the image to deploy, as a raw disk
//	GET  /v1/agent_configdrive                    its config drive, as an ISO 9660 image
//	                                              the deploy agent's calls (agent token, see agent.go)
package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratacloud/strata/images/blob"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// NodeStore keeps nodes.
type NodeStore interface {
	CreateNode(ctx context.Context, n *inventory.Node) (*inventory.Node, error)
	// GetNode finds a node by uuid or name.
	GetNode(ctx context.Context, ident string) (*inventory.Node, int64, error)
	// ListNodes returns every node in creation order.
	ListNodes(ctx context.Context) ([]*inventory.Node, error)
	UpdateNode(ctx context.Context, id string, fn func(n *inventory.Node, tx *nodestore.Tx) error) (*inventory.Node, int64, error)
	// DeleteNode removes a node and its ports if check accepts it.
	DeleteNode(ctx context.Context, ident string, check func(*inventory.Node) error) error
	// Inventory returns the hardware inventory inspection stored.
	Inventory(ctx context.Context, node string) (*nodestore.StoredInventory, error)
}

// PortStore keeps ports.
type PortStore interface {
	CreatePort(ctx context.Context, p *inventory.Port) (*inventory.Port, error)
	// GetPort finds a port by uuid or MAC address.
	GetPort(ctx context.Context, id string) (*inventory.Port, int64, error)
	// ListPorts returns the ports of a node (uuid or name), or all when node is "".
	ListPorts(ctx context.Context, node string) ([]*inventory.Port, error)
	UpdatePort(ctx context.Context, id string, fn func(*inventory.Port) error) (*inventory.Port, error)
	DeletePort(ctx context.Context, id string, check func(*inventory.Node) error) error
}

// HistoryStore keeps the per-node event history.
type HistoryStore interface {
	// History returns the events of the node with this uuid, oldest first.
	History(ctx context.Context, node string) ([]inventory.HistoryEvent, error)
	NewHistory(eventType, severity, event string) inventory.HistoryEvent
}

// Nodes is the inventory the API serves; *nodestore.Store is one.
type Nodes interface {
	NodeStore
	PortStore
	HistoryStore
}

var _ Nodes = (*nodestore.Store)(nil)

// Conductor carries out the requests that act on machines. Its errors wrap
// inventory.ErrNotFound, *inventory.TransitionError, inventory.ErrLocked,
// inventory.ErrNoWorkers or inventory.ErrInvalid.
type Conductor interface {
	// Provision checks the verb against the node's state, reserves the node
	// and a worker, moves it to the next state (all in one etcd write) and
	// returns; the work goes on in the background.
	Provision(ctx context.Context, ident string, req ProvisionRequest) error
	SetPower(ctx context.Context, ident, target string, timeout time.Duration) error
	SetBootDevice(ctx context.Context, ident, device string, persistent bool) error
	BootDevice(ctx context.Context, ident string) (device string, persistent bool, err error)
	SupportedBootDevices(ctx context.Context, ident string) ([]string, error)
	Validate(ctx context.Context, ident string) (map[string]ValidateResult, error)
	// AgentLookup finds the node an agent runs on and issues its token.
	AgentLookup(ctx context.Context, macs []string, node string) (*inventory.Node, string, error)
	// AgentHeartbeat checks an agent's token and returns its node.
	AgentHeartbeat(ctx context.Context, node, token string, hb conductor.Heartbeat) (*inventory.Node, error)
	// ContinueInspection records what the agent's inspection found.
	ContinueInspection(ctx context.Context, node, token string, in conductor.Inspection) (*inventory.Node, error)
	// ContinueCleaning records the end of the agent's clean steps.
	ContinueCleaning(ctx context.Context, node, token, failure string) (*inventory.Node, error)
	// ContinueDeploy records the end of the agent's image write.
	ContinueDeploy(ctx context.Context, node, token, failure string) (*inventory.Node, error)
	// AgentImage returns the source URL and SHA-256 of the image the
	// agent's node is being deployed with.
	AgentImage(ctx context.Context, node, token string) (source, sum string, err error)
	// AgentConfigDrive returns the config drive (an ISO 9660 image) the
	// agent's node is being deployed with, nil for none.
	AgentConfigDrive(ctx context.Context, node, token string) ([]byte, error)
}

// ImageCache holds deploy images as raw disks.
type ImageCache interface {
	// Raw returns the raw disk of the image at source with SHA-256 sum,
	// fetching (and converting) it first when needed.
	Raw(ctx context.Context, source, sum string) (blob.Blob, error)
	Open(digest string) (*os.File, error)
}

// Config configures the API handler.
type Config struct {
	// Nodes is the inventory. Required.
	Nodes Nodes
	// Conductor carries out provisioning, power and boot-device requests.
	// Required.
	Conductor Conductor
	// Images serves deploy images to agents (GET /v1/agent_image); nil
	// answers that endpoint with 503.
	Images ImageCache
	// Auth authenticates every request except version discovery. Nil means
	// NoAuth: every request is the admin.
	Auth Authenticator
	// Logger receives one line per request and the errors that are the
	// server's fault. Nil discards.
	Logger *slog.Logger
	// Registry, when set, receives the API's metrics (namespace strata,
	// subsystem api). Serving them is the caller's business.
	Registry prometheus.Registerer
	// PublicURL returns the scheme and host that links in responses start
	// with, for example "https://undercloud.example.com:6385". Nil derives
	// it from the request (its TLS state and Host header).
	PublicURL func(r *http.Request) string
	// Stacks deploys overclouds; nil answers /v1/overcloud with 503.
	Stacks Stacks
}

// server is the API's state; its ServeHTTP runs every request.
type server struct {
	nodes     Nodes
	conductor Conductor
	images    ImageCache
	auth      Authenticator
	log       *slog.Logger
	metrics   *metrics
	publicURL func(r *http.Request) string
	stacks    Stacks
	mux       *http.ServeMux
	now       func() time.Time
}

var _ http.Handler = (*server)(nil)

// New returns the API handler. It panics when Nodes or Conductor is missing,
// which is a programming error.
func New(cfg Config) http.Handler {
	if cfg.Nodes == nil || cfg.Conductor == nil {
		panic("api.New: Config.Nodes and Config.Conductor are required")
	}
	s := &server{
		nodes:     cfg.Nodes,
		conductor: cfg.Conductor,
		images:    cfg.Images,
		auth:      cfg.Auth,
		log:       cfg.Logger,
		metrics:   newMetrics(cfg.Registry),
		publicURL: cfg.PublicURL,
		stacks:    cfg.Stacks,
		mux:       http.NewServeMux(),
		now:       time.Now,
	}
	if s.auth == nil {
		s.auth = NoAuth{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.publicURL == nil {
		s.publicURL = requestURL
	}
	s.routes()
	return s
}

func (s *server) routes() {
	handle := func(pattern string, h handlerFunc) { s.mux.Handle(pattern, s.adapt(h)) }

	handle("GET /{$}", s.root)
	handle("GET /v1", s.v1)
	handle("GET /v1/{$}", s.v1)

	handle("GET /v1/nodes", s.listNodes)
	handle("GET /v1/nodes/detail", s.listNodesDetail)
	handle("POST /v1/nodes", s.createNode)
	handle("GET /v1/nodes/validate", s.validateByQuery)
	handle("GET /v1/nodes/{node}", s.getNode)
	handle("PATCH /v1/nodes/{node}", s.patchNode)
	handle("DELETE /v1/nodes/{node}", s.deleteNode)

	handle("GET /v1/nodes/{node}/states", s.nodeStates)
	handle("PUT /v1/nodes/{node}/states/provision", s.setProvisionState)
	handle("PUT /v1/nodes/{node}/states/power", s.setPowerState)
	handle("GET /v1/nodes/{node}/management/boot_device", s.getBootDevice)
	handle("PUT /v1/nodes/{node}/management/boot_device", s.setBootDevice)
	handle("GET /v1/nodes/{node}/management/boot_device/supported", s.supportedBootDevices)
	handle("PUT /v1/nodes/{node}/maintenance", s.setMaintenance)
	handle("DELETE /v1/nodes/{node}/maintenance", s.unsetMaintenance)
	handle("GET /v1/nodes/{node}/validate", s.validateNode)
	handle("GET /v1/nodes/{node}/history", s.listHistory)
	handle("GET /v1/nodes/{node}/history/{event}", s.getHistoryEvent)
	handle("GET /v1/nodes/{node}/inventory", s.nodeInventory)
	handle("GET /v1/nodes/{node}/ports", s.listNodePorts)
	handle("GET /v1/nodes/{node}/ports/detail", s.listNodePortsDetail)

	handle("GET /v1/lookup", s.agentLookup)
	handle("POST /v1/heartbeat/{node}", s.agentHeartbeat)
	handle("POST /v1/continue_inspection", s.continueInspection)
	handle("POST /v1/continue_cleaning", s.continueCleaning)
	handle("POST /v1/continue_deploy", s.continueDeploy)
	s.mux.Handle("GET /v1/agent_image", http.HandlerFunc(s.agentImage))
	s.mux.Handle("GET /v1/agent_configdrive", http.HandlerFunc(s.agentConfigDrive))

	s.overcloudRoutes(handle)

	handle("GET /v1/ports", s.listPorts)
	handle("GET /v1/ports/detail", s.listPortsDetail)
	handle("POST /v1/ports", s.createPort)
	handle("GET /v1/ports/{port}", s.getPort)
	handle("PATCH /v1/ports/{port}", s.patchPort)
	handle("DELETE /v1/ports/{port}", s.deletePort)
}

// requestURL is the default PublicURL: the scheme and host the client used.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// link is a hypermedia link as Ironic writes them.
type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
}

// base is the public URL for a request, without a trailing slash.
func (s *server) base(r *http.Request) string {
	return strings.TrimSuffix(s.publicURL(r), "/")
}

// links are the self (versioned) and bookmark links of a resource path such
// as "nodes/<uuid>".
func (s *server) links(r *http.Request, path string) []link {
	b := s.base(r)
	return []link{{Href: b + "/v1/" + path, Rel: "self"}, {Href: b + "/" + path, Rel: "bookmark"}}
}
