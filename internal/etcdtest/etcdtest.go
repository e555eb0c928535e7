// Package etcdtest starts an embedded etcd member for a test.
package etcdtest

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratacloud/strata/internal/etcdserver"
)

// Run starts a fresh single-member etcd in a temporary directory, stops it
// when the test ends, and returns a client connected to it.
func Run(t testing.TB) *clientv3.Client {
	t.Helper()
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	cli, err := srv.Client()
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
