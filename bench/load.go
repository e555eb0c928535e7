package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client drives a bare metal API through the Ironic v1 REST API with plain
// net/http, so that the same requests, in the same order and with the same
// concurrency, reach whichever server it points at. It counts every request
// it sends.
type Client struct {
	base    string
	version string
	http    *http.Client
	// MaxRetries and RetryDelay: a request refused with 409 (node locked)
	// or 503 (busy) is sent again, as python-ironicclient and gophercloud
	// users do; each retry is counted.
	MaxRetries int
	RetryDelay time.Duration

	requests atomic.Int64
	retries  atomic.Int64
}

// NewClient returns a client of the API at base (http://host:port) that
// sends X-OpenStack-Ironic-API-Version: version and keeps up to conns
// idle connections.
func NewClient(base, version string, conns int) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &Client{
		base:       strings.TrimSuffix(base, "/"),
		version:    version,
		http:       &http.Client{Transport: tr, Timeout: 2 * time.Minute},
		MaxRetries: 50,
		RetryDelay: 200 * time.Millisecond,
	}
}

// Counts are the requests a client has sent so far.
type Counts struct {
	Requests int64 // every attempt, retries included
	Retries  int64 // attempts that repeated a request refused with 409 or 503
}

// Counts returns the requests sent so far.
func (c *Client) Counts() Counts {
	return Counts{Requests: c.requests.Load(), Retries: c.retries.Load()}
}

// Sub is the requests sent between two readings.
func (a Counts) Sub(b Counts) Counts {
	return Counts{Requests: a.Requests - b.Requests, Retries: a.Retries - b.Retries}
}

// StatusError is a response with a status other than the one expected.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	body := e.Body
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Code, strings.TrimSpace(body))
}

// do sends a request with JSON body in (if not nil), expects status want,
// and decodes the response into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-OpenStack-Ironic-API-Version", c.version)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		c.requests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: reading the response: %w", method, path, err)
		}
		if resp.StatusCode == want {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
			}
			return nil
		}
		busy := resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusServiceUnavailable
		if !busy || attempt >= c.MaxRetries {
			return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(data)}
		}
		c.retries.Add(1)
		if err := sleep(ctx, c.RetryDelay); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MaxVersion reads the highest API microversion the server at base
// offers, from its version document (GET /).
func MaxVersion(ctx context.Context, base string) (string, error) {
	c := NewClient(base, "1.1", 1)
	var doc struct {
		Default struct {
			Version string `json:"version"`
		} `json:"default_version"`
	}
	if err := c.do(ctx, http.MethodGet, "/", nil, http.StatusOK, &doc); err != nil {
		return "", err
	}
	if _, err := minor(doc.Default.Version); err != nil {
		return "", fmt.Errorf("%s: default_version: %w", base, err)
	}
	return doc.Default.Version, nil
}

// LowerVersion returns the lower of two "1.N" microversions.
func LowerVersion(a, b string) (string, error) {
	ma, err := minor(a)
	if err != nil {
		return "", err
	}
	mb, err := minor(b)
	if err != nil {
		return "", err
	}
	if ma <= mb {
		return a, nil
	}
	return b, nil
}

func minor(v string) (int, error) {
	rest, ok := strings.CutPrefix(v, "1.")
	if !ok {
		return 0, fmt.Errorf("version %q is not 1.N", v)
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("version %q is not 1.N", v)
	}
	return n, nil
}

// Errors collects the failures of a phase without stopping it: their
// number and the first few messages.
type Errors struct {
	mu      sync.Mutex
	count   int
	samples []string
}

const maxSamples = 5

func (e *Errors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count++
	if len(e.samples) < maxSamples {
		e.samples = append(e.samples, err.Error())
	}
}

// merge adds o's failures to e's.
func (e *Errors) merge(o *Errors) {
	n, samples := o.Count(), o.Samples()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count += n
	for _, s := range samples {
		if len(e.samples) < maxSamples {
			e.samples = append(e.samples, s)
		}
	}
}

// Count is the number of failures.
func (e *Errors) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count
}

// Samples are the first failures' messages.
func (e *Errors) Samples() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.samples...)
}

