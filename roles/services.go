package roles

import (
	"slices"
	"strings"
)

// Service is an overcloud process a role can run: a subcommand of the
// overcloud binary, shipped as a service image.
type Service struct {
	Name string
	// Networks are the isolated networks the service listens or talks
	// on; every role that runs it must be on them.
	Networks []string
	// Needs are services that must run somewhere in the deployment for
	// this one to work (on any role).
	Needs []string
	// TripleO are the names TripleO's roles_data.yaml gave the same job,
	// accepted in a roles file so that an operator's file carries over.
	TripleO []string
}

// The isolated networks, by their TripleO names (reference/tripleo.md).
const (
	NetExternal    = "External"
	NetInternalAPI = "InternalApi"
	NetStorage     = "Storage"
	NetStorageMgmt = "StorageMgmt"
	NetTenant      = "Tenant"
)

// Services are the services a role may name (design-overcloud.md).
var Services = []Service{
	{Name: "etcd", Networks: []string{NetInternalAPI}, TripleO: []string{"Etcd"}},
	{Name: "identity", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"etcd"}, TripleO: []string{"Keystone"}},
	{Name: "compute-api", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"etcd", "identity", "compute-scheduler", "image-api", "network-api"}, TripleO: []string{"NovaApi"}},
	{Name: "compute-scheduler", Networks: []string{NetInternalAPI}, Needs: []string{"etcd"}, TripleO: []string{"NovaScheduler", "NovaConductor"}},
	{Name: "image-api", Networks: []string{NetInternalAPI, NetExternal, NetStorage}, Needs: []string{"etcd", "identity"}, TripleO: []string{"GlanceApi"}},
	{Name: "volume-api", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"etcd", "identity", "volume-scheduler"}, TripleO: []string{"CinderApi"}},
	{Name: "volume-scheduler", Networks: []string{NetInternalAPI}, Needs: []string{"etcd", "volume-agent"}, TripleO: []string{"CinderScheduler"}},
	{Name: "object-proxy", Networks: []string{NetInternalAPI, NetExternal, NetStorage}, Needs: []string{"etcd", "identity", "object-server"}, TripleO: []string{"SwiftProxy"}},
	{Name: "network-api", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"etcd", "identity"}, TripleO: []string{"NeutronApi", "NeutronServer"}},
	{Name: "telemetry-api", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"etcd", "identity"}, TripleO: []string{"GnocchiApi", "CeilometerAgentCentral"}},
	{Name: "alarm-evaluator", Networks: []string{NetInternalAPI}, Needs: []string{"etcd", "telemetry-api"}, TripleO: []string{"AodhEvaluator", "AodhApi"}},
	{Name: "metadata-api", Networks: []string{NetInternalAPI}, Needs: []string{"etcd", "compute-api"}, TripleO: []string{"NovaMetadata"}},
	{Name: "dashboard", Networks: []string{NetInternalAPI, NetExternal}, Needs: []string{"identity"}, TripleO: []string{"Horizon"}},
	{Name: "network-l3-agent", Networks: []string{NetInternalAPI, NetTenant, NetExternal}, Needs: []string{"network-api"}, TripleO: []string{"NeutronL3Agent", "NeutronDhcpAgent", "NeutronMetadataAgent"}},
	{Name: "network-l2-agent", Networks: []string{NetInternalAPI, NetTenant}, Needs: []string{"network-api"}, TripleO: []string{"NeutronOvsAgent", "NeutronLinuxbridgeAgent"}},
	{Name: "compute-agent", Networks: []string{NetInternalAPI, NetTenant, NetStorage}, Needs: []string{"compute-api", "network-l2-agent"}, TripleO: []string{"NovaCompute", "NovaLibvirt"}},
	{Name: "telemetry-sampler", Networks: []string{NetInternalAPI}, Needs: []string{"telemetry-api"}, TripleO: []string{"CeilometerAgentCompute"}},
	{Name: "object-server", Networks: []string{NetStorage, NetStorageMgmt}, Needs: []string{"object-proxy"}, TripleO: []string{"SwiftStorage"}},
	{Name: "object-replicator", Networks: []string{NetStorageMgmt}, Needs: []string{"object-server"}, TripleO: []string{"SwiftRingBuilder"}},
	{Name: "object-auditor", Networks: []string{NetStorage}, Needs: []string{"object-server"}},
	{Name: "volume-agent", Networks: []string{NetInternalAPI, NetStorage, NetStorageMgmt}, Needs: []string{"volume-api"}, TripleO: []string{"CinderVolume"}},
}

// tripleoPrefix starts a TripleO service name in roles_data.yaml.
const tripleoPrefix = "OS::TripleO::Services::"

// LookupService finds a service by its name or a TripleO name for it
// ("OS::TripleO::Services::Keystone" or "Keystone").
func LookupService(name string) (Service, bool) {
	short := strings.TrimPrefix(name, tripleoPrefix)
	for _, s := range Services {
		if s.Name == name || slices.Contains(s.TripleO, short) {
			return s, true
		}
	}
	return Service{}, false
}

// serviceNames lists the known services, for error messages.
func serviceNames() string {
	names := make([]string, len(Services))
	for i, s := range Services {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
