package cli

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/inventory"
)

func newNodeCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("node", "Manage the undercloud's bare-metal nodes",
		`Manage the undercloud's bare-metal nodes: enroll them (import, create),
bring them through their provision states (manage, inspect, provide,
deploy, undeploy, ...), and drive their power and boot devices.

A node is named by its UUID or its name. The usual life of a node:

  strata node import instackenv.json          # enroll
  strata node manage --all --wait             # check BMC credentials
  strata node inspect --all --wait            # read the hardware
  strata node provide --all --wait            # clean: now available
  strata node deploy node-0 --wait            # write the OS image`)
	cmd.AddCommand(
		newNodeImportCommand(g),
		newNodeListCommand(g),
		newNodeShowCommand(g),
		newNodeCreateCommand(g),
		newNodeSetCommand(g),
		newNodeUnsetCommand(g),
		newNodeDeleteCommand(g),
		newNodePowerCommand(g),
		newNodeBootCommand(g),
		newNodeMaintenanceCommand(g),
		newNodeValidateCommand(g),
		newNodeHistoryCommand(g),
		newNodeInventoryCommand(g),
	)
	for _, v := range provisionVerbs {
		cmd.AddCommand(newProvisionCommand(g, v))
	}
	return cmd
}

// ---- node list

type nodeListOptions struct {
	g *globalOptions

	ProvisionState string
	Maintenance    bool
	NoMaintenance  bool
	Driver         string
	ResourceClass  string
	Long           bool
	Limit          int
	Marker         string
	Sort           string

	query listQuery
	cols  []column
}

func newNodeListCommand(g *globalOptions) *cobra.Command {
	o := &nodeListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes",
		Long: `List nodes, with filters. By default the columns are those of the
openstack CLI's "baremetal node list"; --long shows many more, and -c picks
any of them (by field name, such as provision_state, or by heading).`,
		Example: `  strata node list
  strata node list --provision-state manageable --no-maintenance
  strata node list --long -f json
  strata node list -f value -c name -c provision_state
  strata node list --sort name:desc --limit 10`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.ProvisionState, "provision-state", "", "only nodes in this provision `STATE`, e.g. manageable")
	f.BoolVar(&o.Maintenance, "maintenance", false, "only nodes in maintenance")
	f.BoolVar(&o.NoMaintenance, "no-maintenance", false, "only nodes not in maintenance")
	f.StringVar(&o.Driver, "driver", "", "only nodes with this `DRIVER`, e.g. ipmi")
	f.StringVar(&o.ResourceClass, "resource-class", "", "only nodes of this resource `CLASS`")
	f.BoolVar(&o.Long, "long", false, "show all the details of each node")
	f.IntVar(&o.Limit, "limit", 0, "show at most `N` nodes (one page); 0 means all")
	f.StringVar(&o.Marker, "marker", "", "start after the node with this `UUID` (paging)")
	f.StringVar(&o.Sort, "sort", "", "sort by `KEY[:asc|desc]`, e.g. name or provision_updated_at:desc")
	return cmd
}

func (o *nodeListOptions) Complete(cmd *cobra.Command, args []string) error {
	o.query = listQuery{}
	o.query.set("provision_state", o.ProvisionState)
	o.query.set("driver", o.Driver)
	o.query.set("resource_class", o.ResourceClass)
	o.query.set("marker", o.Marker)
	if o.Maintenance {
		o.query.set("maintenance", "true")
	}
	if o.NoMaintenance {
		o.query.set("maintenance", "false")
	}
	if o.Limit > 0 {
		o.query.set("limit", strconv.Itoa(o.Limit))
	}
	if o.Sort != "" {
		key, dir, _ := strings.Cut(o.Sort, ":")
		o.query.set("sort_key", key)
		o.query.set("sort_dir", dir)
	}
	return nil
}

