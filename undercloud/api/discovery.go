package api

import "net/http"

// versionDoc describes API version 1 in discovery documents.
type versionDoc struct {
	ID         string `json:"id"`
	Links      []link `json:"links"`
	Status     string `json:"status"`
	MinVersion string `json:"min_version"`
	Version    string `json:"version"`
}

func (s *server) versionDoc(r *http.Request) versionDoc {
	return versionDoc{
		ID:         "v1",
		Links:      []link{{Href: s.base(r) + "/v1/", Rel: "self"}},
		Status:     "CURRENT",
		MinVersion: MinVersion,
		Version:    MaxVersion,
	}
}

// root is GET /: the versions of the API.
func (s *server) root(r *http.Request) (any, error) {
	v := s.versionDoc(r)
	return map[string]any{
		"name":            "OpenStack Ironic API",
		"description":     "The Strata undercloud's bare metal API, compatible with OpenStack Ironic: it enrolls, inspects, cleans and deploys the machines of a datacenter.",
		"default_version": v,
		"versions":        []versionDoc{v},
	}, nil
}

// v1 is GET /v1: version 1 and its resources.
func (s *server) v1(r *http.Request) (any, error) {
	b := s.base(r)
	resource := func(name string) []link {
		return []link{{Href: b + "/v1/" + name + "/", Rel: "self"}, {Href: b + "/" + name + "/", Rel: "bookmark"}}
	}
	return map[string]any{
		"id": "v1",
		"links": []link{
			{Href: b + "/v1/", Rel: "self"},
			{Href: "https://docs.openstack.org/ironic/latest/contributor/webapi.html", Rel: "describedby", Type: "text/html"},
		},
		"media_types": map[string]string{
			"base": "application/json",
			"type": "application/vnd.openstack.ironic.v1+json",
		},
		"nodes":   resource("nodes"),
		"ports":   resource("ports"),
		"version": s.versionDoc(r),
	}, nil
}
