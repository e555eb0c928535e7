package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/inventory"
)

func newPortCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("port", "Manage nodes' network ports", `Manage nodes' network ports. A port is a NIC of a node, known by its MAC
address: the undercloud's DHCP server network-boots a node through the
ports that have PXE enabled.`)
	cmd.AddCommand(newPortListCommand(g), newPortShowCommand(g), newPortCreateCommand(g), newPortDeleteCommand(g))
	return cmd
}

var portFields = []column{
	{"uuid", "UUID"},
	{"address", "Address"},
	{"node_uuid", "Node UUID"},
	{"pxe_enabled", "PXE boot enabled"},
	{"physical_network", "Physical Network"},
	{"local_link_connection", "Local Link Connection"},
	{"portgroup_uuid", "Portgroup UUID"},
	{"name", "Name"},
	{"is_smartnic", "Is Smart NIC port"},
	{"extra", "Extra"},
	{"internal_info", "Internal Info"},
	{"created_at", "Created At"},
	{"updated_at", "Updated At"},
}

var portListDefault = portFields[:2]

// ---- port list

type portListOptions struct {
	g    *globalOptions
	Node string
	Long bool

	query listQuery
	cols  []column
}

func newPortListCommand(g *globalOptions) *cobra.Command {
	o := &portListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List ports",
		Example: `  strata port list
  strata port list --node node-0 --long`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Node, "node", "", "only the ports of this `NODE` (UUID or name)")
	cmd.Flags().BoolVar(&o.Long, "long", false, "show all the details of each port")
	return cmd
}

func (o *portListOptions) Complete(cmd *cobra.Command, args []string) error {
	o.query = listQuery{}
	o.query.set("node", o.Node)
	return nil
}

func (o *portListOptions) Validate() error {
	if o.Node != "" {
		if err := validateIdent("--node", o.Node); err != nil {
			return err
		}
	}
	defaults := portListDefault
	if o.Long {
		defaults = portFields
	}
	cols, err := selectColumns(o.g.Columns, portFields, defaults)
	if err != nil {
		return err
	}
	o.cols = cols
	if !o.Long && !allIn(cols, portListDefault) {
		fields := make([]string, len(cols))
		for i, c := range cols {
			fields[i] = c.Field
		}
		o.query.set("fields", strings.Join(fields, ","))
	}
	return nil
}

func (o *portListOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	rows, err := listPorts(ctx, conn.client, o.query, o.Long, false)
	if err != nil {
		if o.Node != "" && isNotFound(err) {
			return &notFoundError{kind: "node", ident: o.Node}
		}
		return err
	}
	for i := range rows {
		rows[i] = displayRecord(rows[i])
	}
	return o.g.printer().list(o.cols, rows)
}

// ---- port show

type portShowOptions struct {
	g    *globalOptions
	Port string
}

func newPortShowCommand(g *globalOptions) *cobra.Command {
	o := &portShowOptions{g: g}
	cmd := &cobra.Command{
		Use:     "show PORT",
		Short:   "Show a port's details",
		Long:    `Show a port, named by its UUID or by its MAC address.`,
		Example: "  strata port show 52:54:00:aa:bb:01\n  strata port show 5d2e7a28-8c0a-4a3c-9a2f-7c9a4d0e6b11 -f json",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *portShowOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Port = args[0]
	return nil
}

func (o *portShowOptions) Validate() error { return validatePortIdent(o.Port) }

func validatePortIdent(s string) error {
	if _, err := inventory.ParseMAC(s); err == nil {
		return nil
	}
	return validateIdent("PORT", s)
}

func (o *portShowOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	uuid, err := portUUID(ctx, conn.client, o.Port)
	if err != nil {
		return err
	}
	r := ports.Get(ctx, conn.client, uuid)
	if r.Err != nil {
		return resourceError(r.Err, "port", o.Port)
	}
	rec, err := bodyRecord(r.Body)
	if err != nil {
		return err
	}
	return o.g.printer().show(displayRecord(rec))
}

// portUUID resolves a port named by MAC address to its UUID.
func portUUID(ctx context.Context, c *gophercloud.ServiceClient, ident string) (string, error) {
	mac, err := inventory.ParseMAC(ident)
	if err != nil {
		return ident, nil
	}
	q := listQuery{}
	q.set("address", mac)
	rows, err := listPorts(ctx, c, q, false, true)
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", &notFoundError{kind: "port", ident: ident}
	}
	return rows[0].str("uuid"), nil
}

// ---- port create

type portCreateOptions struct {
	g *globalOptions

	Address         string
	Node            string
	PXEEnabled      bool
	NoPXEEnabled    bool
	PhysicalNetwork string
	LocalLink       []string
	Extra           []string

	opts ports.CreateOpts
}