func (o *nodeListOptions) Validate() error {
	if o.Maintenance && o.NoMaintenance {
		return usageErrorf("--maintenance and --no-maintenance can not be used together")
	}
	if o.ProvisionState != "" && !slices.Contains(inventory.AllStates(), o.ProvisionState) {
		return usageErrorf("--provision-state: %q is not a provision state; states: %s", o.ProvisionState, strings.Join(inventory.AllStates(), ", "))
	}
	if o.Limit < 0 {
		return usageErrorf("--limit: must not be negative")
	}
	if o.Sort != "" {
		key, dir, hasDir := strings.Cut(o.Sort, ":")
		if key == "" {
			return usageErrorf("--sort: %q has no key; use KEY[:asc|desc]", o.Sort)
		}
		if hasDir && dir != "asc" && dir != "desc" {
			return usageErrorf("--sort: direction %q is not asc or desc", dir)
		}
	}
	defaults := nodeListDefault
	if o.Long {
		defaults = nodeListLong
	}
	cols, err := selectColumns(o.g.Columns, nodeFields, defaults)
	if err != nil {
		return err
	}
	o.cols = cols
	// A short listing carries only the default fields; ask for the
	// others that -c wants.
	if !o.Long && !allIn(cols, nodeListDefault) {
		fields := make([]string, len(cols))
		for i, c := range cols {
			fields[i] = c.Field
		}
		o.query.set("fields", strings.Join(fields, ","))
	}
	return nil
}

func allIn(cols, set []column) bool {
	for _, c := range cols {
		if !slices.Contains(set, c) {
			return false
		}
	}
	return true
}

func (o *nodeListOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	rows, err := listNodes(ctx, conn.client, o.query, o.Long, o.Limit > 0)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i] = displayRecord(rows[i])
	}
	p := o.g.printer()
	return p.list(o.cols, rows)
}

// ---- node show

type nodeShowOptions struct {
	g    *globalOptions
	Node string
}

func newNodeShowCommand(g *globalOptions) *cobra.Command {
	o := &nodeShowOptions{g: g}
	cmd := &cobra.Command{
		Use:   "show NODE",
		Short: "Show a node's details",
		Long: `Show all the fields of a node, named by UUID or name. Passwords and
other secrets in driver_info are masked by the server and never shown.`,
		Example: `  strata node show node-0
  strata node show node-0 -f json
  strata node show node-0 -f value -c provision_state`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeShowOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodeShowOptions) Validate() error { return validateIdent("NODE", o.Node) }

func (o *nodeShowOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	n, err := getNode(ctx, conn.client, o.Node)
	if err != nil {
		return err
	}
	return o.g.printer().show(displayRecord(n))
}

// nodeError is err about the node ident, as one line.
func nodeError(ident string, err error) string {
	if isNotFound(err) {
		return (&notFoundError{kind: "node", ident: ident}).Error()
	}
	return fmt.Sprintf("node %s: %s", ident, describeError(err))
}

// validateIdent checks a UUID or name given on the command line.
func validateIdent(what, s string) error {
	if strings.TrimSpace(s) == "" {
		return usageErrorf("%s must not be empty", what)
	}
	if !identRE.MatchString(s) {
		return usageErrorf("%s: %q is not a UUID or a name (names use letters, digits and . _ ~ - only)", what, s)
	}
	return nil
}

// identRE is what a UUID or an Ironic name can hold: URL-safe characters.
var identRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// ---- node create

type nodeCreateOptions struct {
	g *globalOptions

	Driver        string
	Name          string
	UUID          string
	ResourceClass string
	Description   string
	DriverInfo    []string
	Properties    []string
	Extra         []string

	opts nodes.CreateOpts
}

func newNodeCreateCommand(g *globalOptions) *cobra.Command {
	o := &nodeCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create --driver DRIVER [flags]",
		Short: "Enroll one node",
		Long: `Enroll one node. It starts in the "enroll" state; "strata node manage"
then checks its BMC credentials. To enroll many nodes at once, use
"strata node import".

Values of --driver-info, --property and --extra are read as JSON when they
are valid JSON (cpus=8 is a number, pxe=true a boolean) and as strings
otherwise.`,
		Example: `  strata node create --driver ipmi --name node-0 \
    --driver-info ipmi_address=192.168.24.11 \
    --driver-info ipmi_username=admin --driver-info ipmi_password=secret \
    --property cpus=8 --property memory_mb=16384 --property cpu_arch=x86_64
  strata node create --driver redfish --name node-1 \
    --driver-info redfish_address=https://192.168.24.12 \
    --driver-info redfish_system_id=/redfish/v1/Systems/1`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Driver, "driver", "", "hardware type `DRIVER`: "+strings.Join(inventory.Drivers, ", ")+" (required)")
	f.StringVar(&o.Name, "name", "", "unique `NAME` of the node")
	f.StringVar(&o.UUID, "uuid", "", "`UUID` of the node (default: the server picks one)")
	f.StringVar(&o.ResourceClass, "resource-class", "", "resource `CLASS`, for scheduling")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the node")
	f.StringArrayVar(&o.DriverInfo, "driver-info", nil, "driver_info `KEY=VALUE`, e.g. ipmi_address=10.0.0.5 (repeat for more)")
	f.StringArrayVar(&o.Properties, "property", nil, "properties `KEY=VALUE`, e.g. cpus=8 (repeat for more)")
	f.StringArrayVar(&o.Extra, "extra", nil, "extra `KEY=VALUE` (repeat for more)")
	return cmd
}

