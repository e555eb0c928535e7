package identity

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// The catalog's services, endpoints and regions.

type serviceInput struct {
	Type        *string `json:"type"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Enabled     *bool   `json:"enabled"`
}

func (s *Server) serviceView(r *http.Request, sv *catalogService) map[string]any {
	return map[string]any{
		"id": sv.ID, "type": sv.Type, "name": sv.Name, "description": sv.Description,
		"enabled": sv.Enabled, "links": links(s.base(r) + "/v3/services/" + sv.ID),
	}
}

func noTarget[T any](*T) policy.Target { return policy.Target{} }

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_services", nil); err != nil {
		return err
	}
	all, err := listRecords[catalogService](r.Context(), s.st, servicesPrefix)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	typ, name := q.Get("type"), q.Get("name")
	all = slices.DeleteFunc(all, func(sv catalogService) bool {
		return (typ != "" && sv.Type != typ) || (name != "" && sv.Name != name)
	})
	return writeList(w, r, s, "services", all, func(sv *catalogService) string { return sv.ID }, func(sv *catalogService) map[string]any { return s.serviceView(r, sv) })
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("service_id")
	sv, err := fetch(s, r, "identity:get_service", servicesPrefix+id, "service", id, noTarget[catalogService])
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"service": s.serviceView(r, &sv)})
	return nil
}

func (s *Server) createService(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Service *serviceInput `json:"service"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Service
	if in == nil || in.Type == nil {
		return api.BadRequest("'service.type' is a required property.")
	}
	sv := catalogService{ID: newID(), Type: *in.Type, Enabled: true}
	if err := validName("service.type", sv.Type, 255); err != nil {
		return err
	}
	if in.Name != nil {
		sv.Name = *in.Name
	}
	if in.Description != nil {
		sv.Description = *in.Description
	}
	if in.Enabled != nil {
		sv.Enabled = *in.Enabled
	}
	if err := s.enforce(r, "identity:create_service", nil); err != nil {
		return err
	}
	if err := createRecord(r.Context(), s.st, "service", sv.Name, servicesPrefix+sv.ID, sv, "", sv.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"service": s.serviceView(r, &sv)})
	return nil
}

