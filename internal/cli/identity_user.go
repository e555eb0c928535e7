package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// Users and groups.

var userKind = &identityKind{
	name: "user", key: "user", listKey: "users", inDomain: true, byName: true,
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return users.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return users.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return users.Delete(ctx, c, id).ExtractErr()
	},
}

var groupKind = &identityKind{
	name: "group", key: "group", listKey: "groups", inDomain: true, byName: true,
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return groups.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return groups.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return groups.Delete(ctx, c, id).ExtractErr()
	},
}

var userFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"default_project_id", "Project"},
	{"domain_id", "Domain"},
	{"description", "Description"},
	{"email", "Email"},
	{"enabled", "Enabled"},
	{"password_expires_at", "Password Expires At"},
	{"options", "Options"},
}

func newUserCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("user", "Manage users", `Manage users: the people and programs that authenticate to the cloud.
A user belongs to a domain, and gets roles on projects, domains or the
system with "strata role add".`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newUserListCommand(g),
		newIdentityShowCommand(g, userKind, `  strata user show admin
  strata user show demo --domain Default -f json`),
		newUserCreateCommand(g),
		newUserSetCommand(g),
		newIdentityDeleteCommand(g, userKind, `Delete users, named by name or ID, with their role assignments, group
memberships and application credentials; their tokens stop working.
`, `  strata user delete demo
  strata user delete alice bob --domain engineering`),
	)
	return cmd
}

// ---- user list

type userListOptions struct {
	g       *globalOptions
	Domain  string
	Group   string
	Project string
	Long    bool
	cols    []column
}

func newUserListCommand(g *globalOptions) *cobra.Command {
	o := &userListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Long: `List users, or those of one domain, the members of a group (--group), or
the users with a role on a project, directly or through a group (--project).
` + identityAuthHelp,
		Example: `  strata user list
  strata user list --domain Default --long
  strata user list --group admins
  strata user list --project demo -f value -c Name`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "only users of this `DOMAIN` (name or ID)")
	f.StringVar(&o.Group, "group", "", "only members of this `GROUP` (name or ID)")
	f.StringVar(&o.Project, "project", "", "only users with a role on this `PROJECT` (name or ID)")
	f.BoolVar(&o.Long, "long", false, "show more columns")
	return cmd
}

func (o *userListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *userListOptions) Validate() error {
	if o.Group != "" && o.Project != "" {
		return usageErrorf("--group and --project cannot be used together")
	}
	defaults := userFields[:2]
	if o.Long {
		defaults = userFields[:7]
	}
	cols, err := selectColumns(o.g.Columns, userFields, defaults)
	o.cols = cols
	return err
}

func (o *userListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	var recs []record
	switch {
	case o.Group != "":
		gid, err := c.findID(ctx, groupKind, o.Group, dom)
		if err != nil {
			return err
		}
		if recs, err = listAll(ctx, users.ListInGroup(c.client, gid, listQuery{}), "users"); err != nil {
			return err
		}
	case o.Project != "":
		pid, err := c.findID(ctx, projectKind, o.Project, dom)
		if err != nil {
			return err
		}
		if recs, err = c.usersOnProject(ctx, pid); err != nil {
			return err
		}
	default:
		if recs, err = listAll(ctx, users.List(c.client, query("domain_id", dom)), "users"); err != nil {
			return err
		}
	}
	if o.Group != "" || o.Project != "" {
		recs = filterRecords(recs, func(r record) bool { return dom == "" || r.str("domain_id") == dom })
	}
	return o.g.printer().list(o.cols, recs)
}

