package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/inventory"
)

// provisionVerb is one provision command: the API target it sends, the
// state machine event that target raises, and the stable state a node
// lands in when it succeeds.
type provisionVerb struct {
	Name   string
	Target nodes.TargetProvisionState
	Event  inventory.Event
	// Expect is the state of success; empty for abort, which succeeds in
	// whatever state the node comes to rest in.
	Expect string
	// Bulk verbs can select their nodes with --all or --provision-state.
	Bulk    bool
	Short   string
	Long    string
	Example string
}

var provisionVerbs = []provisionVerb{
	{
		Name: "manage", Target: nodes.TargetManage, Event: inventory.EventManage,
		Expect: inventory.StateManageable, Bulk: true,
		Short: "Check nodes' BMC credentials and make them manageable",
		Long: `Move nodes to "manageable". From "enroll" the undercloud first checks the
BMC credentials ("verifying"); if they are wrong the node goes back to
"enroll" with the reason in last_error. From "available" and the failed
states it is immediate.`,
		Example: `  strata node manage node-0 --wait
  strata node manage --all --wait 600`,
	},
	{
		Name: "provide", Target: nodes.TargetProvide, Event: inventory.EventProvide,
		Expect: inventory.StateAvailable, Bulk: true,
		Short: "Clean manageable nodes and make them available",
		Long: `Clean manageable nodes (at least erase disk metadata) and make them
"available" for deployment.`,
		Example: `  strata node provide node-0 --wait
  strata node provide --provision-state manageable --wait --concurrency 10`,
	},
	{
		Name: "inspect", Target: nodes.TargetInspect, Event: inventory.EventInspect,
		Expect: inventory.StateManageable, Bulk: true,
		Short: "Inspect manageable nodes' hardware",
		Long: `Network-boot manageable nodes into the inspection ramdisk, record their
hardware (CPUs, memory, disks, NICs) into their properties and ports, and
power them off again: "inspecting", "inspect wait", then "manageable".`,
		Example: `  strata node inspect node-0 --wait
  strata node inspect --all --wait 1200 --concurrency 20`,
	},
	{
		Name: "deploy", Target: nodes.TargetActive, Event: inventory.EventDeploy,
		Expect: inventory.StateActive, Bulk: true,
		Short: "Deploy an image onto available nodes",
		Long: `Write the image named in the node's instance_info (image_source and
image_checksum, set with "strata node set --instance-info") to available
nodes and boot them from disk: "deploying", "wait call-back", then
"active".`,
		Example: `  strata node set node-0 --instance-info image_source=http://192.168.24.1:8088/overcloud.qcow2
  strata node deploy node-0 --wait
  strata node deploy node-0 --config-drive '{"meta_data": {"hostname": "compute-0"}}'`,
	},
	{
		Name: "undeploy", Target: nodes.TargetDeleted, Event: inventory.EventDelete,
		Expect: inventory.StateAvailable, Bulk: true,
		Short: "Tear down deployed nodes and make them available again",
		Long: `Power off deployed nodes, clean them, and make them "available" again:
"deleting", "cleaning", then "available".`,
		Example: `  strata node undeploy node-0 --wait
  strata node undeploy --provision-state "deploy failed" --wait`,
	},
	{
		Name: "clean", Target: nodes.TargetClean, Event: inventory.EventClean,
		Expect: inventory.StateManageable,
		Short:  "Run manual clean steps on manageable nodes",
		Long: `Run the given clean steps on manageable nodes; they return to
"manageable". The steps are JSON: inline, in a file, or "-" for standard
input.`,
		Example: `  strata node clean node-0 --wait \
    --clean-steps '[{"interface": "deploy", "step": "erase_devices_metadata"}]'
  strata node clean node-0 --clean-steps steps.json`,
	},
	{
		Name: "rebuild", Target: nodes.TargetRebuild, Event: inventory.EventRebuild,
		Expect:  inventory.StateActive,
		Short:   "Redeploy active nodes",
		Long:    `Write the image again onto active (or failed) nodes: they end "active".`,
		Example: `  strata node rebuild node-0 --wait`,
	},
	{
		Name: "abort", Target: nodes.TargetAbort, Event: inventory.EventAbort,
		Short: "Abort a node's inspection, cleaning or deployment",
		Long: `Abort what a node is waiting for ("inspect wait", "clean wait", "wait
call-back", ...). The node lands in the matching failed state; with --wait
strata waits for it to come to rest.`,
		Example: `  strata node abort node-0 --wait`,
	},
}

