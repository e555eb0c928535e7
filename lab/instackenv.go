package lab

import (
	"path/filepath"
)

// instackNode is one entry of TripleO's instackenv.json.
type instackNode struct {
	Name            string        `json:"name"`
	PMType          string        `json:"pm_type"`
	PMAddr          string        `json:"pm_addr"`
	PMPort          int           `json:"pm_port,omitempty"`
	PMUser          string        `json:"pm_user"`
	PMPassword      string        `json:"pm_password"`
	PMSystemID      string        `json:"pm_system_id,omitempty"`
	RedfishVerifyCA string        `json:"redfish_verify_ca,omitempty"`
	Ports           []instackPort `json:"ports"`
	CPU             int           `json:"cpu"`
	Memory          int           `json:"memory"`
	Disk            int64         `json:"disk"`
	Arch            string        `json:"arch"`
	Capabilities    string        `json:"capabilities"`
}

type instackPort struct {
	Address         string `json:"address"`
	PhysicalNetwork string `json:"physical_network"`
}

// instackenv returns the lab's nodes as TripleO's instackenv.json: each
// node with the BMC that lab.yaml chose for it (IPMI at its address on
// port 623, or Redfish at https://its address with its system id, the BMC
// certificate's CA in caPath), and its ctlplane NICs as ports.
func instackenv(cfg Config, caPath string) map[string]any {
	var nodes []instackNode
	for i, n := range cfg.Nodes {
		e := instackNode{
			Name:         n.Name,
			PMType:       n.BMC,
			PMUser:       cfg.BMC.Username,
			PMPassword:   cfg.BMC.Password,
			CPU:          n.CPUs,
			Memory:       n.MemoryMB,
			Arch:         "x86_64",
			Capabilities: "boot_mode:" + n.Firmware,
		}
		addr := NodeBMCAddr(i).String()
		switch n.BMC {
		case BMCIPMI:
			e.PMAddr, e.PMPort = addr, ipmiPort
		case BMCRedfish:
			e.PMAddr, e.PMSystemID, e.RedfishVerifyCA = "https://"+addr, redfishSystemID(n.Name), caPath
		}
		if len(n.Disks) > 0 {
			e.Disk = int64(n.Disks[0].Size >> 30)
		}
		for j, net := range n.NICs {
			if net == NetCtlplane {
				e.Ports = append(e.Ports, instackPort{Address: MAC(cfg.Name, i, j).String(), PhysicalNetwork: NetCtlplane})
			}
		}
		nodes = append(nodes, e)
	}
	return map[string]any{"nodes": nodes}
}

// writeInstackenv writes dir/instackenv.json.
func writeInstackenv(dir string, cfg Config) error {
	ca, err := filepath.Abs(filepath.Join(dir, bmcCAFile))
	if err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, instackenvFile), instackenv(cfg, ca), 0o600)
}

// InstackenvPath is where a lab's instackenv.json is.
func InstackenvPath(dir string) string { return filepath.Join(dir, instackenvFile) }
