// Package stack lays an overcloud down on the undercloud's nodes. A
// stack is one overcloud: its roles and networks (roles' files), the
// nodes they were given, each node's addresses, and what each node has
// reported since. Apply takes a stack from what is to what its files say:
// it validates, allocates available nodes to roles (keeping those it gave
// before), assigns addresses, stores the result in etcd, and then deploys
// each assigned node that is still available with the node image and a
// config drive that carries the node's part (roles.NodeConfig), and
// undeploys the nodes it dropped. The nodes' runners report their
// services back with their own credential.
package stack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/roles"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// Errors of the stack API; match with errors.Is.
var (
	ErrInvalid        = inventory.ErrInvalid
	ErrNotFound       = inventory.ErrNotFound
	ErrNeedsConfirm   = errors.New("removing nodes needs confirmation")
	ErrBadCredential  = errors.New("the credential is not this node's")
	ErrMissingImages  = errors.New("service images are missing from the registry")
	errStackConflicts = errors.New("the stack changed while it was being applied; try again")
)

// Spec is what the operator asks for: the overcloud's name, its roles and
// networks, and the images its nodes run.
type Spec struct {
	Name     string          `json:"name"`
	Roles    []roles.Role    `json:"roles"`
	Networks []roles.Network `json:"networks"`
	// Image is the node image the agent writes (an image_source: a URL
	// or a file in the undercloud's images) and ImageChecksum its SHA-256.
	Image         string `json:"image"`
	ImageChecksum string `json:"image_checksum"`
	// Version is the tag of the service images (strata/SERVICE:Version
	// in the undercloud's registry); nodes get them pinned by digest.
	Version string `json:"version"`
}

// Stack is a stack's record.
type Stack struct {
	Schema      int                `json:"schema"`
	Spec        Spec               `json:"spec"`
	Assignments []roles.Assignment `json:"assignments"`
	Addresses   roles.Addresses    `json:"addresses"`
	VIPs        roles.VIPs         `json:"vips,omitempty"`
	// Images are the service images, pinned by digest, by service.
	Images map[string]string `json:"images"`
	// Nodes are what each node's runner last reported, by hostname.
	Nodes map[string]*NodeReport `json:"nodes,omitempty"`
	// Credentials are the SHA-256 of each node's credential, by hostname.
	Credentials map[string]string `json:"credentials,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
}

const schema = 1

// NodeReport is what a node's runner says of its services.
type NodeReport struct {
	Services []ServiceReport `json:"services"`
	At       time.Time       `json:"at"`
}

// ServiceReport is one service on a node.
type ServiceReport struct {
	Name     string `json:"name"`
	State    string `json:"state"` // starting, running, restarting, stopped, failed
	Healthy  bool   `json:"healthy"`
	Restarts int    `json:"restarts,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Healthy reports whether every service of the report is healthy.
func (r *NodeReport) Healthy() bool {
	if r == nil || len(r.Services) == 0 {
		return false
	}
	for _, s := range r.Services {
		if !s.Healthy {
			return false
		}
	}
	return true
}

// Nodes is what the stack needs of the inventory.
type Nodes interface {
	ListNodes(ctx context.Context) ([]*inventory.Node, error)
	GetNode(ctx context.Context, ident string) (*inventory.Node, int64, error)
	UpdateNode(ctx context.Context, id string, fn func(n *inventory.Node, tx *nodestore.Tx) error) (*inventory.Node, int64, error)
}

// Provisioner deploys and undeploys nodes (the conductor).
type Provisioner interface {
	Provision(ctx context.Context, ident string, req conductor.ProvisionRequest) error
}

// Images finds service images in the undercloud's registry.
type Images interface {
	Resolve(repo, ref string) (digest string, err error)
}

// Config wires a Manager.
type Config struct {
	Records     *store.Store
	Nodes       Nodes
	Provisioner Provisioner
	Images      Images
	// Registry is the host:port nodes pull service images from.
	Registry string
	// Undercloud is the API URL nodes report to.
	Undercloud string
	// Ctlplane is the provisioning network, which no overcloud network
	// may overlap.
	Ctlplane netip.Prefix
	Now      func() time.Time
}

// Manager applies, shows and deletes stacks.
type Manager struct {
	cfg Config
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg}
}

const stacksPrefix = "stacks/"

func stackKey(name string) string { return stacksPrefix + name }

