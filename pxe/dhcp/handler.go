package dhcp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Ports of DHCP and of PXE's boot server discovery.
const (
	ServerPort = 67
	ClientPort = 68
	PXEPort    = 4011
)

// Packet is a request as it arrived.
type Packet struct {
	Msg *dhcpv4.DHCPv4
	// Port is the local port it arrived on: ServerPort or PXEPort.
	Port uint16
	// Peer is its source address.
	Peer netip.AddrPort
}

// Reply is the answer to a Packet: Msg to send to To, or nothing (Msg nil)
// for the reason in Ignored.
type Reply struct {
	Msg     *dhcpv4.DHCPv4
	To      netip.AddrPort
	Ignored Reason
}

// Reason says why a packet got no answer. The set is small and fixed, so
// that it can label a metric.
type Reason string

// Reasons for ignoring a packet.
const (
	Answered       Reason = ""
	NotRequest     Reason = "not_a_request"
	NotEthernet    Reason = "not_ethernet"
	UnknownMAC     Reason = "unknown_mac"
	PXEDisabled    Reason = "pxe_disabled"
	NoNetwork      Reason = "no_network"
	OtherServer    Reason = "other_server"
	NotPXE         Reason = "not_pxe"
	NoBootFile     Reason = "no_boot_file"
	PoolExhausted  Reason = "pool_exhausted"
	AddressInUse   Reason = "address_in_use"
	Malformed      Reason = "malformed"
	NoReply        Reason = "no_reply" // RELEASE and DECLINE, which take none
	UnexpectedType Reason = "unexpected_type"
)

// Handler answers DHCP packets. It holds no sockets: a reply is a pure
// function of the packet, the Directory, the lease store, the clock and
// the offers recently made, so it can be driven by tests, the fuzzer, or
// a simulation of thousands of nodes.
type Handler struct {
	cfg    Config
	nets   []Network
	offers *offers
}

// NewHandler returns a Handler for cfg (whose socket fields it ignores).
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, offers: newOffers()}
	if cfg.Mode == Managed {
		h.nets = append([]Network{cfg.local()}, cfg.Relayed...)
	}
	return h, nil
}

// Handle answers one packet. An error means the packet could not be
// handled (the lease store or the Directory failed), not that it was bad:
// bad packets are ignored with a Reason.
func (h *Handler) Handle(ctx context.Context, p Packet) (Reply, error) {
	req := p.Msg
	if req == nil || req.OpCode != dhcpv4.OpcodeBootRequest {
		return ignore(NotRequest)
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return ignore(NotEthernet)
	}
	if h.cfg.Mode == Proxy {
		return h.proxy(ctx, p)
	}
	if p.Port != ServerPort {
		return ignore(UnexpectedType)
	}
	mt := req.MessageType()
	nw, ok := h.network(req)
	if !ok {
		return ignore(NoNetwork)
	}
	switch mt {
	case dhcpv4.MessageTypeRelease:
		return h.release(ctx, req)
	case dhcpv4.MessageTypeDecline:
		return h.decline(ctx, req)
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
	default:
		return ignore(UnexpectedType)
	}
	host, why, err := h.host(ctx, req.ClientHWAddr)
	if err != nil || why != Answered {
		return Reply{Ignored: why}, err
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(ctx, p, nw, host)
	case dhcpv4.MessageTypeRequest:
		return h.request(ctx, p, nw, host)
	default:
		return h.inform(p, nw, host)
	}
}

func ignore(r Reason) (Reply, error) { return Reply{Ignored: r}, nil }

// network is the segment a request comes from: the one its relay agent
// sits on, or the interface's own.
func (h *Handler) network(req *dhcpv4.DHCPv4) (Network, bool) {
	gi, ok := addr4(req.GatewayIPAddr)
	if !ok || gi.IsUnspecified() {
		return h.nets[0], true
	}
	for _, n := range h.nets {
		if n.Subnet.Contains(gi) {
			return n, true
		}
	}
	return Network{}, false
}

