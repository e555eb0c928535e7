package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// The identity commands: tokens, the catalog, and the resources of a
// Keystone v3 API (Strata's identity service, or any Keystone), through
// gophercloud's identity v3 packages, with the openstack CLI's names,
// columns and name-or-ID lookups.

// identityCommands are the top-level identity commands, for the root
// command.
func identityCommands(g *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newTokenCommand(g),
		newCatalogCommand(g),
		newProjectCommand(g),
		newUserCommand(g),
		newGroupCommand(g),
		newRoleCommand(g),
		newDomainCommand(g),
		newServiceCommand(g),
		newEndpointCommand(g),
		newRegionCommand(g),
		newApplicationCommand(g),
	}
}

// identityAuthHelp is the part of every identity command's help that says
// how it finds the cloud.
const identityAuthHelp = `
The identity service is found as the openstack CLI finds it: a clouds.yaml
entry named by --os-cloud or OS_CLOUD, or OS_AUTH_URL with OS_USERNAME,
OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_NAME
(or OS_AUTH_TYPE=token with OS_TOKEN, or OS_AUTH_TYPE=v3applicationcredential
with OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET).
See "strata --help" for every variable.`

// identityConn is an authenticated identity v3 client.
type identityConn struct {
	client *gophercloud.ServiceClient
	// token is the body of the token the client authenticated with, and
	// tokenID the token itself.
	token   record
	tokenID string
}

// errNoIdentity is the error of a command run with no cloud configured.
var errNoIdentity = errors.New("no identity service configured: set OS_CLOUD to a clouds.yaml entry, " +
	"or OS_AUTH_URL (e.g. http://192.0.2.10:5000/v3) with OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME")

// connectIdentity authenticates with the settings of clouds.yaml or the
// OS_* variables and returns a client of the identity endpoint in the
// catalog (the auth URL when the catalog has none).
func connectIdentity(ctx context.Context, g *globalOptions) (*identityConn, error) {
	if g.Cloud == "" && g.host.getenv("OS_CLOUD") == "" && g.host.getenv("OS_AUTH_URL") == "" {
		return nil, errNoIdentity
	}
	s, err := g.settings()
	if err != nil {
		return nil, err
	}
	switch s.AuthType {
	case authNone, authHTTPBasic:
		return nil, fmt.Errorf("%s: auth type %s reaches only the bare metal API; the identity commands need "+
			"password, token or v3applicationcredential with OS_AUTH_URL", s.Source, s.AuthType)
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	pc, err := openstack.NewClient(s.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("identity endpoint %q: %v", redactURL(s.AuthURL), err)
	}
	pc.HTTPClient = hc
	pc.UserAgent.Prepend("strata")
	opts := s.authOptions()
	if opts.TokenID != "" {
		// A token cannot be issued again when it expires.
		opts.AllowReauth = false
	}
	if err := openstack.Authenticate(ctx, pc, opts); err != nil {
		return nil, fmt.Errorf("authenticating to %s: %w", redactURL(s.AuthURL), apiError(err))
	}
	sc, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{Region: s.Region, Availability: s.availability()})
	if err != nil {
		// No identity endpoint in the catalog (or none for this region and
		// interface): the auth URL is one.
		if sc, err = openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{}); err != nil {
			return nil, err
		}
	}
	c := &identityConn{client: sc}
	var res gophercloud.Result
	switch r := pc.GetAuthResult().(type) {
	case tokens.CreateResult:
		res = r.Result
		c.tokenID, err = r.ExtractTokenID()
	case tokens.GetResult:
		res = r.Result
		c.tokenID, err = r.ExtractTokenID()
	default:
		return nil, fmt.Errorf("authenticating to %s: the answer was not a v3 token", redactURL(s.AuthURL))
	}
	if err != nil {
		return nil, err
	}
	if c.token, err = resultRecord(res, "token"); err != nil {
		return nil, fmt.Errorf("authenticating to %s: reading the token: %w", redactURL(s.AuthURL), err)
	}
	return c, nil
}

