package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gophercloud/gophercloud/v2"
)

// Auth types, with the names of the openstack CLI's OS_AUTH_TYPE.
const (
	authNone      = "none"
	authHTTPBasic = "http_basic"
	authPassword  = "password"
	authToken     = "token"
	authAppCred   = "v3applicationcredential"
)

// settings say how to reach and authenticate to the bare metal API. They
// come from a clouds.yaml entry or from OS_* variables, with the command
// line on top.
type settings struct {
	AuthType string
	// Endpoint is the bare metal API (the root, or its /v1).
	Endpoint string
	// Username and Password are for http_basic and password.
	Username string
	Password string

	// Keystone.
	AuthURL           string
	ProjectName       string
	ProjectID         string
	UserDomainName    string
	UserDomainID      string
	ProjectDomainName string
	ProjectDomainID   string
	DomainName        string
	DomainID          string
	Token             string
	AppCredID         string
	AppCredSecret     string
	Region            string
	Interface         string

	CACert   string
	Insecure bool

	APIVersion string
	// Source names where the settings came from, for error messages.
	Source string
}

// cloudsFile is the part of clouds.yaml (and secure.yaml) that strata reads.
type cloudsFile struct {
	Clouds map[string]cloudEntry `yaml:"clouds"`
}

type cloudEntry struct {
	AuthType  string    `yaml:"auth_type"`
	Auth      cloudAuth `yaml:"auth"`
	Region    string    `yaml:"region_name"`
	Interface string    `yaml:"interface"`
	// BaremetalEndpoint is the openstacksdk override used by Bifrost and
	// Metal3 for standalone Ironic.
	BaremetalEndpoint   string `yaml:"baremetal_endpoint_override"`
	BaremetalAPIVersion string `yaml:"baremetal_api_version"`
	CACert              string `yaml:"cacert"`
	Verify              *bool  `yaml:"verify"`
}

type cloudAuth struct {
	Endpoint          string `yaml:"endpoint"`
	AuthURL           string `yaml:"auth_url"`
	Username          string `yaml:"username"`
	Password          string `yaml:"password"`
	ProjectName       string `yaml:"project_name"`
	ProjectID         string `yaml:"project_id"`
	UserDomainName    string `yaml:"user_domain_name"`
	UserDomainID      string `yaml:"user_domain_id"`
	ProjectDomainName string `yaml:"project_domain_name"`
	ProjectDomainID   string `yaml:"project_domain_id"`
	DomainName        string `yaml:"domain_name"`
	DomainID          string `yaml:"domain_id"`
	Token             string `yaml:"token"`
	AppCredID         string `yaml:"application_credential_id"`
	AppCredSecret     string `yaml:"application_credential_secret"`
}