// host asks the Directory about mac; Reason says why it gets no answer.
func (h *Handler) host(ctx context.Context, mac net.HardwareAddr) (Host, Reason, error) {
	host, err := h.cfg.Directory.Host(ctx, mac)
	switch {
	case errors.Is(err, ErrUnknownHost):
		if !h.cfg.Discovery {
			return Host{}, UnknownMAC, nil
		}
		return Host{PXE: true}, Answered, nil
	case err != nil:
		return Host{}, Answered, fmt.Errorf("directory: %w", err)
	case !host.PXE:
		return Host{}, PXEDisabled, nil
	}
	return host, Answered, nil
}

func (h *Handler) discover(ctx context.Context, p Packet, nw Network, host Host) (Reply, error) {
	req := p.Msg
	ip, err := h.choose(ctx, req, nw, host)
	if errors.Is(err, ErrPoolExhausted) {
		h.cfg.Logger.Warn("dhcp pool exhausted", "pool", nw.Pool.String(), "mac", req.ClientHWAddr.String())
		return ignore(PoolExhausted)
	}
	if err != nil {
		return Reply{}, err
	}
	resp := h.reply(req, dhcpv4.MessageTypeOffer, ip, nw)
	h.bootOptions(resp, req, host)
	return h.deliver(p, resp), nil
}

// choose picks the address to offer: the reservation, else the client's
// previous address, else the one it asks for, else a free one.
func (h *Handler) choose(ctx context.Context, req *dhcpv4.DHCPv4, nw Network, host Host) (netip.Addr, error) {
	mac := req.ClientHWAddr
	now := h.cfg.Now()
	hold := now.Add(h.cfg.OfferTime)
	if a := host.Address; a.Is4() && nw.Subnet.Contains(a) {
		h.offers.claim(a, mac, now, hold)
		return a, nil
	}
	prev, err := h.cfg.Leases.Lookup(ctx, mac)
	if err != nil && !errors.Is(err, ErrNoLease) {
		return netip.Addr{}, err
	}
	if err == nil && nw.Pool.Contains(prev.IP) && h.offers.claim(prev.IP, mac, now, hold) {
		return prev.IP, nil
	}
	from := nw.Pool.At(macHash(mac))
	if want, ok := addr4(req.RequestedIPAddress()); ok && nw.Pool.Contains(want) {
		from = want
	}
	skip := func(a netip.Addr) bool { return h.offers.heldByOther(a, mac, now) }
	for range 8 {
		a, err := h.cfg.Leases.Free(ctx, nw.Pool, from, now, skip)
		if err != nil {
			return netip.Addr{}, err
		}
		if h.offers.claim(a, mac, now, hold) {
			return a, nil
		}
		from = nw.Pool.At(nw.Pool.Offset(a) + 1)
	}
	return netip.Addr{}, fmt.Errorf("%v: %w (every free address is being offered)", nw.Pool, ErrPoolExhausted)
}

func macHash(mac net.HardwareAddr) uint32 {
	f := fnv.New32a()
	f.Write(mac)
	return f.Sum32()
}