// userID is the ID of the user the client authenticated as.
func (c *identityConn) userID() string {
	u, _ := c.token["user"].(map[string]any)
	id, _ := u["id"].(string)
	return id
}

// projectID is the project of the client's token, if it is scoped to one.
func (c *identityConn) projectID() string {
	p, _ := c.token["project"].(map[string]any)
	id, _ := p["id"].(string)
	return id
}

// Queries: listQuery (api.go) is the query of every identity listing.

func (q listQuery) ToProjectListQuery() (string, error)               { return q.encode(), nil }
func (q listQuery) ToUserListQuery() (string, error)                  { return q.encode(), nil }
func (q listQuery) ToGroupListQuery() (string, error)                 { return q.encode(), nil }
func (q listQuery) ToRoleListQuery() (string, error)                  { return q.encode(), nil }
func (q listQuery) ToDomainListQuery() (string, error)                { return q.encode(), nil }
func (q listQuery) ToServiceListMap() (string, error)                 { return q.encode(), nil }
func (q listQuery) ToEndpointListParams() (string, error)             { return q.encode(), nil }
func (q listQuery) ToRegionListQuery() (string, error)                { return q.encode(), nil }
func (q listQuery) ToApplicationCredentialListQuery() (string, error) { return q.encode(), nil }
func (q listQuery) ToRolesListAssignmentsQuery() (string, error)      { return q.encode(), nil }

func query(kv ...string) listQuery {
	q := listQuery{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.set(kv[i], kv[i+1])
	}
	return q
}

// keystonePage is a page of a Keystone collection: the items under key,
// and the next page's URL in links.next.
type keystonePage struct {
	pagination.LinkedPageBase
	key string
}

func keystonePages(key string) func(pagination.PageResult) pagination.Page {
	return func(r pagination.PageResult) pagination.Page {
		return keystonePage{LinkedPageBase: pagination.LinkedPageBase{PageResult: r}, key: key}
	}
}

func (p keystonePage) items() []record {
	body, _ := p.Body.(map[string]any)
	list, _ := body[p.key].([]any)
	out := make([]record, 0, len(list))
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			out = append(out, record(m))
		}
	}
	return out
}

func (p keystonePage) IsEmpty() (bool, error) { return len(p.items()) == 0, nil }

func (p keystonePage) NextPageURL() (string, error) {
	body, _ := p.Body.(map[string]any)
	links, _ := body["links"].(map[string]any)
	next, _ := links["next"].(string)
	return next, nil
}

// listAll reads every page of a Keystone listing.
func listAll(ctx context.Context, pager pagination.Pager, key string) ([]record, error) {
	if pager.Err != nil {
		return nil, pager.Err
	}
	var out []record
	err := pager.WithPageCreator(keystonePages(key)).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		out = append(out, p.(keystonePage).items()...)
		return true, nil
	})
	return out, apiError(err)
}

// resultRecord is the object under key in a result's body.
func resultRecord(r gophercloud.Result, key string) (record, error) {
	if r.Err != nil {
		return nil, apiError(r.Err)
	}
	var body map[string]record
	if err := r.ExtractInto(&body); err != nil {
		return nil, err
	}
	rec, ok := body[key]
	if !ok || rec == nil {
		return nil, fmt.Errorf("the API answered without a %q object", key)
	}
	return rec, nil
}

// shown is a record as show and list print it: without its links.
func shown(r record) record {
	out := make(record, len(r))
	for k, v := range r {
		if k != "links" {
			out[k] = v
		}
	}
	return out
}

