// Package dhcp is the undercloud's DHCPv4 server, on
// github.com/insomniacslk/dhcp's packet codec.
//
// A Server answers only on the one interface named in its Config
// (SO_BINDTODEVICE), in one of two modes:
//
//   - Managed: it owns the segment's addresses. A pool per segment (the
//     interface's own, and others behind DHCP relay agents, by giaddr), a
//     reservation for any MAC the Directory gives an address, and leases
//     kept in a Leases store (package etcdleases keeps them in etcd, so that
//     they survive a restart and servers sharing etcd never hand out one
//     address twice). DISCOVER, REQUEST (selecting, init-reboot, renewing,
//     rebinding), DECLINE, RELEASE and INFORM follow RFC 2131; a REQUEST for
//     an address on the wrong subnet, outside the pool, reserved for another
//     client or held by one gets a NAK. Before it serves, Run probes the
//     segment with a DISCOVER and refuses to start (a *ForeignServerError,
//     suggesting proxy mode) if another DHCP server answers.
//   - Proxy: proxyDHCP per the PXE specification, beside a DHCP server that
//     hands out the addresses: on port 67 it answers PXE clients' DISCOVERs,
//     on port 4011 their boot server REQUESTs, with boot options only.
//
// Boot options follow the client's architecture (option 93, else its vendor
// class, else the node's boot mode): BIOS gets Config.BIOSBootFile
// (undionly.kpxe) and x86-64 UEFI Config.UEFIBootFile (snponly.efi) over
// TFTP, UEFI HTTP boot (arch 16) the URL of Config.HTTPBootURL, and a client
// whose user class is "iPXE" the URL of its per-node script
// (Config.IPXEScriptURL), so that iPXE does not load itself again. MACs the
// Directory does not know are ignored unless Config.Discovery is on; ports
// with PXE disabled are always ignored.
//
// Packets are handled by a fixed number of workers fed by a bounded queue;
// what does not fit is dropped and counted, so a burst of clients costs at
// most Workers+QueueSize packets of memory. The handling itself is Handler,
// a function of the packet and the server's state with no sockets, which
// tests, the fuzzer and simulations drive directly.
//
// Metrics (namespace strata, subsystem dhcp, labelled by interface):
// requests_total and replies_total by message type, ignored_total by
// reason, errors_total by kind (read, parse, handle, send, queue_full),
// received_bytes_total, sent_bytes_total, and request_duration_seconds.
package dhcp
