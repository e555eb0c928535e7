package cli

import (
	"context"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// Projects and domains.

var projectKind = &identityKind{
	name: "project", key: "project", listKey: "projects", inDomain: true, byName: true,
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return projects.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return projects.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return projects.Delete(ctx, c, id).ExtractErr()
	},
}

var domainKind = &identityKind{
	name: "domain", key: "domain", listKey: "domains", byName: true,
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return domains.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return domains.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return domains.Delete(ctx, c, id).ExtractErr()
	},
}

var projectFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"domain_id", "Domain ID"},
	{"description", "Description"},
	{"enabled", "Enabled"},
	{"parent_id", "Parent ID"},
	{"is_domain", "Is Domain"},
	{"tags", "Tags"},
	{"options", "Options"},
}

var (
	projectListDefault = projectFields[:2]
	projectListLong    = projectFields[:5]
)

func newProjectCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("project", "Manage projects", `Manage projects: the tenants of the cloud. Users get roles on projects
("strata role add"), and their tokens are scoped to one.`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newProjectListCommand(g),
		newIdentityShowCommand(g, projectKind, `  strata project show admin
  strata project show demo --domain Default -f json`),
		newProjectCreateCommand(g),
		newProjectSetCommand(g),
		newIdentityDeleteCommand(g, projectKind, `Delete projects, named by name or ID. Their role assignments and the
application credentials made for them go with them; a project that has
child projects cannot be deleted.
`, `  strata project delete demo
  strata project delete demo test --domain Default`),
	)
	return cmd
}

// ---- project list

type projectListOptions struct {
	g          *globalOptions
	Domain     string
	User       string
	MyProjects bool
	Tags       []string
	Long       bool
	cols       []column
}

func newProjectListCommand(g *globalOptions) *cobra.Command {
	o := &projectListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Long: `List projects, or those of one domain, those a user has a role on
(--user), or those the current user can scope a token to (--my-projects).
` + identityAuthHelp,
		Example: `  strata project list
  strata project list --domain Default --long
  strata project list --user demo
  strata project list --my-projects -f value -c Name`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "only projects of this `DOMAIN` (name or ID)")
	f.StringVar(&o.User, "user", "", "only projects this `USER` (name or ID) has a role on")
	f.BoolVar(&o.MyProjects, "my-projects", false, "only projects the current user can scope a token to")
	f.StringArrayVar(&o.Tags, "tag", nil, "only projects with this `TAG` (repeat: with all of them)")
	f.BoolVar(&o.Long, "long", false, "show more columns")
	return cmd
}

func (o *projectListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *projectListOptions) Validate() error {
	if o.MyProjects && o.User != "" {
		return usageErrorf("--my-projects and --user cannot be used together")
	}
	defaults := projectListDefault
	if o.Long {
		defaults = projectListLong
	}
	cols, err := selectColumns(o.g.Columns, projectFields, defaults)
	o.cols = cols
	return err
}

func (o *projectListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	var pager pagination.Pager
	switch {
	case o.MyProjects:
		pager = projects.ListAvailable(c.client)
	case o.User != "":
		uid, err := c.findID(ctx, userKind, o.User, dom)
		if err != nil {
			return err
		}
		pager = users.ListProjects(c.client, uid)
	default:
		pager = projects.List(c.client, query("domain_id", dom, "tags", strings.Join(o.Tags, ",")))
	}
	recs, err := listAll(ctx, pager, "projects")
	if err != nil {
		return err
	}
	// The listings of --user and --my-projects filter nothing themselves.
	recs = filterRecords(recs, func(r record) bool {
		return (dom == "" || r.str("domain_id") == dom) && hasTags(r, o.Tags)
	})
	return o.g.printer().list(o.cols, recs)
}

