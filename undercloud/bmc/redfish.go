package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	rf "github.com/stmcginnis/gofish/redfish"

	"github.com/stratacloud/strata/inventory"
)

// redfishClient drives one system of a Redfish service with gofish.
type redfishClient struct {
	a    Access
	http *http.Client
}

func newRedfish(a Access) (*redfishClient, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch a.VerifyCA {
	case "", "true", "True", "1":
	case "false", "False", "0":
		tc.InsecureSkipVerify = true
	default:
		pem, err := os.ReadFile(a.VerifyCA)
		if err != nil {
			return nil, fmt.Errorf("redfish_verify_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redfish_verify_ca: no certificate in %s", a.VerifyCA)
		}
		tc.RootCAs = pool
	}
	return &redfishClient{a: a, http: &http.Client{
		Transport: &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 10 * time.Second, MaxIdleConns: 2},
	}}, nil
}

// system logs in (a session, logged out again by the returned func) and
// finds the node's system.
func (c *redfishClient) system(ctx context.Context) (*rf.ComputerSystem, func(), error) {
	api, err := gofish.ConnectContext(ctx, gofish.ClientConfig{
		Endpoint:   c.a.Endpoint,
		Username:   c.a.Username,
		Password:   c.a.Password,
		HTTPClient: c.http,
	})
	if err != nil {
		if refused(err) {
			// Wrong credentials: trying again would only count towards
			// the BMC locking the account.
			return nil, nil, fmt.Errorf("%w: redfish %s: log in: %v", ErrRefused, c.a.Endpoint, err)
		}
		return nil, nil, fmt.Errorf("%w: redfish %s: %v", ErrUnreachable, c.a.Endpoint, err)
	}
	done := func() { api.Logout() }
	systems, err := api.Service.Systems()
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("redfish %s: list systems: %w", c.a.Endpoint, refusal(err))
	}
	for _, s := range systems {
		if c.a.SystemID == "" && len(systems) == 1 || s.ODataID == c.a.SystemID {
			return s, done, nil
		}
	}
	done()
	if c.a.SystemID == "" {
		return nil, nil, fmt.Errorf("%w: redfish %s has %d systems: set redfish_system_id", ErrRefused, c.a.Endpoint, len(systems))
	}
	return nil, nil, fmt.Errorf("%w: redfish %s has no system %s", ErrRefused, c.a.Endpoint, c.a.SystemID)
}

func (c *redfishClient) PowerState(ctx context.Context) (string, error) {
	s, done, err := c.system(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	switch s.PowerState {
	case rf.OnPowerState, rf.PoweringOffPowerState:
		return inventory.PowerOn, nil
	case rf.OffPowerState, rf.PoweringOnPowerState:
		return inventory.PowerOff, nil
	default:
		return "", fmt.Errorf("redfish %s: unexpected power state %q", c.a.Key(), s.PowerState)
	}
}

// redfishResets maps Ironic's power targets to Redfish reset types.
var redfishResets = map[string]rf.ResetType{
	inventory.PowerOn:       rf.OnResetType,
	inventory.PowerOff:      rf.ForceOffResetType,
	inventory.Rebooting:     rf.ForceRestartResetType,
	inventory.SoftPowerOff:  rf.GracefulShutdownResetType,
	inventory.SoftRebooting: rf.GracefulRestartResetType,
}

func (c *redfishClient) SetPower(ctx context.Context, target string) error {
	rt, ok := redfishResets[target]
	if !ok {
		return fmt.Errorf("%w: power target %q", ErrRefused, target)
	}
	s, done, err := c.system(ctx)
	if err != nil {
		return err
	}
	defer done()
	if (target == inventory.Rebooting || target == inventory.SoftRebooting) && s.PowerState == rf.OffPowerState {
		rt = rf.OnResetType
	}
	if target == inventory.PowerOn && s.PowerState == rf.OnPowerState {
		return nil
	}
	if (target == inventory.PowerOff || target == inventory.SoftPowerOff) && s.PowerState == rf.OffPowerState {
		return nil
	}
	if err := s.Reset(rt); err != nil {
		return fmt.Errorf("redfish %s: reset %s: %w", c.a.Key(), rt, refusal(err))
	}
	return nil
}

// redfishTargets maps Ironic's boot devices to Redfish override targets.
var redfishTargets = map[string]rf.BootSourceOverrideTarget{
	"pxe":   rf.PxeBootSourceOverrideTarget,
	"disk":  rf.HddBootSourceOverrideTarget,
	"cdrom": rf.CdBootSourceOverrideTarget,
	"bios":  rf.BiosSetupBootSourceOverrideTarget,
	"safe":  rf.HddBootSourceOverrideTarget,
}

func (c *redfishClient) SetBootDevice(ctx context.Context, device string, persistent, uefi bool) error {
	target, ok := redfishTargets[device]
	if !ok {
		return fmt.Errorf("%w: boot device %q", ErrRefused, device)
	}
	s, done, err := c.system(ctx)
	if err != nil {
		return err
	}
	defer done()
	b := rf.Boot{BootSourceOverrideTarget: target, BootSourceOverrideEnabled: rf.OnceBootSourceOverrideEnabled}
	if persistent {
		b.BootSourceOverrideEnabled = rf.ContinuousBootSourceOverrideEnabled
	}
	b.BootSourceOverrideMode = rf.LegacyBootSourceOverrideMode
	if uefi {
		b.BootSourceOverrideMode = rf.UEFIBootSourceOverrideMode
	}
	if err := s.SetBoot(b); err != nil {
		return fmt.Errorf("redfish %s: set boot %s (%s): %w", c.a.Key(), device, strconv.FormatBool(persistent), refusal(err))
	}
	return nil
}

// refused reports whether err is the service turning the request down
// (an HTTP 4xx), which asking again will not change. A timeout, a rate
// limit, a conflict and a stale ETag may pass on another attempt, which
// reads the system afresh.
func refused(err error) bool {
	var e *common.Error
	if !errors.As(err, &e) {
		return false
	}
	switch code := e.HTTPReturnedStatusCode; code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusPreconditionFailed, http.StatusTooManyRequests:
		return false
	default:
		return code >= 400 && code < 500
	}
}

// refusal marks err as ErrRefused if the service turned the request down.
func refusal(err error) error {
	if refused(err) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}
