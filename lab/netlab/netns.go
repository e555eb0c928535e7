// Package netlab builds the lab's virtual networks out of Linux primitives:
// named network namespaces (as `ip netns` makes them, under /run/netns),
// bridges, veth pairs, tap devices and addresses, through netlink. It also
// runs work inside a namespace: a socket opened there (a listener, a
// dialled connection) or a process started there stays in it.
//
// Every function names its namespace; "" is the namespace of the calling
// process (the host's). Deleting what does not exist is no error, so that
// a teardown can be run again after a crash.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/vishvananda/netns"
)

// runDir is where named namespaces are bind-mounted, as iproute2 does.
const runDir = "/run/netns"

var nsName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CreateNamespace creates the named network namespace with its loopback
// interface up. It fails if the name is taken.
func CreateNamespace(name string) error {
	if !nsName.MatchString(name) {
		return fmt.Errorf("netlab: namespace name %q: want letters, digits, '_', '.' or '-'", name)
	}
	if NamespaceExists(name) {
		return fmt.Errorf("netlab: namespace %s: %w", name, os.ErrExist)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread moves into the new namespace and is never moved back:
		// it ends with this goroutine, which never unlocks it.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("netlab: create namespace %s: %w", name, err)
			return
		}
		h.Close()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	return SetUp(name, "lo")
}

// DeleteNamespace removes the named namespace. The namespace itself, with
// its interfaces, goes away once no process runs in it and no file refers
// to it. A namespace that does not exist is no error.
func DeleteNamespace(name string) error {
	if !NamespaceExists(name) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A leftover file that is not a mount point (a crash between
		// creating and mounting it) is removed all the same.
		if rmErr := os.Remove(filepath.Join(runDir, name)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("netlab: delete namespace %s: %w", name, err)
		}
	}
	return nil
}

// NamespaceExists reports whether the named namespace exists.
func NamespaceExists(name string) bool {
	_, err := os.Stat(filepath.Join(runDir, name))
	return err == nil
}

// Namespaces lists the named namespaces.
func Namespaces() ([]string, error) {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// Do runs fn on an OS thread that is in the named namespace ("" runs it in
// the calling process's namespace, on a thread of its own). Sockets that fn
// opens and processes that it starts belong to that namespace. The thread
// ends with fn: it never goes back to other work.
func Do(name string, fn func() error) error {
	var target netns.NsHandle
	if name != "" {
		h, err := netns.GetFromName(name)
		if err != nil {
			return fmt.Errorf("netlab: namespace %s: %w", name, err)
		}
		defer h.Close()
		target = h
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if name != "" {
			if err := netns.Set(target); err != nil {
				errc <- fmt.Errorf("netlab: enter namespace %s: %w", name, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// Start starts cmd in the named namespace.
func Start(name string, cmd *exec.Cmd) error {
	return Do(name, cmd.Start)
}

// Dial connects to addr from inside the named namespace.
func Dial(ctx context.Context, name, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(name, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a TCP listener on addr inside the named namespace.
func Listen(name, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(name, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}
