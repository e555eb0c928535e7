package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/apiversions"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
)

// maxVersion is the newest API microversion strata knows.
var maxVersion = microversion{1, 87}

// microversion is an Ironic API version, 1.N.
type microversion struct{ Major, Minor int }

func (v microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

func (v microversion) less(w microversion) bool {
	return v.Major < w.Major || v.Major == w.Major && v.Minor < w.Minor
}

func parseMicroversion(s string) (microversion, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 1 || b < 0 {
		return microversion{}, fmt.Errorf("%q is not an API version such as 1.78", s)
	}
	return microversion{a, b}, nil
}

// connection is an API client with its negotiated microversion.
type connection struct {
	client  *gophercloud.ServiceClient
	version microversion
}

// atLeast fails with a clear error when the API version in use is older
// than v, which feature needs.
func (c *connection) atLeast(v microversion, feature string) error {
	if c.version.less(v) {
		return fmt.Errorf("%s needs bare metal API version %s or later; this connection uses %s", feature, v, c.version)
	}
	return nil
}

// connect returns the API client, authenticating and negotiating the
// microversion on first use.
func (g *globalOptions) connect(ctx context.Context) (*connection, error) {
	if g.conn != nil {
		return g.conn, nil
	}
	s, err := g.settings()
	if err != nil {
		return nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	var sc *gophercloud.ServiceClient
	switch s.AuthType {
	case authNone:
		sc, err = noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: v1URL(s.Endpoint)})
		if err != nil {
			return nil, err
		}
		sc.ProviderClient.HTTPClient = hc
	case authHTTPBasic:
		sc, err = httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{
			IronicEndpoint:     v1URL(s.Endpoint),
			IronicUser:         s.Username,
			IronicUserPassword: s.Password,
		})
		if err != nil {
			return nil, err
		}
		sc.ProviderClient.HTTPClient = hc
	default:
		// openstack.AuthenticatedClient, with our HTTP client (TLS).
		pc, err := openstack.NewClient(s.AuthURL)
		if err != nil {
			return nil, fmt.Errorf("identity endpoint %q: %v", redactURL(s.AuthURL), err)
		}
		pc.HTTPClient = hc
		if err := openstack.Authenticate(ctx, pc, s.authOptions()); err != nil {
			return nil, fmt.Errorf("authenticating to %s: %w", redactURL(s.AuthURL), apiError(err))
		}
		sc, err = openstack.NewBareMetalV1(pc, gophercloud.EndpointOpts{
			Type:         "baremetal",
			Region:       s.Region,
			Availability: s.availability(),
		})
		if err != nil {
			return nil, fmt.Errorf("finding the bare metal API in the service catalog: %v", err)
		}
		if s.Endpoint != "" {
			sc.Endpoint = rootURL(s.Endpoint)
			sc.ResourceBase = v1URL(s.Endpoint)
		}
	}
	sc.ProviderClient.UserAgent.Prepend("strata")
	interval, err := g.pollInterval()
	if err != nil {
		return nil, err
	}
	sc.ProviderClient.RetryFunc = retryBusy(g.host.clock, interval, maxBusyRetries)
	v, err := negotiate(ctx, sc, s.APIVersion)
	if err != nil {
		return nil, err
	}
	sc.Microversion = v.String()
	g.conn = &connection{client: sc, version: v}
	return g.conn, nil
}

// v1URL is the bare metal API's /v1/ under endpoint, which may be given
// with or without the /v1.
func v1URL(endpoint string) string {
	return rootURL(endpoint) + "v1/"
}

// rootURL is endpoint without a trailing /v1, ending in a slash.
func rootURL(endpoint string) string {
	e := strings.TrimRight(endpoint, "/")
	e = strings.TrimSuffix(e, "/v1")
	return e + "/"
}

// negotiate picks the microversion: the one asked for, or the highest that
// both strata and the server support.
func negotiate(ctx context.Context, sc *gophercloud.ServiceClient, requested string) (microversion, error) {
	if requested != "" && requested != "latest" {
		return parseMicroversion(requested)
	}
	max, err := serverMaxVersion(ctx, sc)
	if err != nil {
		return microversion{}, err
	}
	if maxVersion.less(max) {
		return maxVersion, nil
	}
	return max, nil
}

// serverMaxVersion reads the server's maximum microversion from the root
// version document (GET /), or from the v1 document's headers and body
// when the root is not served.
func serverMaxVersion(ctx context.Context, sc *gophercloud.ServiceClient) (microversion, error) {
	root := *sc
	root.Endpoint = rootURL(sc.ResourceBaseURL())
	root.ResourceBase = ""
	root.Microversion = ""
	vs, err := apiversions.List(ctx, &root).Extract()
	if err == nil && vs.DefaultVersion.Version != "" {
		return parseMicroversion(vs.DefaultVersion.Version)
	}
	if isConnectionError(err) {
		return microversion{}, apiError(err)
	}
	var body struct {
		Version struct {
			Version string `json:"version"`
		} `json:"version"`
	}
	resp, err := root.Request(ctx, http.MethodGet, sc.ResourceBaseURL(), &gophercloud.RequestOpts{
		OkCodes:          []int{200},
		KeepResponseBody: true,
	})
	if err != nil {
		err = apiError(err)
		var ae *APIError
		if errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden) {
			return microversion{}, err
		}
		return microversion{}, fmt.Errorf("finding the API version of %s: %w", redactURL(sc.ResourceBaseURL()), err)
	}
	defer resp.Body.Close()
	if h := resp.Header.Get("X-OpenStack-Ironic-API-Maximum-Version"); h != "" {
		return parseMicroversion(h)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err == nil && body.Version.Version != "" {
		return parseMicroversion(body.Version.Version)
	}
	return microversion{}, fmt.Errorf("%s does not say which API versions it supports; set OS_BAREMETAL_API_VERSION", redactURL(sc.ResourceBaseURL()))
}

// maxBusyRetries is how many times a request refused as busy is retried.
const maxBusyRetries = 10

// retryBusy retries, after interval, a request that the API refused for
// now: 503 (no free conductor workers), and 409 for a state change or a
// deletion (the node is locked by a conductor at work on it). It does not
// retry a 409 of a creation, which means the name or address is taken.
// The openstack CLI retries these too.
//
// A request refused by a concurrency limit (as many nodes inspecting,
// cleaning or deploying as the undercloud allows) is retried until the
// command's own deadline instead: it waits for a slot, so that
// `strata node inspect --all` over more nodes than the limit works
// through them all.
func retryBusy(c clock, interval time.Duration, max uint) gophercloud.RetryFunc {
	return func(ctx context.Context, method, _ string, _ *gophercloud.RequestOpts, err error, n uint) error {
		var rc gophercloud.ErrUnexpectedResponseCode
		if !errors.As(err, &rc) {
			return err
		}
		limited := rc.Actual == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(string(rc.Body)), "concurrent action limit")
		if n > max && !limited {
			return err
		}
		busy := rc.Actual == http.StatusServiceUnavailable ||
			rc.Actual == http.StatusConflict && (method == http.MethodPut || method == http.MethodDelete)
		if !busy || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-c.After(interval):
			return nil
		}
	}
}
