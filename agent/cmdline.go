package agent

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Banner is the first line the agent writes on the console; the lab's
// tests wait for it.
const Banner = "strata-agent: started"

// Params are what the kernel command line tells the agent.
type Params struct {
	// BootMAC is the MAC of the NIC the machine booted from (BOOTIF=,
	// in PXELINUX's "01-aa-bb-cc-dd-ee-ff" form, or plain).
	BootMAC net.HardwareAddr
	// API is the undercloud's API URL (strata.api=).
	API *url.URL
	// Node is the node's UUID when the undercloud knew it (strata.node=).
	Node string
	// Discovery is set when an unknown machine boots to be enrolled
	// (strata.discovery=1).
	Discovery bool
}

// ParseCmdline reads the agent's parameters from a kernel command line
// (the contents of /proc/cmdline). Unknown words are the kernel's and are
// ignored; a parameter of the agent's that is malformed is an error.
func ParseCmdline(cmdline string) (Params, error) {
	var p Params
	for _, word := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(word, "=")
		switch k {
		case "BOOTIF":
			mac, err := parseBootIF(v)
			if err != nil {
				return Params{}, fmt.Errorf("BOOTIF=%s: %w", v, err)
			}
			p.BootMAC = mac
		case "strata.api":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return Params{}, fmt.Errorf("strata.api=%s: not an http(s) URL", v)
			}
			p.API = u
		case "strata.node":
			p.Node = v
		case "strata.discovery":
			p.Discovery = v == "1" || v == "true" || v == "yes"
		}
	}
	if p.BootMAC == nil {
		return Params{}, fmt.Errorf("kernel command line: no BOOTIF= naming the boot NIC")
	}
	if p.API == nil {
		return Params{}, fmt.Errorf("kernel command line: no strata.api= naming the undercloud")
	}
	return p, nil
}

// parseBootIF accepts "01-aa-bb-cc-dd-ee-ff" (hardware type 1, Ethernet,
// as PXELINUX and Ironic write it) and a plain MAC.
func parseBootIF(v string) (net.HardwareAddr, error) {
	s := strings.ReplaceAll(v, "-", ":")
	if len(s) == len("01:aa:bb:cc:dd:ee:ff") {
		htype, rest, _ := strings.Cut(s, ":")
		if htype != "01" {
			return nil, fmt.Errorf("hardware type %s is not Ethernet (01)", htype)
		}
		s = rest
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("not a MAC address")
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("%s is a multicast address, not a NIC's MAC", mac)
	}
	return mac, nil
}