func newPortCreateCommand(g *globalOptions) *cobra.Command {
	o := &portCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create ADDRESS --node NODE [flags]",
		Short: "Add a port (a NIC, by MAC address) to a node",
		Long: `Add a port to a node: a NIC, by its MAC address. PXE is enabled on it
unless --no-pxe-enabled is given.`,
		Example: `  strata port create 52:54:00:aa:bb:01 --node node-0 --physical-network ctlplane
  strata port create 52:54:00:aa:bb:02 --node node-0 --no-pxe-enabled \
    --local-link-connection switch_id=00:1c:73:00:00:01 --local-link-connection port_id=Ethernet1/5`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Node, "node", "", "the `NODE` (UUID or name) the port belongs to (required)")
	f.BoolVar(&o.PXEEnabled, "pxe-enabled", false, "network-boot the node through this port (the default)")
	f.BoolVar(&o.NoPXEEnabled, "no-pxe-enabled", false, "do not network-boot the node through this port")
	f.StringVar(&o.PhysicalNetwork, "physical-network", "", "the physical `NETWORK` the port is on, e.g. ctlplane")
	f.StringArrayVar(&o.LocalLink, "local-link-connection", nil, "switch port `KEY=VALUE`: switch_id, port_id, switch_info, network_type (repeat for more)")
	f.StringArrayVar(&o.Extra, "extra", nil, "extra `KEY=VALUE` (repeat for more)")
	return cmd
}

func (o *portCreateOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Address = args[0]
	llc, err := parseStringMap("local-link-connection", o.LocalLink)
	if err != nil {
		return err
	}
	extra, err := parseKeyValues("extra", o.Extra)
	if err != nil {
		return err
	}
	o.opts = ports.CreateOpts{
		PhysicalNetwork:     o.PhysicalNetwork,
		LocalLinkConnection: llc,
		Extra:               extra,
	}
	if o.PXEEnabled || o.NoPXEEnabled {
		pxe := !o.NoPXEEnabled
		o.opts.PXEEnabled = &pxe
	}
	return nil
}

func (o *portCreateOptions) Validate() error {
	mac, err := inventory.ParseMAC(o.Address)
	if err != nil {
		return usageErrorf("ADDRESS: %q is not a MAC address such as 52:54:00:aa:bb:01", o.Address)
	}
	o.opts.Address = mac
	if o.Node == "" {
		return usageErrorf("--node is required")
	}
	if err := validateIdent("--node", o.Node); err != nil {
		return err
	}
	if o.PXEEnabled && o.NoPXEEnabled {
		return usageErrorf("--pxe-enabled and --no-pxe-enabled can not be used together")
	}
	for k := range o.opts.LocalLinkConnection {
		switch k {
		case "switch_id", "port_id", "switch_info", "network_type":
		default:
			return usageErrorf("--local-link-connection: %q is not one of switch_id, port_id, switch_info, network_type", k)
		}
	}
	return nil
}

func (o *portCreateOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	nodeUUID := o.Node
	if !inventory.IsUUID(o.Node) {
		n, err := getNode(ctx, conn.client, o.Node)
		if err != nil {
			return err
		}
		nodeUUID = n.str("uuid")
	}
	opts := o.opts
	opts.NodeUUID = nodeUUID
	r := ports.Create(ctx, conn.client, opts)
	if r.Err != nil {
		return apiError(r.Err)
	}
	rec, err := bodyRecord(r.Body)
	if err != nil {
		return err
	}
	return o.g.printer().show(displayRecord(rec))
}

// ---- port delete

type portDeleteOptions struct {
	g     *globalOptions
	Ports []string
}

func newPortDeleteCommand(g *globalOptions) *cobra.Command {
	o := &portDeleteOptions{g: g}
	cmd := &cobra.Command{
		Use:     "delete PORT...",
		Short:   "Delete ports",
		Long:    `Delete ports, named by UUID or MAC address. A port that can not be deleted does not stop the others; the exit status is 1 if any failed.`,
		Example: "  strata port delete 52:54:00:aa:bb:01",
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *portDeleteOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Ports = args
	return nil
}

func (o *portDeleteOptions) Validate() error {
	for _, p := range o.Ports {
		if err := validatePortIdent(p); err != nil {
			return err
		}
	}
	return nil
}

func (o *portDeleteOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, p := range o.Ports {
		err := func() error {
			uuid, err := portUUID(ctx, conn.client, p)
			if err != nil {
				return err
			}
			return resourceError(ports.Delete(ctx, conn.client, uuid).ExtractErr(), "port", p)
		}()
		if err != nil {
			failed++
			msg := describeError(err)
			if !isNotFound(err) {
				msg = fmt.Sprintf("port %s: %s", p, msg)
			}
			fmt.Fprintf(o.g.streams.ErrOut, "strata: %s\n", msg)
			continue
		}
		fmt.Fprintf(o.g.streams.Out, "Deleted port %s\n", p)
	}
	if failed > 0 {
		return &silentError{code: ExitError}
	}
	return nil
}
