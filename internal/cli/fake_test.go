package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// fakeIronic is a recording fake of the undercloud's Ironic v1 API: just
// enough of it for the CLI's tests. State changes are synchronous where
// Ironic's are (the first step happens in the request) and each later
// GET of the node moves it one step on, so --wait sees every state.
type fakeIronic struct {
	srv *httptest.Server
	URL string

	mu       sync.Mutex
	max      microversion
	pageSize int
	now      time.Time
	seq      int
	nodes    []*fakeNode
	ports    []record
	requests []fakeRequest
	// failOn makes verb fail for the node named: it ends in the failed
	// state with last_error set.
	failOn map[string]string
	// stall keeps the named nodes in their first transitional state.
	stall map[string]bool
	// locked answers this many state changes of the named node with 409
	// NodeLocked, and busy this many requests with 503.
	locked map[string]int
	busy   int
	// basicAuth, when set, is the user:password every request must carry.
	basicAuth string
	// noRoot makes GET / answer 404, as behind a proxy that serves only
	// /v1.
	noRoot bool
}

type fakeNode struct {
	rec     record
	plan    []fakeStep
	history []record
}

// fakeStep is a state a node will be in after one more GET.
type fakeStep struct {
	state, target, lastError string
}

// fakeRequest is one request the fake answered.
type fakeRequest struct {
	Method  string
	Path    string
	Query   url.Values
	Version string
	Token   string
	Body    string
}

func (r fakeRequest) String() string {
	s := r.Method + " " + r.Path
	if len(r.Query) > 0 {
		s += "?" + r.Query.Encode()
	}
	return s
}

func startFakeIronic() *fakeIronic {
	f := &fakeIronic{
		max:      microversion{1, 87},
		pageSize: 1000,
		now:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		failOn:   map[string]string{},
		stall:    map[string]bool{},
		locked:   map[string]int{},
	}
	f.srv = httptest.NewUnstartedServer(f.handler())
	f.URL = "http://" + f.srv.Listener.Addr().String()
	f.srv.Start()
	return f
}

func (f *fakeIronic) Close() { f.srv.Close() }

// Requests returns what was asked so far, leaving out the version
// discovery.
func (f *fakeIronic) Requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.Path == "/" || r.Path == "/v1/" || r.Path == "/v1" {
			continue
		}
		out = append(out, r)
	}
	return out
}

// requestLines are the requests as "METHOD /path?query" lines.
func (f *fakeIronic) requestLines() []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.String())
	}
	return out
}

func (f *fakeIronic) node(ident string) *fakeNode {
	for _, n := range f.nodes {
		if n.rec.str("uuid") == ident || ident != "" && n.rec.str("name") == ident {
			return n
		}
	}
	return nil
}

// State returns a node's provision state.
func (f *fakeIronic) State(ident string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.node(ident); n != nil {
		return n.rec.str("provision_state")
	}
	return ""
}

// Field returns one field of a node as stored (secrets unmasked).
func (f *fakeIronic) Field(ident, field string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.node(ident); n != nil {
		return n.rec[field]
	}
	return nil
}

// AddNode enrolls a node directly, in state.
func (f *fakeIronic) AddNode(name, state string, fields map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.newNode(map[string]any{"name": name, "driver": inventory.DriverFake})
	n.rec["provision_state"] = state
	for k, v := range fields {
		n.rec[k] = v
	}
	return n.rec.str("uuid")
}

func (f *fakeIronic) tick() string {
	f.now = f.now.Add(time.Second)
	return f.now.Format(time.RFC3339)
}

