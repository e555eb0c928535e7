package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultReportInterval is how often a runner reports its services to
// the undercloud.
const DefaultReportInterval = 10 * time.Second

// serviceReport is one service as the undercloud's report API takes it.
type serviceReport struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Healthy  bool   `json:"healthy"`
	Restarts int    `json:"restarts,omitempty"`
	Error    string `json:"error,omitempty"`
}

// SendReport tells the undercloud named in c how the node's services are,
// with the node's own credential: POST
// /v1/overcloud/stacks/STACK/nodes/HOSTNAME/report.
func SendReport(ctx context.Context, client *http.Client, c Config, st []Status) error {
	if c.Undercloud == "" || c.Credential == "" {
		return fmt.Errorf("the config drive names no undercloud or no credential to report with")
	}
	body := struct {
		Services []serviceReport `json:"services"`
	}{Services: []serviceReport{}}
	for _, s := range st {
		body.Services = append(body.Services, serviceReport{Name: s.Name, State: s.State, Healthy: s.State == StateHealthy, Restarts: s.Restarts, Error: s.LastExit})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := strings.TrimRight(c.Undercloud, "/") + "/v1/overcloud/stacks/" + url.PathEscape(c.Stack) + "/nodes/" + url.PathEscape(c.Hostname) + "/report"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Credential)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("report to %s: %s: %s", u, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// reportLoop reports the supervisor's services every interval until ctx
// ends; a failed report is logged and tried again at the next.
func reportLoop(ctx context.Context, c Config, sup *Supervisor, interval time.Duration, log *slog.Logger) {
	client := &http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := SendReport(ctx, client, c, sup.Status()); err != nil && ctx.Err() == nil {
			log.Warn("report to the undercloud failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
