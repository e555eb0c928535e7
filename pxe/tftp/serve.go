package tftp

import (
	"net"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
)

// serve runs pin/tftp's loop on the server's socket from inside the
// socket's network namespace, on a thread of its own moved there if that
// is not the process's namespace (when New ran on a thread in another, or
// the caller opened Config.Conn there). In that loop pin/tftp opens each
// transfer's socket, and looks up by index the interface a request came
// in on, to cap the block size by its MTU: both must happen in the
// socket's namespace. The transfers themselves run on other threads, on
// sockets already open.
func (s *Server) serve() error {
	runtime.LockOSThread()
	moved := false
	if ns, err := socketNetns(s.conn); err != nil {
		// Without CAP_NET_ADMIN; such a server is unlikely to have a
		// socket in another namespace.
		s.log.Debug("tftp: the socket's network namespace is unknown", "err", err)
	} else {
		moved, err = enterNetns(ns)
		ns.Close()
		if err != nil {
			s.log.Warn("tftp: serving from outside the socket's network namespace: transfers may fail", "err", err)
		}
	}
	if !moved {
		runtime.UnlockOSThread()
	}
	// A moved thread stays locked: the runtime ends it with this
	// goroutine, so no other goroutine runs in the socket's namespace.
	return s.lib.Serve(s.conn)
}

// siocgskns is Linux's SIOCGSKNS (linux/sockios.h): an ioctl that opens
// the network namespace a socket belongs to.
const siocgskns = 0x894c

// socketNetns opens the network namespace of conn's socket. It needs
// CAP_NET_ADMIN there.
func socketNetns(conn *net.UDPConn) (netns.NsHandle, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return netns.None(), err
	}
	var (
		fd    uintptr
		errno syscall.Errno
	)
	if err := rc.Control(func(s uintptr) {
		fd, _, errno = syscall.Syscall(syscall.SYS_IOCTL, s, siocgskns, 0)
	}); err != nil {
		return netns.None(), err
	}
	if errno != 0 {
		return netns.None(), &net.OpError{Op: "ioctl SIOCGSKNS", Net: "udp", Addr: conn.LocalAddr(), Err: errno}
	}
	return netns.NsHandle(fd), nil
}

// enterNetns moves the calling thread, locked to its goroutine, into ns
// unless it is there already, and reports whether it moved.
func enterNetns(ns netns.NsHandle) (bool, error) {
	cur, err := netns.Get()
	if err != nil {
		return false, err
	}
	defer cur.Close()
	if cur.Equal(ns) {
		return false, nil
	}
	if err := netns.Set(ns); err != nil {
		return false, err
	}
	return true, nil
}