func (o *nodeCreateOptions) Complete(cmd *cobra.Command, args []string) error {
	di, err := parseKeyValues("driver-info", o.DriverInfo)
	if err != nil {
		return err
	}
	props, err := parseKeyValues("property", o.Properties)
	if err != nil {
		return err
	}
	extra, err := parseKeyValues("extra", o.Extra)
	if err != nil {
		return err
	}
	o.opts = nodes.CreateOpts{
		Driver:        o.Driver,
		Name:          o.Name,
		UUID:          o.UUID,
		ResourceClass: o.ResourceClass,
		DriverInfo:    di,
		Properties:    props,
		Extra:         extra,
	}
	return nil
}

func (o *nodeCreateOptions) Validate() error {
	if o.Driver == "" {
		return usageErrorf("--driver is required (one of %s)", strings.Join(inventory.Drivers, ", "))
	}
	if err := inventory.ValidateName(o.Name); err != nil {
		return usageErrorf("--%v", err)
	}
	if o.UUID != "" && !inventory.IsUUID(o.UUID) {
		return usageErrorf("--uuid: %q is not a UUID", o.UUID)
	}
	return nil
}

// createOpts adds the fields gophercloud's CreateOpts lacks.
type createOpts struct {
	nodes.CreateOpts
	Description string
}

func (c createOpts) ToNodeCreateMap() (map[string]any, error) {
	m, err := c.CreateOpts.ToNodeCreateMap()
	if err != nil {
		return nil, err
	}
	if c.Description != "" {
		m["description"] = c.Description
	}
	return m, nil
}

func (o *nodeCreateOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	r := nodes.Create(ctx, conn.client, createOpts{CreateOpts: o.opts, Description: o.Description})
	if r.Err != nil {
		return apiError(r.Err)
	}
	n, err := bodyRecord(r.Body)
	if err != nil {
		return err
	}
	return o.g.printer().show(displayRecord(n))
}

// ---- node set / unset

// patchOp is one JSON Patch operation. gophercloud's UpdateOperation
// drops an empty value, which would turn "add" of "" into a bad patch.
type patchOp struct {
	Op    string
	Path  string
	Value any
}

var _ nodes.Patch = patchOp{}

func (p patchOp) ToNodeUpdateMap() (map[string]any, error) {
	m := map[string]any{"op": p.Op, "path": p.Path}
	if p.Op != "remove" {
		m["value"] = p.Value
	}
	return m, nil
}

