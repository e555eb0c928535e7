package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/spf13/cobra"
)

// The service catalog's contents: services, their endpoints, and regions.

var serviceKind = &identityKind{
	name: "service", key: "service", listKey: "services", byName: true, alsoBy: "type",
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return services.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return services.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return services.Delete(ctx, c, id).ExtractErr()
	},
}

var endpointKind = &identityKind{
	name: "endpoint", key: "endpoint", listKey: "endpoints",
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return endpoints.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager {
		return endpoints.List(c, endpointListOpts(q))
	},
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return endpoints.Delete(ctx, c, id).ExtractErr()
	},
}

var regionKind = &identityKind{
	name: "region", key: "region", listKey: "regions",
	get: func(ctx context.Context, c *gophercloud.ServiceClient, id string) gophercloud.Result {
		return regions.Get(ctx, c, id).Result
	},
	list: func(c *gophercloud.ServiceClient, q listQuery) pagination.Pager { return regions.List(c, q) },
	del: func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return regions.Delete(ctx, c, id).ExtractErr()
	},
}

// endpointListOpts is q as endpoints.ListOpts: endpoints.List, unlike
// the other listings, builds its query from the options' fields, not
// through the builder interface.
func endpointListOpts(q listQuery) endpoints.ListOpts {
	v := url.Values(q)
	return endpoints.ListOpts{
		ServiceID: v.Get("service_id"), Availability: gophercloud.Availability(v.Get("interface")), RegionID: v.Get("region_id"),
	}
}

// ---- services

var serviceFields = []column{
	{"id", "ID"},
	{"name", "Name"},
	{"type", "Type"},
	{"description", "Description"},
	{"enabled", "Enabled"},
}

func newServiceCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("service", "Manage the catalog's services", `Manage the services of the catalog: each has a type (compute, image,
identity, ...) and endpoints ("strata endpoint"). A service is named by its
ID, its name or its type.`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newServiceListCommand(g),
		newIdentityShowCommand(g, serviceKind, `  strata service show keystone
  strata service show compute -f json`),
		newServiceCreateCommand(g),
		newServiceSetCommand(g),
		newIdentityDeleteCommand(g, serviceKind, "Delete services, named by ID, name or type, with their endpoints.\n",
			`  strata service delete nova`),
	)
	return cmd
}

type serviceListOptions struct {
	g    *globalOptions
	Long bool
	cols []column
}

func newServiceListCommand(g *globalOptions) *cobra.Command {
	o := &serviceListOptions{g: g}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List services",
		Long:    "List the catalog's services.\n" + identityAuthHelp,
		Example: "  strata service list --long",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().BoolVar(&o.Long, "long", false, "show more columns")
	return cmd
}

func (o *serviceListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *serviceListOptions) Validate() error {
	defaults := serviceFields[:3]
	if o.Long {
		defaults = serviceFields
	}
	cols, err := selectColumns(o.g.Columns, serviceFields, defaults)
	o.cols = cols
	return err
}

func (o *serviceListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	recs, err := listAll(ctx, services.List(c.client, listQuery{}), "services")
	if err != nil {
		return err
	}
	return o.g.printer().list(o.cols, recs)
}

type serviceCreateOptions struct {
	g           *globalOptions
	Type        string
	Name        string
	Description string
	enable      enableFlags
}

func newServiceCreateCommand(g *globalOptions) *cobra.Command {
	o := &serviceCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create TYPE",
		Short: "Create a service",
		Long: `Create a service of a type (compute, image, volumev3, network, ...), then
give it endpoints with "strata endpoint create".
` + identityAuthHelp,
		Example: `  strata service create compute --name nova --description "Compute"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "the service's `NAME`, e.g. nova")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the service")
	o.enable.add(cmd, "service (default: enabled)")
	return cmd
}

func (o *serviceCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Type = args[0]
	return nil
}

func (o *serviceCreateOptions) Validate() error {
	if strings.TrimSpace(o.Type) == "" {
		return usageErrorf("TYPE must not be empty")
	}
	return o.enable.validate()
}

func (o *serviceCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	rec, err := resultRecord(services.Create(ctx, c.client, services.CreateOpts{
		Type: o.Type, Name: o.Name, Description: o.Description, Enabled: o.enable.value(),
	}).Result, "service")
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

type serviceSetOptions struct {
	g           *globalOptions
	Service     string
	Type        string
	Name        string
	Description string
	enable      enableFlags
	cmd         *cobra.Command
}

func newServiceSetCommand(g *globalOptions) *cobra.Command {
	o := &serviceSetOptions{g: g}
	cmd := &cobra.Command{
		Use:     "set SERVICE",
		Short:   "Change a service",
		Long:    "Change a service's type, name or description, or enable or disable it (a disabled\nservice leaves the catalog).\n" + identityAuthHelp,
		Example: `  strata service set nova --description "Compute API"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Type, "type", "", "new `TYPE`")
	f.StringVar(&o.Name, "name", "", "new `NAME`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	o.enable.add(cmd, "service")
	return cmd
}

