package dhcp

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxOffers bounds the offers remembered at once, so that a flood of
// DISCOVERs from made-up MACs cannot grow memory without end.
const maxOffers = 1 << 16

// offers remembers the addresses offered recently, so that one address is
// not offered to two clients at once. Offers live in memory only: the
// lease store is written when the client requests the address, and that
// write is what guarantees uniqueness between servers.
type offers struct {
	mu     sync.Mutex
	byAddr map[netip.Addr]offer
	byMAC  map[string]netip.Addr
}

type offer struct {
	mac     string
	expires time.Time
}

func newOffers() *offers {
	return &offers{byAddr: map[netip.Addr]offer{}, byMAC: map[string]netip.Addr{}}
}

// heldByOther reports whether a is offered to a MAC other than mac.
func (o *offers) heldByOther(a netip.Addr, mac net.HardwareAddr, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	of, ok := o.byAddr[a]
	return ok && of.mac != string(mac) && now.Before(of.expires)
}

// claim records that a is offered to mac until expires, and fails if it
// is offered to another MAC.
func (o *offers) claim(a netip.Addr, mac net.HardwareAddr, now, expires time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if of, ok := o.byAddr[a]; ok && of.mac != string(mac) && now.Before(of.expires) {
		return false
	}
	if len(o.byAddr) >= maxOffers {
		o.pruneLocked(now)
		if len(o.byAddr) >= maxOffers {
			return true // offer it, unremembered: the lease store still arbitrates
		}
	}
	o.dropLocked(mac)
	o.byAddr[a] = offer{mac: string(mac), expires: expires}
	o.byMAC[string(mac)] = a
	return true
}

// drop forgets the offer made to mac.
func (o *offers) drop(mac net.HardwareAddr) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropLocked(mac)
}

func (o *offers) dropLocked(mac net.HardwareAddr) {
	if a, ok := o.byMAC[string(mac)]; ok {
		delete(o.byMAC, string(mac))
		if of, ok := o.byAddr[a]; ok && of.mac == string(mac) {
			delete(o.byAddr, a)
		}
	}
}

func (o *offers) pruneLocked(now time.Time) {
	for a, of := range o.byAddr {
		if !now.Before(of.expires) {
			delete(o.byAddr, a)
			if o.byMAC[of.mac] == a {
				delete(o.byMAC, of.mac)
			}
		}
	}
}