type provisionOptions struct {
	g    *globalOptions
	verb provisionVerb

	Nodes          []string
	Wait           bool
	WaitSeconds    int
	All            bool
	ProvisionState string
	Concurrency    int
	ConfigDrive    string
	CleanSteps     string

	body nodes.ProvisionStateOpts
}

const defaultConcurrency = 20

func newProvisionCommand(g *globalOptions, v provisionVerb) *cobra.Command {
	o := &provisionOptions{g: g, verb: v}
	use := v.Name + " NODE... [--wait [SECONDS]]"
	long := v.Long + `

With --wait, strata polls each node until it reaches "` + v.Expect + `" or fails,
showing each change of state, and ends with a non-zero exit status and the
node's last_error if it failed. --wait SECONDS gives up after that long.`
	if v.Expect == "" {
		long = v.Long
	}
	if v.Bulk {
		use = v.Name + " (NODE... | --all | --provision-state STATE) [--wait [SECONDS]]"
		long += `

Instead of naming nodes, --all selects every node (not in maintenance) that
can be moved with ` + v.Name + `, and --provision-state every node (not in
maintenance) in that state. Up to --concurrency nodes are worked on at
once, and a summary table ends the command; it exits non-zero if any node
failed.`
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   v.Short,
		Long:    long,
		Example: v.Example,
		Args:    anyArgs,
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.IntVar(&o.WaitSeconds, "wait", 0, "wait for the nodes to finish, at most `SECONDS` each (none or 0: no limit)")
	f.Lookup("wait").NoOptDefVal = "0"
	f.IntVar(&o.Concurrency, "concurrency", defaultConcurrency, "work on up to `N` nodes at once")
	if v.Bulk {
		f.BoolVar(&o.All, "all", false, "every node (not in maintenance) that can be "+pastTense(v.Name))
		f.StringVar(&o.ProvisionState, "provision-state", "", "every node (not in maintenance) in this provision `STATE`")
	}
	switch v.Name {
	case "deploy", "rebuild":
		f.StringVar(&o.ConfigDrive, "config-drive", "", "config drive: a JSON object ({\"meta_data\": ..., \"user_data\": ...}), a URL, gzipped base64 ISO data, or a file holding one of those (`DRIVE`)")
	case "clean":
		f.StringVar(&o.CleanSteps, "clean-steps", "", "clean `STEPS` as JSON, a file of JSON, or \"-\" for standard input (required)")
	}
	return cmd
}

func pastTense(verb string) string {
	switch verb {
	case "manage":
		return "managed"
	case "provide":
		return "provided"
	case "inspect":
		return "inspected"
	case "deploy":
		return "deployed"
	case "undeploy":
		return "undeployed"
	}
	return verb + "ed"
}

func (o *provisionOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Nodes = args
	o.Wait = cmd.Flags().Changed("wait")
	o.body = nodes.ProvisionStateOpts{Target: o.verb.Target}
	if o.ConfigDrive != "" {
		cd, err := readConfigDrive(o.ConfigDrive)
		if err != nil {
			return err
		}
		o.body.ConfigDrive = cd
	}
	if o.CleanSteps != "" {
		var steps []nodes.CleanStep
		if err := readJSONArg("clean-steps", o.CleanSteps, o.g.streams.In, &steps); err != nil {
			return err
		}
		o.body.CleanSteps = steps
	}
	return nil
}

// readConfigDrive reads --config-drive: a JSON object is sent as one (API
// 1.56), anything else as a string (a URL or gzipped, base64 ISO data);
// an existing file is read for either.
func readConfigDrive(arg string) (any, error) {
	s := arg
	if !looksLikeJSON(arg) {
		if st, err := os.Stat(arg); err == nil {
			if st.IsDir() {
				return nil, usageErrorf("--config-drive: %s is a directory; give a JSON object, a URL or a file", arg)
			}
			b, err := os.ReadFile(arg)
			if err != nil {
				return nil, usageErrorf("--config-drive: %v", err)
			}
			s = strings.TrimSpace(string(b))
		}
	}
	if looksLikeJSON(s) {
		v := jsonOrString(s)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, usageErrorf("--config-drive: not a JSON object")
		}
		return m, nil
	}
	return s, nil
}