func (h *Handler) request(ctx context.Context, p Packet, nw Network, host Host) (Reply, error) {
	req := p.Msg
	mac := req.ClientHWAddr
	want, hasWant := addr4(req.RequestedIPAddress())
	ci, _ := addr4(req.ClientIPAddr)
	var ip netip.Addr
	switch sid, hasSID := addr4(req.ServerIdentifier()); {
	case hasSID && sid != h.cfg.ServerIP:
		// SELECTING another server's offer.
		h.offers.drop(mac)
		return ignore(OtherServer)
	case hasSID && !hasWant:
		return h.nak(p, "no requested address"), nil
	case hasWant:
		ip = want // SELECTING our offer, or INIT-REBOOT
	case ci.IsValid() && !ci.IsUnspecified():
		ip = ci // RENEWING or REBINDING
	default:
		return ignore(Malformed)
	}
	if !nw.Subnet.Contains(ip) {
		return h.nak(p, fmt.Sprintf("%v is not on subnet %v", ip, nw.Subnet)), nil
	}
	if r := host.Address; r.Is4() && nw.Subnet.Contains(r) {
		if ip != r {
			return h.nak(p, fmt.Sprintf("%v is reserved %v", mac, r)), nil
		}
	} else if !nw.Pool.Contains(ip) {
		return h.nak(p, fmt.Sprintf("%v is not in the pool", ip)), nil
	}
	now := h.cfg.Now()
	if h.offers.heldByOther(ip, mac, now) {
		return h.nak(p, fmt.Sprintf("%v is offered to another client", ip)), nil
	}
	l := Lease{
		MAC: mac, IP: ip, State: Bound, Expiry: now.Add(h.cfg.LeaseTime),
		NodeUUID: host.NodeUUID, Hostname: req.HostName(), Updated: now,
	}
	err := h.cfg.Leases.Put(ctx, l, now)
	if errors.Is(err, ErrAddrInUse) {
		return h.nak(p, fmt.Sprintf("%v is in use", ip)), nil
	}
	if err != nil {
		return Reply{}, err
	}
	h.offers.drop(mac)
	resp := h.reply(req, dhcpv4.MessageTypeAck, ip, nw)
	h.bootOptions(resp, req, host)
	return h.deliver(p, resp), nil
}

func (h *Handler) release(ctx context.Context, req *dhcpv4.DHCPv4) (Reply, error) {
	if sid, ok := addr4(req.ServerIdentifier()); ok && sid != h.cfg.ServerIP {
		return ignore(OtherServer)
	}
	ip, ok := addr4(req.ClientIPAddr)
	if !ok || ip.IsUnspecified() {
		return ignore(Malformed)
	}
	now := h.cfg.Now()
	err := h.cfg.Leases.Put(ctx, Lease{MAC: req.ClientHWAddr, IP: ip, State: Released, Expiry: now, Updated: now}, now)
	if err != nil && !errors.Is(err, ErrNoLease) {
		return Reply{}, err
	}
	return ignore(NoReply)
}

func (h *Handler) decline(ctx context.Context, req *dhcpv4.DHCPv4) (Reply, error) {
	if sid, ok := addr4(req.ServerIdentifier()); ok && sid != h.cfg.ServerIP {
		return ignore(OtherServer)
	}
	ip, ok := addr4(req.RequestedIPAddress())
	if !ok || ip.IsUnspecified() {
		return ignore(Malformed)
	}
	now := h.cfg.Now()
	h.offers.drop(req.ClientHWAddr)
	l := Lease{MAC: req.ClientHWAddr, IP: ip, State: Declined, Expiry: now.Add(h.cfg.QuarantineTime), Updated: now}
	err := h.cfg.Leases.Put(ctx, l, now)
	if err != nil && !errors.Is(err, ErrAddrInUse) {
		return Reply{}, err
	}
	if err == nil {
		h.cfg.Logger.Warn("dhcp address declined", "ip", ip.String(), "mac", req.ClientHWAddr.String(), "until", l.Expiry)
	}
	return ignore(NoReply)
}

func (h *Handler) inform(p Packet, nw Network, host Host) (Reply, error) {
	req := p.Msg
	ci, ok := addr4(req.ClientIPAddr)
	if !ok || ci.IsUnspecified() || !nw.Subnet.Contains(ci) {
		return ignore(Malformed)
	}
	resp := h.reply(req, dhcpv4.MessageTypeAck, netip.Addr{}, nw)
	// RFC 2131 4.3.5: no lease time and no yiaddr in the answer to INFORM.
	resp.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
	resp.Options.Del(dhcpv4.OptionRenewTimeValue)
	resp.Options.Del(dhcpv4.OptionRebindingTimeValue)
	resp.ClientIPAddr = req.ClientIPAddr
	h.bootOptions(resp, req, host)
	return h.deliver(p, resp), nil
}