var stackName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Validate checks a spec without looking at nodes or images.
func (m *Manager) Validate(spec Spec) error {
	var errs []string
	if !stackName.MatchString(spec.Name) {
		errs = append(errs, fmt.Sprintf("name %q must be a lower-case letter followed by up to 62 lower-case letters, digits and dashes", spec.Name))
	}
	if err := roles.ValidateNetworks(spec.Networks, m.cfg.Ctlplane); err != nil {
		errs = append(errs, err.Error())
	}
	if err := roles.Validate(spec.Roles, spec.Networks); err != nil {
		errs = append(errs, err.Error())
	}
	if spec.Image == "" {
		errs = append(errs, "image: the node image is required")
	}
	if spec.Version == "" {
		errs = append(errs, "version: the service images' tag is required")
	}
	if len(errs) > 0 {
		return inventory.Invalid("the overcloud", "%s", strings.Join(errs, "; "))
	}
	return nil
}

// Result is what Apply did.
type Result struct {
	Stack *Stack `json:"stack"`
	// Deploying and Undeploying name the nodes Apply started to deploy
	// and to undeploy, by hostname; Failed those it could not start, with
	// why.
	Deploying   []string          `json:"deploying"`
	Undeploying []string          `json:"undeploying"`
	Failed      map[string]string `json:"failed,omitempty"`
}

// Apply takes the stack to what spec says; removing nodes needs confirm.
// The stack's record is in etcd before any node is touched.
func (m *Manager) Apply(ctx context.Context, spec Spec, confirm bool) (*Result, error) {
	if err := m.Validate(spec); err != nil {
		return nil, err
	}
	imgs, err := m.resolveImages(spec)
	if err != nil {
		return nil, err
	}
	cur, rev, err := store.GetJSON[Stack](ctx, m.cfg.Records, stackKey(spec.Name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		rev = 0
		cur = Stack{Created: m.cfg.Now()}
	case err != nil:
		return nil, err
	}
	nodes, err := m.cfg.Nodes.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := roles.Allocate(spec.Name, spec.Roles, nodes, cur.Assignments)
	if err != nil {
		return nil, inventory.Invalid("the overcloud", "%v", err)
	}
	if len(plan.Removed) > 0 && !confirm {
		var hosts []string
		for _, a := range plan.Removed {
			hosts = append(hosts, a.Hostname+" ("+a.NodeName+")")
		}
		return nil, fmt.Errorf("%w: this would undeploy %s; confirm to go on", ErrNeedsConfirm, strings.Join(hosts, ", "))
	}
	addrs, vips, err := roles.AssignAddresses(spec.Roles, spec.Networks, plan.Assignments, cur.Addresses, cur.VIPs)
	if err != nil {
		return nil, inventory.Invalid("the overcloud", "%v", err)
	}

	byUUID := map[string]*inventory.Node{}
	for _, n := range nodes {
		byUUID[n.UUID] = n
	}
	next := cur
	next.Schema = schema
	next.Spec = spec
	next.Assignments = plan.Assignments
	next.Addresses = addrs
	next.VIPs = vips
	next.Images = imgs
	next.Updated = m.cfg.Now()
	next.Credentials = map[string]string{}
	next.Nodes = map[string]*NodeReport{}
	// A node to deploy gets a new credential; the others keep theirs.
	secrets := map[string]string{}
	for _, a := range plan.Assignments {
		if n := byUUID[a.Node]; n != nil && n.ProvisionState == inventory.StateAvailable {
			secret, hash := newCredential()
			secrets[a.Hostname], next.Credentials[a.Hostname] = secret, hash
			continue
		}
		if h, ok := cur.Credentials[a.Hostname]; ok {
			next.Credentials[a.Hostname] = h
		}
		if r, ok := cur.Nodes[a.Hostname]; ok {
			next.Nodes[a.Hostname] = r
		}
	}
	sec, secRev, err := store.GetJSON[Secrets](ctx, m.cfg.Records, secretsKey(spec.Name))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	changed, err := sec.ensure(spec.Name, servicesOf(spec.Roles), m.cfg.Now())
	if err != nil {
		return nil, err
	}
	conds := []store.Cond{store.Absent(stackKey(spec.Name))}
	if rev != 0 {
		conds[0] = store.Unchanged(stackKey(spec.Name), rev)
	}
	ops := []store.Op{store.PutJSON(stackKey(spec.Name), next)}
	if changed {
		c := store.Absent(secretsKey(spec.Name))
		if secRev != 0 {
			c = store.Unchanged(secretsKey(spec.Name), secRev)
		}
		conds, ops = append(conds, c), append(ops, store.PutJSON(secretsKey(spec.Name), sec))
	}
	if _, err := m.cfg.Records.Commit(ctx, conds, ops); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) {
			return nil, errStackConflicts
		}
		return nil, err
	}

	res := &Result{Stack: &next, Failed: map[string]string{}}
	for _, a := range plan.Assignments {
		secret, ok := secrets[a.Hostname]
		if !ok {
			continue
		}
		if err := m.deploy(ctx, &next, &sec, a, secret); err != nil {
			res.Failed[a.Hostname] = err.Error()
			continue
		}
		res.Deploying = append(res.Deploying, a.Hostname)
	}
	for _, a := range plan.Removed {
		n := byUUID[a.Node]
		if n == nil || !slices.Contains([]string{inventory.StateActive, inventory.StateDeployFailed}, n.ProvisionState) {
			continue
		}
		if err := m.cfg.Provisioner.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "deleted", User: "overcloud " + spec.Name}); err != nil {
			res.Failed[a.Hostname] = err.Error()
			continue
		}
		res.Undeploying = append(res.Undeploying, a.Hostname)
	}
	return res, nil
}