func (o *provisionOptions) Validate() error {
	selectors := 0
	if len(o.Nodes) > 0 {
		selectors++
	}
	if o.All {
		selectors++
	}
	if o.ProvisionState != "" {
		selectors++
	}
	switch {
	case selectors == 0 && o.verb.Bulk:
		return usageErrorf("name the nodes to %s, or select them with --all or --provision-state", o.verb.Name)
	case selectors == 0:
		return usageErrorf("name the nodes to %s", o.verb.Name)
	case selectors > 1:
		return usageErrorf("give node names, --all or --provision-state: only one of them")
	}
	for _, n := range o.Nodes {
		if err := validateIdent("NODE", n); err != nil {
			return err
		}
	}
	if o.ProvisionState != "" {
		if !slices.Contains(inventory.AllStates(), o.ProvisionState) {
			return usageErrorf("--provision-state: %q is not a provision state; states: %s", o.ProvisionState, strings.Join(inventory.AllStates(), ", "))
		}
		if _, err := inventory.Next(o.ProvisionState, o.verb.Event); err != nil {
			return usageErrorf("--provision-state: nodes in %q can not be %s", o.ProvisionState, pastTense(o.verb.Name))
		}
	}
	if o.WaitSeconds < 0 {
		return usageErrorf("--wait: SECONDS must not be negative")
	}
	if o.Concurrency < 1 {
		return usageErrorf("--concurrency: must be at least 1")
	}
	if _, err := selectColumns(o.g.Columns, summaryColumns, summaryColumns); err != nil {
		return err
	}
	if o.verb.Name == "clean" && len(o.body.CleanSteps) == 0 {
		return usageErrorf(`--clean-steps is required, e.g. '[{"interface": "deploy", "step": "erase_devices_metadata"}]'`)
	}
	return nil
}

// target is a node to act on: named on the command line (rec nil) or
// found by a listing (rec holds what the listing said).
type target struct {
	ident string
	rec   record
}

// outcome is what became of one node.
type outcome struct {
	Label   string
	UUID    string
	State   string
	Elapsed time.Duration
	Err     error
}

