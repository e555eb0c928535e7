package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// RemoteValidator validates tokens with the identity service's API, as
// keystonemiddleware does for OpenStack's services: GET /v3/auth/tokens
// with the token to check in X-Subject-Token and the service's own token
// in X-Auth-Token. The service logs in with its own user (which needs the
// service or admin role) and keeps its token until shortly before it
// expires. Put it behind an Authenticator: the cache saves most calls,
// and its TTL bounds how long a revoked token is still accepted.
type RemoteValidator struct {
	// AuthURL is identity's versioned root, such as http://ctl:5000/v3.
	AuthURL string
	// The service user's credentials; the project is the scope of the
	// service token.
	Username      string
	UserDomain    string
	Password      string
	Project       string
	ProjectDomain string
	// Client makes the calls; nil means a client with a 30s timeout.
	Client *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ TokenValidator = (*RemoteValidator)(nil)

// ValidateToken asks identity whose token it is.
func (v *RemoteValidator) ValidateToken(ctx context.Context, token string) (*Credentials, error) {
	for attempt := 0; ; attempt++ {
		svc, err := v.serviceToken(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(v.AuthURL, "/")+"/auth/tokens?nocatalog", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set(AuthTokenHeader, svc)
		req.Header.Set("X-Subject-Token", token)
		req.Header.Set("Accept", "application/json")
		resp, err := v.client().Do(req)
		if err != nil {
			return nil, fmt.Errorf("validate token: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("validate token: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return parseTokenBody(body)
		case resp.StatusCode == http.StatusNotFound:
			return nil, ErrNoToken
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			// Our own token was revoked or expired early: log in again.
			v.mu.Lock()
			v.token = ""
			v.mu.Unlock()
			continue
		}
		return nil, fmt.Errorf("validate token: identity answered %s", resp.Status)
	}
}

func (v *RemoteValidator) client() *http.Client {
	if v.Client != nil {
		return v.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// serviceToken returns the service's token, logging in when it has none
// or it expires within a minute.
func (v *RemoteValidator) serviceToken(ctx context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.token != "" && time.Until(v.expires) > time.Minute {
		return v.token, nil
	}
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": v.Username, "domain": map[string]any{"name": v.UserDomain}, "password": v.Password,
		}}},
		"scope": map[string]any{"project": map[string]any{"name": v.Project, "domain": map[string]any{"name": v.ProjectDomain}}},
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(v.AuthURL, "/")+"/auth/tokens?nocatalog", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("service login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("service login as %s: identity answered %s", v.Username, resp.Status)
	}
	var t struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
		} `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBodySize)).Decode(&t); err != nil {
		return "", fmt.Errorf("service login: %w", err)
	}
	exp, err := ParseTime(t.Token.ExpiresAt)
	if err != nil {
		return "", fmt.Errorf("service login: expires_at %q: %w", t.Token.ExpiresAt, err)
	}
	v.token, v.expires = resp.Header.Get("X-Subject-Token"), exp
	if v.token == "" {
		return "", errors.New("service login: no X-Subject-Token in the answer")
	}
	return v.token, nil
}

type nameAndDomain struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"domain"`
}

// parseTokenBody reads Keystone's token body into Credentials.
func parseTokenBody(b []byte) (*Credentials, error) {
	var body struct {
		Token struct {
			Methods   []string        `json:"methods"`
			AuditIDs  []string        `json:"audit_ids"`
			ExpiresAt string          `json:"expires_at"`
			IssuedAt  string          `json:"issued_at"`
			User      nameAndDomain   `json:"user"`
			Project   *nameAndDomain  `json:"project"`
			Domain    *nameAndDomain  `json:"domain"`
			System    map[string]bool `json:"system"`
			Roles     []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"roles"`
			AppCred *struct {
				ID         string `json:"id"`
				Restricted bool   `json:"restricted"`
			} `json:"application_credential"`
		} `json:"token"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("validate token: unreadable answer: %w", err)
	}
	t := body.Token
	c := &Credentials{
		UserID: t.User.ID, UserName: t.User.Name, UserDomainID: t.User.Domain.ID, UserDomainName: t.User.Domain.Name,
		Methods: t.Methods, AuditIDs: t.AuditIDs, System: t.System["all"],
	}
	var err error
	if c.ExpiresAt, err = ParseTime(t.ExpiresAt); err != nil {
		return nil, fmt.Errorf("validate token: expires_at %q: %w", t.ExpiresAt, err)
	}
	c.IssuedAt, _ = ParseTime(t.IssuedAt)
	if t.Project != nil {
		c.ProjectID, c.ProjectName = t.Project.ID, t.Project.Name
		c.ProjectDomainID, c.ProjectDomainName = t.Project.Domain.ID, t.Project.Domain.Name
	}
	if t.Domain != nil {
		c.DomainID, c.DomainName = t.Domain.ID, t.Domain.Name
	}
	for _, r := range t.Roles {
		c.Roles = append(c.Roles, r.Name)
		c.RoleIDs = append(c.RoleIDs, r.ID)
	}
	if t.AppCred != nil {
		c.AppCredID, c.AppCredUnrestricted = t.AppCred.ID, !t.AppCred.Restricted
	}
	if c.UserID == "" {
		return nil, errors.New("validate token: the answer names no user")
	}
	return c, nil
}
