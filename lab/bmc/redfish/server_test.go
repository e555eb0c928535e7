package redfish

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// client returns an HTTPS client that trusts pool.
func client(pool *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPassword)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestLifecycle(t *testing.T) {
	ts := newTestServer(t, 2, nil)
	if _, err := ts.Expose("node-0", "127.0.0.1:0"); err == nil {
		t.Errorf("Expose before Start accepted")
	}
	if err := ts.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- ts.Serve(ctx) }()
	// Serve has started once Addr is set; poll for it.
	deadline := time.Now().Add(30 * time.Second)
	for !ts.Addr().IsValid() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if err := ts.Start(ctx); err == nil {
		t.Errorf("second Start accepted")
	}
	c := client(ts.CertPool())
	if code, err := get(t, c, "https://"+ts.Addr().String()+"/redfish/v1/Systems"); err != nil || code != 200 {
		t.Fatalf("GET: %d, %v", code, err)
	}

	ap, err := ts.Expose("node-1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Expose("node-9", "127.0.0.1:0"); !errors.Is(err, ErrNoSystem) {
		t.Errorf("Expose of an unknown system: %v", err)
	}
	exposed := "https://" + ap.String() + "/redfish/v1/Systems/node-1"
	if code, err := get(t, c, exposed); err != nil || code != 200 {
		t.Fatalf("exposed GET: %d, %v", code, err)
	}
	// Removing the system closes its own listener; the main one stays.
	if err := ts.RemoveSystem("node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, exposed); err == nil {
		t.Errorf("the removed system's listener still answers")
	}
	if code, err := get(t, c, "https://"+ts.Addr().String()+"/redfish/v1/Systems/node-1"); err != nil || code != 404 {
		t.Errorf("removed system: %d, %v", code, err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := get(t, c, "https://"+ts.Addr().String()+"/redfish/v1/Systems"); err == nil {
		t.Errorf("the server still answers after its context ended")
	}
	if err := ts.Close(); err != nil {
		t.Errorf("Close after the end: %v", err)
	}
	if _, err := ts.Expose("node-0", "127.0.0.1:0"); err == nil {
		t.Errorf("Expose after the end accepted")
	}
}

func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ts := newTestServer(t, 1, func(c *Config) { c.Addr = ln.Addr().String() })
	if err := ts.Start(t.Context()); err == nil {
		ts.Close()
		t.Fatal("Start on a busy port succeeded")
	}
}

// TestGivenCertificate: a certificate and key from the configuration are
// served, and CertificatePEM returns them.
func TestGivenCertificate(t *testing.T) {
	cert, certPEM, err := selfSigned([]string{"127.0.0.1", "bmc.lab.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	ts := newTestServer(t, 1, func(c *Config) { c.CertPEM, c.KeyPEM = certPEM, keyPEM })
	ts.start(t)
	if string(ts.CertificatePEM()) != string(certPEM) {
		t.Errorf("CertificatePEM is not the given certificate")
	}
	if code, err := get(t, client(ts.CertPool()), "https://"+ts.Addr().String()+"/redfish/v1/Systems"); err != nil || code != 200 {
		t.Errorf("GET: %d, %v", code, err)
	}
	// A client that trusts another certificate refuses the connection.
	other := newTestServer(t, 0, nil)
	if _, err := get(t, client(other.CertPool()), "https://"+ts.Addr().String()+"/redfish/v1/Systems"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted certificate was accepted: %v", err)
	}
}

func TestGeneratedCertificate(t *testing.T) {
	ts := newTestServer(t, 0, func(c *Config) {
		c.Addr = "127.0.0.1:0"
		c.CertHosts = []string{"10.20.30.40", "bmc.lab.example"}
	})
	block, _ := pem.Decode(ts.CertificatePEM())
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cert.PublicKey)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "10.20.30.40", "bmc.lab.example"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if cert.PublicKeyAlgorithm != x509.ECDSA || cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("key %v, signature %v", cert.PublicKeyAlgorithm, cert.SignatureAlgorithm)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ts.CertPool(), DNSName: "localhost"}); err != nil {
		t.Errorf("verify: %v", err)
	}
}
