package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/stratacloud/strata/roles"
)

// stackNode is a node of an overcloud as the undercloud shows it.
type stackNode struct {
	Hostname       string                   `json:"hostname"`
	Role           string                   `json:"role"`
	NodeName       string                   `json:"node_name"`
	Node           string                   `json:"node_uuid"`
	ProvisionState string                   `json:"provision_state"`
	LastError      string                   `json:"last_error"`
	Status         string                   `json:"status"`
	Addresses      map[string]roles.Address `json:"addresses"`
	Report         *struct {
		Services []struct {
			Name    string `json:"name"`
			State   string `json:"state"`
			Healthy bool   `json:"healthy"`
		} `json:"services"`
	} `json:"report"`
}

type stackBody struct {
	Name        string            `json:"name"`
	Nodes       []stackNode       `json:"nodes"`
	Deploying   []string          `json:"deploying"`
	Undeploying []string          `json:"undeploying"`
	Failed      map[string]string `json:"failed"`
}

// overcloudEnv is the -e file: what the nodes run.
type overcloudEnv struct {
	Image         string `json:"image,omitempty"`
	ImageChecksum string `json:"image_checksum,omitempty"`
	Version       string `json:"version,omitempty"`
}

type overcloudDeployOptions struct {
	overcloudValidateOptions
	env           string
	image         string
	imageChecksum string
	version       string
	yes           bool
	wait          time.Duration
	cloudsYAML    string
}

func newOvercloudDeployCommand(g *globalOptions) *cobra.Command {
	o := &overcloudDeployOptions{overcloudValidateOptions: overcloudValidateOptions{g: g}}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the overcloud, or bring it to what changed files say",
		Long: `Lay the overcloud down on the undercloud's available nodes: the
undercloud checks the roles and networks (as "validate" does), checks
that every service's image is in its registry (strata/SERVICE:VERSION,
from "strata container image build"), allocates nodes to roles, gives
each node its hostname and an address on each of its role's networks,
stores all of it, and deploys each node with the node image and a config
drive that tells the node's runner its part: role, hostname, addresses,
the undercloud's URL, its own credential, its services pinned by digest.
Then this command follows the nodes until each one's runner reports its
services healthy (or --wait runs out), and prints a table of the nodes.

Run it again with the same files and nothing changes. With a higher
count, the new nodes are added; with a lower one, the highest-numbered
nodes of the role are undeployed, which needs --yes.

-e names a YAML file with image, image_checksum and version, which the
flags override.`,
		Example: `  strata overcloud deploy --roles roles.yaml --networks networks.yaml \
      --image http://192.168.24.1:8088/images/overcloud.raw --image-checksum SHA256 --version 1.0
  strata overcloud deploy --roles roles.yaml -e overcloud.yaml --yes`,
		Args: exactArgs(0),
	}
	f := cmd.Flags()
	f.StringVar(&o.roles, "roles", "", "roles file (default: the shipped roles)")
	f.StringVar(&o.networks, "networks", "", "networks file (default: the shipped networks)")
	f.StringVar(&o.stack, "stack", "overcloud", "the overcloud's name, in its hostnames")
	f.StringVarP(&o.env, "environment", "e", "", "environment `FILE` (YAML: image, image_checksum, version)")
	f.StringVar(&o.image, "image", "", "the node image: a URL or a file in the undercloud's images")
	f.StringVar(&o.imageChecksum, "image-checksum", "", "the node image's SHA-256")
	f.StringVar(&o.version, "version", "", "the service images' tag")
	f.BoolVar(&o.yes, "yes", false, "go on when the change undeploys nodes")
	f.DurationVar(&o.wait, "wait", time.Hour, "how long to follow the nodes until their services are healthy (0: do not wait)")
	f.StringVar(&o.cloudsYAML, "clouds-yaml", defaultCloudsYAML(), "`FILE` to add the overcloud's entry (named as the overcloud) to once it runs (\"\": none)")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudDeployOptions) Validate() error {
	if o.env != "" {
		b, err := os.ReadFile(o.env)
		if err != nil {
			return usageErrorf("-e: %v", err)
		}
		var env overcloudEnv
		if err := yaml.UnmarshalStrict(b, &env); err != nil {
			return usageErrorf("-e %s: %v", o.env, err)
		}
		o.image = firstOf(o.image, env.Image)
		o.imageChecksum = firstOf(o.imageChecksum, env.ImageChecksum)
		o.version = firstOf(o.version, env.Version)
	}
	if o.image == "" || o.version == "" {
		return usageErrorf("the node image (--image) and the service images' version (--version) are required, as flags or in -e")
	}
	if o.wait < 0 {
		return usageErrorf("--wait: %v is negative", o.wait)
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (o *overcloudDeployOptions) Run(ctx context.Context) error {
	rs, ns, err := o.load()
	if err != nil {
		return err
	}
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	body := map[string]any{
		"name": o.stack, "roles": rs, "networks": ns,
		"image": o.image, "image_checksum": o.imageChecksum, "version": o.version,
		"confirm": o.yes,
	}
	var st stackBody
	u := conn.client.ServiceURL("overcloud", "stacks", url.PathEscape(o.stack))
	if _, err := conn.client.Put(ctx, u, body, &st, &gophercloud.RequestOpts{OkCodes: []int{202}}); err != nil {
		err = apiError(err)
		if isConflict(err) && strings.Contains(err.Error(), "confirm") {
			return fmt.Errorf("%w (run again with --yes to undeploy them)", err)
		}
		return err
	}
	errOut := o.g.streams.ErrOut
	fmt.Fprintf(errOut, "overcloud %s: %d nodes; deploying %s; undeploying %s\n", o.stack, len(st.Nodes), listOrNone(st.Deploying), listOrNone(st.Undeploying))
	var failed []string
	for h, why := range st.Failed {
		failed = append(failed, h+": "+why)
	}
	sort.Strings(failed)
	for _, f := range failed {
		fmt.Fprintf(errOut, "could not start %s\n", f)
	}
	if o.wait > 0 {
		if st, err = o.follow(ctx, conn.client, u, st); err != nil {
			o.table(st)
			return err
		}
		if o.cloudsYAML != "" {
			if err := writeClouds(ctx, conn.client, o.stack, o.cloudsYAML); err != nil {
				return err
			}
			fmt.Fprintf(errOut, "added cloud %q to %s (openstack --os-cloud %s ...)\n", o.stack, o.cloudsYAML, o.stack)
		}
	}
	return o.table(st)
}

// defaultCloudsYAML is where the openstack CLI looks first.
func defaultCloudsYAML() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "openstack", "clouds.yaml")
}