func (o *provisionOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	targets, err := o.targets(ctx, conn)
	if err != nil {
		return err
	}
	selected := len(o.Nodes) == 0
	if len(targets) == 0 {
		what := "in state " + fmt.Sprintf("%q", o.ProvisionState)
		if o.All {
			what = "that can be " + pastTense(o.verb.Name)
		}
		fmt.Fprintf(o.g.streams.ErrOut, "no nodes %s (nodes in maintenance are left out)\n", what)
		return nil
	}
	interval, _ := o.g.pollInterval()
	prog := newProgress(o.g.streams.ErrOut, o.Wait && o.g.host.isTerminal(o.g.streams.ErrOut), o.g.host.clock, len(targets))
	w := &waiter{
		client:   conn.client,
		clock:    o.g.host.clock,
		interval: interval,
		timeout:  time.Duration(o.WaitSeconds) * time.Second,
		progress: prog,
	}
	results := forEach(ctx, targets, o.Concurrency, func(ctx context.Context, t target) outcome {
		return o.act(ctx, conn.client, w, t)
	})
	prog.close()

	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	if len(results) == 1 && !selected {
		return results[0].Err
	}
	if err := o.g.printer().listAll(summaryColumns, summaryRows(results)); err != nil {
		return err
	}
	if !o.Wait {
		fmt.Fprintf(o.g.streams.ErrOut, "%s requested for %d node(s); use --wait to follow them\n", o.verb.Name, len(results)-failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes failed", failed, len(results))
	}
	return nil
}

// targets are the nodes named, or those the selection finds.
func (o *provisionOptions) targets(ctx context.Context, conn *connection) ([]target, error) {
	if len(o.Nodes) > 0 {
		seen := map[string]bool{}
		var out []target
		for _, n := range o.Nodes {
			if !seen[n] {
				seen[n] = true
				out = append(out, target{ident: n})
			}
		}
		return out, nil
	}
	q := listQuery{}
	q.set("maintenance", "false")
	q.set("provision_state", o.ProvisionState)
	q.set("fields", "uuid,name,provision_state,target_provision_state,maintenance,provision_updated_at,last_error")
	rows, err := listNodes(ctx, conn.client, q, false, false)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, r := range rows {
		if r.bool("maintenance") {
			continue
		}
		if _, err := inventory.Next(r.str("provision_state"), o.verb.Event); err != nil {
			continue
		}
		out = append(out, target{ident: r.str("uuid"), rec: r})
	}
	return out, nil
}

// act requests the verb for one node and, with --wait, follows it.
func (o *provisionOptions) act(ctx context.Context, c *gophercloud.ServiceClient, w *waiter, t target) outcome {
	res := outcome{Label: t.ident}
	before := t.rec
	if o.Wait && before == nil {
		n, err := getNode(ctx, c, t.ident)
		if err != nil {
			res.Err = err
			return res
		}
		before = n
	}
	ident := t.ident
	if before != nil {
		res.Label, res.UUID, res.State = before.label(), before.str("uuid"), before.str("provision_state")
		ident = res.UUID
	}
	start := w.clock.Now()
	if o.Wait {
		w.progress.begin(res.Label, res.State)
	}
	err := nodes.ChangeProvisionState(ctx, c, ident, o.body).ExtractErr()
	if err != nil {
		res.Err = resourceError(err, "node", t.ident)
		res.Elapsed = w.clock.Now().Sub(start)
		if o.Wait {
			w.progress.end(res.Label, true)
		}
		return res
	}
	if !o.Wait {
		res.State = ""
		res.Elapsed = w.clock.Now().Sub(start)
		return res
	}
	final, err := w.wait(ctx, o.verb, ident, res.Label, before, start)
	if final != nil {
		res.State = final.str("provision_state")
	}
	res.Err = err
	res.Elapsed = w.clock.Now().Sub(start)
	w.progress.end(res.Label, err != nil)
	return res
}

var summaryColumns = []column{
	{"node", "Node"},
	{"uuid", "UUID"},
	{"provision_state", "Provisioning State"},
	{"time", "Time"},
	{"error", "Error"},
}

func summaryRows(results []outcome) []record {
	rows := make([]record, len(results))
	for i, r := range results {
		row := record{
			"node":            r.Label,
			"uuid":            r.UUID,
			"provision_state": r.State,
			"time":            formatElapsed(r.Elapsed),
			"error":           nil,
		}
		if r.State == "" {
			row["provision_state"] = nil
		}
		if r.Err != nil {
			row["error"] = summaryError(r.Err)
		}
		rows[i] = row
	}
	return rows
}

// summaryError is an error as it reads in the summary's Error column,
// where the node and its state already have columns of their own.
func summaryError(err error) string {
	var pf *provisionFailedError
	if errors.As(err, &pf) {
		return pf.lastError()
	}
	return describeError(err)
}

// forEach calls f for each item, at most n at a time, and returns the
// results in the order of items.
func forEach[T, R any](ctx context.Context, items []T, n int, f func(context.Context, T) R) []R {
	out := make([]R, len(items))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = f(ctx, it)
		})
	}
	wg.Wait()
	return out
}