// usersOnProject returns the users with an effective role on a project.
func (c *identityConn) usersOnProject(ctx context.Context, projectID string) ([]record, error) {
	as, err := listAll(ctx, roles.ListAssignments(c.client, query("scope.project.id", projectID, "effective", "true")), "role_assignments")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []record
	for _, a := range as {
		u, _ := a["user"].(map[string]any)
		id, _ := u["id"].(string)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		rec, err := resultRecord(users.Get(ctx, c.client, id).Result, "user")
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// ---- passwords

// passwordFlags are --password and --password-stdin.
type passwordFlags struct {
	Password string
	Stdin    bool
	set      bool
}

func (p *passwordFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.Password, "password", "", "the user's `PASSWORD` (visible to other users of this machine: prefer --password-stdin)")
	cmd.Flags().BoolVar(&p.Stdin, "password-stdin", false, "read the password from the first line of standard input")
}

// complete reads the password from stdin when asked to.
func (p *passwordFlags) complete(cmd *cobra.Command, in io.Reader) error {
	if cmd.Flags().Changed("password") && p.Stdin {
		return usageErrorf("--password and --password-stdin cannot be used together")
	}
	p.set = cmd.Flags().Changed("password") || p.Stdin
	if !p.Stdin {
		return nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("--password-stdin: %v", err)
	}
	p.Password = strings.TrimRight(line, "\r\n")
	if p.Password == "" {
		return usageErrorf("--password-stdin: standard input has no password")
	}
	return nil
}

// ---- user create

type userCreateOptions struct {
	g             *globalOptions
	Name          string
	Domain        string
	Email         string
	Description   string
	Project       string
	ProjectDomain string
	OrShow        bool
	password      passwordFlags
	enable        enableFlags
}

func newUserCreateCommand(g *globalOptions) *cobra.Command {
	o := &userCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user",
		Long: `Create a user in a domain (by default the domain of the current token's
project). A user created without a password cannot log in until one is set
("strata user set --password-stdin"). --project sets the user's default
project, which a login without a scope lands in; it grants no role: use
"strata role add". --or-show shows the existing user when the name is taken.
` + identityAuthHelp,
		Example: `  strata user create demo --password-stdin <<<"$DEMO_PASSWORD"
  strata user create alice --domain engineering --email alice@example.com --project team-a
  strata user create demo --or-show -f value -c id`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "`DOMAIN` (name or ID) the user belongs to")
	f.StringVar(&o.Email, "email", "", "the user's e-mail `ADDRESS`")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the user")
	f.StringVar(&o.Project, "project", "", "the user's default `PROJECT` (name or ID)")
	f.StringVar(&o.ProjectDomain, "project-domain", "", "`DOMAIN` (name or ID) to look --project up in")
	f.BoolVar(&o.OrShow, "or-show", false, "when a user of this name exists, show it instead of failing")
	o.password.add(cmd)
	o.enable.add(cmd, "user (default: enabled)")
	return cmd
}

func (o *userCreateOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.password.complete(cmd, o.g.streams.In)
}

func (o *userCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	return o.enable.validate()
}

func (o *userCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	project, err := c.optionalProject(ctx, o.Project, o.ProjectDomain)
	if err != nil {
		return err
	}
	var extra map[string]any
	if o.Email != "" {
		extra = map[string]any{"email": o.Email}
	}
	rec, err := resultRecord(users.Create(ctx, c.client, users.CreateOpts{
		Name: o.Name, DomainID: dom, DefaultProjectID: project, Description: o.Description,
		Enabled: o.enable.value(), Password: o.password.Password, Extra: extra,
	}).Result, "user")
	if isConflict(err) && o.OrShow {
		rec, err = c.find(ctx, userKind, o.Name, dom)
	}
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

// optionalProject resolves an optional project flag to an ID.
func (c *identityConn) optionalProject(ctx context.Context, ident, domain string) (string, error) {
	if ident == "" {
		return "", nil
	}
	dom, err := c.domainID(ctx, domain)
	if err != nil {
		return "", err
	}
	return c.findID(ctx, projectKind, ident, dom)
}

// ---- user set

type userSetOptions struct {
	g             *globalOptions
	User          string
	Domain        string
	Name          string
	Email         string
	Description   string
	Project       string
	ProjectDomain string
	password      passwordFlags
	enable        enableFlags
	cmd           *cobra.Command
}

func newUserSetCommand(g *globalOptions) *cobra.Command {
	o := &userSetOptions{g: g}
	cmd := &cobra.Command{
		Use:   "set USER",
		Short: "Change a user",
		Long: `Change a user's name, password, e-mail, description or default project,
or enable or disable it. A new password, or disabling, revokes the user's
tokens.
` + identityAuthHelp,
		Example: `  strata user set demo --password-stdin <<<"$NEW_PASSWORD"
  strata user set demo --disable
  strata user set alice --domain engineering --email alice@example.org`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "look the user's name up in this `DOMAIN` (name or ID)")
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Email, "email", "", "new e-mail `ADDRESS`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	f.StringVar(&o.Project, "project", "", "new default `PROJECT` (name or ID)")
	f.StringVar(&o.ProjectDomain, "project-domain", "", "`DOMAIN` (name or ID) to look --project up in")
	o.password.add(cmd)
	o.enable.add(cmd, "user")
	return cmd
}

func (o *userSetOptions) Complete(cmd *cobra.Command, args []string) error {
	o.User = args[0]
	return o.password.complete(cmd, o.g.streams.In)
}

func (o *userSetOptions) Validate() error {
	if err := validateName("user", o.User); err != nil {
		return err
	}
	if err := o.enable.validate(); err != nil {
		return err
	}
	return requireChange(o.cmd, "name", "email", "description", "project", "password", "password-stdin", "enable", "disable")
}

func (o *userSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, userKind, o.User, dom)
	if err != nil {
		return err
	}
	project, err := c.optionalProject(ctx, o.Project, o.ProjectDomain)
	if err != nil {
		return err
	}
	opts := users.UpdateOpts{Name: o.Name, DefaultProjectID: project, Enabled: o.enable.value()}
	if o.password.set {
		if o.password.Password == "" {
			return usageErrorf("--password must not be empty")
		}
		opts.Password = o.password.Password
	}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	if o.cmd.Flags().Changed("email") {
		opts.Extra = map[string]any{"email": o.Email}
	}
	_, err = resultRecord(users.Update(ctx, c.client, id, opts).Result, "user")
	return err
}

