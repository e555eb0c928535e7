package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/spf13/cobra"
)

// ---- node power

func newNodePowerCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("power", "Power nodes on, off, or reboot them", `Power nodes on, off, or reboot them through their BMCs, or show their
power state. The change is asynchronous: the command returns once the
undercloud has accepted it; "strata node power status" shows the result.`)
	for _, a := range []struct{ name, short string }{
		{"on", "Power nodes on"},
		{"off", "Power nodes off (--soft: ask the OS to shut down)"},
		{"reboot", "Reboot nodes (--soft: ask the OS to reboot)"},
	} {
		cmd.AddCommand(newNodePowerSetCommand(g, a.name, a.short))
	}
	cmd.AddCommand(newNodePowerStatusCommand(g))
	return cmd
}

type nodePowerOptions struct {
	g      *globalOptions
	action string

	Nodes   []string
	Soft    bool
	Timeout int

	opts nodes.PowerStateOpts
}

func newNodePowerSetCommand(g *globalOptions, action, short string) *cobra.Command {
	o := &nodePowerOptions{g: g, action: action}
	cmd := &cobra.Command{
		Use:     action + " NODE...",
		Short:   short,
		Example: fmt.Sprintf("  strata node power %s node-0\n  strata node power %s node-0 node-1 --power-timeout 60", action, action),
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	if action != "on" {
		f.BoolVar(&o.Soft, "soft", false, "ask the operating system (ACPI) instead of cutting power")
	}
	f.IntVar(&o.Timeout, "power-timeout", 0, "`SECONDS` the BMC may take before the change counts as failed (API 1.27)")
	return cmd
}

func (o *nodePowerOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Nodes = args
	var t nodes.TargetPowerState
	switch {
	case o.action == "on":
		t = nodes.PowerOn
	case o.action == "off" && o.Soft:
		t = nodes.SoftPowerOff
	case o.action == "off":
		t = nodes.PowerOff
	case o.Soft:
		t = nodes.SoftRebooting
	default:
		t = nodes.Rebooting
	}
	o.opts = nodes.PowerStateOpts{Target: t, Timeout: o.Timeout}
	return nil
}

func (o *nodePowerOptions) Validate() error {
	for _, n := range o.Nodes {
		if err := validateIdent("NODE", n); err != nil {
			return err
		}
	}
	if o.Timeout < 0 {
		return usageErrorf("--power-timeout: must not be negative")
	}
	return nil
}

func (o *nodePowerOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	if o.Timeout > 0 {
		if err := conn.atLeast(microversion{1, 27}, "--power-timeout"); err != nil {
			return err
		}
	}
	return eachNode(o.g, o.Nodes, func(n string) error {
		return resourceError(nodes.ChangePowerState(ctx, conn.client, n, o.opts).ExtractErr(), "node", n)
	})
}

// eachNode runs f on each node in turn; a failure does not stop the
// others, and the command fails if any did.
func eachNode(g *globalOptions, idents []string, f func(string) error) error {
	if len(idents) == 1 {
		return f(idents[0])
	}
	failed := 0
	for _, n := range idents {
		if err := f(n); err != nil {
			failed++
			fmt.Fprintf(g.streams.ErrOut, "strata: %s\n", nodeError(n, err))
		}
	}
	if failed > 0 {
		return &silentError{code: ExitError}
	}
	return nil
}

type nodePowerStatusOptions struct {
	g    *globalOptions
	Node string
}

func newNodePowerStatusCommand(g *globalOptions) *cobra.Command {
	o := &nodePowerStatusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status NODE",
		Short: "Print a node's power state",
		Long: `Print a node's power state as the undercloud last saw it: "power on",
"power off", or "None" when it is not known yet. With -f json or yaml, the
target power state too.`,
		Example: "  strata node power status node-0",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodePowerStatusOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodePowerStatusOptions) Validate() error { return validateIdent("NODE", o.Node) }

func (o *nodePowerStatusOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	n, err := getNode(ctx, conn.client, o.Node)
	if err != nil {
		return err
	}
	p := o.g.printer()
	if p.format == formatTable && len(p.columns) == 0 {
		_, err := fmt.Fprintln(p.out, cellText(n["power_state"]))
		return err
	}
	return p.show(record{"power_state": n["power_state"], "target_power_state": n["target_power_state"]})
}

// ---- node boot device

var bootDevices = []string{"pxe", "disk", "cdrom", "bios", "safe"}

func newNodeBootCommand(g *globalOptions) *cobra.Command {
	boot := groupCommand("boot", "Manage nodes' boot settings", "Manage nodes' boot settings.")
	dev := groupCommand("device", "Set or show the device a node boots from", `Set or show the device a node boots from next, through its BMC.`)
	dev.AddCommand(newNodeBootDeviceSetCommand(g), newNodeBootDeviceShowCommand(g))
	boot.AddCommand(dev)
	return boot
}

type nodeBootDeviceSetOptions struct {
	g          *globalOptions
	Node       string
	Device     string
	Persistent bool
}

func newNodeBootDeviceSetCommand(g *globalOptions) *cobra.Command {
	o := &nodeBootDeviceSetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "set NODE DEVICE",
		Short: "Set the device a node boots from",
		Long: `Set the device a node boots from: ` + strings.Join(bootDevices, ", ") + `. Without
--persistent, for the next boot only.`,
		Example:   "  strata node boot device set node-0 pxe\n  strata node boot device set node-0 disk --persistent",
		Args:      exactArgs(2),
		ValidArgs: bootDevices,
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().BoolVar(&o.Persistent, "persistent", false, "for every boot, not only the next one")
	return cmd
}

func (o *nodeBootDeviceSetOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node, o.Device = args[0], args[1]
	return nil
}

func (o *nodeBootDeviceSetOptions) Validate() error {
	if err := validateIdent("NODE", o.Node); err != nil {
		return err
	}
	if !slices.Contains(bootDevices, o.Device) {
		return usageErrorf("DEVICE: %q is not one of %s", o.Device, strings.Join(bootDevices, ", "))
	}
	return nil
}

func (o *nodeBootDeviceSetOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	err = nodes.SetBootDevice(ctx, conn.client, o.Node, nodes.BootDeviceOpts{BootDevice: o.Device, Persistent: o.Persistent}).ExtractErr()
	return resourceError(err, "node", o.Node)
}

type nodeBootDeviceShowOptions struct {
	g    *globalOptions
	Node string
}

func newNodeBootDeviceShowCommand(g *globalOptions) *cobra.Command {
	o := &nodeBootDeviceShowOptions{g: g}
	cmd := &cobra.Command{
		Use:     "show NODE",
		Short:   "Show the device a node boots from",
		Example: "  strata node boot device show node-0",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeBootDeviceShowOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodeBootDeviceShowOptions) Validate() error { return validateIdent("NODE", o.Node) }

func (o *nodeBootDeviceShowOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	r := nodes.GetBootDevice(ctx, conn.client, o.Node)
	if r.Err != nil {
		return resourceError(r.Err, "node", o.Node)
	}
	rec, err := bodyRecord(r.Body)
	if err != nil {
		return err
	}
	return o.g.printer().show(rec)
}

// ---- node maintenance

func newNodeMaintenanceCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("maintenance", "Put nodes in or take them out of maintenance", `Put nodes in maintenance, or take them out. A node in maintenance is left
alone by the undercloud (no power sync, no scheduling) and by the bulk
forms of the provision commands.`)
	cmd.AddCommand(newNodeMaintenanceSetCommand(g), newNodeMaintenanceUnsetCommand(g))
	return cmd
}

type nodeMaintenanceOptions struct {
	g      *globalOptions
	set    bool
	Nodes  []string
	Reason string
}

func newNodeMaintenanceSetCommand(g *globalOptions) *cobra.Command {
	o := &nodeMaintenanceOptions{g: g, set: true}
	cmd := &cobra.Command{
		Use:     "set NODE...",
		Short:   "Put nodes in maintenance",
		Example: `  strata node maintenance set node-0 --reason "replacing a DIMM"`,
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, for the other operators (`TEXT`)")
	return cmd
}

func newNodeMaintenanceUnsetCommand(g *globalOptions) *cobra.Command {
	o := &nodeMaintenanceOptions{g: g}
	cmd := &cobra.Command{
		Use:     "unset NODE...",
		Short:   "Take nodes out of maintenance",
		Example: "  strata node maintenance unset node-0",
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeMaintenanceOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Nodes = args
	return nil
}

func (o *nodeMaintenanceOptions) Validate() error {
	for _, n := range o.Nodes {
		if err := validateIdent("NODE", n); err != nil {
			return err
		}
	}
	return nil
}

func (o *nodeMaintenanceOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	return eachNode(o.g, o.Nodes, func(n string) error {
		var err error
		if o.set {
			err = nodes.SetMaintenance(ctx, conn.client, n, nodes.MaintenanceOpts{Reason: o.Reason}).ExtractErr()
		} else {
			err = nodes.UnsetMaintenance(ctx, conn.client, n).ExtractErr()
		}
		return resourceError(err, "node", n)
	})
}

// ---- node validate

type nodeValidateOptions struct {
	g    *globalOptions
	Node string
}

func newNodeValidateCommand(g *globalOptions) *cobra.Command {
	o := &nodeValidateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "validate NODE",
		Short: "Check that a node has what each of its interfaces needs",
		Long: `Ask the undercloud whether a node's driver has what it needs for each
interface (power, management, boot, deploy, ...), with the reason when it
does not. Result None means the driver does not have that interface.`,
		Example: "  strata node validate node-0",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeValidateOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodeValidateOptions) Validate() error { return validateIdent("NODE", o.Node) }

var validateColumns = []column{{"interface", "Interface"}, {"result", "Result"}, {"reason", "Reason"}}

func (o *nodeValidateOptions) Run(ctx context.Context) error {
	cols, err := selectColumns(o.g.Columns, validateColumns, validateColumns)
	if err != nil {
		return err
	}
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	r := nodes.Validate(ctx, conn.client, o.Node)
	if r.Err != nil {
		return resourceError(r.Err, "node", o.Node)
	}
	body, err := bodyRecord(r.Body)
	if err != nil {
		return err
	}
	ifaces := make([]string, 0, len(body))
	for k := range body {
		ifaces = append(ifaces, k)
	}
	sort.Strings(ifaces)
	rows := make([]record, 0, len(ifaces))
	for _, k := range ifaces {
		v, _ := body[k].(map[string]any)
		rows = append(rows, record{"interface": k, "result": v["result"], "reason": v["reason"]})
	}
	return o.g.printer().list(cols, rows)
}

// ---- node history

type nodeHistoryOptions struct {
	g    *globalOptions
	Node string
	Long bool
}

func newNodeHistoryCommand(g *globalOptions) *cobra.Command {
	o := &nodeHistoryOptions{g: g}
	cmd := &cobra.Command{
		Use:   "history NODE",
		Short: "Show a node's event history",
		Long: `Show what happened to a node, oldest first: state changes, errors, power
and maintenance events (API 1.78). --long adds the event type, the
conductor and the user.`,
		Example: "  strata node history node-0\n  strata node history node-0 --long -f json",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().BoolVar(&o.Long, "long", false, "show every field of each event")
	return cmd
}

func (o *nodeHistoryOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodeHistoryOptions) Validate() error { return validateIdent("NODE", o.Node) }

var historyFields = []column{
	{"uuid", "UUID"},
	{"created_at", "Created At"},
	{"severity", "Severity"},
	{"event_type", "Event Type"},
	{"event", "Event"},
	{"conductor", "Conductor"},
	{"user", "User"},
}

func (o *nodeHistoryOptions) Run(ctx context.Context) error {
	defaults := []column{historyFields[1], historyFields[2], historyFields[4]}
	if o.Long {
		defaults = historyFields
	}
	cols, err := selectColumns(o.g.Columns, historyFields, defaults)
	if err != nil {
		return err
	}
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	if err := conn.atLeast(microversion{1, 78}, "node history"); err != nil {
		return err
	}
	// gophercloud has no call for the history; ask through its client.
	u := conn.client.ServiceURL("nodes", url.PathEscape(o.Node), "history")
	if o.Long {
		u += "?detail=true"
	}
	var body struct {
		History []map[string]any `json:"history"`
	}
	_, err = conn.client.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return resourceError(err, "node", o.Node)
	}
	rows := make([]record, len(body.History))
	for i, h := range body.History {
		rows[i] = record(h)
	}
	return o.g.printer().list(cols, rows)
}

// ---- node inventory

type nodeInventoryOptions struct {
	g    *globalOptions
	Node string
}

func newNodeInventoryCommand(g *globalOptions) *cobra.Command {
	o := &nodeInventoryOptions{g: g}
	cmd := &cobra.Command{
		Use:   "inventory NODE",
		Short: "Show the hardware inspection found on a node",
		Long: `Show the hardware inventory the deploy ramdisk's agent reported when the
node was inspected (API 1.81): a summary table of its CPUs, memory, boot
mode, disks and NICs, or with -f json|yaml the whole inventory as the
agent sent it.`,
		Example: "  strata node inventory node-0\n  strata node inventory node-0 -f json",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *nodeInventoryOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *nodeInventoryOptions) Validate() error { return validateIdent("NODE", o.Node) }

func (o *nodeInventoryOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	if err := conn.atLeast(microversion{1, 81}, "node inventory"); err != nil {
		return err
	}
	res := nodes.GetInventory(ctx, conn.client, o.Node)
	if res.Err != nil {
		return resourceError(res.Err, "node", o.Node)
	}
	if o.g.Format == "json" || o.g.Format == "yaml" {
		var raw map[string]any
		if err := res.ExtractInto(&raw); err != nil {
			return err
		}
		return o.g.printer().show(record(raw))
	}
	data, err := res.Extract()
	if err != nil {
		return err
	}
	inv := data.Inventory
	rows := []record{
		{"item": "cpu", "value": fmt.Sprintf("%d × %s (%s)", inv.CPU.Count, inv.CPU.ModelName, inv.CPU.Architecture)},
		{"item": "memory", "value": fmt.Sprintf("%d MiB", inv.Memory.PhysicalMb)},
		{"item": "boot mode", "value": inv.Boot.CurrentBootMode},
		{"item": "system", "value": strings.TrimSpace(inv.SystemVendor.Manufacturer + " " + inv.SystemVendor.ProductName + " " + inv.SystemVendor.SerialNumber)},
	}
	for _, d := range inv.Disks {
		rows = append(rows, record{"item": "disk " + d.Name, "value": fmt.Sprintf("%d bytes, model %q, serial %q, rotational %t", d.Size, d.Model, d.Serial, d.Rotational)})
	}
	for _, n := range inv.Interfaces {
		rows = append(rows, record{"item": "nic " + n.Name, "value": strings.TrimSpace(fmt.Sprintf("%s %s %s", n.MACAddress, n.IPV4Address, carrier(n.HasCarrier)))})
	}
	return o.g.printer().list([]column{{"item", "Item"}, {"value", "Value"}}, rows)
}

func carrier(up bool) string {
	if up {
		return "link up"
	}
	return "no link"
}
