package undercloud

import (
	"net/netip"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/undercloud/conductor"
	"github.com/stratacloud/strata/undercloud/nodestore"
	"github.com/stratacloud/strata/undercloud/registry"
	"github.com/stratacloud/strata/undercloud/stack"
)

// newStacks is the overcloud deployment: nodes reach the API and the
// registry at the provisioning address when the undercloud listens on
// every address, at the address it listens on otherwise (loopback for
// tests and fake-hardware nodes, which reach nothing).
func newStacks(cfg Config, records *store.Store, nodes *nodestore.Store, cond *conductor.Conductor, reg *registry.Registry, apiAddr, regAddr string) *stack.Manager {
	var provAddr netip.Addr
	var ctlplane netip.Prefix
	if prov, err := cfg.Provisioning.parse(); err == nil && prov.Interface != "" {
		provAddr, ctlplane = prov.addr.Addr(), prov.addr.Masked()
	}
	nodeURL := func(listen string) string {
		if u := apiURLFor(listen, provAddr); u != "" {
			return u
		}
		return "http://" + listen
	}
	return stack.New(stack.Config{
		Records:     records,
		Nodes:       nodes,
		Provisioner: cond,
		Images:      reg,
		Registry:    strings.TrimPrefix(nodeURL(regAddr), "http://"),
		Undercloud:  nodeURL(apiAddr),
		Ctlplane:    ctlplane,
	})
}