// ---- groups

var groupFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"domain_id", "Domain ID"},
	{"description", "Description"},
}

func newGroupCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("group", "Manage groups of users", `Manage groups of users. A role given to a group ("strata role add
--group") is held by every member.`+"\n"+identityAuthHelp)
	add := groupCommand("add", "Add to a group", "Add users to a group.")
	add.AddCommand(newGroupMemberCommand(g, "add"))
	remove := groupCommand("remove", "Remove from a group", "Remove users from a group.")
	remove.AddCommand(newGroupMemberCommand(g, "remove"))
	cmd.AddCommand(
		newGroupListCommand(g),
		newIdentityShowCommand(g, groupKind, `  strata group show admins`),
		newGroupCreateCommand(g),
		newGroupSetCommand(g),
		newIdentityDeleteCommand(g, groupKind, `Delete groups, named by name or ID, with their memberships and role
assignments (the members lose the roles they held through the group).
`, `  strata group delete admins`),
		add, remove,
	)
	return cmd
}

type groupListOptions struct {
	g      *globalOptions
	Domain string
	User   string
	Long   bool
	cols   []column
}

func newGroupListCommand(g *globalOptions) *cobra.Command {
	o := &groupListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Long:  "List groups, or those of one domain, or those a user is a member of (--user).\n" + identityAuthHelp,
		Example: `  strata group list
  strata group list --user alice --long`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "only groups of this `DOMAIN` (name or ID)")
	f.StringVar(&o.User, "user", "", "only groups this `USER` (name or ID) is a member of")
	f.BoolVar(&o.Long, "long", false, "show more columns")
	return cmd
}

func (o *groupListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *groupListOptions) Validate() error {
	defaults := groupFields[:2]
	if o.Long {
		defaults = groupFields
	}
	cols, err := selectColumns(o.g.Columns, groupFields, defaults)
	o.cols = cols
	return err
}

func (o *groupListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	var recs []record
	if o.User != "" {
		uid, err := c.findID(ctx, userKind, o.User, dom)
		if err != nil {
			return err
		}
		if recs, err = listAll(ctx, users.ListGroups(c.client, uid), "groups"); err != nil {
			return err
		}
		recs = filterRecords(recs, func(r record) bool { return dom == "" || r.str("domain_id") == dom })
	} else if recs, err = listAll(ctx, groups.List(c.client, query("domain_id", dom)), "groups"); err != nil {
		return err
	}
	return o.g.printer().list(o.cols, recs)
}

type groupCreateOptions struct {
	g           *globalOptions
	Name        string
	Domain      string
	Description string
	OrShow      bool
}