func (f *fakeIronic) newNode(body map[string]any) *fakeNode {
	f.seq++
	uuid, _ := body["uuid"].(string)
	if uuid == "" {
		uuid = fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
	}
	rec := record{
		"uuid":                   uuid,
		"name":                   nil,
		"driver":                 body["driver"],
		"driver_info":            mapOr(body["driver_info"]),
		"properties":             mapOr(body["properties"]),
		"extra":                  mapOr(body["extra"]),
		"instance_info":          map[string]any{},
		"resource_class":         nilIfEmpty(body["resource_class"]),
		"description":            nilIfEmpty(body["description"]),
		"instance_uuid":          nil,
		"provision_state":        inventory.StateEnroll,
		"target_provision_state": nil,
		"power_state":            nil,
		"target_power_state":     nil,
		"maintenance":            false,
		"maintenance_reason":     nil,
		"last_error":             nil,
		"conductor":              "undercloud",
		"provision_updated_at":   nil,
		"created_at":             f.tick(),
		"updated_at":             nil,
		"links":                  []any{map[string]any{"href": f.URL + "/v1/nodes/" + uuid, "rel": "self"}},
		"ports":                  []any{map[string]any{"href": f.URL + "/v1/nodes/" + uuid + "/ports", "rel": "self"}},
		"states":                 []any{map[string]any{"href": f.URL + "/v1/nodes/" + uuid + "/states", "rel": "self"}},
	}
	if name, _ := body["name"].(string); name != "" {
		rec["name"] = name
	}
	n := &fakeNode{rec: rec}
	f.nodes = append(f.nodes, n)
	return n
}

