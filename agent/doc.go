// Package agent is strata-agent, the program the deploy ramdisk runs as
// its /init (PID 1). It prepares the minimal system a kernel leaves an
// initramfs (proc, sys, dev, the drivers in the ramdisk), brings up the
// NIC the machine network-booted from with DHCP, and then works for the
// undercloud: it looks its node up, heartbeats, and carries out the
// inspection, cleaning and deploy steps the undercloud asks for.
//
// Everything it needs to know comes from the kernel command line the
// undercloud's iPXE script wrote (see Params).
package agent
