package roles

import (
	_ "embed"
)

// The shipped roles and networks files: Controller, Compute, Networker,
// ObjectStorage and BlockStorage, one node each, on TripleO's isolated
// networks.
var (
	//go:embed defaults/roles.yaml
	DefaultRolesFile []byte
	//go:embed defaults/networks.yaml
	DefaultNetworksFile []byte
)

// DefaultRoles returns the shipped roles.
func DefaultRoles() []Role {
	rs, err := Parse(DefaultRolesFile)
	if err != nil {
		panic("roles: the shipped roles file: " + err.Error())
	}
	return rs
}

// DefaultNetworks returns the shipped networks.
func DefaultNetworks() []Network {
	ns, err := ParseNetworks(DefaultNetworksFile)
	if err != nil {
		panic("roles: the shipped networks file: " + err.Error())
	}
	return ns
}