func (s *Server) updateService(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("service_id")
	var body struct {
		Service *serviceInput `json:"service"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Service
	if in == nil {
		return api.BadRequest("'service' is a required property.")
	}
	if in.Type != nil {
		if err := validName("service.type", *in.Type, 255); err != nil {
			return err
		}
	}
	if _, err := fetch(s, r, "identity:update_service", servicesPrefix+id, "service", id, noTarget[catalogService]); err != nil {
		return err
	}
	sv, err := updateRecord(r.Context(), s.st, "service", id, servicesPrefix+id, nil, func(sv *catalogService) error {
		if in.Type != nil {
			sv.Type = *in.Type
		}
		if in.Name != nil {
			sv.Name = *in.Name
		}
		if in.Description != nil {
			sv.Description = *in.Description
		}
		if in.Enabled != nil {
			sv.Enabled = *in.Enabled
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"service": s.serviceView(r, &sv)})
	return nil
}

func (s *Server) deleteService(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("service_id")
	if _, err := fetch(s, r, "identity:delete_service", servicesPrefix+id, "service", id, noTarget[catalogService]); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := deleteRecord[catalogService](ctx, s.st, "service", id, servicesPrefix+id, nil, nil); err != nil {
		return err
	}
	// Its endpoints go with it.
	eps, err := listRecords[endpoint](ctx, s.st, endpointsPrefix)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.ServiceID == id {
			if _, err := s.st.Commit(ctx, nil, []store.Op{store.Del(endpointsPrefix + ep.ID)}); err != nil {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type endpointInput struct {
	ServiceID *string `json:"service_id"`
	Interface *string `json:"interface"`
	URL       *string `json:"url"`
	Region    *string `json:"region"`
	RegionID  *string `json:"region_id"`
	Enabled   *bool   `json:"enabled"`
}

func (s *Server) endpointView(r *http.Request, ep *endpoint) map[string]any {
	var reg any
	if ep.RegionID != "" {
		reg = ep.RegionID
	}
	return map[string]any{
		"id": ep.ID, "service_id": ep.ServiceID, "interface": ep.Interface, "url": ep.URL,
		"region": reg, "region_id": reg, "enabled": ep.Enabled,
		"links": links(s.base(r) + "/v3/endpoints/" + ep.ID),
	}
}

var interfaces = []string{"public", "internal", "admin"}

func validEndpointURL(u string) error {
	// Placeholders such as $(project_id)s are not URL syntax: check the
	// URL with a stand-in for them.
	probe, _ := substituteURL(u, "x")
	p, err := url.Parse(probe)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return api.BadRequest("Invalid input for field 'endpoint.url': %q is not an http or https URL.", u)
	}
	return nil
}

// endpointRegion returns the region an endpoint request names, by either
// of its keys (keystoneclient sends "region", others "region_id").
func endpointRegion(in *endpointInput) (string, bool) {
	switch {
	case in.RegionID != nil:
		return *in.RegionID, true
	case in.Region != nil:
		return *in.Region, true
	}
	return "", false
}

// ensureLegacyRegion creates the region an endpoint request names by its
// legacy "region" key when there is no such region yet, as Keystone does
// for clients that use the v3 API the way they used v2 (keystoneclient,
// Tempest); a region named by "region_id" must exist.
func (s *Server) ensureLegacyRegion(ctx context.Context, in *endpointInput) error {
	if in.RegionID != nil || in.Region == nil || *in.Region == "" {
		return nil
	}
	id := *in.Region
	if err := validName("endpoint.region", id, 255); err != nil {
		return err
	}
	if strings.Contains(id, "/") {
		return api.BadRequest("Invalid input for field 'endpoint.region': it must not contain '/'.")
	}
	if rg, err := lookup[region](ctx, s.st, regionsPrefix+seg(id)); err != nil || rg != nil {
		return err
	}
	err := createRecord(ctx, s.st, "region", id, regionsPrefix+seg(id), region{ID: id}, "", id)
	if err != nil && !isConflict(err) {
		return err
	}
	s.log.InfoContext(ctx, "region created for an endpoint", "region_id", id)
	return nil
}

func (s *Server) checkEndpointRefs(ctx context.Context, serviceID, regionID string) error {
	if sv, err := lookup[catalogService](ctx, s.st, servicesPrefix+serviceID); err != nil {
		return err
	} else if sv == nil {
		return api.BadRequest("Invalid input for field 'endpoint.service_id': could not find service %s.", serviceID)
	}
	if regionID != "" {
		if rg, err := lookup[region](ctx, s.st, regionsPrefix+seg(regionID)); err != nil {
			return err
		} else if rg == nil {
			return api.BadRequest("Invalid input for field 'endpoint.region_id': could not find region %s.", regionID)
		}
	}
	return nil
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_endpoints", nil); err != nil {
		return err
	}
	all, err := listRecords[endpoint](r.Context(), s.st, endpointsPrefix)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	svc, iface, reg := q.Get("service_id"), q.Get("interface"), q.Get("region_id")
	all = slices.DeleteFunc(all, func(ep endpoint) bool {
		return (svc != "" && ep.ServiceID != svc) || (iface != "" && ep.Interface != iface) || (reg != "" && ep.RegionID != reg)
	})
	return writeList(w, r, s, "endpoints", all, func(ep *endpoint) string { return ep.ID }, func(ep *endpoint) map[string]any { return s.endpointView(r, ep) })
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("endpoint_id")
	ep, err := fetch(s, r, "identity:get_endpoint", endpointsPrefix+id, "endpoint", id, noTarget[endpoint])
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"endpoint": s.endpointView(r, &ep)})
	return nil
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Endpoint *endpointInput `json:"endpoint"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Endpoint
	switch {
	case in == nil || in.ServiceID == nil:
		return api.BadRequest("'endpoint.service_id' is a required property.")
	case in.Interface == nil:
		return api.BadRequest("'endpoint.interface' is a required property.")
	case in.URL == nil:
		return api.BadRequest("'endpoint.url' is a required property.")
	case !slices.Contains(interfaces, *in.Interface):
		return api.BadRequest("Invalid input for field 'endpoint.interface': %q is not one of public, internal, admin.", *in.Interface)
	}
	if err := validEndpointURL(*in.URL); err != nil {
		return err
	}
	ep := endpoint{ID: newID(), ServiceID: *in.ServiceID, Interface: *in.Interface, URL: *in.URL, Enabled: true}
	ep.RegionID, _ = endpointRegion(in)
	if in.Enabled != nil {
		ep.Enabled = *in.Enabled
	}
	if err := s.enforce(r, "identity:create_endpoint", nil); err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.ensureLegacyRegion(ctx, in); err != nil {
		return err
	}
	if err := s.checkEndpointRefs(ctx, ep.ServiceID, ep.RegionID); err != nil {
		return err
	}
	if err := createRecord(ctx, s.st, "endpoint", ep.ID, endpointsPrefix+ep.ID, ep, "", ep.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"endpoint": s.endpointView(r, &ep)})
	return nil
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("endpoint_id")
	var body struct {
		Endpoint *endpointInput `json:"endpoint"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Endpoint
	if in == nil {
		return api.BadRequest("'endpoint' is a required property.")
	}
	if in.Interface != nil && !slices.Contains(interfaces, *in.Interface) {
		return api.BadRequest("Invalid input for field 'endpoint.interface': %q is not one of public, internal, admin.", *in.Interface)
	}
	if in.URL != nil {
		if err := validEndpointURL(*in.URL); err != nil {
			return err
		}
	}
	old, err := fetch(s, r, "identity:update_endpoint", endpointsPrefix+id, "endpoint", id, noTarget[endpoint])
	if err != nil {
		return err
	}
	ctx := r.Context()
	svc := old.ServiceID
	if in.ServiceID != nil {
		svc = *in.ServiceID
	}
	reg, regionSet := endpointRegion(in)
	if !regionSet {
		reg = old.RegionID
	}
	if err := s.ensureLegacyRegion(ctx, in); err != nil {
		return err
	}
	if err := s.checkEndpointRefs(ctx, svc, reg); err != nil {
		return err
	}
	ep, err := updateRecord(ctx, s.st, "endpoint", id, endpointsPrefix+id, nil, func(ep *endpoint) error {
		ep.ServiceID, ep.RegionID = svc, reg
		if in.Interface != nil {
			ep.Interface = *in.Interface
		}
		if in.URL != nil {
			ep.URL = *in.URL
		}
		if in.Enabled != nil {
			ep.Enabled = *in.Enabled
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"endpoint": s.endpointView(r, &ep)})
	return nil
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("endpoint_id")
	if _, err := fetch(s, r, "identity:delete_endpoint", endpointsPrefix+id, "endpoint", id, noTarget[endpoint]); err != nil {
		return err
	}
	if _, err := deleteRecord[endpoint](r.Context(), s.st, "endpoint", id, endpointsPrefix+id, nil, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type regionInput struct {
	ID             *string `json:"id"`
	Description    *string `json:"description"`
	ParentRegionID *string `json:"parent_region_id"`
}

func (s *Server) regionView(r *http.Request, rg *region) map[string]any {
	var parent any
	if rg.ParentRegionID != "" {
		parent = rg.ParentRegionID
	}
	return map[string]any{
		"id": rg.ID, "description": rg.Description, "parent_region_id": parent,
		"links": links(s.base(r) + "/v3/regions/" + url.PathEscape(rg.ID)),
	}
}

func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) error {
	if err := s.enforce(r, "identity:list_regions", nil); err != nil {
		return err
	}
	all, err := listRecords[region](r.Context(), s.st, regionsPrefix)
	if err != nil {
		return err
	}
	parent := r.URL.Query().Get("parent_region_id")
	all = slices.DeleteFunc(all, func(rg region) bool { return parent != "" && rg.ParentRegionID != parent })
	return writeList(w, r, s, "regions", all, func(rg *region) string { return rg.ID }, func(rg *region) map[string]any { return s.regionView(r, rg) })
}

func (s *Server) getRegion(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("region_id")
	rg, err := fetch(s, r, "identity:get_region", regionsPrefix+seg(id), "region", id, noTarget[region])
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"region": s.regionView(r, &rg)})
	return nil
}

// createRegion is POST /v3/regions (ID chosen by the body or generated)
// and PUT /v3/regions/{region_id}.
func (s *Server) createRegion(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Region *regionInput `json:"region"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Region
	if in == nil {
		return api.BadRequest("'region' is a required property.")
	}
	rg := region{ID: newID()}
	if in.ID != nil {
		rg.ID = *in.ID
	}
	if pid := r.PathValue("region_id"); pid != "" {
		if in.ID != nil && *in.ID != pid {
			return api.BadRequest("Invalid input for field 'region.id': it differs from the ID in the URL.")
		}
		rg.ID = pid
	}
	if err := validName("region.id", rg.ID, 255); err != nil {
		return err
	}
	if strings.Contains(rg.ID, "/") {
		return api.BadRequest("Invalid input for field 'region.id': it must not contain '/'.")
	}
	if in.Description != nil {
		rg.Description = *in.Description
	}
	if in.ParentRegionID != nil {
		rg.ParentRegionID = *in.ParentRegionID
	}
	if err := s.enforce(r, "identity:create_region", nil); err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.checkParentRegion(ctx, rg.ID, rg.ParentRegionID); err != nil {
		return err
	}
	if err := createRecord(ctx, s.st, "region", rg.ID, regionsPrefix+seg(rg.ID), rg, "", rg.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"region": s.regionView(r, &rg)})
	return nil
}

