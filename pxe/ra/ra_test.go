package ra_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/stratacloud/strata/pxe/ra"
)

// TestAnswersRouterSolicitation puts the server on one end of a veth pair
// in a namespace the test makes, and asks from the other end with rdisc6
// (Debian's ndisc6), which prints the advertisement it gets.
func TestAnswersRouterSolicitation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a network namespace and needs root")
	}
	if _, err := exec.LookPath("rdisc6"); err != nil {
		t.Fatal("rdisc6 not found: run `make deps` (Debian package ndisc6)")
	}
	var b [3]byte
	rand.Read(b[:])
	ns := "sra" + hex.EncodeToString(b[:])
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "add", "prov", "type", "veth", "peer", "name", "node")
	run("ip", "-n", ns, "link", "set", "prov", "up")
	run("ip", "-n", ns, "link", "set", "node", "up")
	mac := strings.Fields(run("ip", "-n", ns, "-br", "link", "show", "prov"))[2]

	// Open the server's socket inside the namespace.
	var srv *ra.Server
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread stays in the namespace and ends with the goroutine
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err == nil {
			srv, err = ra.New("prov", nil)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// The link-local addresses need their duplicate address detection
	// before either side can send; rdisc6 retries meanwhile.
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := exec.Command("ip", "netns", "exec", ns, "rdisc6", "-1", "-r", "3", "-w", "1000", "node").CombinedOutput()
		out = string(o)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"Hop limit                 :           64", "Stateful address conf.    :           No",
		"Stateful other conf.      :           No", "Router lifetime           :            0", "Source link-layer address: " + strings.ToUpper(mac)} {
		if !strings.Contains(out, want) {
			t.Errorf("rdisc6 shows no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Prefix") {
		t.Errorf("the advertisement offers a prefix:\n%s", out)
	}
}