func mapOr(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func nilIfEmpty(v any) any {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return nil
}

// view is a node as the API shows it: secrets masked.
func (n *fakeNode) view() record {
	out := make(record, len(n.rec))
	for k, v := range n.rec {
		out[k] = v
	}
	out["driver_info"] = inventory.MaskedDriverInfo(mapOr(n.rec["driver_info"]))
	return out
}

// advance moves a node one step along its plan.
func (f *fakeIronic) advance(n *fakeNode) {
	if len(n.plan) == 0 || f.stall[n.rec.str("name")] {
		return
	}
	s := n.plan[0]
	n.plan = n.plan[1:]
	f.setState(n, s)
}

func (f *fakeIronic) setState(n *fakeNode, s fakeStep) {
	from := n.rec.str("provision_state")
	n.rec["provision_state"] = s.state
	n.rec["target_provision_state"] = nilIfEmpty(s.target)
	n.rec["last_error"] = nilIfEmpty(s.lastError)
	at := f.tick()
	n.rec["provision_updated_at"] = at
	sev, event := "INFO", fmt.Sprintf("%s -> %s", from, s.state)
	if s.lastError != "" {
		sev, event = "ERROR", s.lastError
	}
	n.history = append(n.history, record{
		"uuid": fmt.Sprintf("10000000-0000-4000-8000-%012d", len(n.history)+1), "created_at": at,
		"severity": sev, "event_type": "provisioning", "event": event,
		"conductor": "undercloud", "user": nil,
	})
}

// plans are the states each verb takes a node through, from a state, and
// the state it fails to.
func (f *fakeIronic) plan(n *fakeNode, verb string) ([]fakeStep, error) {
	from := n.rec.str("provision_state")
	v, ok := inventory.LookupVerb(verb)
	if !ok {
		return nil, fmt.Errorf("%q is not a valid provision target", verb)
	}
	if _, err := inventory.Next(from, v.Event); err != nil {
		return nil, fmt.Errorf("The requested action %q can not be performed on node %q while it is in state %q.", verb, n.rec.str("uuid"), from)
	}
	var states []string
	var failTo string
	switch v.Event {
	case inventory.EventManage:
		if from == inventory.StateEnroll {
			states, failTo = []string{inventory.StateVerifying, inventory.StateManageable}, inventory.StateEnroll
		} else {
			states = []string{inventory.StateManageable}
		}
	case inventory.EventProvide:
		states, failTo = []string{inventory.StateCleaning, inventory.StateCleanWait, inventory.StateAvailable}, inventory.StateCleanFailed
	case inventory.EventInspect:
		states, failTo = []string{inventory.StateInspecting, inventory.StateInspectWait, inventory.StateManageable}, inventory.StateInspectFailed
	case inventory.EventClean:
		states, failTo = []string{inventory.StateCleaning, inventory.StateCleanWait, inventory.StateManageable}, inventory.StateCleanFailed
	case inventory.EventDeploy, inventory.EventRebuild:
		if _, ok := mapOr(n.rec["instance_info"])["image_source"]; !ok {
			return nil, fmt.Errorf("Cannot validate image information for node %s because one or more parameters are missing from its instance_info. Missing are: ['image_source']", n.rec.str("uuid"))
		}
		states, failTo = []string{inventory.StateDeploying, inventory.StateWaitCallback, inventory.StateDeploying, inventory.StateActive}, inventory.StateDeployFailed
	case inventory.EventDelete:
		states, failTo = []string{inventory.StateDeleting, inventory.StateCleaning, inventory.StateAvailable}, inventory.StateError
	case inventory.EventAbort:
		to, _ := inventory.Next(from, v.Event)
		states = []string{to}
	default:
		return nil, fmt.Errorf("the fake does not do %q", verb)
	}
	final := states[len(states)-1]
	steps := make([]fakeStep, len(states))
	for i, s := range states {
		steps[i] = fakeStep{state: s, target: final}
	}
	steps[len(steps)-1].target = ""
	if f.failOn[n.rec.str("name")] == verb && failTo != "" {
		steps[len(steps)-1] = fakeStep{state: failTo, target: inventory.Target(failTo), lastError: "fake failure of " + verb}
	}
	return steps, nil
}

func (f *fakeIronic) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", f.root)
	mux.HandleFunc("GET /v1", f.v1)
	mux.HandleFunc("GET /v1/{$}", f.v1)
	mux.HandleFunc("GET /v1/nodes", f.listNodes)
	mux.HandleFunc("GET /v1/nodes/detail", f.listNodes)
	mux.HandleFunc("POST /v1/nodes", f.createNode)
	mux.HandleFunc("GET /v1/nodes/{ident}", f.getNode)
	mux.HandleFunc("PATCH /v1/nodes/{ident}", f.patchNode)
	mux.HandleFunc("DELETE /v1/nodes/{ident}", f.deleteNode)
	mux.HandleFunc("PUT /v1/nodes/{ident}/states/provision", f.provision)
	mux.HandleFunc("PUT /v1/nodes/{ident}/states/power", f.power)
	mux.HandleFunc("GET /v1/nodes/{ident}/management/boot_device", f.getBootDevice)
	mux.HandleFunc("PUT /v1/nodes/{ident}/management/boot_device", f.setBootDevice)
	mux.HandleFunc("PUT /v1/nodes/{ident}/maintenance", f.maintenance)
	mux.HandleFunc("DELETE /v1/nodes/{ident}/maintenance", f.maintenance)
	mux.HandleFunc("GET /v1/nodes/{ident}/validate", f.validate)
	mux.HandleFunc("GET /v1/nodes/{ident}/history", f.history)
	mux.HandleFunc("GET /v1/ports", f.listPorts)
	mux.HandleFunc("GET /v1/ports/detail", f.listPorts)
	mux.HandleFunc("POST /v1/ports", f.createPort)
	mux.HandleFunc("GET /v1/ports/{uuid}", f.getPort)
	mux.HandleFunc("DELETE /v1/ports/{uuid}", f.deletePort)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			Version: r.Header.Get("X-OpenStack-Ironic-API-Version"), Token: r.Header.Get("X-Auth-Token"),
			Body: string(body),
		})
		basic := f.basicAuth
		max := f.max
		busy := f.busy > 0 && strings.HasPrefix(r.URL.Path, "/v1/nodes")
		if busy {
			f.busy--
		}
		f.mu.Unlock()
		if busy {
			fault(w, http.StatusServiceUnavailable, "Requests to the conductors could not be handled: no free workers")
			return
		}
		if basic != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u+":"+p != basic {
				fault(w, http.StatusUnauthorized, "Incorrect username or password")
				return
			}
		}
		w.Header().Set("X-OpenStack-Ironic-API-Minimum-Version", "1.1")
		w.Header().Set("X-OpenStack-Ironic-API-Maximum-Version", max.String())
		if v := r.Header.Get("X-OpenStack-Ironic-API-Version"); v != "" && strings.HasPrefix(r.URL.Path, "/v1/") {
			mv, err := parseMicroversion(v)
			if err != nil || max.less(mv) {
				fault(w, http.StatusNotAcceptable, fmt.Sprintf("Version %s was requested but the minor version is not supported by this service. The supported version range is: [1.1, %s].", v, max))
				return
			}
			w.Header().Set("X-OpenStack-Ironic-API-Version", v)
		}
		mux.ServeHTTP(w, r)
	})
}

