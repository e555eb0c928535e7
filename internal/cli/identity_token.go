package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/spf13/cobra"
)

// Tokens and the service catalog.

func newTokenCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("token", "Issue and revoke tokens", `Issue and revoke tokens. A token is what every API request carries
(X-Auth-Token); with OS_AUTH_TYPE=token and OS_TOKEN, strata and the
openstack CLI use one instead of a password.`+"\n"+identityAuthHelp)
	cmd.AddCommand(newTokenIssueCommand(g), newTokenRevokeCommand(g))
	return cmd
}

type tokenIssueOptions struct {
	g *globalOptions
}

func newTokenIssueCommand(g *globalOptions) *cobra.Command {
	o := &tokenIssueOptions{g: g}
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a token",
		Long: `Authenticate and print the new token: its ID, when it expires, and the
user and project (or domain, or system) it is scoped to.
` + identityAuthHelp,
		Example: `  strata token issue
  export OS_AUTH_TYPE=token OS_TOKEN=$(strata token issue -f value -c id)`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *tokenIssueOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *tokenIssueOptions) Validate() error                         { return nil }

func (o *tokenIssueOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	return o.g.printer().show(tokenRecord(c.tokenID, c.token))
}

// tokenRecord is what token issue shows, with the openstack CLI's fields.
func tokenRecord(id string, t record) record {
	rec := record{"id": id, "expires": t["expires_at"], "user_id": objectID(t["user"])}
	if p, ok := t["project"]; ok {
		rec["project_id"] = objectID(p)
	}
	if d, ok := t["domain"]; ok {
		rec["domain_id"] = objectID(d)
	}
	if s, ok := t["system"].(map[string]any); ok {
		var scopes []string
		for k, v := range s {
			if v == true {
				scopes = append(scopes, k)
			}
		}
		slices.Sort(scopes)
		rec["system"] = strings.Join(scopes, ",")
	}
	return rec
}

// objectID is the "id" of a JSON object.
func objectID(v any) any {
	m, _ := v.(map[string]any)
	return m["id"]
}

type tokenRevokeOptions struct {
	g     *globalOptions
	Token string
}

func newTokenRevokeCommand(g *globalOptions) *cobra.Command {
	o := &tokenRevokeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "revoke TOKEN",
		Short: "Revoke a token",
		Long: `Revoke a token: it, and the tokens made from it, stop working at once.
A user may revoke its own tokens; an admin any token.
` + identityAuthHelp,
		Example: `  strata token revoke "$OS_TOKEN"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *tokenRevokeOptions) Complete(_ *cobra.Command, args []string) error {
	o.Token = args[0]
	return nil
}

func (o *tokenRevokeOptions) Validate() error {
	if strings.TrimSpace(o.Token) == "" {
		return usageErrorf("TOKEN must not be empty")
	}
	return nil
}

func (o *tokenRevokeOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	err = apiError(tokens.Revoke(ctx, c.client, o.Token).Err)
	if isNotFound(err) {
		return fmt.Errorf("the token is not valid (expired, revoked, or not a token)")
	}
	return err
}

// ---- catalog

var catalogFields = []column{
	{"name", "Name"},
	{"type", "Type"},
	{"endpoints", "Endpoints"},
	{"id", "ID"},
}

func newCatalogCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("catalog", "Show the service catalog", `Show the service catalog: the services of the cloud and their endpoints,
as the current token sees them (the catalog every client finds the APIs in).`+"\n"+identityAuthHelp)
	cmd.AddCommand(newCatalogListCommand(g), newCatalogShowCommand(g))
	return cmd
}

type catalogListOptions struct {
	g    *globalOptions
	cols []column
}

func newCatalogListCommand(g *globalOptions) *cobra.Command {
	o := &catalogListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the catalog's services and endpoints",
		Long: `List the services of the catalog with their endpoints, one per line as
"REGION INTERFACE: URL" in a table.
` + identityAuthHelp,
		Example: `  strata catalog list
  strata catalog list -f json`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *catalogListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *catalogListOptions) Validate() error {
	cols, err := selectColumns(o.g.Columns, catalogFields, catalogFields[:3])
	o.cols = cols
	return err
}

func (o *catalogListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	entries, err := listAll(ctx, catalog.List(c.client), "catalog")
	if err != nil {
		return err
	}
	rows := make([]record, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, catalogRow(e, textFormat(o.g)))
	}
	return o.g.printer().list(o.cols, rows)
}

// catalogRow is a catalog entry to print: for people, its endpoints as
// lines of text; for scripts (json, yaml), as the API gave them.
func catalogRow(e record, text bool) record {
	row := shown(e)
	eps, _ := e["endpoints"].([]any)
	if !text {
		row["endpoints"] = eps
		return row
	}
	type line struct{ region, iface, url string }
	var ls []line
	for _, ep := range eps {
		m := record(asMap(ep))
		region := m.str("region_id")
		if region == "" {
			region = m.str("region")
		}
		ls = append(ls, line{region, m.str("interface"), m.str("url")})
	}
	// By region, then public, internal, admin: the order people read.
	slices.SortStableFunc(ls, func(a, b line) int {
		if c := strings.Compare(a.region, b.region); c != 0 {
			return c
		}
		return slices.Index(interfaces, a.iface) - slices.Index(interfaces, b.iface)
	})
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%s %s: %s", l.region, l.iface, l.url)
	}
	row["endpoints"] = strings.Join(out, "\n")
	return row
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

type catalogShowOptions struct {
	g       *globalOptions
	Service string
}

func newCatalogShowCommand(g *globalOptions) *cobra.Command {
	o := &catalogShowOptions{g: g}
	cmd := &cobra.Command{
		Use:     "show SERVICE",
		Short:   "Show one service of the catalog",
		Long:    "Show a service of the catalog, named by its type or name, with its endpoints.\n" + identityAuthHelp,
		Example: "  strata catalog show identity\n  strata catalog show keystone -f json",
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *catalogShowOptions) Complete(_ *cobra.Command, args []string) error {
	o.Service = args[0]
	return nil
}

func (o *catalogShowOptions) Validate() error { return validateName("service", o.Service) }

func (o *catalogShowOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	entries, err := listAll(ctx, catalog.List(c.client), "catalog")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.str("type") == o.Service || e.str("name") == o.Service {
			return o.g.printer().show(catalogRow(e, textFormat(o.g)))
		}
	}
	return fmt.Errorf("the catalog has no service of type or name %q", o.Service)
}
