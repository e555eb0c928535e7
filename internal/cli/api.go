package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/stratacloud/strata/inventory"
)

// listQuery is the query of a node or port listing. It builds the query
// strings of gophercloud's nodes.List and ports.List itself, because
// gophercloud's ListOpts cannot ask for maintenance=false.
type listQuery url.Values

var (
	_ nodes.ListOptsBuilder = listQuery{}
	_ ports.ListOptsBuilder = listQuery{}
)

func (q listQuery) encode() string {
	if len(q) == 0 {
		return ""
	}
	return "?" + url.Values(q).Encode()
}

func (q listQuery) ToNodeListQuery() (string, error)       { return q.encode(), nil }
func (q listQuery) ToNodeListDetailQuery() (string, error) { return q.encode(), nil }
func (q listQuery) ToPortListQuery() (string, error)       { return q.encode(), nil }
func (q listQuery) ToPortListDetailQuery() (string, error) { return q.encode(), nil }

func (q listQuery) set(k, v string) {
	if v != "" {
		url.Values(q).Set(k, v)
	}
}

// ironicPage is a page of an Ironic collection: the items under key, and
// the next page's URL under "next" (Ironic's pagination, which
// gophercloud's pages do not follow).
type ironicPage struct {
	pagination.LinkedPageBase
	key string
}

func pageCreator(key string) func(pagination.PageResult) pagination.Page {
	return func(r pagination.PageResult) pagination.Page {
		return ironicPage{LinkedPageBase: pagination.LinkedPageBase{PageResult: r}, key: key}
	}
}

func (p ironicPage) items() []record {
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

func (p ironicPage) IsEmpty() (bool, error) { return len(p.items()) == 0, nil }

func (p ironicPage) NextPageURL() (string, error) {
	body, _ := p.Body.(map[string]any)
	next, _ := body["next"].(string)
	return next, nil
}

// collect reads a pager's items: one page when onePage, else all of them.
func collect(ctx context.Context, pager pagination.Pager, onePage bool) ([]record, error) {
	var out []record
	err := pager.EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		out = append(out, p.(ironicPage).items()...)
		return !onePage, nil
	})
	return out, apiError(err)
}

func listNodes(ctx context.Context, c *gophercloud.ServiceClient, q listQuery, detail, onePage bool) ([]record, error) {
	var pager pagination.Pager
	if detail {
		pager = nodes.ListDetail(c, q)
	} else {
		pager = nodes.List(c, q)
	}
	return collect(ctx, pager.WithPageCreator(pageCreator("nodes")), onePage)
}

func listPorts(ctx context.Context, c *gophercloud.ServiceClient, q listQuery, detail, onePage bool) ([]record, error) {
	var pager pagination.Pager
	if detail {
		pager = ports.ListDetail(c, q)
	} else {
		pager = ports.List(c, q)
	}
	return collect(ctx, pager.WithPageCreator(pageCreator("ports")), onePage)
}

// getNode reads a node by UUID or name.
func getNode(ctx context.Context, c *gophercloud.ServiceClient, ident string) (record, error) {
	r := nodes.Get(ctx, c, ident)
	if r.Err != nil {
		return nil, resourceError(r.Err, "node", ident)
	}
	return bodyRecord(r.Body)
}

func bodyRecord(body any) (record, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the API answered with %T where an object was expected", body)
	}
	return record(m), nil
}

// nodeFields are the fields of a node that strata shows, with the
// openstack CLI's headings. The first ones are node list's default.
var nodeFields = []column{
	{"uuid", "UUID"},
	{"name", "Name"},
	{"instance_uuid", "Instance UUID"},
	{"power_state", "Power State"},
	{"provision_state", "Provisioning State"},
	{"maintenance", "Maintenance"},
	{"target_provision_state", "Target Provision State"},
	{"target_power_state", "Target Power State"},
	{"maintenance_reason", "Maintenance Reason"},
	{"driver", "Driver"},
	{"resource_class", "Resource Class"},
	{"conductor", "Conductor"},
	{"conductor_group", "Conductor Group"},
	{"reservation", "Reservation"},
	{"boot_mode", "Boot Mode"},
	{"secure_boot", "Secure Boot"},
	{"owner", "Owner"},
	{"lessee", "Lessee"},
	{"description", "Description"},
	{"fault", "Fault"},
	{"last_error", "Last Error"},
	{"protected", "Protected"},
	{"protected_reason", "Protected Reason"},
	{"retired", "Retired"},
	{"retired_reason", "Retired Reason"},
	{"automated_clean", "Automated Clean"},
	{"provision_updated_at", "Provision Updated At"},
	{"inspection_started_at", "Inspection Started At"},
	{"inspection_finished_at", "Inspection Finished At"},
	{"created_at", "Created At"},
	{"updated_at", "Updated At"},
	{"properties", "Properties"},
	{"driver_info", "Driver Info"},
	{"instance_info", "Instance Info"},
	{"extra", "Extra"},
	{"traits", "Traits"},
	{"clean_step", "Clean Step"},
	{"deploy_step", "Deploy Step"},
	{"driver_internal_info", "Driver Internal Info"},
}

var (
	nodeListDefault = nodeFields[:6]
	// nodeListLong are node list --long's columns.
	nodeListLong = nodeFields[:len(nodeFields)-3]
)

// linkFields are navigation links, left out of "show".
var linkFields = []string{"links", "ports", "portgroups", "states", "volume"}

// displayRecord prepares an API object for printing: links dropped, and
// secrets in driver_info masked, should a server ever send them in the
// clear.
func displayRecord(r record) record {
	out := make(record, len(r))
	for k, v := range r {
		out[k] = v
	}
	for _, k := range linkFields {
		delete(out, k)
	}
	if di, ok := out["driver_info"].(map[string]any); ok {
		out["driver_info"] = maskSecrets(di)
	}
	return out
}

func maskSecrets(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if s, isStr := v.(string); inventory.IsSecretKey(k) && v != nil && (!isStr || s != "") {
			out[k] = inventory.MaskedSecret
			continue
		}
		out[k] = v
	}
	return out
}

// Accessors of the fields strata acts on.

func (r record) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r record) label() string {
	if n := r.str("name"); n != "" {
		return n
	}
	return r.str("uuid")
}

func (r record) bool(k string) bool {
	switch v := r[k].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// time reads a timestamp field; zero when absent or null.
func (r record) time(k string) time.Time {
	s := r.str(k)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
