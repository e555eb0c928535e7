package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// Roles, and their assignments to users and groups on projects, domains
// and the system.

var roleKind = &identityKind{
	// Role names are global, or per domain for domain-specific roles: a
	// lookup with a domain finds the domain's roles.
	name: "role", key: "role", listKey: "roles", inDomain: true, byName: true,
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return roles.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return roles.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return roles.Delete(ctx, c, id).ExtractErr()
	},
}

var roleFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"domain_id", "Domain"},
	{"description", "Description"},
	{"options", "Options"},
}

func newRoleCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("role", "Manage roles and role assignments", `Manage roles, and give them to users and groups on projects, domains or
the whole system. The roles that exist from the start are admin, member,
reader and service; admin implies member, and member implies reader.`+"\n"+identityAuthHelp)
	assignment := groupCommand("assignment", "Role assignments", "Role assignments: who holds which role where.")
	assignment.AddCommand(newRoleAssignmentListCommand(g))
	cmd.AddCommand(
		newRoleListCommand(g),
		newIdentityShowCommand(g, roleKind, `  strata role show member
  strata role show auditor --domain engineering`),
		newRoleCreateCommand(g),
		newRoleSetCommand(g),
		newIdentityDeleteCommand(g, roleKind, `Delete roles, named by name or ID (--domain for a domain-specific role),
with every assignment of them.
`, `  strata role delete auditor`),
		newRoleGrantCommand(g, "add"),
		newRoleGrantCommand(g, "remove"),
		assignment,
	)
	return cmd
}

// ---- role list

type roleListOptions struct {
	g      *globalOptions
	Domain string
	cols   []column
}

func newRoleListCommand(g *globalOptions) *cobra.Command {
	o := &roleListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List roles",
		Long: `List the global roles, or the domain-specific roles of a domain
(--domain). To see who holds which role, use "strata role assignment list".
` + identityAuthHelp,
		Example: "  strata role list\n  strata role list --domain engineering",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Domain, "domain", "", "the domain-specific roles of this `DOMAIN` (name or ID)")
	return cmd
}

func (o *roleListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *roleListOptions) Validate() error {
	defaults := roleFields[:2]
	if o.Domain != "" {
		defaults = roleFields[:3]
	}
	cols, err := selectColumns(o.g.Columns, roleFields, defaults)
	o.cols = cols
	return err
}

func (o *roleListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	recs, err := listAll(ctx, roles.List(c.client, query("domain_id", dom)), "roles")
	if err != nil {
		return err
	}
	return o.g.printer().list(o.cols, recs)
}

// ---- role create, role set

type roleCreateOptions struct {
	g           *globalOptions
	Name        string
	Domain      string
	Description string
	OrShow      bool
}

func newRoleCreateCommand(g *globalOptions) *cobra.Command {
	o := &roleCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a role",
		Long: `Create a role: global, or specific to a domain (--domain), whose name is
its own to that domain. --or-show shows the existing role when the name is
taken.
` + identityAuthHelp,
		Example: `  strata role create auditor --description "Reads everything, changes nothing"
  strata role create member --or-show -f value -c id`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "make a role specific to this `DOMAIN` (name or ID)")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the role")
	f.BoolVar(&o.OrShow, "or-show", false, "when a role of this name exists, show it instead of failing")
	return cmd
}

func (o *roleCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Name = args[0]
	return nil
}

func (o *roleCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	return nil
}

