package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/internal/store"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
	}{
		{"bad request", BadRequest("field %s is wrong", "x"), 400, "field x is wrong"},
		{"not found", NotFound("no such thing"), 404, "no such thing"},
		{"conflict", Conflict("dup"), 409, "dup"},
		{"wrapped", fmt.Errorf("context: %w", Forbidden("nope")), 403, "nope"},
		{"store not found, detail hidden", fmt.Errorf("/strata/x/key: %w", store.ErrNotFound), 404, "Could not find the requested resource."},
		{"store exists", &store.CondError{Key: "/secret/key", Err: store.ErrExists}, 409, "Conflict occurred attempting to store the resource."},
		{"unexpected, detail hidden", errors.New("dial tcp 10.0.0.1:2379: refused"), 500, "An unexpected error prevented the server from fulfilling your request."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := Status(tc.err)
			if status != tc.wantStatus || msg != tc.wantMsg {
				t.Errorf("Status = %d %q, want %d %q", status, msg, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}

func TestErrorFormats(t *testing.T) {
	var logs bytes.Buffer
	errs := &Errors{Logger: slog.New(slog.NewTextHandler(&logs, nil)), AuthURI: "http://id/v3"}
	rec := httptest.NewRecorder()
	errs.Write(rec, httptest.NewRequest("GET", "/x", nil), Unauthorized("who are you"))
	if rec.Code != 401 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("WWW-Authenticate") != `Keystone uri="http://id/v3"` {
		t.Errorf("401: %d %v", rec.Code, rec.Header())
	}
	var got map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	want := map[string]any{"error": map[string]any{"code": float64(401), "message": "who are you", "title": "Unauthorized"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Keystone body (-want +got):\n%s", diff)
	}

	rec = httptest.NewRecorder()
	(&Errors{Format: NovaFormat}).Write(rec, httptest.NewRequest("GET", "/x", nil), NotFound("Instance x could not be found."))
	got = nil
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	want = map[string]any{"itemNotFound": map[string]any{"code": float64(404), "message": "Instance x could not be found."}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Nova body (-want +got):\n%s", diff)
	}

	rec = httptest.NewRecorder()
	errs.Write(rec, httptest.NewRequest("GET", "/x", nil), errors.New("etcd is down at 10.1.2.3"))
	if strings.Contains(rec.Body.String(), "10.1.2.3") || !strings.Contains(logs.String(), "10.1.2.3") {
		t.Errorf("a 500 must hide its detail from the client and log it: body %s, log %s", rec.Body, logs.String())
	}
}

func TestDecodeJSON(t *testing.T) {
	type inner struct {
		Name    string `json:"name"`
		Enabled *bool  `json:"enabled"`
		Tags    []string
	}
	type body struct {
		Project *inner `json:"project"`
	}
	tests := []struct {
		name, contentType, body string
		wantKind                error
		wantMsg                 string
	}{
		{"ok", "application/json", `{"project":{"name":"p"}}`, nil, ""},
		{"ok with charset", "application/json; charset=UTF-8", `{"project":{"name":"p"}}`, nil, ""},
		{"ok without a type", "", `{"project":{"name":"p"}}`, nil, ""},
		{"empty", "application/json", ``, ErrBadRequest, "A JSON request body is required."},
		{"syntax", "application/json", `{"project":}`, ErrBadRequest, "not valid JSON (at byte 12)"},
		{"truncated", "application/json", `{"project":{"name":"p"`, ErrBadRequest, "truncated"},
		{"type", "application/json", `{"project":{"enabled":"yes"}}`, ErrBadRequest, "Invalid input for field 'project.enabled': expected boolean, got string."},
		{"array type", "application/json", `{"project":{"Tags":"a"}}`, ErrBadRequest, "expected array, got string"},
		{"top-level type", "application/json", `[1,2]`, ErrBadRequest, "must be a JSON object, not array"},
		{"trailing", "application/json", `{} {}`, ErrBadRequest, "after the JSON value"},
		{"media type", "text/plain", `{}`, ErrUnsupportedMediaType, "Content-Type must be application/json."},
		{"too large", "application/json", `{"project":{"name":"` + strings.Repeat("x", MaxBodySize) + `"}}`, ErrTooLarge, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			var v body
			err := DecodeJSON(httptest.NewRecorder(), r, &v)
			if tc.wantKind == nil {
				if err != nil || v.Project == nil || v.Project.Name != "p" {
					t.Errorf("DecodeJSON = %v, %+v", err, v)
				}
				return
			}
			if !errors.Is(err, tc.wantKind) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("DecodeJSON error = %v, want %v containing %q", err, tc.wantKind, tc.wantMsg)
			}
		})
	}
}

func TestFormatTime(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	if got := FormatTime(ts); got != "2026-01-02T02:04:05.123456Z" {
		t.Errorf("FormatTime = %s", got)
	}
	for _, s := range []string{"2026-01-02T02:04:05.123456Z", "2026-01-02T02:04:05.123456", "2026-01-02T03:04:05+01:00"} {
		got, err := ParseTime(s)
		if err != nil || got.Unix() != ts.Unix() {
			t.Errorf("ParseTime(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Error("ParseTime accepted nonsense")
	}
}

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	tests := []struct {
		name     string
		p        PageRequest
		want     []string
		wantNext string
		wantErr  bool
	}{
		{"all", PageRequest{}, items, "", false},
		{"first page", PageRequest{Limit: 2}, []string{"a", "b"}, "b", false},
		{"middle page", PageRequest{Limit: 2, Marker: "b"}, []string{"c", "d"}, "d", false},
		{"last page", PageRequest{Limit: 2, Marker: "d"}, []string{"e"}, "", false},
		{"exact end", PageRequest{Limit: 5}, items, "", false},
		{"after the last", PageRequest{Limit: 2, Marker: "e"}, []string{}, "", false},
		{"unknown marker", PageRequest{Marker: "zz"}, nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, next, err := Paginate(items, id, tc.p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tc.want, page); !tc.wantErr && diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
			if next != tc.wantNext {
				t.Errorf("next = %q, want %q", next, tc.wantNext)
			}
		})
	}

	r := httptest.NewRequest("GET", "http://h/v2.1/servers?limit=2&name=x", nil)
	p, err := ParsePage(r, 1000)
	if err != nil || p.Limit != 2 {
		t.Fatalf("ParsePage = %+v, %v", p, err)
	}
	links := NewCollectionLinks("http://h", r, p.Limit, "b")
	if links.Next == nil || *links.Next != "http://h/v2.1/servers?limit=2&marker=b&name=x" || links.Previous != nil {
		t.Errorf("links = %+v", links)
	}
	if nl := NextLinks("http://h", r, 2, ""); nl != nil {
		t.Errorf("NextLinks on the last page = %v", nl)
	}
	if p, _ := ParsePage(httptest.NewRequest("GET", "/?limit=5000", nil), 1000); p.Limit != 1000 {
		t.Errorf("a limit above the maximum gave %d", p.Limit)
	}
	if _, err := ParsePage(httptest.NewRequest("GET", "/?limit=abc", nil), 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("limit=abc: %v", err)
	}
}

func TestMicroversions(t *testing.T) {
	m := Microversions{Service: "compute", Legacy: "X-OpenStack-Nova-API-Version", Min: Version{2, 1}, Max: Version{2, 90}}
	tests := []struct {
		name     string
		headers  map[string]string
		want     Version
		wantKind error
	}{
		{"none means min", nil, Version{2, 1}, nil},
		{"standard", map[string]string{"OpenStack-API-Version": "compute 2.61"}, Version{2, 61}, nil},
		{"standard among others", map[string]string{"OpenStack-API-Version": "volume 3.5, compute 2.10"}, Version{2, 10}, nil},
		{"legacy", map[string]string{"X-OpenStack-Nova-API-Version": "2.37"}, Version{2, 37}, nil},
		{"standard wins", map[string]string{"OpenStack-API-Version": "compute 2.3", "X-OpenStack-Nova-API-Version": "2.37"}, Version{2, 3}, nil},
		{"latest", map[string]string{"OpenStack-API-Version": "compute latest"}, Version{2, 90}, nil},
		{"other service only", map[string]string{"OpenStack-API-Version": "volume 3.5"}, Version{2, 1}, nil},
		{"too new", map[string]string{"OpenStack-API-Version": "compute 2.91"}, Version{}, ErrNotAcceptable},
		{"too old", map[string]string{"X-OpenStack-Nova-API-Version": "2.0"}, Version{}, ErrNotAcceptable},
		{"malformed", map[string]string{"OpenStack-API-Version": "compute two"}, Version{}, ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			v, err := m.Negotiate(w, r)
			if tc.wantKind != nil {
				if !errors.Is(err, tc.wantKind) {
					t.Errorf("err = %v, want %v", err, tc.wantKind)
				}
				return
			}
			if err != nil || v != tc.want {
				t.Fatalf("Negotiate = %v, %v, want %v", v, err, tc.want)
			}
			if got := w.Header().Get("OpenStack-API-Version"); got != "compute "+tc.want.String() {
				t.Errorf("echoed %q", got)
			}
			if got := w.Header().Get("X-OpenStack-Nova-API-Version"); got != tc.want.String() {
				t.Errorf("legacy echo %q", got)
			}
			if got := w.Header().Get("Vary"); got != "OpenStack-API-Version, X-OpenStack-Nova-API-Version" {
				t.Errorf("Vary = %q", got)
			}
		})
	}
	h := m.Middleware(&Errors{Format: NovaFormat}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := VersionFrom(r.Context())
		fmt.Fprint(w, v)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("OpenStack-API-Version", "compute 2.5")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Body.String() != "2.5" {
		t.Errorf("middleware version = %q", w.Body.String())
	}
	r.Header.Set("OpenStack-API-Version", "compute 9.0")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 406 || !strings.Contains(w.Body.String(), "notAcceptable") {
		t.Errorf("out of range: %d %s", w.Code, w.Body)
	}
}

// fakeValidator counts validations; its tokens are "valid-<user>".
type fakeValidator struct {
	mu    sync.Mutex
	calls int
	exp   time.Time
}

func (f *fakeValidator) ValidateToken(_ context.Context, token string) (*Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	user, ok := strings.CutPrefix(token, "valid-")
	if !ok {
		return nil, Unauthorized("bad token")
	}
	return &Credentials{UserID: user, ExpiresAt: f.exp, AuditIDs: []string{"audit-" + user}}, nil
}

type revokedSet map[string]bool

func (r revokedSet) IsRevoked(c *Credentials) bool { return r[c.UserID] }

func TestAuthenticator(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	v := &fakeValidator{exp: now.Add(time.Hour)}
	revoked := revokedSet{}
	a := NewAuthenticator(AuthConfig{Validator: v, Revocations: revoked, CacheTTL: time.Minute, Now: clock})
	ctx := context.Background()

	for range 3 {
		if c, err := a.Authenticate(ctx, "valid-u1"); err != nil || c.UserID != "u1" {
			t.Fatalf("Authenticate = %v, %v", c, err)
		}
	}
	if v.calls != 1 {
		t.Errorf("three uses validated %d times, want once (cached)", v.calls)
	}
	// Revoked: refused at once, from the cache.
	revoked["u1"] = true
	if _, err := a.Authenticate(ctx, "valid-u1"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("revoked token: %v", err)
	}
	delete(revoked, "u1")
	// The cache entry lives CacheTTL at most.
	_, _ = a.Authenticate(ctx, "valid-u2")
	now = now.Add(2 * time.Minute)
	_, _ = a.Authenticate(ctx, "valid-u2")
	if v.calls != 3 { // u1 once, u2 twice
		t.Errorf("validations = %d, want 3", v.calls)
	}
	// And never past the token's expiry.
	v.exp = now.Add(time.Second)
	_, _ = a.Authenticate(ctx, "valid-u3")
	now = now.Add(2 * time.Second)
	calls := v.calls
	_, _ = a.Authenticate(ctx, "valid-u3")
	if v.calls != calls+1 {
		t.Error("an expired token was served from the cache")
	}
	if _, err := a.Authenticate(ctx, ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("no token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "forged"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("bad token: %v", err)
	}

	// The middleware puts the credentials in the context, and the access
	// log names the user but never the token.
	var logs bytes.Buffer
	h := Instrument(a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := CredentialsFrom(r.Context())
		fmt.Fprint(w, c.UserID, " ", RequestIDFrom(r.Context()))
	})), &Errors{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	r := httptest.NewRequest("GET", "/thing?x=1", nil)
	r.Header.Set(AuthTokenHeader, "valid-u9")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	id := w.Header().Get(RequestIDHeader)
	if w.Body.String() != "u9 "+id || !strings.HasPrefix(id, "req-") {
		t.Errorf("handler saw %q, request id %q", w.Body, id)
	}
	if !strings.Contains(logs.String(), `"user_id":"u9"`) || strings.Contains(logs.String(), "valid-u9") {
		t.Errorf("access log = %s", logs.String())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"title":"Unauthorized"`) {
		t.Errorf("no token: %d %s", w.Code, w.Body)
	}
}

func TestInstrumentRecoversPanics(t *testing.T) {
	var logs bytes.Buffer
	h := Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), &Errors{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || strings.Contains(w.Body.String(), "boom") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic: %d %s; log %s", w.Code, w.Body, logs.String())
	}
}

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.PathValue("id")) })
	h := Routes(mux, &Errors{Format: NovaFormat})
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/things/7", 200, "7"},
		{"HEAD", "/things/7", 200, ""},
		{"GET", "/nothing", 404, `"itemNotFound"`},
		{"DELETE", "/things/7", 405, `"badMethod"`},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
		if tc.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("405 without Allow")
		}
	}
}

func TestCanAccessProject(t *testing.T) {
	member := &Credentials{ProjectID: "p1", Roles: []string{"member"}}
	if !member.CanAccessProject("p1") || member.CanAccessProject("p2") {
		t.Error("a member must reach its own project only")
	}
	if !(&Credentials{ProjectID: "p1", Roles: []string{"Admin"}}).CanAccessProject("p2") {
		t.Error("an admin reaches every project")
	}
}