// reply builds an OFFER or ACK of ip with the network's options.
func (h *Handler) reply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, ip netip.Addr, nw Network) *dhcpv4.DHCPv4 {
	resp := newReply(req, mt, h.cfg.ServerIP)
	if ip.IsValid() {
		resp.YourIPAddr = ip.AsSlice()
	}
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(nw.Subnet.Bits(), 32)))
	resp.UpdateOption(dhcpv4.OptBroadcastAddress(broadcast(nw.Subnet).AsSlice()))
	if nw.Router.IsValid() {
		resp.UpdateOption(dhcpv4.OptRouter(nw.Router.AsSlice()))
	}
	if len(h.cfg.DNS) > 0 {
		dns := make([]net.IP, len(h.cfg.DNS))
		for i, a := range h.cfg.DNS {
			dns[i] = a.AsSlice()
		}
		resp.UpdateOption(dhcpv4.OptDNS(dns...))
	}
	lt := h.cfg.LeaseTime
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(lt))
	resp.UpdateOption(dhcpv4.OptRenewTimeValue(lt / 2))
	resp.UpdateOption(dhcpv4.OptRebindingTimeValue(lt * 7 / 8))
	return resp
}

// newReply starts an answer to req: same transaction, chaddr, flags,
// giaddr, relay agent information and client identifier.
func newReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, server netip.Addr) *dhcpv4.DHCPv4 {
	resp := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       dhcpv4.Options{},
	}
	resp.UpdateOption(dhcpv4.OptMessageType(mt))
	resp.UpdateOption(dhcpv4.OptServerIdentifier(server.AsSlice()))
	for _, c := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(c); v != nil {
			resp.Options[c.Code()] = v
		}
	}
	return resp
}

// nak refuses a REQUEST.
func (h *Handler) nak(p Packet, msg string) Reply {
	resp := newReply(p.Msg, dhcpv4.MessageTypeNak, h.cfg.ServerIP)
	resp.UpdateOption(dhcpv4.OptMessage(msg))
	if !resp.GatewayIPAddr.IsUnspecified() {
		resp.SetBroadcast() // RFC 2131 4.3.2: the relay broadcasts it
	}
	h.cfg.Logger.Debug("dhcp nak", "mac", p.Msg.ClientHWAddr.String(), "reason", msg)
	return h.deliver(p, resp)
}

// deliver addresses resp per RFC 2131 4.1: to the relay agent if there is
// one, to the client's address when it has one, else broadcast (the server
// does not inject ARP entries, so it cannot unicast to an unconfigured
// client). Answers on the PXE port go back where the request came from.
func (h *Handler) deliver(p Packet, resp *dhcpv4.DHCPv4) Reply {
	r := Reply{Msg: resp}
	gi, _ := addr4(p.Msg.GatewayIPAddr)
	ci, _ := addr4(p.Msg.ClientIPAddr)
	switch {
	case p.Port == PXEPort && p.Peer.IsValid():
		r.To = p.Peer
	case gi.IsValid() && !gi.IsUnspecified():
		r.To = netip.AddrPortFrom(gi, ServerPort)
	case resp.MessageType() == dhcpv4.MessageTypeNak:
		r.To = netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort)
	case ci.IsValid() && !ci.IsUnspecified():
		r.To = netip.AddrPortFrom(ci, ClientPort)
	default:
		r.To = netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort)
	}
	if r.To.Addr().IsUnspecified() {
		r.To = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), r.To.Port())
	}
	return r
}

// addr4 converts a packet's address field; ok is false when it is absent
// or not IPv4.
func addr4(ip net.IP) (netip.Addr, bool) {
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.Is4()
}