func (o *roleCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	rec, err := resultRecord(roles.Create(ctx, c.client, roles.CreateOpts{
		Name: o.Name, DomainID: dom, Description: o.Description,
	}).Result, "role")
	if isConflict(err) && o.OrShow {
		rec, err = c.find(ctx, roleKind, o.Name, dom)
	}
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

type roleSetOptions struct {
	g           *globalOptions
	Role        string
	Domain      string
	Name        string
	Description string
	cmd         *cobra.Command
}

func newRoleSetCommand(g *globalOptions) *cobra.Command {
	o := &roleSetOptions{g: g}
	cmd := &cobra.Command{
		Use:     "set ROLE",
		Short:   "Change a role",
		Long:    "Change a role's name or description.\n" + identityAuthHelp,
		Example: `  strata role set auditor --description "Read-only access"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "look the role up among this `DOMAIN`'s roles (name or ID)")
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	return cmd
}

func (o *roleSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Role = args[0]
	return nil
}

func (o *roleSetOptions) Validate() error {
	if err := validateName("role", o.Role); err != nil {
		return err
	}
	return requireChange(o.cmd, "name", "description")
}

func (o *roleSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, roleKind, o.Role, dom)
	if err != nil {
		return err
	}
	opts := roles.UpdateOpts{Name: o.Name}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	_, err = resultRecord(roles.Update(ctx, c.client, id, opts).Result, "role")
	return err
}

// ---- role add, role remove

// grantFlags name who (a user or a group) holds a role where (a project,
// a domain or the system), each with the domain to look its name up in.
type grantFlags struct {
	User, Group, Project, Domain, System               string
	UserDomain, GroupDomain, ProjectDomain, RoleDomain string
}

func (f *grantFlags) addActor(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.User, "user", "", "the `USER` (name or ID)")
	fs.StringVar(&f.Group, "group", "", "the `GROUP` (name or ID)")
	fs.StringVar(&f.UserDomain, "user-domain", "", "`DOMAIN` (name or ID) to look --user up in")
	fs.StringVar(&f.GroupDomain, "group-domain", "", "`DOMAIN` (name or ID) to look --group up in")
}

func (f *grantFlags) addScope(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.Project, "project", "", "on this `PROJECT` (name or ID)")
	fs.StringVar(&f.Domain, "domain", "", "on this `DOMAIN` (name or ID)")
	fs.StringVar(&f.System, "system", "", "on the system: `all` (the only system scope)")
	fs.StringVar(&f.ProjectDomain, "project-domain", "", "`DOMAIN` (name or ID) to look --project up in")
	fs.StringVar(&f.RoleDomain, "role-domain", "", "`DOMAIN` (name or ID) of a domain-specific role")
}

func (f *grantFlags) validateSystem() error {
	if f.System != "" && f.System != "all" {
		return usageErrorf("--system: %q is not a system scope; the only one is \"all\"", f.System)
	}
	return nil
}

// resolved IDs of grantFlags.
type grantIDs struct {
	user, group, project, domain string
	system                       bool
}

func (c *identityConn) resolveGrant(ctx context.Context, f *grantFlags) (grantIDs, error) {
	var ids grantIDs
	var err error
	lookup := func(k *identityKind, ident, domain string) (string, error) {
		if ident == "" || err != nil {
			return "", err
		}
		var dom string
		if dom, err = c.domainID(ctx, domain); err != nil {
			return "", err
		}
		var id string
		id, err = c.findID(ctx, k, ident, dom)
		return id, err
	}
	ids.user, _ = lookup(userKind, f.User, f.UserDomain)
	ids.group, _ = lookup(groupKind, f.Group, f.GroupDomain)
	ids.project, _ = lookup(projectKind, f.Project, f.ProjectDomain)
	ids.domain, _ = lookup(domainKind, f.Domain, "")
	ids.system = f.System != ""
	return ids, err
}

type roleGrantOptions struct {
	g     *globalOptions
	verb  string
	Role  string
	flags grantFlags
}

func newRoleGrantCommand(g *globalOptions, verb string) *cobra.Command {
	o := &roleGrantOptions{g: g, verb: verb}
	short, long := "Give a role to a user or a group", `Give a role to a user or a group (--user or --group) on a project, a
domain or the whole system (--project, --domain or --system all). Giving a
role that is already held is not an error.`
	example := `  strata role add member --user demo --project demo
  strata role add admin --group operators --system all
  strata role add reader --user alice --user-domain engineering --domain engineering`
	if verb == "remove" {
		short, long = "Take a role from a user or a group", `Take a role from a user or a group (--user or --group) on a project, a
domain or the whole system (--project, --domain or --system all). Tokens
lose the role at once.`
		example = `  strata role remove member --user demo --project demo`
	}
	cmd := &cobra.Command{
		Use:     verb + " ROLE (--user USER | --group GROUP) (--project PROJECT | --domain DOMAIN | --system all)",
		Short:   short,
		Long:    long + "\n" + identityAuthHelp,
		Example: example,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.flags.addActor(cmd)
	o.flags.addScope(cmd)
	return cmd
}

func (o *roleGrantOptions) Complete(_ *cobra.Command, args []string) error {
	o.Role = args[0]
	return nil
}

func (o *roleGrantOptions) Validate() error {
	f := &o.flags
	if err := validateName("role", o.Role); err != nil {
		return err
	}
	if (f.User == "") == (f.Group == "") {
		return usageErrorf("give one of --user and --group")
	}
	n := 0
	for _, s := range []string{f.Project, f.Domain, f.System} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usageErrorf("give one of --project, --domain and --system")
	}
	return f.validateSystem()
}

func (o *roleGrantOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	rdom, err := c.domainID(ctx, o.flags.RoleDomain)
	if err != nil {
		return err
	}
	roleID, err := c.findID(ctx, roleKind, o.Role, rdom)
	if err != nil {
		return err
	}
	ids, err := c.resolveGrant(ctx, &o.flags)
	if err != nil {
		return err
	}
	if o.verb == "remove" {
		err = roles.Unassign(ctx, c.client, roleID, roles.UnassignOpts{
			UserID: ids.user, GroupID: ids.group, ProjectID: ids.project, DomainID: ids.domain, System: ids.system,
		}).ExtractErr()
		if isNotFound(apiError(err)) {
			return fmt.Errorf("%s does not hold role %s there", o.actor(), o.Role)
		}
		return apiError(err)
	}
	return apiError(roles.Assign(ctx, c.client, roleID, roles.AssignOpts{
		UserID: ids.user, GroupID: ids.group, ProjectID: ids.project, DomainID: ids.domain, System: ids.system,
	}).ExtractErr())
}

func (o *roleGrantOptions) actor() string {
	if o.flags.User != "" {
		return fmt.Sprintf("user %q", o.flags.User)
	}
	return fmt.Sprintf("group %q", o.flags.Group)
}

// ---- role assignment list

var roleAssignmentFields = []column{
	{"role", "Role"},
	{"user", "User"},
	{"group", "Group"},
	{"project", "Project"},
	{"domain", "Domain"},
	{"system", "System"},
	{"inherited", "Inherited"},
}

type roleAssignmentListOptions struct {
	g           *globalOptions
	Role        string
	Effective   bool
	Names       bool
	AuthUser    bool
	AuthProject bool
	flags       grantFlags
	cols        []column
}

func newRoleAssignmentListCommand(g *globalOptions) *cobra.Command {
	o := &roleAssignmentListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List role assignments",
		Long: `List who holds which role where, filtered by user, group, role and scope.
--effective lists what tokens get: a group's roles as its members', and the
roles that roles imply. --names shows names (name@domain) instead of IDs.
` + identityAuthHelp,
		Example: `  strata role assignment list --names
  strata role assignment list --user demo --project demo --effective --names
  strata role assignment list --auth-user --auth-project
  strata role assignment list --system all -f json`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Role, "role", "", "only assignments of this `ROLE` (name or ID)")
	f.BoolVar(&o.Effective, "effective", false, "list effective assignments: group roles as their members', implied roles too")
	f.BoolVar(&o.Names, "names", false, "show names instead of IDs")
	f.BoolVar(&o.AuthUser, "auth-user", false, "only the assignments of the user of the current token")
	f.BoolVar(&o.AuthProject, "auth-project", false, "only the assignments on the project of the current token")
	o.flags.addActor(cmd)
	o.flags.addScope(cmd)
	return cmd
}

func (o *roleAssignmentListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *roleAssignmentListOptions) Validate() error {
	f := &o.flags
	if f.User != "" && f.Group != "" {
		return usageErrorf("--user and --group cannot be used together")
	}
	if o.AuthUser && (f.User != "" || f.Group != "") {
		return usageErrorf("--auth-user cannot be used with --user or --group")
	}
	if o.Effective && f.Group != "" {
		return usageErrorf("--effective lists users' roles: it cannot be used with --group")
	}
	n := 0
	for _, set := range []bool{f.Project != "", f.Domain != "", f.System != "", o.AuthProject} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usageErrorf("give at most one of --project, --domain, --system and --auth-project")
	}
	if err := f.validateSystem(); err != nil {
		return err
	}
	cols, err := selectColumns(o.g.Columns, roleAssignmentFields, roleAssignmentFields)
	o.cols = cols
	return err
}

func (o *roleAssignmentListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	ids, err := c.resolveGrant(ctx, &o.flags)
	if err != nil {
		return err
	}
	if o.AuthUser {
		ids.user = c.userID()
	}
	if o.AuthProject {
		if ids.project = c.projectID(); ids.project == "" {
			return fmt.Errorf("--auth-project: the current token is not scoped to a project")
		}
	}
	q := query("user.id", ids.user, "group.id", ids.group, "scope.project.id", ids.project, "scope.domain.id", ids.domain)
	if ids.system {
		q.set("scope.system", "all")
	}
	if o.Role != "" {
		rdom, err := c.domainID(ctx, o.flags.RoleDomain)
		if err != nil {
			return err
		}
		rid, err := c.findID(ctx, roleKind, o.Role, rdom)
		if err != nil {
			return err
		}
		q.set("role.id", rid)
	}
	if o.Effective {
		q.set("effective", "true")
	}
	if o.Names {
		q.set("include_names", "true")
	}
	as, err := listAll(ctx, roles.ListAssignments(c.client, q), "role_assignments")
	if err != nil {
		return err
	}
	rows := make([]record, 0, len(as))
	for _, a := range as {
		rows = append(rows, assignmentRow(a, o.Names))
	}
	return o.g.printer().list(o.cols, rows)
}

// assignmentRow flattens an assignment into the openstack CLI's columns:
// IDs, or with names, name@domain.
func assignmentRow(a record, names bool) record {
	scope, _ := a["scope"].(map[string]any)
	system := ""
	if _, ok := scope["system"]; ok {
		system = "all"
	}
	_, inherited := scope["OS-INHERIT:inherited_to"]
	return record{
		"role":      assignmentRef(a["role"], names),
		"user":      assignmentRef(a["user"], names),
		"group":     assignmentRef(a["group"], names),
		"project":   assignmentRef(scope["project"], names),
		"domain":    assignmentRef(scope["domain"], names),
		"system":    system,
		"inherited": inherited,
	}
}

// assignmentRef is the ID of an assignment's role, actor or scope, or its
// name (name@domain when it belongs to a domain) when names are asked for
// and the API gave them.
func assignmentRef(v any, names bool) string {
	m, _ := v.(map[string]any)
	id, _ := m["id"].(string)
	name, _ := m["name"].(string)
	if !names || name == "" {
		return id
	}
	if d, ok := m["domain"].(map[string]any); ok {
		if dn, _ := d["name"].(string); dn != "" {
			return name + "@" + dn
		}
	}
	return name
}