// fetchClouds asks the undercloud for the overcloud's clouds.yaml entry.
func fetchClouds(ctx context.Context, c *gophercloud.ServiceClient, stack string) (map[string]any, error) {
	var body struct {
		Clouds map[string]any `json:"clouds"`
	}
	u := c.ServiceURL("overcloud", "stacks", url.PathEscape(stack), "clouds")
	if _, err := c.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, apiError(err)
	}
	return body.Clouds, nil
}

// writeClouds adds (or replaces) the overcloud's entry in the clouds.yaml
// at path, keeping the file's other entries; the file is the user's alone.
func writeClouds(ctx context.Context, c *gophercloud.ServiceClient, stack, path string) error {
	entries, err := fetchClouds(ctx, c, stack)
	if err != nil {
		return err
	}
	doc := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w (not changed)", path, err)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	clouds, _ := doc["clouds"].(map[string]any)
	if clouds == nil {
		clouds = map[string]any{}
	}
	for k, v := range entries {
		clouds[k] = v
	}
	doc["clouds"] = clouds
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

type overcloudCloudsOptions struct {
	g      *globalOptions
	stack  string
	output string
}

func newOvercloudCloudsCommand(g *globalOptions) *cobra.Command {
	o := &overcloudCloudsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "clouds-yaml [NAME]",
		Short: "Print the overcloud's clouds.yaml entry, or add it to a file",
		Long: `Print the clouds.yaml that reaches the overcloud as its admin (the
identity service's URL, the admin's generated password), or with
--output add its entry to that file, keeping the file's other entries.`,
		Example: "  strata overcloud clouds-yaml > clouds.yaml\n  strata overcloud clouds-yaml --output ~/.config/openstack/clouds.yaml\n  openstack --os-cloud overcloud token issue",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("expected at most 1 argument, got %d; usage: %s", len(args), cmd.UseLine())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.output, "output", "", "clouds.yaml `FILE` to add the entry to")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudCloudsOptions) Complete(_ *cobra.Command, args []string) error {
	o.stack = "overcloud"
	if len(args) == 1 {
		o.stack = args[0]
	}
	return nil
}

