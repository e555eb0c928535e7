package netlab_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/lab/netlab"
)

func namespace(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netlab's tests need root (network namespaces)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	ns := "nltest-" + hex.EncodeToString(b)
	if err := netlab.CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netlab.DeleteNamespace(ns); err != nil {
			t.Error(err)
		}
		if netlab.NamespaceExists(ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	})
	return ns
}

// TestWiring connects two namespaces through a bridge in a third, as the
// lab does, and carries a TCP connection and a process across it.
func TestWiring(t *testing.T) {
	fab, a, b := namespace(t), namespace(t), namespace(t)
	if err := netlab.CreateNamespace(a); err == nil {
		t.Error("creating an existing namespace succeeded")
	}
	if err := netlab.AddBridge(fab, "br-test"); err != nil {
		t.Fatal(err)
	}
	for i, ns := range []string{a, b} {
		side := "v" + string(rune('a'+i))
		if err := netlab.AddVeth(fab, side, "br-test", ns, "eth0"); err != nil {
			t.Fatal(err)
		}
		if err := netlab.AddAddress(ns, "eth0", netip.MustParsePrefix("10.99.0."+string(rune('1'+i))+"/24")); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlab.AddTap(fab, "tap0", "br-test"); err != nil {
		t.Fatal(err)
	}
	links, err := netlab.Links(fab)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range links {
		got = append(got, l.Name+":"+l.Type+":"+l.Master)
	}
	for _, want := range []string{"br-test:bridge:", "va:veth:br-test", "vb:veth:br-test", "tap0:tuntap:br-test"} {
		if !slices.Contains(got, want) {
			t.Errorf("links %v lack %s", got, want)
		}
	}
	host, err := netlab.Links("")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range host {
		if l.Name == "tap0" || l.Name == "br-test" || l.Name == "va" {
			t.Errorf("%s leaked into the host's namespace", l.Name)
		}
	}

	// A listener opened in a, dialled from b.
	ln, err := netlab.Listen(a, "tcp", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello from a")
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netlab.Dial(ctx, b, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	if string(msg) != "hello from a" {
		t.Errorf("read %q", msg)
	}

	// A process started in b sees b's interfaces.
	cmd := exec.Command("ip", "-o", "addr", "show", "eth0")
	var out strings.Builder
	cmd.Stdout = &out
	if err := netlab.Start(b, cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "10.99.0.2/24") {
		t.Errorf("ip addr in %s: %s", b, out.String())
	}

	// Deleting is idempotent.
	for range 2 {
		if err := netlab.DeleteLink(fab, "tap0"); err != nil {
			t.Error(err)
		}
	}
	if err := netlab.DeleteLink("no-such-ns", "x"); err != nil {
		t.Error(err)
	}
	if err := netlab.DeleteNamespace("no-such-ns"); err != nil {
		t.Error(err)
	}
}
