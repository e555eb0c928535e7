// Package bmc reaches nodes' BMCs for the conductor: IPMI through bmclib's
// ipmitool provider, and Redfish through gofish (the library under
// bmclib's redfish provider), addressing the one system that
// redfish_system_id names as Ironic does. Operations on one BMC are
// serialized; each has a deadline; transient failures are retried with
// backoff; the BMC password never appears in an error.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacloud/strata/inventory"
)

// Access is how to reach one node's BMC, read from its driver_info.
type Access struct {
	// Driver is inventory.DriverIPMI or inventory.DriverRedfish.
	Driver string
	// Host is the BMC's address (ipmi).
	Host string
	// Port is the IPMI UDP port (default 623).
	Port int
	// Endpoint is the Redfish service's base URL, scheme and host only.
	Endpoint string
	// SystemID is the Redfish system's path, e.g. /redfish/v1/Systems/1;
	// empty means the service's only system.
	SystemID string
	Username string
	Password string
	// VerifyCA is false to skip TLS verification, or a CA bundle path.
	VerifyCA string
	// CipherSuite is the IPMI cipher suite (empty: ipmitool's choice).
	CipherSuite string
}

// Key identifies the BMC, for serializing operations on it.
func (a Access) Key() string {
	if a.Driver == inventory.DriverRedfish {
		return a.Endpoint + a.SystemID
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// AccessFromNode reads a node's driver_info. The error names the missing
// or malformed field.
func AccessFromNode(n *inventory.Node) (Access, error) {
	di := n.DriverInfo
	a := Access{Driver: n.Driver}
	switch n.Driver {
	case inventory.DriverIPMI:
		a.Host = str(di["ipmi_address"])
		if a.Host == "" {
			return a, inventory.Invalid("driver_info", "ipmi_address is missing")
		}
		a.Port = 623
		if p, ok := di["ipmi_port"]; ok && p != nil && p != "" {
			port, err := strconv.Atoi(str(p))
			if err != nil || port <= 0 || port > 65535 {
				return a, inventory.Invalid("driver_info", "ipmi_port %v is not a port number", p)
			}
			a.Port = port
		}
		a.Username = str(di["ipmi_username"])
		a.Password = str(di["ipmi_password"])
		a.CipherSuite = str(di["ipmi_cipher_suite"])
	case inventory.DriverRedfish:
		raw := str(di["redfish_address"])
		if raw == "" {
			return a, inventory.Invalid("driver_info", "redfish_address is missing")
		}
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return a, inventory.Invalid("driver_info", "redfish_address %q is not an http(s) URL", raw)
		}
		a.Endpoint = u.Scheme + "://" + u.Host
		a.SystemID = str(di["redfish_system_id"])
		if a.SystemID == "" && u.Path != "" && u.Path != "/" {
			a.SystemID = u.Path
		}
		if a.SystemID != "" && !strings.HasPrefix(a.SystemID, "/redfish/v1/Systems/") {
			return a, inventory.Invalid("driver_info", "redfish_system_id %q is not a path under /redfish/v1/Systems/", a.SystemID)
		}
		a.Username = str(di["redfish_username"])
		a.Password = str(di["redfish_password"])
		switch v := di["redfish_verify_ca"].(type) {
		case nil:
			a.VerifyCA = "true"
		case bool:
			a.VerifyCA = strconv.FormatBool(v)
		default:
			a.VerifyCA = str(v)
		}
	default:
		return a, inventory.Invalid("driver", "%q has no BMC", n.Driver)
	}
	return a, nil
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// Client speaks to one BMC. Every call is bounded by its context.
type Client interface {
	PowerState(ctx context.Context) (string, error)
	// SetPower drives the machine to one of inventory.PowerTargets.
	SetPower(ctx context.Context, target string) error
	SetBootDevice(ctx context.Context, device string, persistent, uefi bool) error
}

// Errors of the BMC layer.
var (
	ErrUnreachable = errors.New("BMC unreachable")
	ErrRefused     = errors.New("BMC refused the request")
)

// Pool hands out clients, serializes operations per BMC, and retries.
type Pool struct {
	// Timeout bounds one attempt. Default 30s.
	Timeout time.Duration
	// Attempts is how many times an operation is tried. Default 3.
	Attempts int
	// Backoff is the wait before the second attempt, doubled after each
	// failure. Default 1s.
	Backoff time.Duration
	// IPMITool is the ipmitool binary. Default: ipmitool on PATH.
	IPMITool string
	// dial builds a client; tests replace it.
	dial func(Access, *Pool) (Client, error)

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (p *Pool) defaults() {
	if p.Timeout <= 0 {
		p.Timeout = 30 * time.Second
	}
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.Backoff <= 0 {
		p.Backoff = time.Second
	}
	if p.dial == nil {
		p.dial = dial
	}
}

func (p *Pool) lock(key string) func() {
	p.mu.Lock()
	if p.locks == nil {
		p.locks = map[string]*sync.Mutex{}
	}
	l, ok := p.locks[key]
	if !ok {
		l = &sync.Mutex{}
		p.locks[key] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Do runs op against the node's BMC, serialized with every other
// operation on that BMC, retrying failures with backoff until the attempts
// or ctx run out. Errors never contain the password.
func (p *Pool) Do(ctx context.Context, a Access, op func(ctx context.Context, c Client) error) error {
	p.defaults()
	unlock := p.lock(a.Key())
	defer unlock()
	var err error
	wait := p.Backoff
	for attempt := 1; attempt <= p.Attempts; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.Timeout)
		var c Client
		c, err = p.dial(a, p)
		if err == nil {
			err = op(actx, c)
		}
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrRefused) {
			break
		}
		if attempt < p.Attempts {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			wait *= 2
		}
	}
	if err != nil {
		return redact(err, a.Password)
	}
	return nil
}

// redacted wraps an error whose text had the password removed.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), password, inventory.MaskedSecret), err: errors.Unwrap(err)}
}

func dial(a Access, p *Pool) (Client, error) {
	switch a.Driver {
	case inventory.DriverIPMI:
		return newIPMI(a, p.IPMITool), nil
	case inventory.DriverRedfish:
		return newRedfish(a)
	default:
		return nil, fmt.Errorf("driver %q has no BMC", a.Driver)
	}
}
