package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/roles"
)

func newOvercloudCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("overcloud", "Plan the overcloud: its roles, networks and nodes",
		`The overcloud is the cloud the undercloud lays down on its available
nodes: roles (which services run on how many nodes of which hardware) on
isolated networks. Its files are close to TripleO's roles_data.yaml and
network_data.yaml; start from the shipped ones ("roles generate",
"networks generate") and check them with "validate".`)
	rolesCmd := groupCommand("roles", "The shipped overcloud roles", "Print the roles Strata ships, as a roles file to start from.")
	rolesCmd.AddCommand(newOvercloudGenerateCommand(g, "roles"))
	netsCmd := groupCommand("networks", "The shipped overcloud networks", "Print the isolated networks Strata ships, as a networks file to start from.")
	netsCmd.AddCommand(newOvercloudGenerateCommand(g, "networks"))
	cmd.AddCommand(rolesCmd, netsCmd, newOvercloudValidateCommand(g),
		newOvercloudDeployCommand(g), newOvercloudStatusCommand(g), newOvercloudDeleteCommand(g), newOvercloudCloudsCommand(g), newOvercloudNodeCommand(g))
	return cmd
}

type overcloudGenerateOptions struct {
	g     *globalOptions
	what  string
	names []string
}

func newOvercloudGenerateCommand(g *globalOptions, what string) *cobra.Command {
	o := &overcloudGenerateOptions{g: g, what: what}
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Print the shipped " + what + " file",
		Long: "Print the " + what + ` file Strata ships (YAML), to redirect into a file and edit.
Every service may run on any role; "strata overcloud validate" checks
the result.`,
		Example: "  strata overcloud " + what + " generate > " + what + ".yaml",
		Args:    exactArgs(0),
	}
	if what == "roles" {
		cmd.Use = "generate [ROLE...]"
		cmd.Long += "\n\nWith ROLE names, only those roles (Controller, Compute, Networker,\nObjectStorage, BlockStorage)."
		cmd.Example = "  strata overcloud roles generate > roles.yaml\n  strata overcloud roles generate Controller Compute > roles.yaml"
		cmd.Args = nil
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudGenerateOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *overcloudGenerateOptions) Validate() error { return nil }

func (o *overcloudGenerateOptions) Run(context.Context) error {
	out := o.g.streams.Out
	if o.what == "networks" {
		_, err := out.Write(roles.DefaultNetworksFile)
		return err
	}
	if len(o.names) == 0 {
		_, err := out.Write(roles.DefaultRolesFile)
		return err
	}
	all := roles.DefaultRoles()
	var picked []roles.Role
	for _, name := range o.names {
		found := false
		for _, r := range all {
			if strings.EqualFold(r.Name, name) {
				picked, found = append(picked, r), true
			}
		}
		if !found {
			return &usageError{msg: fmt.Sprintf("ROLE: no shipped role is named %q (Controller, Compute, Networker, ObjectStorage, BlockStorage)", name)}
		}
	}
	b, err := json.Marshal(picked)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(b)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

type overcloudValidateOptions struct {
	g        *globalOptions
	roles    string
	networks string
	ctlplane string
	stack    string
	offline  bool
}

func newOvercloudValidateCommand(g *globalOptions) *cobra.Command {
	o := &overcloudValidateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the roles and networks files, and match roles to available nodes",
		Long: `Check a roles file and a networks file before anything is deployed:
every role named once, with nodes, known services, each service on the
networks it needs, each service's needs met by some role, an odd number
of etcd members; networks whose subnets parse, do not overlap each other
or the provisioning network, with pools inside their subnets and VLAN IDs
used once. Every problem is listed, each naming its role or network.

Then, unless --offline, it reads the undercloud's nodes and allocates the
available ones to the roles (by each role's match: profile capability,
resource class, other capabilities), as a deploy would, and prints the
plan: which node becomes which host. Nothing is changed.`,
		Example: `  strata overcloud validate --roles roles.yaml --networks networks.yaml
  strata overcloud validate --roles roles.yaml --offline`,
		Args: exactArgs(0),
	}
	f := cmd.Flags()
	f.StringVar(&o.roles, "roles", "", "roles file (default: the shipped roles)")
	f.StringVar(&o.networks, "networks", "", "networks file (default: the shipped networks)")
	f.StringVar(&o.ctlplane, "ctlplane", "192.168.24.0/24", "the provisioning network, which no overcloud network may overlap")
	f.StringVar(&o.stack, "stack", "overcloud", "the overcloud's name, in its hostnames")
	f.BoolVar(&o.offline, "offline", false, "check the files only; do not match them to the undercloud's nodes")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *overcloudValidateOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *overcloudValidateOptions) Validate() error {
	if _, err := netip.ParsePrefix(o.ctlplane); err != nil {
		return &usageError{msg: fmt.Sprintf("--ctlplane: %q is not an address/length", o.ctlplane)}
	}
	return nil
}

func (o *overcloudValidateOptions) Run(ctx context.Context) error {
	rs, ns, err := o.load()
	if err != nil {
		return err
	}
	netErr := roles.ValidateNetworks(ns, netip.MustParsePrefix(o.ctlplane))
	roleErr := roles.Validate(rs, ns)
	if netErr != nil || roleErr != nil {
		var p roles.Problems
		for _, e := range []error{netErr, roleErr} {
			if ps, ok := e.(roles.Problems); ok {
				p = append(p, ps...)
			}
		}
		return p
	}
	if o.offline {
		fmt.Fprintf(o.g.streams.ErrOut, "%d roles and %d networks are valid\n", len(rs), len(ns))
		return nil
	}
	conn, err := o.g.connect(ctx)
	if err != nil {
		return err
	}
	recs, err := listNodes(ctx, conn.client, nil, true, false)
	if err != nil {
		return err
	}
	var nodes []*inventory.Node
	for _, rec := range recs {
		b, _ := json.Marshal(rec)
		var n inventory.Node
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("reading node %v: %w", rec["name"], err)
		}
		nodes = append(nodes, &n)
	}
	plan, err := roles.Allocate(o.stack, rs, nodes, nil)
	if err != nil {
		return err
	}
	rows := make([]record, 0, len(plan.Assignments))
	for _, a := range plan.Assignments {
		rows = append(rows, record{"hostname": a.Hostname, "role": a.Role, "node": a.NodeName, "uuid": a.Node})
	}
	return o.g.printer().listAll([]column{{"hostname", "Hostname"}, {"role", "Role"}, {"node", "Node"}, {"uuid", "UUID"}}, rows)
}

// load reads the roles and networks files, or the shipped ones.
func (o *overcloudValidateOptions) load() ([]roles.Role, []roles.Network, error) {
	rolesData, netsData := roles.DefaultRolesFile, roles.DefaultNetworksFile
	var err error
	if o.roles != "" {
		if rolesData, err = os.ReadFile(o.roles); err != nil {
			return nil, nil, &usageError{msg: fmt.Sprintf("--roles: %v", err)}
		}
	}
	if o.networks != "" {
		if netsData, err = os.ReadFile(o.networks); err != nil {
			return nil, nil, &usageError{msg: fmt.Sprintf("--networks: %v", err)}
		}
	}
	rs, err := roles.Parse(rolesData)
	if err != nil {
		return nil, nil, err
	}
	ns, err := roles.ParseNetworks(netsData)
	if err != nil {
		return nil, nil, err
	}
	return rs, ns, nil
}