// cloudsPaths are the places clouds.yaml is looked for, in order.
func (g *globalOptions) cloudsPaths() []string {
	if p := g.host.getenv("OS_CLIENT_CONFIG_FILE"); p != "" {
		return []string{p}
	}
	paths := []string{"clouds.yaml"}
	if x := g.host.getenv("XDG_CONFIG_HOME"); x != "" {
		paths = append(paths, filepath.Join(x, "openstack", "clouds.yaml"))
	} else if home := g.host.getenv("HOME"); home != "" {
		paths = append(paths, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	return append(paths, "/etc/openstack/clouds.yaml")
}

// settings resolves the connection settings.
func (g *globalOptions) settings() (settings, error) {
	var s settings
	cloud := g.Cloud
	if cloud == "" {
		cloud = g.host.getenv("OS_CLOUD")
	}
	if cloud != "" {
		var err error
		s, err = g.cloudSettings(cloud)
		if err != nil {
			return settings{}, err
		}
	} else {
		s = g.envSettings()
	}
	if g.Endpoint != "" {
		s.Endpoint = g.Endpoint
	}
	if v := g.apiVersion(); v != "" {
		s.APIVersion = v
	}
	return s, s.complete()
}

func (g *globalOptions) envSettings() settings {
	e := g.host.getenv
	insecure, _ := strconv.ParseBool(e("OS_INSECURE"))
	return settings{
		AuthType:          e("OS_AUTH_TYPE"),
		Endpoint:          e("OS_ENDPOINT"),
		Username:          e("OS_USERNAME"),
		Password:          e("OS_PASSWORD"),
		AuthURL:           e("OS_AUTH_URL"),
		ProjectName:       e("OS_PROJECT_NAME"),
		ProjectID:         e("OS_PROJECT_ID"),
		UserDomainName:    e("OS_USER_DOMAIN_NAME"),
		UserDomainID:      e("OS_USER_DOMAIN_ID"),
		ProjectDomainName: e("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID:   e("OS_PROJECT_DOMAIN_ID"),
		DomainName:        e("OS_DOMAIN_NAME"),
		DomainID:          e("OS_DOMAIN_ID"),
		Token:             e("OS_TOKEN"),
		AppCredID:         e("OS_APPLICATION_CREDENTIAL_ID"),
		AppCredSecret:     e("OS_APPLICATION_CREDENTIAL_SECRET"),
		Region:            e("OS_REGION_NAME"),
		Interface:         e("OS_INTERFACE"),
		CACert:            e("OS_CACERT"),
		Insecure:          insecure,
		Source:            "the OS_* environment variables",
	}
}

// cloudSettings reads the clouds.yaml entry name, and the secure.yaml next
// to it if there is one.
func (g *globalOptions) cloudSettings(name string) (settings, error) {
	paths := g.cloudsPaths()
	var (
		data []byte
		path string
	)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			data, path = b, p
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return settings{}, fmt.Errorf("reading %s: %w", p, err)
		}
	}
	if path == "" {
		return settings{}, fmt.Errorf("cloud %q: no clouds.yaml found (looked in %s)", name, strings.Join(paths, ", "))
	}
	var f cloudsFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return settings{}, fmt.Errorf("%s: %v", path, err)
	}
	c, ok := f.Clouds[name]
	if !ok {
		return settings{}, fmt.Errorf("cloud %q is not in %s", name, path)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "secure.yaml")); err == nil {
		var sec cloudsFile
		if err := yaml.Unmarshal(b, &sec); err != nil {
			return settings{}, fmt.Errorf("%s: %v", filepath.Join(filepath.Dir(path), "secure.yaml"), err)
		}
		if sc, ok := sec.Clouds[name]; ok {
			c = mergeCloud(c, sc)
		}
	}
	endpoint := c.BaremetalEndpoint
	if endpoint == "" {
		endpoint = c.Auth.Endpoint
	}
	s := settings{
		AuthType:          c.AuthType,
		Endpoint:          endpoint,
		Username:          c.Auth.Username,
		Password:          c.Auth.Password,
		AuthURL:           c.Auth.AuthURL,
		ProjectName:       c.Auth.ProjectName,
		ProjectID:         c.Auth.ProjectID,
		UserDomainName:    c.Auth.UserDomainName,
		UserDomainID:      c.Auth.UserDomainID,
		ProjectDomainName: c.Auth.ProjectDomainName,
		ProjectDomainID:   c.Auth.ProjectDomainID,
		DomainName:        c.Auth.DomainName,
		DomainID:          c.Auth.DomainID,
		Token:             c.Auth.Token,
		AppCredID:         c.Auth.AppCredID,
		AppCredSecret:     c.Auth.AppCredSecret,
		Region:            c.Region,
		Interface:         c.Interface,
		CACert:            c.CACert,
		Insecure:          c.Verify != nil && !*c.Verify,
		APIVersion:        c.BaremetalAPIVersion,
		Source:            fmt.Sprintf("cloud %q in %s", name, path),
	}
	return s, nil
}

// mergeCloud fills the empty fields of c from sec (secure.yaml holds the
// secrets that clouds.yaml leaves out).
func mergeCloud(c, sec cloudEntry) cloudEntry {
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&c.AuthType, sec.AuthType)
	fill(&c.Region, sec.Region)
	fill(&c.Interface, sec.Interface)
	fill(&c.BaremetalEndpoint, sec.BaremetalEndpoint)
	fill(&c.BaremetalAPIVersion, sec.BaremetalAPIVersion)
	fill(&c.CACert, sec.CACert)
	if c.Verify == nil {
		c.Verify = sec.Verify
	}
	a, b := &c.Auth, sec.Auth
	for _, p := range []struct {
		dst *string
		src string
	}{
		{&a.Endpoint, b.Endpoint}, {&a.AuthURL, b.AuthURL}, {&a.Username, b.Username},
		{&a.Password, b.Password}, {&a.ProjectName, b.ProjectName}, {&a.ProjectID, b.ProjectID},
		{&a.UserDomainName, b.UserDomainName}, {&a.UserDomainID, b.UserDomainID},
		{&a.ProjectDomainName, b.ProjectDomainName}, {&a.ProjectDomainID, b.ProjectDomainID},
		{&a.DomainName, b.DomainName}, {&a.DomainID, b.DomainID}, {&a.Token, b.Token},
		{&a.AppCredID, b.AppCredID}, {&a.AppCredSecret, b.AppCredSecret},
	} {
		fill(p.dst, p.src)
	}
	return c
}

