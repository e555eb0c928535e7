package dhcp

import (
	"context"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Vendor classes (option 60) of network-boot clients.
const (
	pxeClass  = "PXEClient"
	httpClass = "HTTPClient"
)

// boot is what a network-boot client is told to load.
type boot struct {
	file string
	// tftp: file is a name on the TFTP server; otherwise it is a URL.
	tftp bool
	// class, when set, goes back in option 60 (UEFI HTTP boot needs it).
	class string
}

// isPXE reports whether req comes from network-boot firmware or iPXE.
func isPXE(req *dhcpv4.DHCPv4) bool {
	vc := req.ClassIdentifier()
	return strings.HasPrefix(vc, pxeClass) || strings.HasPrefix(vc, httpClass) ||
		req.Options.Has(dhcpv4.OptionClientSystemArchitectureType) || isIPXE(req)
}

// isIPXE reports whether req comes from iPXE (user class "iPXE"), which is
// then given its script rather than itself again.
func isIPXE(req *dhcpv4.DHCPv4) bool {
	for _, uc := range req.UserClass() {
		if uc == "iPXE" {
			return true
		}
	}
	return false
}

// arch is the client's architecture: option 93, else the one named in its
// vendor class ("PXEClient:Arch:00007:…"), else the node's boot mode.
func arch(req *dhcpv4.DHCPv4, host Host) (iana.Arch, bool) {
	if a := req.ClientArch(); len(a) > 0 {
		return a[0], true
	}
	if f := strings.Split(req.ClassIdentifier(), ":"); len(f) >= 3 && f[1] == "Arch" {
		if n, err := strconv.ParseUint(f[2], 10, 16); err == nil {
			return iana.Arch(n), true
		}
	}
	switch host.BootMode {
	case "bios":
		return iana.INTEL_X86PC, true
	case "uefi":
		return iana.EFI_X86_64, true
	}
	return 0, false
}

// chooseBoot picks what the client loads, if it network-boots and there is
// something for its architecture.
func (h *Handler) chooseBoot(req *dhcpv4.DHCPv4, host Host) (boot, bool) {
	if !isPXE(req) {
		return boot{}, false
	}
	mac := req.ClientHWAddr
	if isIPXE(req) {
		if h.cfg.IPXEScriptURL == nil {
			return boot{}, false
		}
		return boot{file: h.cfg.IPXEScriptURL(mac)}, true
	}
	a, ok := arch(req, host)
	if !ok {
		return boot{}, false
	}
	switch a {
	case iana.INTEL_X86PC:
		return boot{file: h.cfg.BIOSBootFile, tftp: true}, true
	case iana.EFI_X86_64, iana.EFI_BC:
		return boot{file: h.cfg.UEFIBootFile, tftp: true}, true
	case iana.EFI_ARM64:
		return boot{file: h.cfg.ARM64BootFile, tftp: true}, h.cfg.ARM64BootFile != ""
	case iana.EFI_X86_64_HTTP:
		if h.cfg.HTTPBootURL == nil {
			return boot{}, false
		}
		return boot{file: h.cfg.HTTPBootURL(mac), class: httpClass}, true
	}
	return boot{}, false
}

// bootOptions adds the boot options for req to resp, and reports whether
// there were any.
func (h *Handler) bootOptions(resp, req *dhcpv4.DHCPv4, host Host) bool {
	b, ok := h.chooseBoot(req, host)
	if !ok || b.file == "" {
		return false
	}
	if len(b.file) < 128 { // the file field; option 67 carries any length
		resp.BootFileName = b.file
	}
	resp.UpdateOption(dhcpv4.OptBootFileName(b.file))
	if b.tftp {
		resp.ServerIPAddr = h.cfg.TFTPServer.AsSlice()
		resp.UpdateOption(dhcpv4.OptTFTPServerName(h.cfg.TFTPServer.String()))
	}
	if b.class != "" {
		resp.UpdateOption(dhcpv4.OptClassIdentifier(b.class))
	}
	if isIPXE(req) && h.cfg.Mode == Managed {
		// This answer is all there is: iPXE need not wait for a
		// proxyDHCP offer (about 3 s otherwise).
		resp.UpdateOption(dhcpv4.OptGeneric(optionIPXEEncap, ipxeNoProxyDHCP))
	}
	return true
}

// iPXE's encapsulated options (175): no-pxedhcp (176) = 1 tells it not
// to wait for proxyDHCP offers after this one.
var (
	optionIPXEEncap = dhcpv4.GenericOptionCode(175)
	ipxeNoProxyDHCP = []byte{176, 1, 1}
)

// pxeVendorOptions is option 43 for PXE clients of a proxyDHCP server:
// PXE_DISCOVERY_CONTROL (6) = 8, "boot the file named in this offer, no
// boot server discovery".
var pxeVendorOptions = []byte{6, 1, 8, 255}

// proxy answers as a proxyDHCP server: boot options only, no address.
func (h *Handler) proxy(ctx context.Context, p Packet) (Reply, error) {
	req := p.Msg
	var mt dhcpv4.MessageType
	switch t := req.MessageType(); {
	case p.Port == ServerPort && t == dhcpv4.MessageTypeDiscover:
		mt = dhcpv4.MessageTypeOffer
	case p.Port == PXEPort && (t == dhcpv4.MessageTypeRequest || t == dhcpv4.MessageTypeInform):
		mt = dhcpv4.MessageTypeAck
	default:
		return ignore(UnexpectedType)
	}
	if !isPXE(req) {
		return ignore(NotPXE)
	}
	host, why, err := h.host(ctx, req.ClientHWAddr)
	if err != nil || why != Answered {
		return Reply{Ignored: why}, err
	}
	resp := newReply(req, mt, h.cfg.ServerIP)
	if !h.bootOptions(resp, req, host) {
		return ignore(NoBootFile)
	}
	if !resp.Options.Has(dhcpv4.OptionClassIdentifier) {
		resp.UpdateOption(dhcpv4.OptClassIdentifier(pxeClass))
	}
	if resp.ServerIPAddr.IsUnspecified() {
		// iPXE takes a proxyDHCP answer as boot options only when it
		// names a next server as well as a file, even when the file is
		// a URL; without one it ignores the answer and asks again.
		resp.ServerIPAddr = h.cfg.TFTPServer.AsSlice()
	}
	resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, pxeVendorOptions))
	if guid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
	}
	if mt == dhcpv4.MessageTypeAck {
		resp.ClientIPAddr = req.ClientIPAddr
	}
	return h.deliver(p, resp), nil
}
