package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// Application credentials: a secret a user makes for a program, bound to
// the project of the token it was made with and to some of the user's
// roles there. A program authenticates with OS_AUTH_TYPE=
// v3applicationcredential, OS_APPLICATION_CREDENTIAL_ID and
// OS_APPLICATION_CREDENTIAL_SECRET.

var appCredFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"project_id", "Project ID"},
	{"description", "Description"},
	{"expires_at", "Expires At"},
	{"roles", "Roles"},
	{"unrestricted", "Unrestricted"},
	{"user_id", "User ID"},
}

func newApplicationCommand(g *globalOptions) *cobra.Command {
	app := groupCommand("application", "Application credentials", "Application credentials: see \"strata application credential --help\".")
	cmd := groupCommand("credential", "Manage application credentials", `Manage application credentials: secrets a user makes for its programs, so
that they authenticate without the user's password. One is bound to the
project of the token it is made with, and to some of the user's roles
there; a program uses it with

  OS_AUTH_TYPE=v3applicationcredential
  OS_APPLICATION_CREDENTIAL_ID=<id>
  OS_APPLICATION_CREDENTIAL_SECRET=<secret>
`+identityAuthHelp)
	cmd.AddCommand(newAppCredCreateCommand(g), newAppCredListCommand(g), newAppCredShowCommand(g), newAppCredDeleteCommand(g))
	app.AddCommand(cmd)
	return app
}

// appCredUser is the user whose application credentials a command is
// about: --user, or the current one.
func (c *identityConn) appCredUser(ctx context.Context, user, domain string) (string, error) {
	if user == "" {
		return c.userID(), nil
	}
	dom, err := c.domainID(ctx, domain)
	if err != nil {
		return "", err
	}
	return c.findID(ctx, userKind, user, dom)
}

// findAppCred resolves an application credential of a user by name or ID.
func (c *identityConn) findAppCred(ctx context.Context, userID, ident string) (record, error) {
	k := &identityKind{
		name: "application credential", key: "application_credential", listKey: "application_credentials", byName: true,
		get: func(ctx context.Context, sc *gophercloud.ServiceClient, id string) gophercloud.Result {
			return applicationcredentials.Get(ctx, sc, userID, id).Result
		},
		list: func(sc *gophercloud.ServiceClient, q listQuery) pagination.Pager {
			return applicationcredentials.List(sc, userID, q)
		},
	}
	return c.find(ctx, k, ident, "")
}

// appCredRow is an application credential to print: for people, its
// roles as names.
func appCredRow(r record, text bool) record {
	row := shown(r)
	if !text {
		return row
	}
	roles, _ := r["roles"].([]any)
	names := make([]string, 0, len(roles))
	for _, ro := range roles {
		names = append(names, record(asMap(ro)).str("name"))
	}
	row["roles"] = strings.Join(names, " ")
	return row
}

func textFormat(g *globalOptions) bool { return g.Format == formatTable || g.Format == formatValue }

// userFlags are --user and --user-domain.
type userFlags struct {
	User, UserDomain string
}

func (u *userFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&u.User, "user", "", "the `USER` (name or ID) whose credentials these are (default: the current user)")
	cmd.Flags().StringVar(&u.UserDomain, "user-domain", "", "`DOMAIN` (name or ID) to look --user up in")
}

// ---- create

type appCredCreateOptions struct {
	g            *globalOptions
	Name         string
	Secret       string
	Roles        []string
	Expiration   string
	Description  string
	Unrestricted bool
	Restricted   bool
	expires      *time.Time
}

func newAppCredCreateCommand(g *globalOptions) *cobra.Command {
	o := &appCredCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an application credential",
		Long: `Create an application credential for the current user, on the project
of the current token, with some of the token's roles (--role; default: all
of them). The secret is shown once, now: it is not stored and cannot be
shown again. A restricted credential (the default) cannot be used to make
or delete application credentials.
` + identityAuthHelp,
		Example: `  strata application credential create ci --role member --expiration 2027-01-01T00:00:00
  strata application credential create backup -f value -c id -c secret`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Secret, "secret", "", "the `SECRET` to use (default: the server makes a strong one; a secret given here is visible to other users of this machine)")
	f.StringArrayVar(&o.Roles, "role", nil, "a `ROLE` (name or ID) of the current token to give it (repeat for more)")
	f.StringVar(&o.Expiration, "expiration", "", "when it expires, `YYYY-MM-DDTHH:MM:SS` in UTC (default: never)")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about it")
	f.BoolVar(&o.Unrestricted, "unrestricted", false, "allow it to make and delete application credentials (dangerous)")
	f.BoolVar(&o.Restricted, "restricted", false, "forbid it to make and delete application credentials (the default)")
	return cmd
}

func (o *appCredCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Name = args[0]
	if o.Expiration != "" {
		t, err := parseExpiration(o.Expiration)
		if err != nil {
			return err
		}
		o.expires = &t
	}
	return nil
}

// parseExpiration reads a date and time in UTC, as the openstack CLI's
// --expiration does; a zone or offset may be given too.
func parseExpiration(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErrorf("--expiration: %q is not a date and time such as 2027-01-31T12:00:00", s)
}

func (o *appCredCreateOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("NAME must not be empty")
	}
	if o.Unrestricted && o.Restricted {
		return usageErrorf("--unrestricted and --restricted cannot be used together")
	}
	return nil
}

