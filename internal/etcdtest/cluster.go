package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdBinary is Debian's etcd server (package etcd-server), which
// `make deps` installs.
const EtcdBinary = "/usr/bin/etcd"

// Cluster is an external etcd cluster of separate etcd processes on
// loopback ports, for tests that need a real multi-member cluster.
type Cluster struct {
	t       testing.TB
	members []*member
}

type member struct {
	name       string
	clientURL  string
	peerURL    string
	dir        string
	cmd        *exec.Cmd
	exited     chan struct{}
	stopped    bool
	initial    string
	clusterTok string
}

// StartCluster starts n etcd members and waits until the cluster serves
// requests. The members are killed and their data removed when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, err := os.Stat(EtcdBinary); err != nil {
		t.Fatalf("%s is missing: run `make deps` (Debian package etcd-server): %v", EtcdBinary, err)
	}
	c := &Cluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: "http://" + freeAddr(t),
			peerURL:   "http://" + freeAddr(t),
			dir:       filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i)),
		}
		initial = append(initial, m.name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	tok := fmt.Sprintf("strata-test-%d", time.Now().UnixNano())
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		m.clusterTok = tok
		c.start(m)
	}
	t.Cleanup(c.stopAll)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := c.Client()
	defer cli.Close()
	for {
		if _, err := cli.Put(ctx, "etcdtest/ready", "1"); err == nil {
			return c
		} else if ctx.Err() != nil {
			t.Fatalf("etcd cluster not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) start(m *member) {
	c.t.Helper()
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	m.cmd = exec.Command(EtcdBinary,
		"--name", m.name,
		"--data-dir", m.dir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", m.clusterTok,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-level", "error",
		"--logger", "zap",
	)
	log, err := os.Create(m.dir + ".log")
	if err != nil {
		c.t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		c.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	m.exited = make(chan struct{})
	m.stopped = false
	go func() { m.cmd.Wait(); log.Close(); close(m.exited) }()
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// Client returns a client of the whole cluster; the caller closes it.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cli
}

// Kill stops member i with SIGKILL, as a crash would.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.stopped {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.stopped = true
}

// Restart starts a killed member again on its data.
func (c *Cluster) Restart(i int) {
	m := c.members[i]
	if !m.stopped {
		return
	}
	m.initial = "" // ignored on restart with existing data
	for _, o := range c.members {
		if m.initial != "" {
			m.initial += ","
		}
		m.initial += o.name + "=" + o.peerURL
	}
	c.start(m)
}

func (c *Cluster) stopAll() {
	for i := range c.members {
		c.Kill(i)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