type nodeSetOptions struct {
	g    *globalOptions
	Node string

	Name          string
	ResourceClass string
	Description   string
	DriverInfo    []string
	Properties    []string
	InstanceInfo  []string
	Extra         []string

	patch nodes.UpdateOpts
}

func newNodeSetCommand(g *globalOptions) *cobra.Command {
	o := &nodeSetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "set NODE [flags]",
		Short: "Set fields of a node",
		Long: `Set fields of a node (JSON Patch "add" operations: a key that exists is
replaced). Values of the KEY=VALUE flags are read as JSON when they are
valid JSON and as strings otherwise. Most fields can only be changed while
the node rests (enroll, manageable, available, or a failed state), or in
maintenance.`,
		Example: `  strata node set node-0 --driver-info ipmi_password=newsecret
  strata node set node-0 --property capabilities=profile:compute,boot_mode:uefi
  strata node set node-0 --instance-info image_source=http://192.168.24.1:8088/overcloud.qcow2 \
    --instance-info image_checksum=sha256:0123...`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.ResourceClass, "resource-class", "", "new resource `CLASS`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	f.StringArrayVar(&o.DriverInfo, "driver-info", nil, "driver_info `KEY=VALUE` (repeat for more)")
	f.StringArrayVar(&o.Properties, "property", nil, "properties `KEY=VALUE` (repeat for more)")
	f.StringArrayVar(&o.InstanceInfo, "instance-info", nil, "instance_info `KEY=VALUE` (repeat for more)")
	f.StringArrayVar(&o.Extra, "extra", nil, "extra `KEY=VALUE` (repeat for more)")
	return cmd
}

func (o *nodeSetOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	o.patch = nil
	fl := cmd.Flags()
	for _, top := range []struct {
		flag, field, value string
	}{
		{"name", "name", o.Name},
		{"resource-class", "resource_class", o.ResourceClass},
		{"description", "description", o.Description},
	} {
		if fl.Changed(top.flag) {
			o.patch = append(o.patch, patchOp{Op: "add", Path: "/" + top.field, Value: top.value})
		}
	}
	for _, m := range []struct {
		flag, field string
		kvs         []string
	}{
		{"driver-info", "driver_info", o.DriverInfo},
		{"property", "properties", o.Properties},
		{"instance-info", "instance_info", o.InstanceInfo},
		{"extra", "extra", o.Extra},
	} {
		for _, kv := range m.kvs {
			k, v, err := parseKeyValue(m.flag, kv)
			if err != nil {
				return err
			}
			o.patch = append(o.patch, patchOp{Op: "add", Path: "/" + m.field + "/" + pointerEscape(k), Value: v})
		}
	}
	return nil
}

func (o *nodeSetOptions) Validate() error {
	if err := validateIdent("NODE", o.Node); err != nil {
		return err
	}
	if len(o.patch) == 0 {
		return usageErrorf("nothing to set: give at least one of --name, --resource-class, --description, --driver-info, --property, --instance-info, --extra")
	}
	for _, p := range o.patch {
		if p.(patchOp).Path == "/name" {
			if err := inventory.ValidateName(o.Name); err != nil {
				return usageErrorf("--%v", err)
			}
		}
	}
	return nil
}

func (o *nodeSetOptions) Run(ctx context.Context) error {
	return updateNode(ctx, o.g, o.Node, o.patch)
}

func updateNode(ctx context.Context, g *globalOptions, ident string, patch nodes.UpdateOpts) error {
	conn, err := g.connect(ctx)
	if err != nil {
		return err
	}
	r := nodes.Update(ctx, conn.client, ident, patch)
	return resourceError(r.Err, "node", ident)
}

type nodeUnsetOptions struct {
	g    *globalOptions
	Node string

	Name          bool
	ResourceClass bool
	Description   bool
	DriverInfo    []string
	Properties    []string
	InstanceInfo  []string
	Extra         []string

	patch nodes.UpdateOpts
}

