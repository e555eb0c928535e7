package identity

import (
	"net/http"

	"github.com/stratacloud/strata/overcloud/api"
)

// The API version this service implements, as Keystone reports it.
const (
	apiVersion        = "v3.14"
	apiVersionUpdated = "2020-04-07T00:00:00Z"
)

func (s *Server) versionObject(r *http.Request) map[string]any {
	return map[string]any{
		"id":      apiVersion,
		"status":  "stable",
		"updated": apiVersionUpdated,
		"links":   []api.Link{{Rel: "self", Href: s.base(r) + "/v3/"}},
		"media-types": []map[string]string{{
			"base": "application/json",
			"type": "application/vnd.openstack.identity-v3+json",
		}},
	}
}

// versions is GET /: 300 Multiple Choices with Keystone's
// {"versions":{"values":[...]}}, the one shape both keystoneauth and
// gophercloud read.
func (s *Server) versions(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Location", s.base(r)+"/v3/")
	api.WriteJSON(w, http.StatusMultipleChoices, map[string]any{
		"versions": map[string]any{"values": []any{s.versionObject(r)}},
	})
	return nil
}

// version is GET /v3: {"version":{...}}.
func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"version": s.versionObject(r)})
	return nil
}