// filterRecords keeps the records keep accepts.
func filterRecords(recs []record, keep func(record) bool) []record {
	out := recs[:0]
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func hasTags(r record, want []string) bool {
	have, _ := r["tags"].([]any)
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// ---- project create

type projectCreateOptions struct {
	g           *globalOptions
	Name        string
	Domain      string
	Parent      string
	Description string
	Tags        []string
	Properties  []string
	OrShow      bool
	enable      enableFlags
	extra       map[string]any
}

func newProjectCreateCommand(g *globalOptions) *cobra.Command {
	o := &projectCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project",
		Long: `Create a project in a domain (by default the domain of the current
token's project), optionally under a parent project. --or-show makes the
command idempotent: when the name is taken, it shows the existing project.
` + identityAuthHelp,
		Example: `  strata project create demo --description "Demo tenant"
  strata project create team-a --domain engineering --tag gpu --tag eu
  strata project create demo --or-show -f value -c id`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "`DOMAIN` (name or ID) the project belongs to")
	f.StringVar(&o.Parent, "parent", "", "parent `PROJECT` (name or ID, in the same domain)")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the project")
	f.StringArrayVar(&o.Tags, "tag", nil, "a `TAG` for the project (repeat for more)")
	f.StringArrayVar(&o.Properties, "property", nil, "an attribute of your own, `KEY=VALUE` (repeat for more)")
	f.BoolVar(&o.OrShow, "or-show", false, "when a project of this name exists, show it instead of failing")
	o.enable.add(cmd, "project (default: enabled)")
	return cmd
}

func (o *projectCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Name = args[0]
	var err error
	o.extra, err = parseKeyValues("property", o.Properties)
	return err
}

func (o *projectCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	return o.enable.validate()
}

func (o *projectCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	parent := ""
	if o.Parent != "" {
		if parent, err = c.findID(ctx, projectKind, o.Parent, dom); err != nil {
			return err
		}
	}
	rec, err := resultRecord(projects.Create(ctx, c.client, projects.CreateOpts{
		Name: o.Name, DomainID: dom, ParentID: parent, Description: o.Description,
		Enabled: o.enable.value(), Tags: o.Tags, Extra: o.extra,
	}).Result, "project")
	if isConflict(err) && o.OrShow {
		rec, err = c.find(ctx, projectKind, o.Name, dom)
	}
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

// ---- project set

type projectSetOptions struct {
	g           *globalOptions
	Project     string
	Domain      string
	Name        string
	Description string
	Tags        []string
	ClearTags   bool
	Properties  []string
	enable      enableFlags
	cmd         *cobra.Command
	extra       map[string]any
}

func newProjectSetCommand(g *globalOptions) *cobra.Command {
	o := &projectSetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "set PROJECT",
		Short: "Change a project",
		Long: `Change a project's name, description, tags or attributes, or enable or
disable it. Disabling a project revokes the tokens scoped to it.
` + identityAuthHelp,
		Example: `  strata project set demo --description "Demo tenant"
  strata project set demo --disable
  strata project set demo --tag gpu --tag eu     # the tags become exactly these
  strata project set demo --clear-tags`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "look the project's name up in this `DOMAIN` (name or ID)")
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	f.StringArrayVar(&o.Tags, "tag", nil, "a `TAG` (repeat for more): the project's tags become these")
	f.BoolVar(&o.ClearTags, "clear-tags", false, "remove every tag")
	f.StringArrayVar(&o.Properties, "property", nil, "set an attribute of your own, `KEY=VALUE` (repeat for more)")
	o.enable.add(cmd, "project")
	return cmd
}

func (o *projectSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Project = args[0]
	var err error
	o.extra, err = parseKeyValues("property", o.Properties)
	return err
}

func (o *projectSetOptions) Validate() error {
	if err := validateName("project", o.Project); err != nil {
		return err
	}
	if o.ClearTags && len(o.Tags) > 0 {
		return usageErrorf("--tag and --clear-tags cannot be used together")
	}
	if err := o.enable.validate(); err != nil {
		return err
	}
	return requireChange(o.cmd, "name", "description", "tag", "clear-tags", "property", "enable", "disable")
}

func (o *projectSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, projectKind, o.Project, dom)
	if err != nil {
		return err
	}
	opts := projects.UpdateOpts{Name: o.Name, Enabled: o.enable.value(), Extra: o.extra}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	if len(o.Tags) > 0 || o.ClearTags {
		tags := append([]string{}, o.Tags...)
		opts.Tags = &tags
	}
	_, err = resultRecord(projects.Update(ctx, c.client, id, opts).Result, "project")
	return err
}

