package agent

import (
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	p, err := ParseCmdline("BOOT_IMAGE=x initrd=ramdisk BOOTIF=01-52-54-00-aa-bb-0c strata.api=http://192.168.24.1:6385 strata.node=9d4a console=ttyS0,115200\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.BootMAC.String() != "52:54:00:aa:bb:0c" || p.API.String() != "http://192.168.24.1:6385" || p.Node != "9d4a" || p.Discovery {
		t.Errorf("got %+v", p)
	}
	p, err = ParseCmdline("BOOTIF=52:54:00:aa:bb:0c strata.api=https://uc strata.discovery=1")
	if err != nil || p.BootMAC.String() != "52:54:00:aa:bb:0c" || !p.Discovery {
		t.Errorf("plain MAC: %+v, %v", p, err)
	}
}

func TestParseCmdlineRefuses(t *testing.T) {
	for cmdline, want := range map[string]string{
		"strata.api=http://uc":                             "no BOOTIF",
		"BOOTIF=01-52-54-00-aa-bb-0c":                      "no strata.api",
		"BOOTIF=06-52-54-00-aa-bb-0c strata.api=http://uc": "not Ethernet",
		"BOOTIF=01-52-54-00-aa-bb strata.api=http://uc":    "multicast",
		"BOOTIF=01-52-54-00-aa strata.api=http://uc":       "not a MAC",
		"BOOTIF=52:54:00:aa:bb:0c strata.api=ftp://uc":     "strata.api=ftp://uc: not an http(s) URL",
		"BOOTIF=52:54:00:aa:bb:0c strata.api=http://":      "not an http(s) URL",
	} {
		if _, err := ParseCmdline(cmdline); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", cmdline, err, want)
		}
	}
}