// fault writes Ironic's error body: the fault document as a JSON string
// inside error_message.
func fault(w http.ResponseWriter, status int, msg string) {
	code := "Client"
	if status >= 500 {
		code = "Server"
	}
	inner, _ := json.Marshal(map[string]any{"faultstring": msg, "faultcode": code, "debuginfo": nil})
	writeJSONResponse(w, status, map[string]any{"error_message": string(inner)})
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, into any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	return dec.Decode(into)
}

func (f *fakeIronic) version(r *http.Request) microversion {
	v, err := parseMicroversion(r.Header.Get("X-OpenStack-Ironic-API-Version"))
	if err != nil {
		return microversion{1, 1}
	}
	return v
}

func (f *fakeIronic) versionDoc() map[string]any {
	return map[string]any{
		"id": "v1", "status": "CURRENT", "min_version": "1.1", "version": f.max.String(),
		"links": []any{map[string]any{"href": f.URL + "/v1/", "rel": "self"}},
	}
}

func (f *fakeIronic) root(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noRoot {
		http.NotFound(w, r)
		return
	}
	writeJSONResponse(w, http.StatusOK, map[string]any{
		"name":            "OpenStack Ironic API",
		"default_version": f.versionDoc(),
		"versions":        []any{f.versionDoc()},
	})
}

func (f *fakeIronic) v1(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSONResponse(w, http.StatusOK, map[string]any{"id": "v1", "version": f.versionDoc()})
}

var fakeListFields = []string{"uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance", "links"}

func (f *fakeIronic) listNodes(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	detail := strings.HasSuffix(r.URL.Path, "/detail")
	var fields []string
	if fs := q.Get("fields"); fs != "" {
		if detail {
			fault(w, http.StatusBadRequest, "Can not specify ?detail=True and fields in the same request.")
			return
		}
		fields = append(strings.Split(fs, ","), "links")
	} else if !detail {
		fields = fakeListFields
	}
	var rows []record
	for _, n := range f.nodes {
		rec := n.view()
		if s := q.Get("provision_state"); s != "" && rec.str("provision_state") != s {
			continue
		}
		if s := q.Get("driver"); s != "" && rec.str("driver") != s {
			continue
		}
		if s := q.Get("resource_class"); s != "" && rec.str("resource_class") != s {
			continue
		}
		if s := q.Get("maintenance"); s != "" {
			want, err := strconv.ParseBool(s)
			if err != nil {
				fault(w, http.StatusBadRequest, "Invalid maintenance value: "+s)
				return
			}
			if rec.bool("maintenance") != want {
				continue
			}
		}
		rows = append(rows, rec)
	}
	if key := q.Get("sort_key"); key != "" {
		sort.SliceStable(rows, func(i, j int) bool {
			return cellText(rows[i][key]) < cellText(rows[j][key])
		})
		if q.Get("sort_dir") == "desc" {
			slices.Reverse(rows)
		}
	}
	f.page(w, r, "nodes", rows, fields)
}

