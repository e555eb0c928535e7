package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/inventory"
)

type nodeImportOptions struct {
	g *globalOptions

	File        string
	Concurrency int

	specs []inventory.NodeSpec
}

func newNodeImportCommand(g *globalOptions) *cobra.Command {
	o := &nodeImportOptions{g: g}
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Enroll the nodes of an instackenv.json or nodes.yaml file",
		Long: `Enroll the nodes of a TripleO node file (instackenv.json, or nodes.yaml
with the same fields), with their ports. FILE "-" reads standard input.

The whole file is checked first; if any entry is wrong nothing is created,
and each problem is listed with the entry and the field. Then each node is
created, followed by its ports. A node that fails does not stop the others;
a table ends the command, and its exit status is 1 if any node failed.

The nodes start in "enroll". Next: "strata node manage --all --wait".`,
		Example: `  strata node import instackenv.json
  strata node import nodes.yaml -f json

  # instackenv.json
  {"nodes": [{"name": "node-0", "pm_type": "ipmi", "pm_addr": "192.168.24.11",
              "pm_user": "admin", "pm_password": "secret",
              "ports": [{"address": "52:54:00:aa:bb:01"}],
              "cpu": 4, "memory": 8192, "disk": 40, "arch": "x86_64"}]}`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", defaultConcurrency, "create up to `N` nodes at once")
	return cmd
}

func (o *nodeImportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.File = args[0]
	return nil
}

func (o *nodeImportOptions) Validate() error {
	if o.Concurrency < 1 {
		return usageErrorf("--concurrency: must be at least 1")
	}
	if _, err := selectColumns(o.g.Columns, importColumns, importColumns); err != nil {
		return err
	}
	var (
		specs []inventory.NodeSpec
		err   error
	)
	if o.File == "-" {
		data, rerr := io.ReadAll(o.g.streams.In)
		if rerr != nil {
			return fmt.Errorf("reading standard input: %v", rerr)
		}
		specs, err = inventory.ParseImport(data)
		if err != nil {
			err = fmt.Errorf("standard input: %w", err)
		}
	} else {
		specs, err = inventory.ParseImportFile(o.File)
	}
	if err != nil {
		return importFileError(err)
	}
	o.specs = specs
	return nil
}

// importFileError lays out the problems of an import file one a line.
func importFileError(err error) error {
	if !errors.Is(err, inventory.ErrInvalid) {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) == 1 {
		return err
	}
	return fmt.Errorf("the file has %d problems, nothing was imported:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

var importColumns = []column{
	{"node", "Node"},
	{"uuid", "UUID"},
	{"ports", "Ports"},
	{"provision_state", "Provisioning State"},
	{"error", "Error"},
}

type importResult struct {
	label string
	uuid  string
	state string
	ports int
	err   error
}

func (o *nodeImportOptions) Run(ctx context.Context) error {
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	start := o.g.host.clock.Now()
	results := forEach(ctx, o.specs, o.Concurrency, func(ctx context.Context, s inventory.NodeSpec) importResult {
		return importNode(ctx, conn.client, s)
	})
	rows := make([]record, len(results))
	failed := 0
	for i, r := range results {
		rows[i] = record{"node": r.label, "uuid": r.uuid, "ports": r.ports, "provision_state": r.state, "error": nil}
		if r.uuid == "" {
			rows[i]["uuid"] = nil
			rows[i]["provision_state"] = nil
		}
		if r.err != nil {
			failed++
			rows[i]["error"] = describeError(r.err)
		}
	}
	if err := o.g.printer().listAll(importColumns, rows); err != nil {
		return err
	}
	fmt.Fprintf(o.g.streams.ErrOut, "imported %d of %d nodes in %s\n", len(results)-failed, len(results), formatElapsed(o.g.host.clock.Now().Sub(start)))
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes failed to import", failed, len(results))
	}
	return nil
}

// importNode creates one node, then its ports.
func importNode(ctx context.Context, c *gophercloud.ServiceClient, s inventory.NodeSpec) importResult {
	n := s.Node
	res := importResult{label: n.Name}
	if res.label == "" {
		res.label = n.UUID
	}
	opts := createOpts{
		CreateOpts: nodes.CreateOpts{
			Driver:         n.Driver,
			Name:           n.Name,
			UUID:           n.UUID,
			ResourceClass:  n.ResourceClass,
			DriverInfo:     n.DriverInfo,
			Properties:     n.Properties,
			Extra:          n.Extra,
			ConductorGroup: n.ConductorGroup,
			Owner:          n.Owner,
			AutomatedClean: n.AutomatedClean,
		},
		Description: n.Description,
	}
	r := nodes.Create(ctx, c, opts)
	if r.Err != nil {
		res.err = apiError(r.Err)
		return res
	}
	rec, err := bodyRecord(r.Body)
	if err != nil {
		res.err = err
		return res
	}
	res.uuid, res.state = rec.str("uuid"), rec.str("provision_state")
	if res.label == "" {
		res.label = res.uuid
	}
	var errs []string
	for _, p := range s.Ports {
		pxe := p.PXEEnabled
		po := ports.CreateOpts{
			NodeUUID:        res.uuid,
			Address:         p.Address,
			PXEEnabled:      &pxe,
			PhysicalNetwork: p.PhysicalNetwork,
			Extra:           p.Extra,
		}
		if len(p.LocalLinkConnection) > 0 {
			po.LocalLinkConnection = make(map[string]any, len(p.LocalLinkConnection))
			for k, v := range p.LocalLinkConnection {
				po.LocalLinkConnection[k] = v
			}
		}
		if err := ports.Create(ctx, c, po).Err; err != nil {
			errs = append(errs, fmt.Sprintf("port %s: %s", p.Address, describeError(apiError(err))))
			continue
		}
		res.ports++
	}
	if len(errs) > 0 {
		res.err = errors.New(strings.Join(errs, "; "))
	}
	return res
}