// forEach runs f(i) for i in [0, n) with at most conc calls at once, and
// collects their errors.
func forEach(n, conc int, f func(i int) error) *Errors {
	errs := &Errors{}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs.add(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// Batch describes nodes to create: node i is named Prefix-iiii, has
// driver fake-hardware, InstanceInfo, and one port whose MAC address is
// 52:54:MM:ii:ii:ii with MM = MACByte, so that batches do not collide.
type Batch struct {
	Prefix       string
	MACByte      byte
	InstanceInfo map[string]any
}

// CreateNodes creates n nodes of batch, each with its port, with at most
// conc nodes in flight, and returns the UUIDs of the nodes created.
func (c *Client) CreateNodes(ctx context.Context, batch Batch, n, conc int) ([]string, *Errors) {
	uuids := make([]string, n)
	errs := forEach(n, conc, func(i int) error {
		node := map[string]any{
			"name":   fmt.Sprintf("%s-%04d", batch.Prefix, i),
			"driver": "fake-hardware",
		}
		if batch.InstanceInfo != nil {
			node["instance_info"] = batch.InstanceInfo
		}
		var created struct {
			UUID string `json:"uuid"`
		}
		if err := c.do(ctx, http.MethodPost, "/v1/nodes", node, http.StatusCreated, &created); err != nil {
			return err
		}
		if created.UUID == "" {
			return fmt.Errorf("POST /v1/nodes: no uuid in the response")
		}
		uuids[i] = created.UUID
		port := map[string]any{
			"node_uuid": created.UUID,
			"address":   fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", batch.MACByte, byte(i>>16), byte(i>>8), byte(i)),
		}
		return c.do(ctx, http.MethodPost, "/v1/ports", port, http.StatusCreated, nil)
	})
	out := uuids[:0]
	for _, u := range uuids {
		if u != "" {
			out = append(out, u)
		}
	}
	return out, errs
}

// NodeState is what a poll reads of a node.
type NodeState struct {
	UUID                 string  `json:"uuid"`
	Name                 *string `json:"name"`
	ProvisionState       string  `json:"provision_state"`
	TargetProvisionState *string `json:"target_provision_state"`
	LastError            *string `json:"last_error"`
}

// ListDetail reads every node with GET /v1/nodes/detail, following the
// next links, and returns the nodes (as far as NodeState reads them) and
// the number of pages.
func (c *Client) ListDetail(ctx context.Context) ([]NodeState, int, error) {
	var nodes []NodeState
	path := "/v1/nodes/detail"
	for pages := 1; ; pages++ {
		var page struct {
			Nodes []NodeState `json:"nodes"`
			Next  string      `json:"next"`
		}
		if err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK, &page); err != nil {
			return nil, pages, err
		}
		nodes = append(nodes, page.Nodes...)
		if page.Next == "" || len(page.Nodes) == 0 {
			return nodes, pages, nil
		}
		u, err := url.Parse(page.Next)
		if err != nil {
			return nil, pages, fmt.Errorf("next link %q: %w", page.Next, err)
		}
		path = u.EscapedPath()
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
	}
}

// Step is one provision verb of a walk and the state it ends in.
type Step struct {
	Verb string // the target of PUT .../states/provision
	Want string // the provision state the node rests in when done
}

// ErrFailed is a node that ended its step in a failed state.
var ErrFailed = errors.New("provisioning failed")

// Walk moves every node in uuids through step: it requests the verb and
// polls the node every poll until it rests in step.Want, fails or takes
// longer than timeout (the behaviour of `--wait`), with at most conc nodes
// in flight.
func (c *Client) Walk(ctx context.Context, uuids []string, step Step, conc int, poll, timeout time.Duration) *Errors {
	return forEach(len(uuids), conc, func(i int) error {
		id := uuids[i]
		start := time.Now()
		if err := c.do(ctx, http.MethodPut, "/v1/nodes/"+id+"/states/provision",
			map[string]string{"target": step.Verb}, http.StatusAccepted, nil); err != nil {
			return err
		}
		for {
			var n NodeState
			if err := c.do(ctx, http.MethodGet, "/v1/nodes/"+id, nil, http.StatusOK, &n); err != nil {
				return err
			}
			target := ""
			if n.TargetProvisionState != nil {
				target = *n.TargetProvisionState
			}
			lastError := ""
			if n.LastError != nil {
				lastError = *n.LastError
			}
			switch {
			case n.ProvisionState == step.Want && (target == "" || target == step.Want):
				return nil
			case strings.HasSuffix(n.ProvisionState, " failed") || n.ProvisionState == "error",
				step.Verb == "manage" && n.ProvisionState == "enroll" && lastError != "":
				return fmt.Errorf("node %s: %s went to %q: %s: %w", id, step.Verb, n.ProvisionState, lastError, ErrFailed)
			}
			if time.Since(start) > timeout {
				return fmt.Errorf("node %s: %s: still %q (target %q) after %s", id, step.Verb, n.ProvisionState, target, timeout)
			}
			if err := sleep(ctx, poll); err != nil {
				return err
			}
		}
	})
}