// identityKind is one kind of identity resource, for the lookups and the
// show and delete commands that all kinds share.
type identityKind struct {
	name string // "project", as the user reads it
	key  string // the JSON key of one ("project")
	// get reads one by ID.
	get func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result
	// list lists with a query (the name lookup adds name and domain_id).
	list func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager
	// listKey is the JSON key of the collection ("projects").
	listKey string
	// del deletes one by ID.
	del func(ctx context.Context, c *gophercloud.ServiceClient, id string) error
	// inDomain says names are unique per domain, so that a name lookup
	// can be narrowed with --domain.
	inDomain bool
	// byName says the kind has names to look up; regions and endpoints
	// are known by ID only.
	byName bool
	// alsoBy is another attribute a lookup tries after the name (a
	// service's type).
	alsoBy string
}

// notFoundIdent is the error of a lookup that found nothing.
func notFoundIdent(kind, ident string) error { return &notFoundError{kind: kind, ident: ident} }

// find resolves a name or an ID the way the openstack CLI does: a GET by
// ID, and when that finds nothing, a listing filtered by name (within
// domainID when the kind's names are per domain) that must match exactly
// one.
func (c *identityConn) find(ctx context.Context, k *identityKind, ident, domainID string) (record, error) {
	if strings.TrimSpace(ident) == "" {
		return nil, usageErrorf("%s name or ID must not be empty", k.name)
	}
	// The ident goes in the path escaped: a name may hold a space or a
	// slash.
	rec, getErr := resultRecord(k.get(ctx, c.client, url.PathEscape(ident)), k.key)
	if getErr == nil {
		return rec, nil
	}
	var ae *APIError
	if !errors.As(getErr, &ae) || (ae.StatusCode != http.StatusNotFound && ae.StatusCode != http.StatusForbidden) {
		return nil, getErr
	}
	if !k.byName {
		if !isNotFound(getErr) {
			return nil, getErr
		}
		return nil, notFoundIdent(k.name, ident)
	}
	for _, attr := range []string{"name", k.alsoBy} {
		if attr == "" {
			continue
		}
		q := query(attr, ident)
		if k.inDomain {
			q.set("domain_id", domainID)
		}
		recs, err := listAll(ctx, k.list(c.client, q), k.listKey)
		if err != nil {
			if !isNotFound(getErr) {
				// A caller that may neither read nor list gets the answer
				// to its read.
				return nil, getErr
			}
			return nil, err
		}
		// Filter on the client too: a server may ignore a filter.
		recs = slices.DeleteFunc(recs, func(r record) bool {
			return r.str(attr) != ident || (k.inDomain && domainID != "" && r.str("domain_id") != domainID)
		})
		switch len(recs) {
		case 0:
			continue
		case 1:
			return recs[0], nil
		default:
			hint := ""
			if k.inDomain && domainID == "" {
				hint = "; name its domain with --domain, or give the ID"
			}
			return nil, fmt.Errorf("more than one %s is named %q%s", k.name, ident, hint)
		}
	}
	if !isNotFound(getErr) {
		return nil, getErr
	}
	return nil, notFoundIdent(k.name, ident)
}

// findID is find's ID.
func (c *identityConn) findID(ctx context.Context, k *identityKind, ident, domainID string) (string, error) {
	rec, err := c.find(ctx, k, ident, domainID)
	if err != nil {
		return "", err
	}
	return rec.str("id"), nil
}

// domainID resolves an optional --domain flag to an ID ("" stays "").
func (c *identityConn) domainID(ctx context.Context, ident string) (string, error) {
	if ident == "" {
		return "", nil
	}
	return c.findID(ctx, domainKind, ident, "")
}

// ---- show and delete, the same for every kind

type identityShowOptions struct {
	g      *globalOptions
	kind   *identityKind
	Ident  string
	Domain string
}