// resolveImages pins every service the roles run to its image's digest.
func (m *Manager) resolveImages(spec Spec) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, r := range spec.Roles {
		for _, name := range r.Services {
			svc, _ := roles.LookupService(name)
			if _, done := out[svc.Name]; done {
				continue
			}
			repo := "strata/" + svc.Name
			digest, err := m.cfg.Images.Resolve(repo, spec.Version)
			if err != nil {
				missing = append(missing, fmt.Sprintf("%s:%s (%v)", repo, spec.Version, err))
				continue
			}
			out[svc.Name] = m.cfg.Registry + "/" + repo + "@" + digest
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("%w: %s; build and push them with `strata container image build --version %s`",
			ErrMissingImages, strings.Join(missing, ", "), spec.Version)
	}
	return out, nil
}

// NodeConfig is the part of the stack node a plays.
func (s *Stack) NodeConfig(a roles.Assignment, undercloud, credential string) roles.NodeConfig {
	c := roles.NodeConfig{
		Stack:      s.Spec.Name,
		Role:       a.Role,
		Hostname:   a.Hostname,
		Undercloud: undercloud,
		Credential: credential,
		Networks:   s.Addresses[a.Hostname],
	}
	var role roles.Role
	for _, r := range s.Spec.Roles {
		if r.Name == a.Role {
			role = r
		}
	}
	running := map[string]bool{}
	for _, name := range role.Services {
		svc, _ := roles.LookupService(name)
		running[svc.Name] = true
	}
	for _, name := range role.Services {
		svc, _ := roles.LookupService(name)
		ns := roles.NodeService{Name: svc.Name, Image: s.Images[svc.Name]}
		for _, need := range svc.Needs {
			if running[need] {
				ns.After = append(ns.After, need)
			}
		}
		c.Services = append(c.Services, ns)
	}
	return c
}

// servicesOf lists the services the roles run, each once.
func servicesOf(rs []roles.Role) []string {
	var out []string
	for _, r := range rs {
		for _, name := range r.Services {
			svc, _ := roles.LookupService(name)
			if !slices.Contains(out, svc.Name) {
				out = append(out, svc.Name)
			}
		}
	}
	return out
}

// Environment variables through which a node's services get their
// secrets (never flags, which other users of a machine can read).
const (
	EnvBootstrapPassword = "STRATA_BOOTSTRAP_PASSWORD" // identity's admin
	EnvEtcdPassword      = "STRATA_ETCD_PASSWORD"      // a service's etcd user
	EnvEtcdRootPassword  = "STRATA_ETCD_ROOT_PASSWORD" // etcd members
)

// withSecrets gives a node's part its TLS identity and its services
// their passwords.
func withSecrets(c *roles.NodeConfig, sec *Secrets, now time.Time) error {
	cert, key, err := sec.NodeCertificate(c.Hostname, nodeAddrs(c.Networks), now)
	if err != nil {
		return err
	}
	c.TLS = &roles.NodeTLS{CA: sec.CACert, Cert: cert, Key: key}
	for i := range c.Services {
		svc := &c.Services[i]
		switch svc.Name {
		case "etcd":
			svc.Env = append(svc.Env, EnvEtcdRootPassword+"="+sec.EtcdRootPassword)
			continue
		case "identity":
			svc.Env = append(svc.Env, EnvBootstrapPassword+"="+sec.AdminPassword)
		}
		if p := sec.EtcdPasswords[svc.Name]; p != "" {
			svc.Env = append(svc.Env, EnvEtcdPassword+"="+p)
		}
	}
	return nil
}