// page writes one page of rows after the marker, with Ironic's "next".
func (f *fakeIronic) page(w http.ResponseWriter, r *http.Request, key string, rows []record, fields []string) {
	q := r.URL.Query()
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(rows, func(x record) bool { return x.str("uuid") == m })
		if i < 0 {
			fault(w, http.StatusBadRequest, fmt.Sprintf("Marker %s could not be found.", m))
			return
		}
		rows = rows[i+1:]
	}
	limit := f.pageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	out := map[string]any{}
	if len(rows) > limit {
		rows = rows[:limit]
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("marker", rows[len(rows)-1].str("uuid"))
		out["next"] = f.URL + r.URL.Path + "?" + nq.Encode()
	}
	items := make([]any, len(rows))
	for i, rec := range rows {
		if fields != nil {
			sub := record{}
			for _, k := range fields {
				if v, ok := rec[k]; ok {
					sub[k] = v
				}
			}
			rec = sub
		}
		items[i] = rec
	}
	out[key] = items
	writeJSONResponse(w, http.StatusOK, out)
}

func (f *fakeIronic) createNode(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		fault(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	driver, _ := body["driver"].(string)
	if !slices.Contains(inventory.Drivers, driver) {
		fault(w, http.StatusBadRequest, fmt.Sprintf("Could not find the following driver(s) or hardware type(s): %s.", driver))
		return
	}
	if name, _ := body["name"].(string); name != "" && f.node(name) != nil {
		fault(w, http.StatusConflict, fmt.Sprintf("A node with name %s already exists.", name))
		return
	}
	if uuid, _ := body["uuid"].(string); uuid != "" && f.node(uuid) != nil {
		fault(w, http.StatusConflict, fmt.Sprintf("A node with UUID %s already exists.", uuid))
		return
	}
	n := f.newNode(body)
	writeJSONResponse(w, http.StatusCreated, n.view())
}

// lookup finds the node of the request, or answers 404.
func (f *fakeIronic) lookup(w http.ResponseWriter, r *http.Request) *fakeNode {
	ident := r.PathValue("ident")
	n := f.node(ident)
	if n == nil {
		fault(w, http.StatusNotFound, fmt.Sprintf("Node %s could not be found.", ident))
	}
	return n
}

func (f *fakeIronic) getNode(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	rec := n.view()
	f.advance(n)
	writeJSONResponse(w, http.StatusOK, rec)
}

func (f *fakeIronic) patchNode(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	if !slices.Contains(inventory.UpdateAllowedStates, n.rec.str("provision_state")) && !n.rec.bool("maintenance") {
		fault(w, http.StatusConflict, fmt.Sprintf("Node %s can not be updated while a state transition is in progress.", n.rec.str("uuid")))
		return
	}
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	if err := decodeBody(r, &ops); err != nil {
		fault(w, http.StatusBadRequest, "Invalid JSON patch")
		return
	}
	updated := make(record, len(n.rec))
	for k, v := range n.rec {
		if m, ok := v.(map[string]any); ok {
			c := make(map[string]any, len(m))
			for mk, mv := range m {
				c[mk] = mv
			}
			v = c
		}
		updated[k] = v
	}
	for _, op := range ops {
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		for i, p := range parts {
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
		}
		switch {
		case len(parts) == 1 && slices.Contains([]string{"name", "description", "resource_class"}, parts[0]):
			if op.Op == "remove" {
				updated[parts[0]] = nil
			} else {
				updated[parts[0]] = op.Value
			}
		case len(parts) == 2 && slices.Contains([]string{"driver_info", "properties", "instance_info", "extra"}, parts[0]):
			m := mapOr(updated[parts[0]])
			if op.Op == "remove" {
				if _, ok := m[parts[1]]; !ok {
					fault(w, http.StatusBadRequest, fmt.Sprintf("can't remove non-existent object '%s'", parts[1]))
					return
				}
				delete(m, parts[1])
			} else {
				m[parts[1]] = op.Value
			}
			updated[parts[0]] = m
		default:
			fault(w, http.StatusBadRequest, fmt.Sprintf("Invalid patch path %s", op.Path))
			return
		}
	}
	updated["updated_at"] = f.tick()
	n.rec = updated
	writeJSONResponse(w, http.StatusOK, n.view())
}

func (f *fakeIronic) deleteNode(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	if s := n.rec.str("provision_state"); !slices.Contains(inventory.DeleteAllowedStates, s) {
		fault(w, http.StatusBadRequest, fmt.Sprintf("Can not delete node %s while it is in provision state %q. Valid provision states to start deletion are: %s", n.rec.str("uuid"), s, strings.Join(inventory.DeleteAllowedStates, ", ")))
		return
	}
	uuid := n.rec.str("uuid")
	f.nodes = slices.DeleteFunc(f.nodes, func(x *fakeNode) bool { return x == n })
	f.ports = slices.DeleteFunc(f.ports, func(p record) bool { return p.str("node_uuid") == uuid })
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeIronic) provision(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	var body struct {
		Target     string           `json:"target"`
		CleanSteps []map[string]any `json:"clean_steps"`
		ConfigDrv  any              `json:"configdrive"`
	}
	if err := decodeBody(r, &body); err != nil {
		fault(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	if name := n.rec.str("name"); f.locked[name] > 0 {
		f.locked[name]--
		fault(w, http.StatusConflict, fmt.Sprintf("Node %s is locked by host undercloud, please retry after the current operation is completed.", n.rec.str("uuid")))
		return
	}
	if len(n.plan) > 0 && body.Target != "abort" {
		fault(w, http.StatusConflict, fmt.Sprintf("Node %s is locked by host undercloud, please retry after the current operation is completed.", n.rec.str("uuid")))
		return
	}
	if body.Target == "clean" && len(body.CleanSteps) == 0 {
		fault(w, http.StatusBadRequest, "clean_steps is required when setting target provision state to clean")
		return
	}
	plan, err := f.plan(n, body.Target)
	if err != nil {
		fault(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.ConfigDrv != nil {
		mapOr(n.rec["instance_info"])["configdrive"] = "******"
	}
	f.setState(n, plan[0])
	n.plan = plan[1:]
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeIronic) power(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	var body struct {
		Target  string `json:"target"`
		Timeout int    `json:"timeout"`
	}
	if err := decodeBody(r, &body); err != nil || !slices.Contains(inventory.PowerTargets, body.Target) {
		fault(w, http.StatusBadRequest, fmt.Sprintf("Invalid power target %q", body.Target))
		return
	}
	state := inventory.PowerOn
	if body.Target == inventory.PowerOff || body.Target == inventory.SoftPowerOff {
		state = inventory.PowerOff
	}
	n.rec["power_state"] = state
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeIronic) getBootDevice(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	writeJSONResponse(w, http.StatusOK, map[string]any{"boot_device": n.rec["boot_device"], "persistent": n.rec["boot_device_persistent"]})
}

func (f *fakeIronic) setBootDevice(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	var body struct {
		BootDevice string `json:"boot_device"`
		Persistent bool   `json:"persistent"`
	}
	if err := decodeBody(r, &body); err != nil {
		fault(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	n.rec["boot_device"] = body.BootDevice
	n.rec["boot_device_persistent"] = body.Persistent
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeIronic) maintenance(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	if r.Method == http.MethodDelete {
		n.rec["maintenance"] = false
		n.rec["maintenance_reason"] = nil
	} else {
		var body struct {
			Reason string `json:"reason"`
		}
		_ = decodeBody(r, &body)
		n.rec["maintenance"] = true
		n.rec["maintenance_reason"] = nilIfEmpty(body.Reason)
	}
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeIronic) validate(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	deploy := map[string]any{"result": true, "reason": nil}
	if _, ok := mapOr(n.rec["instance_info"])["image_source"]; !ok {
		deploy = map[string]any{"result": false, "reason": "Missing image_source in instance_info"}
	}
	writeJSONResponse(w, http.StatusOK, map[string]any{
		"power":      map[string]any{"result": true, "reason": nil},
		"management": map[string]any{"result": true, "reason": nil},
		"deploy":     deploy,
		"console":    map[string]any{"result": nil, "reason": "not supported"},
	})
}

func (f *fakeIronic) history(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.version(r).less(microversion{1, 78}) {
		fault(w, http.StatusNotFound, "The resource could not be found.")
		return
	}
	n := f.lookup(w, r)
	if n == nil {
		return
	}
	writeJSONResponse(w, http.StatusOK, map[string]any{"history": n.history})
}

func (f *fakeIronic) listPorts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	detail := strings.HasSuffix(r.URL.Path, "/detail")
	var fields []string
	if fs := q.Get("fields"); fs != "" {
		fields = append(strings.Split(fs, ","), "links")
	} else if !detail {
		fields = []string{"uuid", "address", "links"}
	}
	var nodeUUID string
	if ident := q.Get("node"); ident != "" {
		n := f.node(ident)
		if n == nil {
			fault(w, http.StatusNotFound, fmt.Sprintf("Node %s could not be found.", ident))
			return
		}
		nodeUUID = n.rec.str("uuid")
	}
	var rows []record
	for _, p := range f.ports {
		if nodeUUID != "" && p.str("node_uuid") != nodeUUID {
			continue
		}
		if a := q.Get("address"); a != "" && p.str("address") != a {
			continue
		}
		rows = append(rows, p)
	}
	f.page(w, r, "ports", rows, fields)
}

func (f *fakeIronic) createPort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		fault(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	addr, _ := body["address"].(string)
	mac, err := inventory.ParseMAC(addr)
	if err != nil {
		fault(w, http.StatusBadRequest, fmt.Sprintf("Expected a MAC address but received %s.", addr))
		return
	}
	nodeUUID, _ := body["node_uuid"].(string)
	if f.node(nodeUUID) == nil {
		fault(w, http.StatusBadRequest, fmt.Sprintf("Node %s could not be found.", nodeUUID))
		return
	}
	for _, p := range f.ports {
		if p.str("address") == mac {
			fault(w, http.StatusConflict, fmt.Sprintf("A port with MAC address %s already exists.", mac))
			return
		}
	}
	f.seq++
	uuid := fmt.Sprintf("20000000-0000-4000-8000-%012d", f.seq)
	pxe, ok := body["pxe_enabled"].(bool)
	if !ok {
		pxe = true
	}
	p := record{
		"uuid": uuid, "address": mac, "node_uuid": nodeUUID, "pxe_enabled": pxe,
		"physical_network":      nilIfEmpty(body["physical_network"]),
		"local_link_connection": mapOr(body["local_link_connection"]),
		"extra":                 mapOr(body["extra"]),
		"created_at":            f.tick(), "updated_at": nil,
		"links": []any{map[string]any{"href": f.URL + "/v1/ports/" + uuid, "rel": "self"}},
	}
	f.ports = append(f.ports, p)
	writeJSONResponse(w, http.StatusCreated, p)
}

func (f *fakeIronic) getPort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.ports {
		if p.str("uuid") == r.PathValue("uuid") {
			writeJSONResponse(w, http.StatusOK, p)
			return
		}
	}
	fault(w, http.StatusNotFound, fmt.Sprintf("Port %s could not be found.", r.PathValue("uuid")))
}

func (f *fakeIronic) deletePort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(f.ports)
	f.ports = slices.DeleteFunc(f.ports, func(p record) bool { return p.str("uuid") == r.PathValue("uuid") })
	if len(f.ports) == before {
		fault(w, http.StatusNotFound, fmt.Sprintf("Port %s could not be found.", r.PathValue("uuid")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