func newNodeUnsetCommand(g *globalOptions) *cobra.Command {
	o := &nodeUnsetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "unset NODE [flags]",
		Short: "Remove fields of a node",
		Long:  `Remove fields of a node (JSON Patch "remove" operations).`,
		Example: `  strata node unset node-0 --driver-info ipmi_port
  strata node unset node-0 --instance-info image_source --instance-info image_checksum
  strata node unset node-0 --description`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.BoolVar(&o.Name, "name", false, "remove the name")
	f.BoolVar(&o.ResourceClass, "resource-class", false, "remove the resource class")
	f.BoolVar(&o.Description, "description", false, "remove the description")
	f.StringArrayVar(&o.DriverInfo, "driver-info", nil, "driver_info `KEY` to remove (repeat for more)")
	f.StringArrayVar(&o.Properties, "property", nil, "properties `KEY` to remove (repeat for more)")
	f.StringArrayVar(&o.InstanceInfo, "instance-info", nil, "instance_info `KEY` to remove (repeat for more)")
	f.StringArrayVar(&o.Extra, "extra", nil, "extra `KEY` to remove (repeat for more)")
	return cmd
}

func (o *nodeUnsetOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	o.patch = nil
	for _, top := range []struct {
		on    bool
		field string
	}{{o.Name, "name"}, {o.ResourceClass, "resource_class"}, {o.Description, "description"}} {
		if top.on {
			o.patch = append(o.patch, patchOp{Op: "remove", Path: "/" + top.field})
		}
	}
	for _, m := range []struct {
		flag, field string
		keys        []string
	}{
		{"driver-info", "driver_info", o.DriverInfo},
		{"property", "properties", o.Properties},
		{"instance-info", "instance_info", o.InstanceInfo},
		{"extra", "extra", o.Extra},
	} {
		for _, k := range m.keys {
			if strings.TrimSpace(k) == "" || strings.Contains(k, "=") {
				return usageErrorf("--%s: %q is not a KEY", m.flag, k)
			}
			o.patch = append(o.patch, patchOp{Op: "remove", Path: "/" + m.field + "/" + pointerEscape(k)})
		}
	}
	return nil
}

func (o *nodeUnsetOptions) Validate() error {
	if err := validateIdent("NODE", o.Node); err != nil {
		return err
	}
	if len(o.patch) == 0 {
		return usageErrorf("nothing to unset: give at least one of --name, --resource-class, --description, --driver-info, --property, --instance-info, --extra")
	}
	return nil
}

func (o *nodeUnsetOptions) Run(ctx context.Context) error {
	return updateNode(ctx, o.g, o.Node, o.patch)
}

// ---- node delete

type nodeDeleteOptions struct {
	g     *globalOptions
	Nodes []string
}

func newNodeDeleteCommand(g *globalOptions) *cobra.Command {
	o := &nodeDeleteOptions{g: g}
	cmd := &cobra.Command{
		Use:   "delete NODE...",
		Short: "Delete nodes",
		Long: `Delete nodes and their ports. A node can only be deleted while it is in
enroll, manageable or adopt failed: undeploy a deployed node and "manage"
an available one first. A node that can not be deleted does not stop the
others; the exit status is 1 if any failed.`,
		Example: `  strata node delete node-0
  strata node delete node-0 node-1 node-2`,
		Args: minArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeDeleteOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Nodes = args
	return nil
}

func (o *nodeDeleteOptions) Validate() error {
	for _, n := range o.Nodes {
		if err := validateIdent("NODE", n); err != nil {
			return err
		}
	}
	return nil
}

func (o *nodeDeleteOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, n := range o.Nodes {
		err := resourceError(nodes.Delete(ctx, conn.client, n).ExtractErr(), "node", n)
		if err != nil {
			failed++
			fmt.Fprintf(o.g.streams.ErrOut, "strata: %s\n", nodeError(n, err))
			continue
		}
		fmt.Fprintf(o.g.streams.Out, "Deleted node %s\n", n)
	}
	if failed > 0 {
		return &silentError{code: ExitError}
	}
	return nil
}
