package bmc

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/bmc-toolbox/bmclib/v2/providers/ipmitool"

	"github.com/stratacloud/strata/inventory"
)

// ipmiClient drives a BMC over IPMI with bmclib's ipmitool provider (it
// runs the ipmitool binary, -I lanplus, with the password in its
// environment, never on its command line).
type ipmiClient struct {
	a        Access
	ipmitool string
}

func newIPMI(a Access, path string) *ipmiClient { return &ipmiClient{a: a, ipmitool: path} }

func (c *ipmiClient) open(ctx context.Context) (*bmclib.Client, error) {
	opts := []bmclib.Option{bmclib.WithIpmitoolPort(strconv.Itoa(c.a.Port))}
	if c.a.CipherSuite != "" {
		opts = append(opts, bmclib.WithIpmitoolCipherSuite(c.a.CipherSuite))
	}
	if c.ipmitool != "" {
		opts = append(opts, bmclib.WithIpmitoolPath(c.ipmitool))
	}
	// bmclib joins host and port with a colon and splits them again; an
	// IPv6 address must be in brackets to survive that, or ipmitool is run
	// without -H.
	host := c.a.Host
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + host + "]"
	}
	cl := bmclib.NewClient(host, c.a.Username, c.a.Password, opts...)
	cl.Registry.Drivers = cl.Registry.Using(ipmitool.ProviderProtocol)
	if len(cl.Registry.Drivers) == 0 {
		return nil, fmt.Errorf("ipmitool provider not available (is ipmitool installed?)")
	}
	if err := cl.Open(ctx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.a.Key(), err)
	}
	return cl, nil
}

func (c *ipmiClient) PowerState(ctx context.Context) (string, error) {
	cl, err := c.open(ctx)
	if err != nil {
		return "", err
	}
	defer cl.Close(ctx)
	out, err := cl.GetPowerState(ctx)
	if err != nil {
		return "", fmt.Errorf("ipmi %s: power status: %w", c.a.Key(), err)
	}
	return parseIPMIPower(out)
}

// parseIPMIPower reads ipmitool's "Chassis Power is on|off".
func parseIPMIPower(out string) (string, error) {
	f := strings.Fields(strings.ToLower(out))
	if len(f) > 0 {
		switch f[len(f)-1] {
		case "on":
			return inventory.PowerOn, nil
		case "off":
			return inventory.PowerOff, nil
		}
	}
	return "", fmt.Errorf("unexpected power status %q", strings.TrimSpace(out))
}

// ipmiActions maps Ironic's power targets to bmclib's power states.
var ipmiActions = map[string]string{
	inventory.PowerOn:       "on",
	inventory.PowerOff:      "off",
	inventory.Rebooting:     "cycle",
	inventory.SoftPowerOff:  "soft",
	inventory.SoftRebooting: "cycle",
}

func (c *ipmiClient) SetPower(ctx context.Context, target string) error {
	action, ok := ipmiActions[target]
	if !ok {
		return fmt.Errorf("%w: power target %q", ErrRefused, target)
	}
	cl, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer cl.Close(ctx)
	if target == inventory.Rebooting || target == inventory.SoftRebooting {
		// A power cycle of a machine that is off does nothing on many
		// BMCs; Ironic's reboot always ends powered on.
		if out, err := cl.GetPowerState(ctx); err == nil {
			if s, _ := parseIPMIPower(out); s == inventory.PowerOff {
				action = "on"
			}
		}
	}
	if _, err := cl.SetPowerState(ctx, action); err != nil {
		return fmt.Errorf("ipmi %s: power %s: %w", c.a.Key(), action, err)
	}
	return nil
}

func (c *ipmiClient) SetBootDevice(ctx context.Context, device string, persistent, uefi bool) error {
	cl, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer cl.Close(ctx)
	if _, err := cl.SetBootDevice(ctx, device, persistent, uefi); err != nil {
		return fmt.Errorf("ipmi %s: boot device %s: %w", c.a.Key(), device, err)
	}
	return nil
}
