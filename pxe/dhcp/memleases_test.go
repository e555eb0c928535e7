package dhcp_test

import (
	"testing"

	"github.com/stratacloud/strata/pxe/dhcp"
	"github.com/stratacloud/strata/pxe/dhcp/leasestest"
)

func TestMemoryLeases(t *testing.T) {
	leasestest.Run(t, func(*testing.T) dhcp.Leases { return dhcp.NewMemoryLeases() })
}
