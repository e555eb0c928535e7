package httpboot

import (
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/pxe/ipxe"
)

// ramdiskStates boot the deploy ramdisk: the agent runs, or is about to.
var ramdiskStates = map[string]bool{
	inventory.StateInspecting:   true,
	inventory.StateInspectWait:  true,
	inventory.StateCleaning:     true,
	inventory.StateCleanWait:    true,
	inventory.StateCleanHold:    true,
	inventory.StateDeploying:    true,
	inventory.StateWaitCallback: true,
	inventory.StateDeployHold:   true,
	inventory.StateServicing:    true,
	inventory.StateServiceWait:  true,
	inventory.StateServiceHold:  true,
}

// rescueStates boot the rescue ramdisk, or the deploy one.
var rescueStates = map[string]bool{
	inventory.StateRescuing:   true,
	inventory.StateRescueWait: true,
	inventory.StateRescue:     true,
}

// localStates boot the machine's own disk: it runs its instance.
var localStates = map[string]bool{
	inventory.StateActive:         true,
	inventory.StateAdopting:       true,
	inventory.StateUnrescuing:     true,
	inventory.StateDeployComplete: true,
}

// script is what the node with this MAC boots. platform is iPXE's
// ${platform} ("efi" or "pcbios") when the machine said, else empty.
func (h *handler) script(n *inventory.Node, mac, platform string) (ipxe.Script, error) {
	title := fmt.Sprintf("Strata: node %s", n.UUID)
	if n.Name != "" {
		title += " " + n.Name
	}
	title += fmt.Sprintf(" (%s) is %s", mac, n.ProvisionState)
	state := n.ProvisionState
	switch {
	case ramdiskStates[state] || rescueStates[state]:
		kernel, initrd := "deploy_kernel", "deploy_ramdisk"
		if rescueStates[state] && n.DriverInfo["rescue_kernel"] != nil {
			kernel, initrd = "rescue_kernel", "rescue_ramdisk"
		}
		return h.ramdisk(n, mac, title+": booting the "+strings.TrimSuffix(kernel, "_kernel")+" ramdisk", kernel, initrd)
	case localStates[state]:
		return ipxe.Script{
			Action:   ipxe.LocalDisk,
			Title:    title + ": booting from the local disk",
			BootMode: bootMode(n, platform),
		}, nil
	default:
		return ipxe.Script{Action: ipxe.Exit, Title: title + ": nothing to boot"}, nil
	}
}

// unknownScript is what a machine no node has a port for boots.
func (h *handler) unknownScript(mac string) ipxe.Script {
	if !h.cfg.Discovery {
		return ipxe.Script{Action: ipxe.Exit, Title: fmt.Sprintf("Strata: unknown machine %s: not booting it", mac)}
	}
	s := ipxe.Script{
		Action:   ipxe.Ramdisk,
		Title:    fmt.Sprintf("Strata: unknown machine %s: booting the discovery ramdisk", mac),
		Attempts: h.cfg.Attempts,
	}
	// Checked in New.
	s.Kernel, _ = artifactURL(h.base, h.cfg.DeployKernel)
	s.Initrd, _ = artifactURL(h.base, h.cfg.DeployRamdisk)
	s.Args = h.args(mac, []string{"strata.discovery=1"}, nil)
	return s
}

// ramdisk boots the kernel and ramdisk named in the node's driver_info
// under the given keys, or the configured deploy ones.
func (h *handler) ramdisk(n *inventory.Node, mac, title, kernelKey, initrdKey string) (ipxe.Script, error) {
	s := ipxe.Script{Action: ipxe.Ramdisk, Title: title, Attempts: h.cfg.Attempts}
	var err error
	if s.Kernel, err = h.image(n, kernelKey, h.cfg.DeployKernel); err != nil {
		return s, err
	}
	if s.Initrd, err = h.image(n, initrdKey, h.cfg.DeployRamdisk); err != nil {
		return s, err
	}
	var extra []string
	switch v := n.DriverInfo["kernel_append_params"].(type) {
	case nil:
	case string:
		extra = strings.Fields(v)
	default:
		return s, fmt.Errorf("driver_info.kernel_append_params: is a %T, not a string", v)
	}
	s.Args = h.args(mac, []string{"strata.node=" + n.UUID}, extra)
	return s, nil
}

// image is the URL of the artifact the node's driver_info names under key,
// or of def.
func (h *handler) image(n *inventory.Node, key, def string) (string, error) {
	v := def
	if x, ok := n.DriverInfo[key]; ok && x != nil {
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("driver_info.%s: is a %T, not a string", key, x)
		}
		v = s
	}
	if v == "" {
		return "", fmt.Errorf("driver_info.%s: not set, and no default is configured", key)
	}
	u, err := artifactURL(h.base, v)
	if err != nil {
		return "", fmt.Errorf("driver_info.%s: %w", key, err)
	}
	return u, nil
}

// artifactURL turns an artifact reference into a URL: an http(s) URL
// stays as it is, a name becomes base/images/name.
func artifactURL(base, ref string) (string, error) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		if u, err := url.Parse(ref); err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not a URL", ref)
		}
		return ref, nil
	}
	if !fs.ValidPath(ref) || ref == "." {
		return "", fmt.Errorf("%q is neither an http(s) URL nor an artifact name", ref)
	}
	return base + "/images/" + (&url.URL{Path: ref}).EscapedPath(), nil
}

// args is the ramdisk's kernel command line.
func (h *handler) args(mac string, identity, extra []string) []string {
	a := []string{"BOOTIF=01-" + strings.ReplaceAll(mac, ":", "-")}
	if h.cfg.APIURL != "" {
		a = append(a, "strata.api="+h.cfg.APIURL)
	}
	a = append(a, identity...)
	a = append(a, "console=tty0", "console="+h.cfg.Console)
	a = append(a, h.cfg.KernelArgs...)
	return append(a, extra...)
}

// bootMode is how the machine boots: what its firmware says, else what its
// node says (boot_mode, then the boot_mode capability), else BIOS.
func bootMode(n *inventory.Node, platform string) ipxe.BootMode {
	switch platform {
	case "efi":
		return ipxe.UEFI
	case "pcbios":
		return ipxe.BIOS
	}
	switch n.BootMode {
	case "uefi":
		return ipxe.UEFI
	case "bios":
		return ipxe.BIOS
	}
	if caps, ok := n.Properties["capabilities"].(string); ok {
		for c := range strings.SplitSeq(caps, ",") {
			k, v, _ := strings.Cut(c, ":")
			if strings.TrimSpace(k) == "boot_mode" && strings.TrimSpace(v) == "uefi" {
				return ipxe.UEFI
			}
		}
	}
	return ipxe.BIOS
}