// deploy writes the node's image and part into its record and starts its
// deploy.
func (m *Manager) deploy(ctx context.Context, s *Stack, sec *Secrets, a roles.Assignment, credential string) error {
	cfg := s.NodeConfig(a, m.cfg.Undercloud, credential)
	if err := withSecrets(&cfg, sec, m.cfg.Now()); err != nil {
		return err
	}
	_, _, err := m.cfg.Nodes.UpdateNode(ctx, a.Node, func(n *inventory.Node, _ *nodestore.Tx) error {
		if n.InstanceInfo == nil {
			n.InstanceInfo = map[string]any{}
		}
		n.InstanceInfo["image_source"] = s.Spec.Image
		n.InstanceInfo["image_os_hash_algo"] = "sha256"
		n.InstanceInfo["image_os_hash_value"] = s.Spec.ImageChecksum
		n.InstanceInfo["display_name"] = a.Hostname
		return nil
	})
	if err != nil {
		return err
	}
	drive := map[string]any{
		"meta_data":   map[string]any{"hostname": a.Hostname, "name": a.Hostname},
		"vendor_data": map[string]any{roles.ConfigDriveVendorKey: cfg},
	}
	return m.cfg.Provisioner.Provision(ctx, a.Node, conductor.ProvisionRequest{Verb: "active", ConfigDrive: drive, User: "overcloud " + s.Spec.Name})
}

// newCredential returns a node's credential and its SHA-256 (hex).
func newCredential() (secret, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = hex.EncodeToString(b)
	return secret, hashCredential(secret)
}

func hashCredential(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Get returns a stack's record.
func (m *Manager) Get(ctx context.Context, name string) (*Stack, error) {
	s, _, err := store.GetJSON[Stack](ctx, m.cfg.Records, stackKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no overcloud named %q", ErrNotFound, name)
	}
	return &s, err
}

// List returns every stack's record.
func (m *Manager) List(ctx context.Context) ([]*Stack, error) {
	recs, _, err := m.cfg.Records.ListAll(ctx, stacksPrefix, 100)
	if err != nil {
		return nil, err
	}
	var out []*Stack
	for _, r := range recs {
		var s Stack
		if err := json.Unmarshal(r.Value, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Key, err)
		}
		out = append(out, &s)
	}
	return out, nil
}

// Report records what a node's runner says of its services, checking its
// credential. It changes nothing when the credential is wrong.
func (m *Manager) Report(ctx context.Context, name, host, credential string, r NodeReport) error {
	if len(r.Services) > 256 {
		return inventory.Invalid("services", "lists %d services; a node runs at most 256", len(r.Services))
	}
	_, _, err := store.Modify(ctx, m.cfg.Records, stackKey(name), func(s *Stack) error {
		want, ok := s.Credentials[host]
		got := hashCredential(credential)
		if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return ErrBadCredential
		}
		if s.Nodes == nil {
			s.Nodes = map[string]*NodeReport{}
		}
		r.At = m.cfg.Now()
		s.Nodes[host] = &r
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no overcloud named %q", ErrNotFound, name)
	}
	return err
}

// Delete undeploys every node of the stack and forgets it. Nodes that
// are not deployed are left as they are.
func (m *Manager) Delete(ctx context.Context, name string) ([]string, error) {
	s, rev, err := store.GetJSON[Stack](ctx, m.cfg.Records, stackKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no overcloud named %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	if _, err := m.cfg.Records.Commit(ctx, []store.Cond{store.Unchanged(stackKey(name), rev)},
		[]store.Op{store.Del(stackKey(name)), store.Del(secretsKey(name))}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errStackConflicts
		}
		return nil, err
	}
	var undeploying []string
	var errs []error
	for _, a := range s.Assignments {
		n, _, err := m.cfg.Nodes.GetNode(ctx, a.Node)
		if err != nil {
			continue
		}
		if n.ProvisionState != inventory.StateActive && n.ProvisionState != inventory.StateDeployFailed {
			continue
		}
		if err := m.cfg.Provisioner.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "deleted", User: "overcloud " + name}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Hostname, err))
			continue
		}
		undeploying = append(undeploying, a.Hostname)
	}
	return undeploying, errors.Join(errs...)
}