// requireChange fails unless at least one of the flags was given: a set
// command with nothing to set is a mistake.
func requireChange(cmd *cobra.Command, flags ...string) error {
	for _, f := range flags {
		if cmd.Flags().Changed(f) {
			return nil
		}
	}
	return usageErrorf("nothing to change: give at least one of --%s", strings.Join(flags, ", --"))
}

// ---- domains

var domainFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"enabled", "Enabled"},
	{"description", "Description"},
	{"tags", "Tags"},
	{"options", "Options"},
}

func newDomainCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("domain", "Manage domains", `Manage domains: namespaces of projects, users and groups, each with its
own names. The "Default" domain (ID "default") always exists.`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newDomainListCommand(g),
		newIdentityShowCommand(g, domainKind, `  strata domain show Default
  strata domain show engineering -f json`),
		newDomainCreateCommand(g),
		newDomainSetCommand(g),
		newIdentityDeleteCommand(g, domainKind, `Delete domains, named by name or ID, with the projects, users and groups
in them. A domain must be disabled first ("strata domain set --disable");
the default domain cannot be deleted.
`, `  strata domain set engineering --disable && strata domain delete engineering`),
	)
	return cmd
}

type domainListOptions struct {
	g    *globalOptions
	Name string
	cols []column
}

func newDomainListCommand(g *globalOptions) *cobra.Command {
	o := &domainListOptions{g: g}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List domains",
		Long:    "List domains.\n" + identityAuthHelp,
		Example: "  strata domain list\n  strata domain list -f value -c ID -c Name",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Name, "name", "", "only the domain of this `NAME`")
	return cmd
}

func (o *domainListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *domainListOptions) Validate() error {
	cols, err := selectColumns(o.g.Columns, domainFields, domainFields[:4])
	o.cols = cols
	return err
}

func (o *domainListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	recs, err := listAll(ctx, domains.List(c.client, query("name", o.Name)), "domains")
	if err != nil {
		return err
	}
	return o.g.printer().list(o.cols, recs)
}

type domainCreateOptions struct {
	g           *globalOptions
	Name        string
	Description string
	OrShow      bool
	enable      enableFlags
}

func newDomainCreateCommand(g *globalOptions) *cobra.Command {
	o := &domainCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a domain",
		Long:    "Create a domain. --or-show shows the existing domain when the name is taken.\n" + identityAuthHelp,
		Example: `  strata domain create engineering --description "Engineering's projects and users"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the domain")
	f.BoolVar(&o.OrShow, "or-show", false, "when a domain of this name exists, show it instead of failing")
	o.enable.add(cmd, "domain (default: enabled)")
	return cmd
}

func (o *domainCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Name = args[0]
	return nil
}

func (o *domainCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	return o.enable.validate()
}

func (o *domainCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	rec, err := resultRecord(domains.Create(ctx, c.client, domains.CreateOpts{
		Name: o.Name, Description: o.Description, Enabled: o.enable.value(),
	}).Result, "domain")
	if isConflict(err) && o.OrShow {
		rec, err = c.find(ctx, domainKind, o.Name, "")
	}
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

type domainSetOptions struct {
	g           *globalOptions
	Domain      string
	Name        string
	Description string
	enable      enableFlags
	cmd         *cobra.Command
}

func newDomainSetCommand(g *globalOptions) *cobra.Command {
	o := &domainSetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "set DOMAIN",
		Short: "Change a domain",
		Long: `Change a domain's name or description, or enable or disable it.
Disabling a domain revokes the tokens of its users and projects.
` + identityAuthHelp,
		Example: "  strata domain set engineering --disable",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	o.enable.add(cmd, "domain")
	return cmd
}

func (o *domainSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Domain = args[0]
	return nil
}

func (o *domainSetOptions) Validate() error {
	if err := validateName("domain", o.Domain); err != nil {
		return err
	}
	if err := o.enable.validate(); err != nil {
		return err
	}
	return requireChange(o.cmd, "name", "description", "enable", "disable")
}

func (o *domainSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, domainKind, o.Domain, "")
	if err != nil {
		return err
	}
	opts := domains.UpdateOpts{Name: o.Name, Enabled: o.enable.value()}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	_, err = resultRecord(domains.Update(ctx, c.client, id, opts).Result, "domain")
	return err
}