func (o *overcloudCloudsOptions) Validate() error { return nil }

func (o *overcloudCloudsOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	if o.output != "" {
		return writeClouds(ctx, conn.client, o.stack, o.output)
	}
	entries, err := fetchClouds(ctx, conn.client, o.stack)
	if err != nil {
		return err
	}
	out, err := yaml.Marshal(map[string]any{"clouds": entries})
	if err != nil {
		return err
	}
	_, err = o.g.streams.Out.Write(out)
	return err
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// follow polls the overcloud until every node is running or failed, or
// --wait runs out, showing each node's progress.
func (o *overcloudDeployOptions) follow(ctx context.Context, c *gophercloud.ServiceClient, u string, st stackBody) (stackBody, error) {
	interval, _ := o.g.pollInterval()
	clk := o.g.host.clock
	prog := newProgress(o.g.streams.ErrOut, o.g.host.isTerminal(o.g.streams.ErrOut), clk, len(st.Nodes))
	defer prog.close()
	for _, n := range st.Nodes {
		prog.begin(n.Hostname, n.Status)
	}
	deadline := clk.Now().Add(o.wait)
	for {
		done, bad := 0, 0
		for _, n := range st.Nodes {
			state := n.Status
			if n.Status == "deploying" {
				state = n.ProvisionState
			}
			prog.observe(n.Hostname, state)
			switch n.Status {
			case "running":
				done++
				prog.end(n.Hostname, false)
			case "failed":
				done++
				bad++
				prog.end(n.Hostname, true)
			}
		}
		if done == len(st.Nodes) {
			if bad > 0 {
				return st, fmt.Errorf("%d of %d overcloud nodes failed", bad, len(st.Nodes))
			}
			return st, nil
		}
		if clk.Now().After(deadline) {
			return st, fmt.Errorf("after %s, %d of %d overcloud nodes are not running yet (see strata overcloud status)", o.wait, len(st.Nodes)-done, len(st.Nodes))
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-clk.After(interval):
		}
		var next stackBody
		if _, err := c.Get(ctx, u, &next, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
			return st, apiError(err)
		}
		st = next
	}
}

var stackColumns = []column{
	{"hostname", "Hostname"}, {"role", "Role"}, {"node", "Node"}, {"provision_state", "Provisioning State"},
	{"status", "Status"}, {"services", "Services"}, {"addresses", "Addresses"},
}

func (o *overcloudValidateOptions) table(st stackBody) error {
	rows := make([]record, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		var svcs, addrs []string
		if n.Report != nil {
			for _, s := range n.Report.Services {
				mark := "ok"
				if !s.Healthy {
					mark = s.State
				}
				svcs = append(svcs, s.Name+":"+mark)
			}
		}
		for net, a := range n.Addresses {
			addrs = append(addrs, net+"="+a.Address)
		}
		sort.Strings(addrs)
		status := n.Status
		if n.LastError != "" {
			status += ": " + n.LastError
		}
		rows = append(rows, record{"hostname": n.Hostname, "role": n.Role, "node": n.NodeName, "provision_state": n.ProvisionState,
			"status": status, "services": strings.Join(svcs, " "), "addresses": strings.Join(addrs, " ")})
	}
	return o.g.printer().listAll(stackColumns, rows)
}

type overcloudStatusOptions struct {
	overcloudValidateOptions
}

func newOvercloudStatusCommand(g *globalOptions) *cobra.Command {
	o := &overcloudStatusOptions{overcloudValidateOptions{g: g}}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show an overcloud's nodes: role, state, services, addresses",
		Long: `Show the overcloud's nodes as the undercloud knows them: each node's
role, provisioning state, its status (deploying; deployed, waiting for its
runner's report; running, every service healthy; degraded; failed), its
services as its runner last reported them, and its addresses.`,
		Example: "  strata overcloud status\n  strata overcloud status prod -f json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("expected at most 1 argument, got %d; usage: %s", len(args), cmd.UseLine())
			}
			return nil
		},
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudStatusOptions) Complete(_ *cobra.Command, args []string) error {
	o.stack = "overcloud"
	if len(args) == 1 {
		o.stack = args[0]
	}
	return nil
}