// checkParentRegion refuses a parent that is missing, or that would make
// a cycle.
func (s *Server) checkParentRegion(ctx context.Context, id, parent string) error {
	for hops := 0; parent != ""; hops++ {
		if parent == id || hops > 64 {
			return api.BadRequest("Invalid input for field 'region.parent_region_id': it would make a cycle.")
		}
		p, err := lookup[region](ctx, s.st, regionsPrefix+seg(parent))
		if err != nil {
			return err
		}
		if p == nil {
			return api.BadRequest("Invalid input for field 'region.parent_region_id': could not find region %s.", parent)
		}
		parent = p.ParentRegionID
	}
	return nil
}

func (s *Server) updateRegion(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("region_id")
	var body struct {
		Region *regionInput `json:"region"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Region
	if in == nil {
		return api.BadRequest("'region' is a required property.")
	}
	if in.ID != nil && *in.ID != id {
		return api.BadRequest("Invalid input for field 'region.id': a region's ID cannot change.")
	}
	if _, err := fetch(s, r, "identity:update_region", regionsPrefix+seg(id), "region", id, noTarget[region]); err != nil {
		return err
	}
	ctx := r.Context()
	if in.ParentRegionID != nil {
		if err := s.checkParentRegion(ctx, id, *in.ParentRegionID); err != nil {
			return err
		}
	}
	rg, err := updateRecord(ctx, s.st, "region", id, regionsPrefix+seg(id), nil, func(rg *region) error {
		if in.Description != nil {
			rg.Description = *in.Description
		}
		if in.ParentRegionID != nil {
			rg.ParentRegionID = *in.ParentRegionID
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"region": s.regionView(r, &rg)})
	return nil
}

func (s *Server) deleteRegion(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("region_id")
	if _, err := fetch(s, r, "identity:delete_region", regionsPrefix+seg(id), "region", id, noTarget[region]); err != nil {
		return err
	}
	ctx := r.Context()
	regions, err := listRecords[region](ctx, s.st, regionsPrefix)
	if err != nil {
		return err
	}
	for _, rg := range regions {
		if rg.ParentRegionID == id {
			return api.Conflict("Region %s has child regions: delete them first.", id)
		}
	}
	eps, err := listRecords[endpoint](ctx, s.st, endpointsPrefix)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.RegionID == id {
			return api.Conflict("Region %s has endpoints: delete them or move them first.", id)
		}
	}
	if _, err := deleteRecord[region](ctx, s.st, "region", id, regionsPrefix+seg(id), nil, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
