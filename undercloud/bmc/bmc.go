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
	"os"
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
	// VerifyCA is "true" to verify the BMC's certificate against the
	// system's roots, "false" to skip TLS verification, or the path of a
	// CA bundle to verify it against.
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
		// An IPv6 address may come in brackets, as in a URL.
		a.Host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(str(di["ipmi_address"])), "["), "]")
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
		if cs, ok := di["ipmi_cipher_suite"]; ok && cs != nil && cs != "" {
			n, err := strconv.Atoi(str(cs))
			if err != nil || n < 0 || n > 17 {
				return a, inventory.Invalid("driver_info", "ipmi_cipher_suite %v is not a cipher suite number (0 to 17)", cs)
			}
			a.CipherSuite = strconv.Itoa(n)
		}
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
		field := "redfish_system_id"
		a.SystemID = str(di["redfish_system_id"])
		if a.SystemID == "" && u.Path != "" && u.Path != "/" {
			field, a.SystemID = "redfish_address", u.Path
		}
		if a.SystemID != "" {
			// The system's @odata.id, which has no trailing slash.
			a.SystemID = strings.TrimRight(a.SystemID, "/")
			id, ok := strings.CutPrefix(a.SystemID, systemsPath)
			if !ok || id == "" || strings.Contains(id, "/") {
				return a, inventory.Invalid("driver_info", "%s names %q, which is not a system's path (%sID)", field, a.SystemID, systemsPath)
			}
		}
		a.Username = str(di["redfish_username"])
		a.Password = str(di["redfish_password"])
		verify, err := verifyCA(di["redfish_verify_ca"])
		if err != nil {
			return a, err
		}
		a.VerifyCA = verify
	default:
		return a, inventory.Invalid("driver", "%q has no BMC", n.Driver)
	}
	return a, nil
}

// systemsPath is where a Redfish service's systems live.
const systemsPath = "/redfish/v1/Systems/"

// verifyCA reads redfish_verify_ca as Ironic does: a boolean (also as a
// string: true/false, yes/no, on/off, 1/0), or the path of a CA bundle,
// which must be a file. It returns "true", "false" or the path.
func verifyCA(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "true", nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	s := strings.TrimSpace(str(v))
	switch strings.ToLower(s) {
	case "", "true", "t", "yes", "y", "on", "1":
		return "true", nil
	case "false", "f", "no", "n", "off", "0":
		return "false", nil
	}
	if fi, err := os.Stat(s); err != nil || !fi.Mode().IsRegular() {
		return "", inventory.Invalid("driver_info", "redfish_verify_ca %q is neither a boolean nor the path of a CA bundle file", s)
	}
	return s, nil
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
// Its fields are read, never written, by Do: set them before first use.
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

	mu sync.Mutex
	// locks holds, per BMC, a token while an operation runs on it.
	locks map[string]chan struct{}
}

// settings are the Pool's fields with the defaults filled in. They are
// computed per call, so that concurrent calls on a zero Pool do not race
// to write its fields.
type settings struct {
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	dial     func(Access, *Pool) (Client, error)
}

func (p *Pool) settings() settings {
	s := settings{timeout: p.Timeout, attempts: p.Attempts, backoff: p.Backoff, dial: p.dial}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	if s.attempts <= 0 {
		s.attempts = 3
	}
	if s.backoff <= 0 {
		s.backoff = time.Second
	}
	if s.dial == nil {
		s.dial = dial
	}
	return s
}

// lock waits, until ctx ends, for the BMC with key to be free, and takes
// it.
func (p *Pool) lock(ctx context.Context, key string) (unlock func(), err error) {
	p.mu.Lock()
	if p.locks == nil {
		p.locks = map[string]chan struct{}{}
	}
	l, ok := p.locks[key]
	if !ok {
		l = make(chan struct{}, 1)
		p.locks[key] = l
	}
	p.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for BMC %s: %w", key, ctx.Err())
	}
}

// Do runs op against the node's BMC, serialized with every other
// operation on that BMC, retrying failures with backoff until the attempts
// or ctx run out. An ErrRefused failure is not retried. Errors never
// contain the password.
func (p *Pool) Do(ctx context.Context, a Access, op func(ctx context.Context, c Client) error) error {
	s := p.settings()
	unlock, err := p.lock(ctx, a.Key())
	if err != nil {
		return err
	}
	defer unlock()
	wait := s.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		var c Client
		c, err = s.dial(a, p)
		if err == nil {
			err = op(actx, c)
		}
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrRefused) || attempt >= s.attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			// Report what the BMC did, not only that the caller gave up.
			err = fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, ctx.Err())
		}
		if ctx.Err() != nil {
			break
		}
		wait *= 2
	}
	if err != nil {
		return redact(err, a.Password)
	}
	return nil
}

// redacted is an error whose text had the password removed. It matches
// what the original matched (errors.Is, errors.As) but does not unwrap to
// it, so that the original's text is not at hand.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string        { return r.msg }
func (r *redacted) Is(target error) bool { return errors.Is(r.err, target) }
func (r *redacted) As(target any) bool   { return errors.As(r.err, target) }

func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), password, inventory.MaskedSecret), err: err}
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
