package dhcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Errors of the lease store; match them with errors.Is.
var (
	// ErrNoLease: the MAC holds no lease (for that address).
	ErrNoLease = errors.New("no lease")
	// ErrAddrInUse: the address is bound to another client, or quarantined.
	ErrAddrInUse = errors.New("address in use")
	// ErrPoolExhausted: no address of the pool is free.
	ErrPoolExhausted = errors.New("address pool exhausted")
)

// State is the state of a lease record.
type State string

const (
	// Bound: the client holds the address until Expiry.
	Bound State = "bound"
	// Released: the client gave the address back (DHCPRELEASE). The record
	// stays so that the client gets the same address again if it is still
	// free; anyone may take the address.
	Released State = "released"
	// Declined: a client found the address in use on the network
	// (DHCPDECLINE); nobody gets it until Expiry, the end of the quarantine.
	Declined State = "declined"
)

// LeaseSchema is the schema version of lease records.
const LeaseSchema = 1

// Lease is the binding of an address to a client's MAC address.
type Lease struct {
	MAC    net.HardwareAddr
	IP     netip.Addr
	State  State
	Expiry time.Time
	// NodeUUID is the node the MAC belongs to, when it is enrolled.
	NodeUUID string
	// Hostname is what the client sent in option 12, if anything.
	Hostname string
	// Updated is when the record was written.
	Updated time.Time
}

// Active reports whether the lease still keeps the address from others at now.
func (l Lease) Active(now time.Time) bool {
	return l.State != Released && now.Before(l.Expiry)
}

type leaseJSON struct {
	Schema   int        `json:"schema_version"`
	MAC      string     `json:"mac"`
	IP       netip.Addr `json:"ip"`
	State    State      `json:"state"`
	Expiry   time.Time  `json:"expires_at"`
	NodeUUID string     `json:"node_uuid,omitempty"`
	Hostname string     `json:"hostname,omitempty"`
	Updated  time.Time  `json:"updated_at"`
}

// MarshalJSON writes the record as it is stored in etcd.
func (l Lease) MarshalJSON() ([]byte, error) {
	return json.Marshal(leaseJSON{
		Schema: LeaseSchema, MAC: l.MAC.String(), IP: l.IP, State: l.State, Expiry: l.Expiry.UTC(),
		NodeUUID: l.NodeUUID, Hostname: l.Hostname, Updated: l.Updated.UTC(),
	})
}

// UnmarshalJSON reads a stored record.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var j leaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Schema != LeaseSchema {
		return fmt.Errorf("lease schema version %d, want %d", j.Schema, LeaseSchema)
	}
	mac, err := net.ParseMAC(j.MAC)
	if err != nil {
		return fmt.Errorf("lease mac: %w", err)
	}
	*l = Lease{MAC: mac, IP: j.IP, State: j.State, Expiry: j.Expiry, NodeUUID: j.NodeUUID, Hostname: j.Hostname, Updated: j.Updated}
	return nil
}

// Leases is where the server keeps its leases. Implementations must make
// Put atomic, so that servers sharing the store never bind one address to
// two clients: the etcd one (package etcdleases) is a compare-and-swap
// over the records Plan names; MemoryLeases holds a mutex.
type Leases interface {
	// Lookup returns the record of mac, in any state, or ErrNoLease.
	Lookup(ctx context.Context, mac net.HardwareAddr) (Lease, error)
	// Free returns an address of r that has no record or whose record no
	// longer keeps it (Lease.Active is false), starting at from and
	// wrapping around, preferring addresses that never had a record, and
	// passing over those for which skip is true. It returns
	// ErrPoolExhausted when there is none.
	Free(ctx context.Context, r Range, from netip.Addr, now time.Time, skip func(netip.Addr) bool) (netip.Addr, error)
	// Put writes l as Plan says, atomically, or returns Plan's error.
	Put(ctx context.Context, l Lease, now time.Time) error
}

// Change is what storing a lease writes, as decided by Plan.
type Change struct {
	// PutAddr is the new record of the lease's address.
	PutAddr *Lease
	// PutMAC is the new record of the lease's MAC, if it changes.
	PutMAC *Lease
	// DelMAC deletes the record of the lease's MAC.
	DelMAC bool
	// FreeAddr, when valid, is the MAC's previous address: its record is
	// deleted (if it still belongs to the MAC).
	FreeAddr netip.Addr
	// DropMAC, when set, is the previous holder of the address: its MAC
	// record is deleted (if it still points at the address).
	DropMAC net.HardwareAddr
}

// Plan decides what storing l means, given the records currently at l's
// address (atAddr) and at l's MAC (atMAC), either of which may be nil.
// Every lease store applies it, so that they all agree on the rules:
//
//   - Bound: the address must be free, reclaimable, or already the MAC's
//     (and not quarantined); the MAC's previous address is freed, and the
//     address's previous holder loses its record.
//   - Released: the MAC must hold that address; both records say released.
//   - Declined: the address is quarantined until l.Expiry (unless another
//     client actively holds it: ErrAddrInUse), and the MAC's record of it
//     is removed.
func Plan(now time.Time, l Lease, atAddr, atMAC *Lease) (Change, error) {
	if !l.IP.Is4() || len(l.MAC) == 0 {
		return Change{}, fmt.Errorf("lease needs a MAC and an IPv4 address, got %q and %v", l.MAC, l.IP)
	}
	other := atAddr != nil && !sameMAC(atAddr.MAC, l.MAC)
	var c Change
	switch l.State {
	case Bound:
		if atAddr != nil && atAddr.Active(now) && (other || atAddr.State == Declined) {
			return Change{}, fmt.Errorf("%v: %w", l.IP, ErrAddrInUse)
		}
		c.PutAddr, c.PutMAC = &l, &l
		if atMAC != nil && atMAC.IP != l.IP {
			c.FreeAddr = atMAC.IP
		}
	case Released:
		if atMAC == nil || atMAC.IP != l.IP || atMAC.State != Bound {
			return Change{}, fmt.Errorf("%v on %v: %w", l.MAC, l.IP, ErrNoLease)
		}
		c.PutAddr, c.PutMAC = &l, &l
	case Declined:
		if other && atAddr.Active(now) {
			return Change{}, fmt.Errorf("%v: %w", l.IP, ErrAddrInUse)
		}
		c.PutAddr = &l
		c.DelMAC = atMAC != nil && atMAC.IP == l.IP
	default:
		return Change{}, fmt.Errorf("lease state %q is not one of bound, released, declined", l.State)
	}
	if other && atAddr.State != Declined {
		c.DropMAC = atAddr.MAC
	}
	return c, nil
}

func sameMAC(a, b net.HardwareAddr) bool { return string(a) == string(b) }
