package dhcp

import "github.com/prometheus/client_golang/prometheus/testutil"

// Seams for the external tests (package dhcp_test), which run real peers
// against a Server with its leases in etcd (package etcdleases imports
// this one, so those tests cannot live inside it).

// SetTap makes s hand every packet that parses to f.
func SetTap(s *Server, f func([]byte)) { s.tap = f }

// MACHash is where a MAC starts looking in a pool.
var MACHash = macHash

// InNetns runs fn in the network namespace at path.
var InNetns = inNetns

// Addr4 converts a packet's address field.
var Addr4 = addr4

// Ignored is the server's strata_dhcp_ignored_total for reason.
func Ignored(s *Server, r Reason) float64 {
	return testutil.ToFloat64(s.m.m.ignored.WithLabelValues(s.cfg.Interface, string(r)))
}

// Replies is the server's strata_dhcp_replies_total for a message type.
func Replies(s *Server, mt string) float64 {
	return testutil.ToFloat64(s.m.m.replies.WithLabelValues(s.cfg.Interface, mt))
}

// Errors is the server's strata_dhcp_errors_total for kind.
func Errors(s *Server, kind string) float64 {
	return testutil.ToFloat64(s.m.m.errors.WithLabelValues(s.cfg.Interface, kind))
}