// complete normalizes the auth type and checks that what it needs is there.
func (s *settings) complete() error {
	switch strings.ToLower(s.AuthType) {
	case "":
		switch {
		case s.AuthURL != "":
			s.AuthType = authPassword
		case s.Endpoint != "":
			s.AuthType = authNone
		default:
			return errors.New("no bare metal API configured: set OS_CLOUD to a clouds.yaml entry, " +
				"or OS_AUTH_TYPE=none and OS_ENDPOINT (or --os-endpoint), or OS_AUTH_URL with credentials")
		}
	case "none", "noauth":
		s.AuthType = authNone
	case "http_basic", "http-basic":
		s.AuthType = authHTTPBasic
	case "password", "v3password":
		s.AuthType = authPassword
	case "token", "v3token":
		s.AuthType = authToken
	case "v3applicationcredential", "applicationcredential":
		s.AuthType = authAppCred
	default:
		return fmt.Errorf("%s: auth type %q is not supported (use none, http_basic, password, token or v3applicationcredential)", s.Source, s.AuthType)
	}
	missing := func(what string) error {
		return fmt.Errorf("%s: auth type %s needs %s", s.Source, s.AuthType, what)
	}
	switch s.AuthType {
	case authNone:
		if s.Endpoint == "" {
			return missing("an endpoint (OS_ENDPOINT or --os-endpoint)")
		}
	case authHTTPBasic:
		if s.Endpoint == "" {
			return missing("an endpoint (OS_ENDPOINT or --os-endpoint)")
		}
		if s.Username == "" || s.Password == "" {
			return missing("a username and a password (OS_USERNAME, OS_PASSWORD)")
		}
	default:
		if s.AuthURL == "" {
			return missing("an identity endpoint (OS_AUTH_URL)")
		}
	}
	return nil
}

// authOptions are the keystone credentials of s.
func (s *settings) authOptions() gophercloud.AuthOptions {
	o := gophercloud.AuthOptions{
		IdentityEndpoint: s.AuthURL,
		AllowReauth:      true,
	}
	switch s.AuthType {
	case authToken:
		o.TokenID = s.Token
	case authAppCred:
		o.ApplicationCredentialID = s.AppCredID
		o.ApplicationCredentialSecret = s.AppCredSecret
		o.Username = s.Username
		o.DomainName = first(s.UserDomainName, s.DomainName)
		o.DomainID = first(s.UserDomainID, s.DomainID)
		return o
	default:
		o.Username = s.Username
		o.Password = s.Password
		o.DomainName = first(s.UserDomainName, s.DomainName)
		o.DomainID = first(s.UserDomainID, s.DomainID)
	}
	switch {
	case s.ProjectID != "":
		o.Scope = &gophercloud.AuthScope{ProjectID: s.ProjectID}
	case s.ProjectName != "":
		o.Scope = &gophercloud.AuthScope{
			ProjectName: s.ProjectName,
			DomainName:  first(s.ProjectDomainName, s.DomainName),
			DomainID:    first(s.ProjectDomainID, s.DomainID),
		}
	case s.DomainID != "" || s.DomainName != "":
		o.Scope = &gophercloud.AuthScope{DomainID: s.DomainID, DomainName: s.DomainName}
	}
	if o.Scope != nil && o.Scope.DomainID != "" && o.Scope.DomainName != "" {
		o.Scope.DomainName = ""
	}
	if o.DomainID != "" && o.DomainName != "" {
		o.DomainName = ""
	}
	return o
}

func (s *settings) availability() gophercloud.Availability {
	switch strings.TrimSuffix(strings.ToLower(s.Interface), "url") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

// httpClient is the HTTP client for s: TLS settings, no global state.
func (s *settings) httpClient() (http.Client, error) {
	if s.CACert == "" && !s.Insecure {
		return http.Client{}, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CACert != "" {
		pem, err := os.ReadFile(s.CACert)
		if err != nil {
			return http.Client{}, fmt.Errorf("CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return http.Client{}, fmt.Errorf("CA bundle %s: no certificates in it", s.CACert)
		}
		cfg.RootCAs = pool
	}
	cfg.InsecureSkipVerify = s.Insecure
	tr.TLSClientConfig = cfg
	return http.Client{Transport: tr}, nil
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