func (o *overcloudStatusOptions) Validate() error { return nil }

func (o *overcloudStatusOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	var st stackBody
	u := conn.client.ServiceURL("overcloud", "stacks", url.PathEscape(o.stack))
	if _, err := conn.client.Get(ctx, u, &st, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return apiError(err)
	}
	return o.table(st)
}

type overcloudDeleteOptions struct {
	g     *globalOptions
	stack string
	yes   bool
}

func newOvercloudDeleteCommand(g *globalOptions) *cobra.Command {
	o := &overcloudDeleteOptions{g: g}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Undeploy every node of an overcloud and forget it",
		Long: `Undeploy every deployed node of the overcloud (they are cleaned and
become available again) and forget the overcloud: its allocation, its
addresses and its nodes' credentials. --yes is required.`,
		Example: "  strata overcloud delete overcloud --yes",
		Args:    exactArgs(1),
	}
	cmd.Flags().BoolVar(&o.yes, "yes", false, "really delete it")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudDeleteOptions) Complete(_ *cobra.Command, args []string) error {
	o.stack = args[0]
	return nil
}

func (o *overcloudDeleteOptions) Validate() error {
	if !o.yes {
		return usageErrorf("deleting overcloud %s undeploys all its nodes: add --yes", o.stack)
	}
	return nil
}

func (o *overcloudDeleteOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	var res struct {
		Undeploying []string `json:"undeploying"`
	}
	u := conn.client.ServiceURL("overcloud", "stacks", url.PathEscape(o.stack))
	if _, err := conn.client.Delete(ctx, u, &gophercloud.RequestOpts{OkCodes: []int{202}, JSONResponse: &res}); err != nil {
		return apiError(err)
	}
	fmt.Fprintf(o.g.streams.ErrOut, "overcloud %s deleted; undeploying %s\n", o.stack, listOrNone(res.Undeploying))
	return nil
}

type overcloudReplaceOptions struct {
	g     *globalOptions
	stack string
	host  string
}

func newOvercloudNodeCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("node", "Manage the overcloud's nodes", "Manage the nodes of a deployed overcloud.")
	o := &overcloudReplaceOptions{g: g}
	replace := &cobra.Command{
		Use:   "replace HOSTNAME",
		Short: "Give an overcloud node a new machine",
		Long: `Swap the machine under an overcloud node, a failed one most often: an
available node that matches the node's role takes its hostname, index
and addresses and is deployed as it was, with a new credential. The old
machine is undeployed when it is deployed (or its deploy failed), and
left as it is otherwise. Follow it with "strata overcloud status".`,
		Example: "  strata overcloud node replace overcloud-controller-1\n  strata overcloud node replace prod-compute-3 --stack prod",
		Args:    exactArgs(1),
	}
	replace.Flags().StringVar(&o.stack, "stack", "overcloud", "the overcloud's name")
	replace.RunE = runE(g, o)
	cmd.AddCommand(replace)
	return cmd
}

func (o *overcloudReplaceOptions) Complete(_ *cobra.Command, args []string) error {
	o.host = args[0]
	return nil
}

func (o *overcloudReplaceOptions) Validate() error { return nil }

func (o *overcloudReplaceOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	var res struct {
		Node string `json:"node_name"`
	}
	u := conn.client.ServiceURL("overcloud", "stacks", url.PathEscape(o.stack), "nodes", url.PathEscape(o.host), "replace")
	if _, err := conn.client.Post(ctx, u, map[string]any{}, &res, &gophercloud.RequestOpts{OkCodes: []int{202}}); err != nil {
		return apiError(err)
	}
	fmt.Fprintf(o.g.streams.ErrOut, "%s: deploying on %s\n", o.host, res.Node)
	return nil
}