func newIdentityShowCommand(g *globalOptions, k *identityKind, example string) *cobra.Command {
	o := &identityShowOptions{g: g, kind: k}
	upper := strings.ToUpper(strings.ReplaceAll(k.name, " ", "_"))
	how := "name or ID"
	if !k.byName {
		how = "ID"
	}
	cmd := &cobra.Command{
		Use:     "show " + upper,
		Short:   "Show a " + k.name + "'s details",
		Long:    "Show every field of a " + k.name + ", named by its " + how + ".\n" + identityAuthHelp,
		Example: example,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	if k.inDomain {
		cmd.Flags().StringVar(&o.Domain, "domain", "", "look the name up in this `DOMAIN` (name or ID)")
	}
	return cmd
}

func (o *identityShowOptions) Complete(_ *cobra.Command, args []string) error {
	o.Ident = args[0]
	return nil
}

func (o *identityShowOptions) Validate() error { return validateName(o.kind.name, o.Ident) }

func (o *identityShowOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	rec, err := c.find(ctx, o.kind, o.Ident, dom)
	if err != nil {
		return err
	}
	return o.g.printer().show(shown(rec))
}

type identityDeleteOptions struct {
	g      *globalOptions
	kind   *identityKind
	Idents []string
	Domain string
}

func newIdentityDeleteCommand(g *globalOptions, k *identityKind, long, example string) *cobra.Command {
	o := &identityDeleteOptions{g: g, kind: k}
	upper := strings.ToUpper(strings.ReplaceAll(k.name, " ", "_"))
	cmd := &cobra.Command{
		Use:   "delete " + upper + "...",
		Short: "Delete " + k.name + "s",
		Long: long + `
A ` + k.name + ` that cannot be deleted does not stop the others; the exit
status is 1 if any failed.
` + identityAuthHelp,
		Example: example,
		Args:    minArgs(1),
	}
	cmd.RunE = runE(g, o)
	if k.inDomain {
		cmd.Flags().StringVar(&o.Domain, "domain", "", "look the names up in this `DOMAIN` (name or ID)")
	}
	return cmd
}

func (o *identityDeleteOptions) Complete(_ *cobra.Command, args []string) error {
	o.Idents = args
	return nil
}

func (o *identityDeleteOptions) Validate() error {
	for _, id := range o.Idents {
		if err := validateName(o.kind.name, id); err != nil {
			return err
		}
	}
	return nil
}

func (o *identityDeleteOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	dom, err := c.domainID(ctx, o.Domain)
	if err != nil {
		return err
	}
	failed := 0
	for _, ident := range o.Idents {
		err := func() error {
			id, err := c.findID(ctx, o.kind, ident, dom)
			if err != nil {
				return err
			}
			return apiError(o.kind.del(ctx, c.client, id))
		}()
		if err != nil {
			failed++
			fmt.Fprintf(o.g.streams.ErrOut, "strata: cannot delete %s %q: %s\n", o.kind.name, ident, describeError(err))
			continue
		}
		fmt.Fprintf(o.g.streams.Out, "Deleted %s %s\n", o.kind.name, ident)
	}
	if failed > 0 {
		if len(o.Idents) > 1 {
			fmt.Fprintf(o.g.streams.ErrOut, "strata: %d of %d %ss failed to delete\n", failed, len(o.Idents), o.kind.name)
		}
		return &silentError{code: ExitError}
	}
	return nil
}

// validateName checks a name or ID given on the command line.
func validateName(what, s string) error {
	if strings.TrimSpace(s) == "" {
		return usageErrorf("%s name or ID must not be empty", what)
	}
	return nil
}

// enableFlags are --enable and --disable.
type enableFlags struct {
	Enable, Disable bool
}

func (e *enableFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&e.Enable, "enable", false, "enable the "+what)
	cmd.Flags().BoolVar(&e.Disable, "disable", false, "disable the "+what)
}

func (e *enableFlags) validate() error {
	if e.Enable && e.Disable {
		return usageErrorf("--enable and --disable cannot be used together")
	}
	return nil
}

// value is the enabled flag to send: nil when neither was given.
func (e *enableFlags) value() *bool {
	switch {
	case e.Enable:
		return new(true)
	case e.Disable:
		return new(false)
	}
	return nil
}

// isConflict reports whether err is the API's 409 (a duplicate name).
func isConflict(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusConflict
}

// showCreated prints a created (or, with --or-show, found) record.
func showCreated(g *globalOptions, rec record) error { return g.printer().show(shown(rec)) }