func (o *serviceSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Service = args[0]
	return nil
}

func (o *serviceSetOptions) Validate() error {
	if err := validateName("service", o.Service); err != nil {
		return err
	}
	if err := o.enable.validate(); err != nil {
		return err
	}
	return requireChange(o.cmd, "type", "name", "description", "enable", "disable")
}

func (o *serviceSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, serviceKind, o.Service, "")
	if err != nil {
		return err
	}
	opts := services.UpdateOpts{Type: o.Type, Enabled: o.enable.value()}
	if o.cmd.Flags().Changed("name") {
		opts.Name = &o.Name
	}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	_, err = resultRecord(services.Update(ctx, c.client, id, opts).Result, "service")
	return err
}

// ---- endpoints

var endpointFields = []column{
	{"id", "ID"},
	{"region", "Region"},
	{"service_name", "Service Name"},
	{"service_type", "Service Type"},
	{"enabled", "Enabled"},
	{"interface", "Interface"},
	{"url", "URL"},
	{"service_id", "Service ID"},
	{"region_id", "Region ID"},
}

var interfaces = []string{"public", "internal", "admin"}

func newEndpointCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("endpoint", "Manage the catalog's endpoints", `Manage the endpoints of the catalog's services: the URL of a service for an
interface (public, internal or admin) in a region. An endpoint is named by
its ID.`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newEndpointListCommand(g),
		newIdentityShowCommand(g, endpointKind, `  strata endpoint show 1b2a...`),
		newEndpointCreateCommand(g),
		newEndpointSetCommand(g),
		newIdentityDeleteCommand(g, endpointKind, "Delete endpoints, named by ID.\n",
			`  strata endpoint delete $(strata endpoint list --service nova -f value -c ID)`),
	)
	return cmd
}

type endpointListOptions struct {
	g         *globalOptions
	Service   string
	Interface string
	Region    string
	cols      []column
}

func newEndpointListCommand(g *globalOptions) *cobra.Command {
	o := &endpointListOptions{g: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List endpoints",
		Long:  "List endpoints, optionally of one service, interface or region.\n" + identityAuthHelp,
		Example: `  strata endpoint list
  strata endpoint list --service identity --interface public -f value -c URL`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Service, "service", "", "only endpoints of this `SERVICE` (ID, name or type)")
	f.StringVar(&o.Interface, "interface", "", "only endpoints of this `INTERFACE`: public, internal or admin")
	f.StringVar(&o.Region, "region", "", "only endpoints of this `REGION`")
	return cmd
}

func (o *endpointListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *endpointListOptions) Validate() error {
	if o.Interface != "" && !slices.Contains(interfaces, o.Interface) {
		return usageErrorf("--interface: %q is not public, internal or admin", o.Interface)
	}
	cols, err := selectColumns(o.g.Columns, endpointFields, endpointFields[:7])
	o.cols = cols
	return err
}

func (o *endpointListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	svc := ""
	if o.Service != "" {
		if svc, err = c.findID(ctx, serviceKind, o.Service, ""); err != nil {
			return err
		}
	}
	recs, err := listAll(ctx, endpoints.List(c.client, endpoints.ListOpts{
		ServiceID: svc, Availability: gophercloud.Availability(o.Interface), RegionID: o.Region,
	}), "endpoints")
	if err != nil {
		return err
	}
	svcs, err := listAll(ctx, services.List(c.client, listQuery{}), "services")
	if err != nil {
		return err
	}
	byID := map[string]record{}
	for _, s := range svcs {
		byID[s.str("id")] = s
	}
	for _, r := range recs {
		s := byID[r.str("service_id")]
		r["service_name"], r["service_type"] = s.str("name"), s.str("type")
	}
	return o.g.printer().list(o.cols, recs)
}

type endpointCreateOptions struct {
	g         *globalOptions
	Service   string
	Interface string
	URL       string
	Region    string
	enable    enableFlags
}

