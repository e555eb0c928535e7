package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/google/uuid"

	"github.com/stratacloud/strata/lab/bmc"
	"github.com/stratacloud/strata/lab/bmc/ipmi"
	"github.com/stratacloud/strata/lab/bmc/redfish"
	"github.com/stratacloud/strata/lab/netlab"
)

// Ports of the BMCs.
const (
	ipmiPort    = 623
	redfishPort = 443
)

// nodeUUID is a node's deterministic SMBIOS UUID.
func nodeUUID(lab, node string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("strata-lab:"+lab+"/"+node)).String()
}

// redfishSystemID is the Redfish system id of a node.
func redfishSystemID(node string) string { return "/redfish/v1/Systems/" + node }

// serveBMCs starts every node's BMC in the BMC namespace: one Redfish
// service for all systems at 192.168.25.2:443, and at each node's own
// address its system alone over Redfish (443) and IPMI (UDP 623). The
// sockets are opened from a thread in the BMC namespace; they stay there.
// The servers run in the daemon's group until ctx ends.
func (d *daemon) serveBMCs(ctx context.Context) error {
	systems := map[string]bmc.Machine{}
	var hosts []string
	for i, n := range d.cfg.Nodes {
		systems[n.Name] = d.machines[i]
		hosts = append(hosts, NodeBMCAddr(i).String())
	}
	rf, err := redfish.New(redfish.Config{
		Addr:      net.JoinHostPort(redfishServiceAddr.String(), strconv.Itoa(redfishPort)),
		Username:  d.cfg.BMC.Username,
		Password:  d.cfg.BMC.Password,
		Systems:   systems,
		CertHosts: hosts,
		Logger:    d.log.With("bmc", "redfish"),
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, bmcCAFile), rf.CertificatePEM(), 0o644); err != nil {
		return err
	}
	var ipmis []*ipmi.Server
	err = netlab.Do(bmcNS(d.prefix), func() error {
		if err := rf.Start(ctx); err != nil {
			return err
		}
		for i, n := range d.cfg.Nodes {
			addr := NodeBMCAddr(i).String()
			if _, err := rf.Expose(n.Name, net.JoinHostPort(addr, strconv.Itoa(redfishPort))); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			srv, err := ipmi.New(ipmi.Config{
				Addr:     net.JoinHostPort(addr, strconv.Itoa(ipmiPort)),
				Username: d.cfg.BMC.Username,
				Password: d.cfg.BMC.Password,
				Machine:  d.machines[i],
				Logger:   d.log.With("bmc", "ipmi", "node", n.Name),
			})
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			ipmis = append(ipmis, srv)
		}
		return nil
	})
	if err != nil {
		rf.Close()
		for _, s := range ipmis {
			s.Close()
		}
		return err
	}
	d.group.Go(func() error {
		<-ctx.Done()
		return rf.Close()
	})
	for _, s := range ipmis {
		d.group.Go(func() error { return s.Serve(ctx) })
	}
	return nil
}
