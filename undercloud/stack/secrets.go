package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"

	"github.com/stratacloud/strata/roles"
)

// Secrets are an overcloud's generated secrets, kept in their own record
// (never shown by the API, never in the stack's record): the admin's
// password, the etcd root's and each service's etcd password, and the CA
// that signs every node's certificate.
type Secrets struct {
	AdminPassword    string            `json:"admin_password"`
	EtcdRootPassword string            `json:"etcd_root_password"`
	EtcdPasswords    map[string]string `json:"etcd_passwords"` // by service
	CACert           string            `json:"ca_cert"`        // PEM
	CAKey            string            `json:"ca_key"`         // PEM (PKCS #8)
}

func secretsKey(name string) string { return "stack-secrets/" + name }

// caValidity and certValidity bound the overcloud's CA and its nodes'
// certificates; a redeploy of a node gives it a new certificate.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 2 * 365 * 24 * time.Hour
)

// newPassword is 24 random bytes, URL-safe base64 (32 characters).
func newPassword() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ensure fills what s lacks for an overcloud named stack whose roles run
// services, and reports whether it changed anything. Existing secrets are
// kept: applying the same overcloud again changes none of them.
func (s *Secrets) ensure(stack string, services []string, now time.Time) (bool, error) {
	changed := false
	if s.AdminPassword == "" {
		s.AdminPassword, changed = newPassword(), true
	}
	if s.EtcdRootPassword == "" {
		s.EtcdRootPassword, changed = newPassword(), true
	}
	if s.EtcdPasswords == nil {
		s.EtcdPasswords = map[string]string{}
	}
	for _, svc := range services {
		if svc == "etcd" {
			continue
		}
		if s.EtcdPasswords[svc] == "" {
			s.EtcdPasswords[svc], changed = newPassword(), true
		}
	}
	if s.CACert == "" || s.CAKey == "" {
		cert, key, err := newCA(stack, now)
		if err != nil {
			return false, err
		}
		s.CACert, s.CAKey, changed = cert, key, true
	}
	return changed, nil
}

func newCA(stack string, now time.Time) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Strata overcloud " + stack + " CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	return encode("CERTIFICATE", der), encodeKey(key), nil
}

// NodeCertificate issues a node's certificate, for both the server and
// the client side of TLS (etcd's peers are both), naming its hostname and
// its addresses.
func (s *Secrets) NodeCertificate(hostname string, addrs []netip.Addr, now time.Time) (certPEM, keyPEM string, err error) {
	caCert, caKey, err := s.ca()
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hostname},
		DNSNames:     []string{hostname},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	return encode("CERTIFICATE", der), encodeKey(key), nil
}

func (s *Secrets) ca() (*x509.Certificate, any, error) {
	cb, _ := pem.Decode([]byte(s.CACert))
	kb, _ := pem.Decode([]byte(s.CAKey))
	if cb == nil || kb == nil {
		return nil, nil, errors.New("the overcloud's CA is missing from its secrets")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the overcloud's CA: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the overcloud's CA key: %w", err)
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func encode(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

func encodeKey(key *ecdsa.PrivateKey) string {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return encode("PRIVATE KEY", der)
}

// nodeAddrs are a node's addresses on the overcloud's networks.
func nodeAddrs(as map[string]roles.Address) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.Address); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