// Clouds is the clouds.yaml entry of the overcloud named name, for its
// admin: the identity service's URL (the External address of the first
// node that runs identity, else its first address) and the admin's
// credentials.
func (m *Manager) Clouds(ctx context.Context, name string) (map[string]any, error) {
	s, err := m.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	sec, _, err := store.GetJSON[Secrets](ctx, m.cfg.Records, secretsKey(name))
	if err != nil {
		return nil, fmt.Errorf("the secrets of overcloud %s: %w", name, err)
	}
	host := ""
	for _, a := range s.Assignments {
		if !slices.Contains(servicesOf(s.rolesNamed(a.Role)), "identity") {
			continue
		}
		addrs := s.Addresses[a.Hostname]
		pick := addrs[roles.NetExternal].Address
		if pick == "" {
			for _, ad := range addrs {
				pick = ad.Address
				break
			}
		}
		if p, err := netip.ParsePrefix(pick); err == nil {
			host = p.Addr().String()
			break
		}
	}
	if host == "" {
		return nil, inventory.Invalid("the overcloud", "no node of %s runs identity on an overcloud network", name)
	}
	return map[string]any{"clouds": map[string]any{name: map[string]any{
		"auth": map[string]any{
			"auth_url":            "http://" + net.JoinHostPort(host, "5000") + "/v3",
			"username":            "admin",
			"password":            sec.AdminPassword,
			"project_name":        "admin",
			"user_domain_name":    "Default",
			"project_domain_name": "Default",
		},
		"region_name":          "RegionOne",
		"identity_api_version": 3,
	}}}, nil
}

// rolesNamed is the stack's role named name, as a list of one (or none).
func (s *Stack) rolesNamed(name string) []roles.Role {
	for _, r := range s.Spec.Roles {
		if r.Name == name {
			return []roles.Role{r}
		}
	}
	return nil
}

// Replace gives the node playing host in the stack named name a new
// node: an available one that matches host's role, which keeps host's
// hostname, index and addresses and is deployed as host was, with a new
// credential. The old node is undeployed when it is deployed (or its
// deploy failed); otherwise it is left as it is (a dead machine stays
// where the operator can see it). It returns the new node's name.
func (m *Manager) Replace(ctx context.Context, name, host string) (string, error) {
	cur, rev, err := store.GetJSON[Stack](ctx, m.cfg.Records, stackKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: no overcloud named %q", ErrNotFound, name)
	}
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(cur.Assignments, func(a roles.Assignment) bool { return a.Hostname == host })
	if i < 0 {
		return "", fmt.Errorf("%w: overcloud %s has no node %q", ErrNotFound, name, host)
	}
	old := cur.Assignments[i]
	role := cur.rolesNamed(old.Role)
	if len(role) == 0 {
		return "", inventory.Invalid("hostname", "%s's role %s is not in the overcloud's roles", host, old.Role)
	}
	nodes, err := m.cfg.Nodes.ListNodes(ctx)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range cur.Assignments {
		used[a.Node] = true
	}
	var pick *inventory.Node
	for _, n := range nodes {
		if used[n.UUID] || !roles.Eligible(n) || !role[0].Match.Matches(n) {
			continue
		}
		if pick == nil || n.Name < pick.Name {
			pick = n
		}
	}
	if pick == nil {
		return "", inventory.Invalid("the overcloud", "no available node matches role %s (%s) to replace %s", old.Role, role[0].Match, host)
	}
	sec, _, err := store.GetJSON[Secrets](ctx, m.cfg.Records, secretsKey(name))
	if err != nil {
		return "", fmt.Errorf("the secrets of overcloud %s: %w", name, err)
	}
	next := cur
	next.Assignments = slices.Clone(cur.Assignments)
	next.Assignments[i].Node, next.Assignments[i].NodeName = pick.UUID, pick.Name
	secret, hash := newCredential()
	next.Credentials = maps.Clone(cur.Credentials)
	next.Credentials[host] = hash
	next.Nodes = maps.Clone(cur.Nodes)
	delete(next.Nodes, host)
	next.Updated = m.cfg.Now()
	if _, err := m.cfg.Records.Commit(ctx, []store.Cond{store.Unchanged(stackKey(name), rev)}, []store.Op{store.PutJSON(stackKey(name), next)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", errStackConflicts
		}
		return "", err
	}
	if n, _, err := m.cfg.Nodes.GetNode(ctx, old.Node); err == nil &&
		(n.ProvisionState == inventory.StateActive || n.ProvisionState == inventory.StateDeployFailed) {
		if err := m.cfg.Provisioner.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "deleted", User: "overcloud " + name}); err != nil {
			return "", fmt.Errorf("%s is given %s, but undeploying its old node %s failed: %w", host, pick.Name, old.NodeName, err)
		}
	}
	if err := m.deploy(ctx, &next, &sec, next.Assignments[i], secret); err != nil {
		return "", fmt.Errorf("deploying %s as %s: %w", pick.Name, host, err)
	}
	return pick.Name, nil
}
