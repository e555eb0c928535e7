package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Version is an API microversion such as 2.61.
type Version struct {
	Major, Minor int
}

// ParseVersion parses "2.61" (a leading "v" is allowed).
func ParseVersion(s string) (Version, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, fmt.Errorf("version %q is not MAJOR.MINOR", s)
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return Version{}, fmt.Errorf("version %q is not MAJOR.MINOR", s)
	}
	return Version{a, b}, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// AtLeast says whether v is o or later.
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// Microversions is one service's supported range and the headers it reads.
type Microversions struct {
	// Service is the name in "OpenStack-API-Version: <service> 2.61",
	// for example "compute" or "volume".
	Service string
	// Legacy is an older header that carries the bare version, such as
	// X-OpenStack-Nova-API-Version; empty if the service has none.
	Legacy   string
	Min, Max Version
}

// APIVersionHeader is the standard microversion header.
const APIVersionHeader = "OpenStack-API-Version"

type versionKey struct{}

// VersionFrom returns the version Negotiate chose for the request.
func VersionFrom(ctx context.Context) (Version, bool) {
	v, ok := ctx.Value(versionKey{}).(Version)
	return v, ok
}

// Negotiate picks the request's microversion: from OpenStack-API-Version
// for this service, else the legacy header, else Min; "latest" is Max. A
// version outside [Min, Max] is a 406 and a malformed one a 400. It sets
// the response headers (both forms, and Vary) that clients and Tempest
// check.
func (m Microversions) Negotiate(w http.ResponseWriter, r *http.Request) (Version, error) {
	raw := ""
	for _, h := range r.Header.Values(APIVersionHeader) {
		for _, part := range strings.Split(h, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, m.Service) {
				raw = strings.TrimSpace(ver)
			}
		}
	}
	if raw == "" && m.Legacy != "" {
		raw = strings.TrimSpace(r.Header.Get(m.Legacy))
	}
	v := m.Min
	switch {
	case raw == "":
	case strings.EqualFold(raw, "latest"):
		v = m.Max
	default:
		var err error
		if v, err = ParseVersion(raw); err != nil {
			return Version{}, BadRequest("Invalid API version request: %s.", err.Error())
		}
		if v.Less(m.Min) || m.Max.Less(v) {
			return Version{}, NotAcceptable("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, m.Min, m.Max)
		}
	}
	h := w.Header()
	h.Set(APIVersionHeader, m.Service+" "+v.String())
	vary := APIVersionHeader
	if m.Legacy != "" {
		h.Set(m.Legacy, v.String())
		vary += ", " + m.Legacy
	}
	h.Add("Vary", vary)
	return v, nil
}

// Middleware negotiates the version of every request, refuses the bad
// ones in errs' format, and puts the chosen version in the context.
func (m Microversions) Middleware(errs *Errors, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := m.Negotiate(w, r)
		if err != nil {
			errs.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, v)))
	})
}