func newEndpointCreateCommand(g *globalOptions) *cobra.Command {
	o := &endpointCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create SERVICE INTERFACE URL",
		Short: "Create an endpoint",
		Long: `Create an endpoint: the URL of SERVICE (ID, name or type) for INTERFACE
(public, internal or admin), in a region (which is created if it does not
exist). A URL may hold $(project_id)s, which the catalog fills in.
` + identityAuthHelp,
		Example: `  strata endpoint create compute public http://192.0.2.10:8774/v2.1 --region RegionOne
  strata endpoint create volumev3 public 'http://192.0.2.10:8776/v3/$(project_id)s'`,
		Args: exactArgs(3),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Region, "region", "", "the endpoint's `REGION`, e.g. RegionOne")
	o.enable.add(cmd, "endpoint (default: enabled)")
	return cmd
}

func (o *endpointCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Service, o.Interface, o.URL = args[0], args[1], args[2]
	return nil
}

func (o *endpointCreateOptions) Validate() error {
	if !slices.Contains(interfaces, o.Interface) {
		return usageErrorf("INTERFACE: %q is not public, internal or admin", o.Interface)
	}
	if err := validURL(o.URL); err != nil {
		return err
	}
	return o.enable.validate()
}

// validURL checks an endpoint URL (placeholders such as $(project_id)s
// are not URL syntax, so they are not checked).
func validURL(s string) error {
	probe := strings.NewReplacer("$(", "", ")s", "", "%(", "").Replace(s)
	u, err := url.Parse(probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("URL: %q is not an http or https URL", s)
	}
	return nil
}

func (o *endpointCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	svc, err := c.findID(ctx, serviceKind, o.Service, "")
	if err != nil {
		return err
	}
	rec, err := resultRecord(endpoints.Create(ctx, c.client, endpoints.CreateOpts{
		ServiceID: svc, Availability: gophercloud.Availability(o.Interface), URL: o.URL,
		Region: o.Region, Enabled: o.enable.value(),
	}).Result, "endpoint")
	if err != nil {
		return err
	}
	return showCreated(o.g, rec)
}

type endpointSetOptions struct {
	g         *globalOptions
	Endpoint  string
	Service   string
	Interface string
	URL       string
	Region    string
	enable    enableFlags
	cmd       *cobra.Command
}

func newEndpointSetCommand(g *globalOptions) *cobra.Command {
	o := &endpointSetOptions{g: g}
	cmd := &cobra.Command{
		Use:     "set ENDPOINT",
		Short:   "Change an endpoint",
		Long:    "Change an endpoint's URL, interface, region or service, or enable or disable it.\n" + identityAuthHelp,
		Example: `  strata endpoint set 1b2a... --url http://192.0.2.11:8774/v2.1`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Service, "service", "", "new `SERVICE` (ID, name or type)")
	f.StringVar(&o.Interface, "interface", "", "new `INTERFACE`: public, internal or admin")
	f.StringVar(&o.URL, "url", "", "new `URL`")
	f.StringVar(&o.Region, "region", "", "new `REGION`")
	o.enable.add(cmd, "endpoint")
	return cmd
}

func (o *endpointSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Endpoint = args[0]
	return nil
}

func (o *endpointSetOptions) Validate() error {
	if err := validateName("endpoint", o.Endpoint); err != nil {
		return err
	}
	if o.Interface != "" && !slices.Contains(interfaces, o.Interface) {
		return usageErrorf("--interface: %q is not public, internal or admin", o.Interface)
	}
	if o.URL != "" {
		if err := validURL(o.URL); err != nil {
			return err
		}
	}
	if err := o.enable.validate(); err != nil {
		return err
	}
	return requireChange(o.cmd, "service", "interface", "url", "region", "enable", "disable")
}

func (o *endpointSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, endpointKind, o.Endpoint, "")
	if err != nil {
		return err
	}
	svc := ""
	if o.Service != "" {
		if svc, err = c.findID(ctx, serviceKind, o.Service, ""); err != nil {
			return err
		}
	}
	_, err = resultRecord(endpoints.Update(ctx, c.client, id, endpoints.UpdateOpts{
		ServiceID: svc, Availability: gophercloud.Availability(o.Interface), URL: o.URL,
		Region: o.Region, Enabled: o.enable.value(),
	}).Result, "endpoint")
	return err
}

// ---- regions

var regionFields = []column{
	{"id", "Region"},
	{"parent_region_id", "Parent Region"},
	{"description", "Description"},
}

func newRegionCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("region", "Manage regions", `Manage regions: where endpoints are. A region is named by its ID (such as
RegionOne), and may be inside a parent region.`+"\n"+identityAuthHelp)
	cmd.AddCommand(
		newRegionListCommand(g),
		newIdentityShowCommand(g, regionKind, `  strata region show RegionOne`),
		newRegionCreateCommand(g),
		newRegionSetCommand(g),
		newIdentityDeleteCommand(g, regionKind, "Delete regions. A region that has endpoints or child regions cannot be deleted.\n",
			`  strata region delete RegionTwo`),
	)
	return cmd
}

type regionListOptions struct {
	g      *globalOptions
	Parent string
	cols   []column
}

func newRegionListCommand(g *globalOptions) *cobra.Command {
	o := &regionListOptions{g: g}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List regions",
		Long:    "List regions, or the children of one (--parent-region).\n" + identityAuthHelp,
		Example: "  strata region list",
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(g, o)
	cmd.Flags().StringVar(&o.Parent, "parent-region", "", "only the children of this `REGION`")
	return cmd
}

func (o *regionListOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *regionListOptions) Validate() error {
	cols, err := selectColumns(o.g.Columns, regionFields, regionFields)
	o.cols = cols
	return err
}

func (o *regionListOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	recs, err := listAll(ctx, regions.List(c.client, query("parent_region_id", o.Parent)), "regions")
	if err != nil {
		return err
	}
	return o.g.printer().list(o.cols, recs)
}

type regionCreateOptions struct {
	g           *globalOptions
	Region      string
	Parent      string
	Description string
}

func newRegionCreateCommand(g *globalOptions) *cobra.Command {
	o := &regionCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:     "create REGION",
		Short:   "Create a region",
		Long:    "Create a region, named by the ID given (such as RegionTwo).\n" + identityAuthHelp,
		Example: `  strata region create RegionTwo --description "Second datacenter"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	f := cmd.Flags()
	f.StringVar(&o.Parent, "parent-region", "", "the parent `REGION`")
	f.StringVar(&o.Description, "description", "", "free `TEXT` about the region")
	return cmd
}

func (o *regionCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Region = args[0]
	return nil
}

func (o *regionCreateOptions) Validate() error {
	if strings.TrimSpace(o.Region) == "" || strings.Contains(o.Region, "/") {
		return usageErrorf("REGION: %q is not a region ID (not empty, no '/')", o.Region)
	}
	return nil
}

func (o *regionCreateOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	rec, err := resultRecord(regions.Create(ctx, c.client, regions.CreateOpts{
		ID: o.Region, ParentRegionID: o.Parent, Description: o.Description,
	}).Result, "region")
	if err != nil {
		if isConflict(err) {
			return fmt.Errorf("region %q exists already", o.Region)
		}
		return err
	}
	return showCreated(o.g, rec)
}

type regionSetOptions struct {
	g           *globalOptions
	Region      string
	Parent      string
	Description string
	cmd         *cobra.Command
}

func newRegionSetCommand(g *globalOptions) *cobra.Command {
	o := &regionSetOptions{g: g}
	cmd := &cobra.Command{
		Use:     "set REGION",
		Short:   "Change a region",
		Long:    "Change a region's parent or description.\n" + identityAuthHelp,
		Example: `  strata region set RegionTwo --description "Second datacenter, Lyon"`,
		Args:    exactArgs(1),
	}
	cmd.RunE = runE(g, o)
	o.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&o.Parent, "parent-region", "", "new parent `REGION`")
	f.StringVar(&o.Description, "description", "", "new description `TEXT`")
	return cmd
}

func (o *regionSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.Region = args[0]
	return nil
}

func (o *regionSetOptions) Validate() error {
	if err := validateName("region", o.Region); err != nil {
		return err
	}
	return requireChange(o.cmd, "parent-region", "description")
}

func (o *regionSetOptions) Run(ctx context.Context) error {
	c, err := connectIdentity(ctx, o.g)
	if err != nil {
		return err
	}
	id, err := c.findID(ctx, regionKind, o.Region, "")
	if err != nil {
		return err
	}
	opts := regions.UpdateOpts{ParentRegionID: o.Parent}
	if o.cmd.Flags().Changed("description") {
		opts.Description = &o.Description
	}
	_, err = resultRecord(regions.Update(ctx, c.client, id, opts).Result, "region")
	return err
}
