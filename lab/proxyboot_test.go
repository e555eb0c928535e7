package lab_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stratacloud/strata/lab/vm"
	"github.com/stratacloud/strata/pxe/dhcp"
)

// TestProxyBoot boots a qemu VM from the network where another DHCP
// server owns the addresses: dnsmasq hands out addresses only (no boot
// file, no TFTP), and Strata's DHCP server runs in proxy mode beside it,
// giving the firmware its iPXE loader and iPXE its script. The VM must
// come up into the deploy ramdisk's agent, with its address from dnsmasq.
// Once with SeaBIOS and qemu's iPXE ROM (iPXE reads our ProxyDHCP offer
// for its script), once with OVMF's own PXE stack (which takes the loader
// from our offer and asks for it on port 4011 before TFTP).
func TestProxyBoot(t *testing.T) {
	env := newBootEnv(t)
	for _, fw := range []string{vm.FirmwareBIOS, vm.FirmwareUEFI} {
		t.Run(fw, func(t *testing.T) {
			theirs := env.serveDnsmasq(t, false)
			ours := env.serveStrata(t, fw, dhcp.Proxy)
			times, err := env.boot(t, fw, "proxy-"+fw)
			dnsmasqLog, strataLog := theirs(), ours()
			if err != nil {
				t.Fatalf("%v\ndnsmasq:\n%s\nstrata:\n%s", err, tail(dnsmasqLog, 3000), tail(strataLog, 3000))
			}
			t.Logf("%s: the agent's banner after %.1f s", fw, times.marker().Seconds())

			// The VM's address is dnsmasq's, from its pool.
			ack := regexp.MustCompile(`DHCPACK\(` + benchBridge + `\) (\S+) ` + benchMAC.String()).FindStringSubmatch(dnsmasqLog)
			if ack == nil {
				t.Fatalf("dnsmasq acknowledged no address for %v:\n%s", benchMAC, tail(dnsmasqLog, 3000))
			}
			if !strings.HasPrefix(ack[1], "192.168.87.") {
				t.Errorf("dnsmasq gave %s", ack[1])
			}
			// dnsmasq was asked for nothing but addresses: no boot
			// file went out from it, and it serves no TFTP.
			if strings.Contains(dnsmasqLog, "sent") && strings.Contains(dnsmasqLog, "TFTP") {
				t.Errorf("dnsmasq served TFTP:\n%s", tail(dnsmasqLog, 3000))
			}
			// The boot came from Strata: iPXE fetched the node's script
			// from its HTTP server, and OVMF the loader from its TFTP.
			if !strings.Contains(strataLog, "httpboot: script") {
				t.Errorf("strata served no iPXE script:\n%s", tail(strataLog, 3000))
			}
			if fw == vm.FirmwareUEFI && !regexp.MustCompile(`tftp: sent.*snponly\.efi`).MatchString(strataLog) {
				t.Errorf("strata's TFTP sent no snponly.efi:\n%s", tail(strataLog, 3000))
			}
		})
	}
}