func newGroupCreateCommand(g *globalOptions) *cobra.Command {
	o := &groupCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a group",
		Long:    "Create a group of users in a domain. --or-show shows the existing group when the name is taken.\n" + identityAuthHelp,
		Example: `  strata group create admins --description "Cloud administrators"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "`DOMAIN` (name or ID) the group belongs to")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the group")
	f.BoolVar(&o.OrShow, "or-show", false, "when a group of this name exists, show it instead of failing")
	return cmd
}

func (o *groupCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Name = args[0]
	return nil
}

func (o *groupCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	return nil
}

func (o *groupCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	rec, err := resultRecord(groups.Create(ctx, c.client, groups.CreateOpts{
		Name: o.Name, DomainID: dom, Description: o.Description,
	}).Result, "group")
	if isConflict(err) && o.OrShow {
		rec, err = c.find(ctx, groupKind, o.Name, dom)
	}
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

type groupSetOptions struct {
	g           *globalOptions
	Group       string
	Domain      string
	Name        string
	Description string
	cmd         *cobra.Command
}

func newGroupSetCommand(g *globalOptions) *cobra.Command {
	o := &groupSetOptions{g: g}
	cmd := &cobra.Command{
		Use:     "set GROUP",
		Short:   "Change a group",
		Long:    "Change a group's name or description.\n" + identityAuthHelp,
		Example: `  strata group set admins --name operators`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "look the group's name up in this `DOMAIN` (name or ID)")
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	return cmd
}

func (o *groupSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Group = args[0]
	return nil
}

func (o *groupSetOptions) Validate() error {
	if err := validateName("group", o.Group); err != nil {
		return err
	}
	return requireChange(o.cmd, "name", "description")
}

func (o *groupSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, groupKind, o.Group, dom)
	if err != nil {
		return err
	}
	opts := groups.UpdateOpts{Name: o.Name}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	_, err = resultRecord(groups.Update(ctx, c.client, id, opts).Result, "group")
	return err
}

// ---- group add user, group remove user

type groupMemberOptions struct {
	g           *globalOptions
	verb        string
	Group       string
	Users       []string
	GroupDomain string
	UserDomain  string
}

func newGroupMemberCommand(g *globalOptions, verb string) *cobra.Command {
	o := &groupMemberOptions{g: g, verb: verb}
	short, long := "Add users to a group", "Add users to a group: they hold the group's roles from now on."
	if verb == "remove" {
		short, long = "Remove users from a group", "Remove users from a group: they lose the roles they held through it."
	}
	cmd := &cobra.Command{
		Use:     "user GROUP USER...",
		Short:   short,
		Long:    long + "\n" + identityAuthHelp,
		Example: fmt.Sprintf("  strata group %s user admins alice bob", verb),
		Args:    minArgs(2),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.GroupDomain, "group-domain", "", "`DOMAIN` (name or ID) to look the group up in")
	f.StringVar(&o.UserDomain, "user-domain", "", "`DOMAIN` (name or ID) to look the users up in")
	return cmd
}

func (o *groupMemberOptions) Complete(_ *cobra.Command, args []string) error {
	o.Group, o.Users = args[0], args[1:]
	return nil
}

func (o *groupMemberOptions) Validate() error {
	for _, s := range append([]string{o.Group}, o.Users...) {
		if err := validateName("group or user", s); err != nil {
			return err
		}
	}
	return nil
}

func (o *groupMemberOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	gdom, err := c.domainID(ctx, o.GroupDomain)
	if err != nil {
		return err
	}
	udom, err := c.domainID(ctx, o.UserDomain)
	if err != nil {
		return err
	}
	gid, err := c.findID(ctx, groupKind, o.Group, gdom)
	if err != nil {
		return err
	}
	failed := 0
	for _, u := range o.Users {
		err := func() error {
			uid, err := c.findID(ctx, userKind, u, udom)
			if err != nil {
				return err
			}
			if o.verb == "remove" {
				return apiError(users.RemoveFromGroup(ctx, c.client, gid, uid).ExtractErr())
			}
			return apiError(users.AddToGroup(ctx, c.client, gid, uid).ExtractErr())
		}()
		if err != nil {
			failed++
			fmt.Fprintf(o.g.streams.ErrOut, "strata: cannot %s user %q: %s\n", o.verb, u, describeError(err))
		}
	}
	if failed > 0 {
		return &silentError{code: ExitError}
	}
	return nil
}