func (o *appCredCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	if c.projectID() == "" {
		return fmt.Errorf("application credentials are made with a project-scoped token: set OS_PROJECT_NAME (or OS_PROJECT_ID)")
	}
	var roles []applicationcredentials.Role
	for _, want := range o.Roles {
		id, ok := tokenRole(c.token, want)
		if !ok {
			return fmt.Errorf("--role: the current token does not carry role %q (its roles: %s)", want, strings.Join(tokenRoleNames(c.token), ", "))
		}
		roles = append(roles, applicationcredentials.Role{ID: id})
	}
	rec, err := resultRecord(applicationcredentials.Create(ctx, c.client, c.userID(), applicationcredentials.CreateOpts{
		Name: o.Name, Secret: o.Secret, Roles: roles, ExpiresAt: o.expires,
		Description: o.Description, Unrestricted: o.Unrestricted,
	}).Result, "application_credential")
	if err != nil {
		if isConflict(err) {
			return fmt.Errorf("you have an application credential named %q already", o.Name)
		}
		return err
	}
	return o.g.printer().show(appCredRow(rec, textFormat(o.g)))
}

// tokenRole finds a role of the token by name or ID.
func tokenRole(token record, want string) (string, bool) {
	roles, _ := token["roles"].([]any)
	for _, r := range roles {
		m := record(asMap(r))
		if m.str("id") == want || m.str("name") == want {
			return m.str("id"), true
		}
	}
	return "", false
}

func tokenRoleNames(token record) []string {
	roles, _ := token["roles"].([]any)
	var out []string
	for _, r := range roles {
		out = append(out, record(asMap(r)).str("name"))
	}
	return out
}

// ---- list

type appCredListOptions struct {
	g    *globalOptions
	user userFlags
	cols []column
}

func newAppCredListCommand(g *globalOptions) *cobra.Command {
	o := &appCredListOptions{g: g}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List application credentials",
		Long:    "List the application credentials of the current user, or of another (--user, for admins).\n" + identityAuthHelp,
		Example: "  strata application credential list\n  strata application credential list --user ci-bot",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	o.user.add(cmd)
	return cmd
}

func (o *appCredListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *appCredListOptions) Validate() error {
	cols, err := selectColumns(o.g.Columns, appCredFields, appCredFields[:5])
	o.cols = cols
	return err
}

func (o *appCredListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	uid, err := c.appCredUser(ctx, o.user.User, o.user.UserDomain)
	if err != nil {
		return err
	}
	recs, err := listAll(ctx, applicationcredentials.List(c.client, uid, listQuery{}), "application_credentials")
	if err != nil {
		return err
	}
	for i, r := range recs {
		recs[i] = appCredRow(r, textFormat(o.g))
	}
	return o.g.printer().list(o.cols, recs)
}

// ---- show

type appCredShowOptions struct {
	g     *globalOptions
	Ident string
	user  userFlags
}

func newAppCredShowCommand(g *globalOptions) *cobra.Command {
	o := &appCredShowOptions{g: g}
	cmd := &cobra.Command{
		Use:     "show APPLICATION_CREDENTIAL",
		Short:   "Show an application credential",
		Long:    "Show an application credential (never its secret), named by name or ID.\n" + identityAuthHelp,
		Example: "  strata application credential show ci",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.user.add(cmd)
	return cmd
}

func (o *appCredShowOptions) Complete(_ *cobra.Command, args []string) error {
	o.Ident = args[0]
	return nil
}

func (o *appCredShowOptions) Validate() error { return validateName("application credential", o.Ident) }

func (o *appCredShowOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	uid, err := c.appCredUser(ctx, o.user.User, o.user.UserDomain)
	if err != nil {
		return err
	}
	rec, err := c.findAppCred(ctx, uid, o.Ident)
	if err != nil {
		return err
	}
	return o.g.printer().show(appCredRow(rec, textFormat(o.g)))
}

// ---- delete

type appCredDeleteOptions struct {
	g      *globalOptions
	Idents []string
	user   userFlags
}

func newAppCredDeleteCommand(g *globalOptions) *cobra.Command {
	o := &appCredDeleteOptions{g: g}
	cmd := &cobra.Command{
		Use:   "delete APPLICATION_CREDENTIAL...",
		Short: "Delete application credentials",
		Long: `Delete application credentials, named by name or ID; the tokens made
with them stop working. One that cannot be deleted does not stop the
others; the exit status is 1 if any failed.
` + identityAuthHelp,
		Example: "  strata application credential delete ci backup",
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.user.add(cmd)
	return cmd
}

func (o *appCredDeleteOptions) Complete(_ *cobra.Command, args []string) error {
	o.Idents = args
	return nil
}

func (o *appCredDeleteOptions) Validate() error {
	for _, id := range o.Idents {
		if err := validateName("application credential", id); err != nil {
			return err
		}
	}
	return nil
}

func (o *appCredDeleteOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	uid, err := c.appCredUser(ctx, o.user.User, o.user.UserDomain)
	if err != nil {
		return err
	}
	failed := 0
	for _, ident := range o.Idents {
		err := func() error {
			rec, err := c.findAppCred(ctx, uid, ident)
			if err != nil {
				return err
			}
			return apiError(applicationcredentials.Delete(ctx, c.client, uid, rec.str("id")).ExtractErr())
		}()
		if err != nil {
			failed++
			fmt.Fprintf(o.g.streams.ErrOut, "strata: cannot delete application credential %q: %s\n", ident, describeError(err))
			continue
		}
		fmt.Fprintf(o.g.streams.Out, "Deleted application credential %s\n", ident)
	}
	if failed > 0 {
		return &silentError{code: ExitError}
	}
	return nil
}
