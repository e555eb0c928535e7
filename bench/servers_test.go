package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// server is a bare metal API under benchmark, running as processes of
// its own.
type server struct {
	name string
	base string // http://127.0.0.1:PORT
	// pids are the processes measured, with their descendants.
	pids []int
	// writes reads a counter of write transactions (Strata: the etcd
	// revision); nil where the server has none.
	writes func(ctx context.Context) (int64, error)
	// stateSize reads the size of the server's stored state: etcd's
	// database in use, or the SQLite file.
	stateSize func(ctx context.Context) (int64, error)
	stateName string
	// liveSize reads the size of the current keys and values (etcd, not
	// counting the history it keeps until compaction); nil where the
	// server has none.
	liveSize func(ctx context.Context) (int64, error)
	// logs are the server's log files, searched for errors at the end.
	logs []string
	stop func()
}

// moduleRoot is the directory of go.mod, from the package directory in
// which go test runs.
func moduleRoot(tb testing.TB) string {
	dir, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		tb.Fatalf("no go.mod in %s: %v", dir, err)
	}
	return dir
}

// workDir is a directory for one server's files, removed at the end
// unless the benchmark failed or STRATA_BENCH_KEEP is set (then its path
// is logged, to read the logs).
func workDir(tb testing.TB, name string) string {
	dir, err := os.MkdirTemp("", "strata-bench-"+name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() || os.Getenv("STRATA_BENCH_KEEP") != "" {
			tb.Logf("%s: files kept in %s", name, dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// buildStrata builds the undercloud daemon and the strata CLI from the
// working tree into dir.
func buildStrata(tb testing.TB, dir string) (daemon, cli string) {
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/stratacloud/strata/cmd/undercloud", "github.com/stratacloud/strata/cmd/strata")
	cmd.Dir = moduleRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build undercloud and strata: %v\n%s", err, out)
	}
	return filepath.Join(dir, "undercloud"), filepath.Join(dir, "strata")
}

// startStrata starts the undercloud daemon bin on a fresh data directory,
// with its defaults (embedded etcd), and waits for its API and etcd
// addresses.
func startStrata(tb testing.TB, bin string) *server {
	dir := workDir(tb, "strata")
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "daemon.log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--data-dir", data, "--listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start undercloud: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	tb.Cleanup(stop)

	readFile := func(name string) string {
		deadline := time.Now().Add(60 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(data, name))
			if s := strings.TrimSpace(string(b)); err == nil && s != "" {
				return s
			}
			select {
			case <-exited:
				out, _ := os.ReadFile(logPath)
				tb.Fatalf("undercloud exited at start:\n%s", out)
			default:
			}
			if time.Now().After(deadline) {
				tb.Fatalf("undercloud wrote no %s within 60s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	addr := readFile("api.addr")
	etcdURL := readFile("etcd.addr")

	etcd, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{etcdURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		tb.Fatalf("etcd client for %s: %v", etcdURL, err)
	}
	tb.Cleanup(func() { etcd.Close() })

	return &server{
		name: "Strata",
		base: "http://" + addr,
		pids: []int{cmd.Process.Pid},
		writes: func(ctx context.Context) (int64, error) {
			resp, err := etcd.Get(ctx, "/bench/revision", clientv3.WithCountOnly())
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		},
		stateSize: func(ctx context.Context) (int64, error) {
			st, err := etcd.Status(ctx, etcdURL)
			if err != nil {
				return 0, err
			}
			return st.DbSizeInUse, nil
		},
		stateName: "etcd db in use",
		liveSize: func(ctx context.Context) (int64, error) {
			resp, err := etcd.Get(ctx, "\x00", clientv3.WithFromKey())
			if err != nil {
				return 0, err
			}
			var n int64
			for _, kv := range resp.Kvs {
				n += int64(len(kv.Key) + len(kv.Value))
			}
			return n, nil
		},
		logs: []string{logPath},
		stop: stop,
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ironicScript is the script that installs and runs standalone Ironic.
func ironicScript(tb testing.TB) string {
	return filepath.Join(moduleRoot(tb), "scripts", "ironic-standalone.sh")
}

// installIronic makes sure Debian's Ironic is installed, and fails the
// benchmark with the script's output if it cannot be.
func installIronic(tb testing.TB) {
	out, err := exec.Command(ironicScript(tb), "install").CombinedOutput()
	if err != nil {
		tb.Fatalf("OpenStack Ironic (Debian's ironic-api and ironic-conductor) cannot be installed, so there is nothing to compare with: %v\n%s", err, out)
	}
}

// startIronic starts standalone Ironic (API under uwsgi, conductor,
// SQLite) through scripts/ironic-standalone.sh.
func startIronic(tb testing.TB) *server {
	dir := workDir(tb, "ironic")
	script := ironicScript(tb)
	apiPort, rpcPort := freePort(tb), freePort(tb)
	for rpcPort == apiPort {
		rpcPort = freePort(tb)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			tb.Errorf("stop ironic: %v\n%s", err, out)
		}
	}
	tb.Cleanup(stop)
	out, err := exec.Command(script, "start", dir, strconv.Itoa(apiPort), strconv.Itoa(rpcPort)).CombinedOutput()
	if err != nil {
		tb.Fatalf("OpenStack Ironic did not start, so there is nothing to compare with: %v\n%s", err, out)
	}
	var pids []int
	for _, name := range []string{"api.pid", "conductor.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		pids = append(pids, pid)
	}
	return &server{
		name: "Ironic",
		base: fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		pids: pids,
		stateSize: func(context.Context) (int64, error) {
			var total int64
			for _, suffix := range []string{"", "-wal", "-journal"} {
				st, err := os.Stat(filepath.Join(dir, "ironic.sqlite"+suffix))
				if err == nil {
					total += st.Size()
				} else if suffix == "" {
					return 0, err
				}
			}
			return total, nil
		},
		stateName: "SQLite file",
		logs: []string{
			filepath.Join(dir, "ironic-api-wsgi.log"), filepath.Join(dir, "ironic-conductor.log"),
			filepath.Join(dir, "ironic-api.log"),
			filepath.Join(dir, "api.out"), filepath.Join(dir, "conductor.out"),
		},
		stop: stop,
	}
}
