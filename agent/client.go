package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is what the agent reports in its heartbeats.
const Version = "strata-agent 1"

// node is the node as the undercloud's lookup and heartbeat show it.
type node struct {
	UUID           string         `json:"uuid"`
	Name           string         `json:"name"`
	ProvisionState string         `json:"provision_state"`
	Properties     map[string]any `json:"properties"`
	InstanceInfo   map[string]any `json:"instance_info"`
	CleanSteps     []step         `json:"clean_steps"`
}

// step is a clean (or deploy) step the undercloud asks for.
type step struct {
	Interface string         `json:"interface"`
	Step      string         `json:"step"`
	Args      map[string]any `json:"args,omitempty"`
}

// client calls the undercloud's agent API.
type client struct {
	api   *url.URL
	http  *http.Client
	token string
	node  string // uuid, after the lookup
}

func newClient(api *url.URL) *client {
	return &client{api: api, http: &http.Client{Timeout: 60 * time.Second}}
}

// apiError is an answer other than success, with Ironic's fault string.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.msg) }

// lookup finds the node by its MACs (or its uuid, when the kernel command
// line named it) and keeps the agent token it returns.
func (c *client) lookup(ctx context.Context, macs []net.HardwareAddr, uuid string) (node, error) {
	q := url.Values{}
	var addrs []string
	for _, m := range macs {
		addrs = append(addrs, m.String())
	}
	q.Set("addresses", strings.Join(addrs, ","))
	if uuid != "" {
		q.Set("node_uuid", uuid)
	}
	var out struct {
		Node   node `json:"node"`
		Config struct {
			AgentToken string `json:"agent_token"`
		} `json:"config"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/lookup?"+q.Encode(), nil, &out); err != nil {
		return node{}, err
	}
	if out.Node.UUID == "" || out.Config.AgentToken == "" {
		return node{}, fmt.Errorf("lookup: the answer has no node or no agent token")
	}
	c.token, c.node = out.Config.AgentToken, out.Node.UUID
	return out.Node, nil
}

// heartbeat tells the undercloud the agent is alive and returns the node
// as it is now.
func (c *client) heartbeat(ctx context.Context, status string) (node, error) {
	var out struct {
		Node node `json:"node"`
	}
	body := map[string]any{"agent_token": c.token, "agent_version": Version, "agent_status": status}
	err := c.call(ctx, http.MethodPost, "/v1/heartbeat/"+url.PathEscape(c.node), body, &out)
	return out.Node, err
}

// continueInspection sends the inventory.
func (c *client) continueInspection(ctx context.Context, inventory any) error {
	body := map[string]any{"agent_token": c.token, "inventory": inventory}
	return c.call(ctx, http.MethodPost, "/v1/continue_inspection?node_uuid="+url.QueryEscape(c.node), body, nil)
}

// continueCleaning reports the end of the clean steps: failure is empty
// when they all succeeded.
func (c *client) continueCleaning(ctx context.Context, failure string) error {
	body := map[string]any{"agent_token": c.token, "error": failure}
	return c.call(ctx, http.MethodPost, "/v1/continue_cleaning?node_uuid="+url.QueryEscape(c.node), body, nil)
}

// continueDeploy reports the end of the image write.
func (c *client) continueDeploy(ctx context.Context, failure string) error {
	body := map[string]any{"agent_token": c.token, "error": failure}
	return c.call(ctx, http.MethodPost, "/v1/continue_deploy?node_uuid="+url.QueryEscape(c.node), body, nil)
}

// image asks the undercloud for the node's image as a raw disk; the
// caller closes the body.
func (c *client) image(ctx context.Context) (*http.Response, error) {
	return c.get(ctx, "/v1/agent_image")
}

// configDrive asks the undercloud for the node's config drive, an ISO
// 9660 image; it is nil when the deploy asked for none.
func (c *client) configDrive(ctx context.Context) ([]byte, error) {
	resp, err := c.get(ctx, "/v1/agent_configdrive")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxConfigDrive+1))
}

// maxConfigDrive bounds the config drive the agent takes (Ironic's bound
// too).
const maxConfigDrive = 64 << 20

// get is a download of the node's data with the agent token in its
// header; the caller closes the body.
func (c *client) get(ctx context.Context, path string) (*http.Response, error) {
	u := strings.TrimSuffix(c.api.String(), "/") + path + "?node_uuid=" + url.QueryEscape(c.node)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Agent-Token", c.token)
	req.Header.Set("User-Agent", Version)
	resp, err := (&http.Client{}).Do(req) // no timeout: images are large
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &apiError{status: resp.StatusCode, msg: faultString(data)}
	}
	return resp, nil
}

func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimSuffix(c.api.String(), "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", Version)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &apiError{status: resp.StatusCode, msg: faultString(data)}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// faultString digs the message out of an Ironic error body.
func faultString(b []byte) string {
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(b, &outer) == nil && outer.ErrorMessage != "" {
		var inner struct {
			Faultstring string `json:"faultstring"`
		}
		if json.Unmarshal([]byte(outer.ErrorMessage), &inner) == nil && inner.Faultstring != "" {
			return inner.Faultstring
		}
		return outer.ErrorMessage
	}
	return strings.TrimSpace(string(b))
}
