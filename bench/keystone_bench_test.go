package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// The identity load, the same for both servers.
var identityConcurrency = []int{1, 8} // requests in flight at once

const (
	defaultIdentityPhase = 30 * time.Second // measured, per operation, concurrency and server
	identityWarmup       = 3 * time.Second  // the same load, not measured, before each phase
	subjectTokens        = 8                // tokens the validate phase checks, in turn
	maxWorkerErrors      = 20               // a load worker gives up after this many failures
)

// identityOp is one kind of request of the identity load.
type identityOp struct {
	name string
	// do sends one request to t's server; i counts the worker's requests.
	do func(ctx context.Context, c *identityClient, t *identityTarget, i int) error
}

var identityOps = []identityOp{
	{"token issue", func(ctx context.Context, c *identityClient, t *identityTarget, _ int) error {
		_, err := c.issue(ctx, t)
		return err
	}},
	{"token validate", func(ctx context.Context, c *identityClient, t *identityTarget, i int) error {
		return c.validate(ctx, t, t.subjects[i%len(t.subjects)])
	}},
}

// identityTarget is an identity server under load and what the load
// needs of it.
type identityTarget struct {
	srv      *server
	authBody []byte   // POST /v3/auth/tokens: admin's password, scoped to the admin project
	admin    string   // the X-Auth-Token of validations
	subjects []string // the X-Subject-Tokens of validations, issued before
}

// identityClient is the one HTTP client that drives both servers.
type identityClient struct {
	http *http.Client
}

func newIdentityClient(conns int) *identityClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &identityClient{http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// send sends a request and reads the whole response; a status other than
// want is a *StatusError.
func (c *identityClient) send(req *http.Request, want int) (*http.Response, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return nil, &StatusError{Method: req.Method, Path: req.URL.Path, Code: resp.StatusCode, Body: string(data)}
	}
	return resp, nil
}

// issue gets a project-scoped token with the password method.
func (c *identityClient) issue(ctx context.Context, t *identityTarget) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.srv.base+"/v3/auth/tokens", bytes.NewReader(t.authBody))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.send(req, http.StatusCreated)
	if err != nil {
		return "", err
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", errors.New("POST /v3/auth/tokens: no X-Subject-Token in the response")
	}
	return tok, nil
}

// validate checks subject with the admin's token.
func (c *identityClient) validate(ctx context.Context, t *identityTarget, subject string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.srv.base+"/v3/auth/tokens", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", t.admin)
	req.Header.Set("X-Subject-Token", subject)
	_, err = c.send(req, http.StatusOK)
	return err
}

// newIdentityTarget gets the admin's token and the subject tokens from srv.
func newIdentityTarget(ctx context.Context, c *identityClient, srv *server, password string) (*identityTarget, error) {
	body, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": "admin", "domain": map[string]string{"id": "default"}, "password": password,
			}},
		},
		"scope": map[string]any{"project": map[string]any{
			"name": "admin", "domain": map[string]string{"id": "default"},
		}},
	}})
	if err != nil {
		return nil, err
	}
	t := &identityTarget{srv: srv, authBody: body}
	if t.admin, err = c.issue(ctx, t); err != nil {
		return nil, err
	}
	for range subjectTokens {
		tok, err := c.issue(ctx, t)
		if err != nil {
			return nil, err
		}
		t.subjects = append(t.subjects, tok)
	}
	return t, nil
}

// loadResult is what was measured over one phase of the load.
type loadResult struct {
	wall      time.Duration
	latency   []time.Duration // of the requests that succeeded, sorted
	errs      *Errors
	cpu       time.Duration // the server's
	clientCPU float64       // the load client's (this process), in cores
	otherCPU  float64       // the rest of the machine, in cores
}

func (r loadResult) rps() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(len(r.latency)) / r.wall.Seconds()
}

// quantile is the nearest-rank q-quantile of the latencies, in ms, or
// notApplicable.
func (r loadResult) quantile(q float64) float64 {
	if len(r.latency) == 0 {
		return notApplicable
	}
	i := max(int(math.Ceil(q*float64(len(r.latency))))-1, 0)
	return float64(r.latency[i].Microseconds()) / 1000
}

// cpuPerRequest is the server's CPU time per successful request, in ms.
func (r loadResult) cpuPerRequest() float64 {
	if len(r.latency) == 0 {
		return notApplicable
	}
	return float64(r.cpu.Microseconds()) / 1000 / float64(len(r.latency))
}

// runLoad runs op on t from conc workers, each sending its next request
// when the last one is answered, for warmup and then for d, and measures
// the second part: the phase lasts until the last request sent before d
// is answered.
func runLoad(ctx context.Context, c *identityClient, t *identityTarget, op identityOp, conc int, warmup, d time.Duration) loadResult {
	if warmup > 0 {
		drive(ctx, c, t, op, conc, warmup)
	}
	busyStart, _ := machineBusy()
	cpuStart, _ := cpuTime(t.srv.pids...)
	selfStart, _ := ownCPU()
	start := time.Now()
	latency, errs := drive(ctx, c, t, op, conc, d)
	r := loadResult{wall: time.Since(start), latency: latency, errs: errs, clientCPU: notApplicable, otherCPU: notApplicable}
	busy, err1 := machineBusy()
	cpu, err2 := cpuTime(t.srv.pids...)
	self, err3 := ownCPU()
	if err1 == nil && err2 == nil && err3 == nil {
		r.cpu = cpu - cpuStart
		client := self - selfStart
		r.clientCPU = client.Seconds() / r.wall.Seconds()
		// The counters tick apart: a small negative is none.
		r.otherCPU = max(0, ((busy-busyStart)-r.cpu-client).Seconds()/r.wall.Seconds())
	}
	return r
}

// ownCPU is the CPU time this process (the load client, not its
// children) has used so far.
func ownCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// drive sends op's requests from conc workers for d, and returns the
// sorted latencies of those that succeeded and the failures.
func drive(ctx context.Context, c *identityClient, t *identityTarget, op identityOp, conc int, d time.Duration) ([]time.Duration, *Errors) {
	deadline := time.Now().Add(d)
	errs := &Errors{}
	per := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			failed := 0
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += conc {
				t0 := time.Now()
				if err := op.do(ctx, c, t, i); err != nil {
					errs.add(err)
					if failed++; failed >= maxWorkerErrors {
						return
					}
					continue
				}
				per[w] = append(per[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(per...)
	slices.Sort(all)
	return all, errs
}

// identityPhase names one measured phase.
type identityPhase struct {
	op   identityOp
	conc int
}

// BenchmarkKeystoneComparison runs Strata's identity service (`overcloud
// run identity`, embedded etcd) and OpenStack Keystone (Debian's package,
// standalone under uwsgi as Debian runs it, SQLite, Fernet tokens) side
// by side on this machine, and drives both with the same Go client:
// project-scoped password tokens issued (POST /v3/auth/tokens) and tokens
// validated (GET /v3/auth/tokens, the admin's token checking one of
// several issued before), each at 1 and 8 requests in flight for a fixed
// time. Each server runs with its defaults: both hash passwords with
// bcrypt at cost 12; Strata reuses the validation of the admin's token
// for 10s, where Keystone, with no cache across requests, validates it on
// every request. The phases alternate between the servers, so that
// whatever else the machine does falls on both alike. It reports requests
// per second, the median and 99th percentile latency and the server's CPU
// time per request, with ratios: Strata/Keystone for throughput,
// Keystone/Strata for the others, so that above 1 Strata does better.
//
// STRATA_BENCH_IDENTITY_DURATION sets the measured time of each phase
// (default 30s); STRATA_BENCH_OUT names a file the table is appended to;
// STRATA_BENCH_KEEP=1 keeps the servers' files (logs, databases);
// KEYSTONE_CACHE_BACKEND (an oslo.cache backend, such as
// dogpile.cache.memory) gives Keystone a cache across requests, which
// Debian leaves without one.
func BenchmarkKeystoneComparison(b *testing.B) {
	d := envDuration(b, "STRATA_BENCH_IDENTITY_DURATION", defaultIdentityPhase)
	// Every phase on both servers, with room for starting and stopping.
	runs := 2 * len(identityConcurrency) * len(identityOps)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*(d+identityWarmup)+10*time.Minute)
	defer cancel()

	// Keystone first: if it cannot be had, say so before building Strata.
	installKeystone(b)
	bin := buildOvercloud(b, b.TempDir())
	password := rand.Text()
	c := newIdentityClient(slices.Max(identityConcurrency))

	b.ResetTimer()
	for range b.N {
		var targets []*identityTarget // Strata, Keystone
		for _, srv := range []*server{startIdentity(b, bin, password), startKeystone(b, password)} {
			t, err := newIdentityTarget(ctx, c, srv, password)
			if err != nil {
				b.Fatalf("%s: first tokens: %v", srv.name, err)
			}
			targets = append(targets, t)
		}

		var phases []identityPhase
		results := [2][]loadResult{}
		for _, conc := range identityConcurrency {
			for _, op := range identityOps {
				phases = append(phases, identityPhase{op: op, conc: conc})
				p := len(phases) - 1
				var r [2]loadResult
				// Strata first on even phases, Keystone first on odd ones.
				for k := range 2 {
					s := (k + p) % 2
					r[s] = runLoad(ctx, c, targets[s], op, conc, identityWarmup, d)
				}
				results[0] = append(results[0], r[0])
				results[1] = append(results[1], r[1])
				b.Logf("%s, %d in flight: Strata %.1f req/s, Keystone %.1f req/s",
					op.name, conc, r[0].rps(), r[1].rps())
			}
		}
		var peaks [2]int64
		for i, t := range targets {
			var err error
			if peaks[i], err = peakMemory(t.srv.pids...); err != nil {
				b.Fatalf("%s: peak memory: %v", t.srv.name, err)
			}
			t.srv.stop()
		}
		identityReport(b, d, phases, results, peaks, targets)
	}
}

func identityReport(b *testing.B, d time.Duration, phases []identityPhase, results [2][]loadResult, peaks [2]int64, targets []*identityTarget) {
	st, ks := results[0], results[1]
	type row struct {
		metric, unit string
		strata, ks   float64
		ratio        string // "S/K", "K/S" or "" (none)
	}
	var rows []row
	for i, p := range phases {
		s, k := st[i], ks[i]
		name := fmt.Sprintf("%s, %d in flight", p.op.name, p.conc)
		rows = append(rows,
			row{name + ": throughput", "req/s", s.rps(), k.rps(), "S/K"},
			row{name + ": p50 latency", "ms", s.quantile(0.50), k.quantile(0.50), "K/S"},
			row{name + ": p99 latency", "ms", s.quantile(0.99), k.quantile(0.99), "K/S"},
			row{name + ": server CPU per request", "ms", s.cpuPerRequest(), k.cpuPerRequest(), "K/S"},
			row{name + ": requests answered", "", float64(len(s.latency)), float64(len(k.latency)), ""},
			row{name + ": failed requests", "", float64(s.errs.Count()), float64(k.errs.Count()), ""},
			row{name + ": load client CPU", "cores", s.clientCPU, k.clientCPU, ""},
			row{name + ": rest of the machine (other server, others)", "cores", s.otherCPU, k.otherCPU, ""},
		)
	}
	rows = append(rows, row{"peak memory (VmHWM) at the end", "MiB", float64(peaks[0]) / mib, float64(peaks[1]) / mib, "K/S"})
	var logs [2][3]int
	var samples [2][]string
	for i, t := range targets {
		logs[i][0], logs[i][1], samples[i] = scanLogs(t.srv.logs)
	}
	rows = append(rows,
		row{"server log lines at ERROR", "", float64(logs[0][0]), float64(logs[1][0]), ""},
		row{"server log lines at WARN(ING)", "", float64(logs[0][1]), float64(logs[1][1]), ""},
	)

	var out bytes.Buffer
	cache := "cache within requests only"
	if c := os.Getenv("KEYSTONE_CACHE_BACKEND"); c != "" {
		cache = "cache " + c
	}
	fmt.Fprintf(&out, "\nStrata identity vs OpenStack Keystone (Debian %s, uwsgi, %d processes, SQLite, %s), %s per phase after %s of warm-up, on %d cores\n",
		keystoneVersion(), keystoneProcesses(), cache, d, identityWarmup, runtime.NumCPU())
	fmt.Fprintln(&out, "ratio: S/K = Strata/Keystone (throughput); K/S = Keystone/Strata (latency, CPU, memory); above 1, Strata does better")
	fmt.Fprintln(&out)
	w := tabwriter.NewWriter(&out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, " metric\t unit\t Strata\t Keystone\t ratio\t \t")
	for _, r := range rows {
		ratio := ""
		switch {
		case r.strata <= 0 || r.ks <= 0:
		case r.ratio == "S/K":
			ratio = fmt.Sprintf("%.2f", r.strata/r.ks)
		case r.ratio == "K/S":
			ratio = fmt.Sprintf("%.2f", r.ks/r.strata)
		}
		label := r.ratio
		if ratio == "" {
			label = ""
		}
		fmt.Fprintf(w, " %s\t %s\t %s\t %s\t %s\t %s\t\n", r.metric, r.unit, value(r.strata), value(r.ks), ratio, label)
	}
	w.Flush()
	for i, t := range targets {
		for j, res := range results[i] {
			for _, e := range res.errs.Samples() {
				fmt.Fprintf(&out, "%s client error (%s, %d in flight): %s\n", t.srv.name, phases[j].op.name, phases[j].conc, e)
			}
		}
		for _, l := range samples[i] {
			fmt.Fprintf(&out, "%s log: %s\n", t.srv.name, l)
		}
	}
	fmt.Fprintln(&out)
	os.Stdout.Write(out.Bytes())
	if path := os.Getenv("STRATA_BENCH_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.Write(out.Bytes())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.Errorf("STRATA_BENCH_OUT: %v", err)
		}
	}

	for i, p := range phases {
		s, k := st[i], ks[i]
		key := fmt.Sprintf("%s-c%d", strings.TrimPrefix(p.op.name, "token "), p.conc)
		metric := func(v float64, unit string) {
			if v >= 0 {
				b.ReportMetric(v, unit)
			}
		}
		metric(s.rps(), "strata-"+key+"-req/s")
		metric(k.rps(), "keystone-"+key+"-req/s")
		if k.rps() > 0 {
			metric(s.rps()/k.rps(), key+"-req/s-ratio")
		}
		metric(s.quantile(0.50), "strata-"+key+"-p50-ms")
		metric(k.quantile(0.50), "keystone-"+key+"-p50-ms")
		metric(s.quantile(0.99), "strata-"+key+"-p99-ms")
		metric(k.quantile(0.99), "keystone-"+key+"-p99-ms")
		if s.quantile(0.99) > 0 && k.quantile(0.99) > 0 {
			metric(k.quantile(0.99)/s.quantile(0.99), key+"-p99-ratio")
		}
	}

	for i, p := range phases {
		if n := st[i].errs.Count(); n > 0 || len(st[i].latency) == 0 {
			b.Errorf("Strata: %s, %d in flight: %d requests, %d failed", p.op.name, p.conc, len(st[i].latency), n)
		}
		if n := ks[i].errs.Count(); n > 0 || len(ks[i].latency) == 0 {
			b.Logf("Keystone: %s, %d in flight: %d requests, %d failed", p.op.name, p.conc, len(ks[i].latency), n)
		}
	}
}

// buildOvercloud builds the overcloud command from the working tree into
// dir.
func buildOvercloud(tb testing.TB, dir string) string {
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/stratacloud/strata/cmd/overcloud")
	cmd.Dir = moduleRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build overcloud: %v\n%s", err, out)
	}
	return filepath.Join(dir, "overcloud")
}

// startIdentity starts `overcloud run identity` on a fresh data directory
// (embedded etcd), bootstrapped with the admin password, with its
// defaults otherwise, and waits until GET /v3 answers.
func startIdentity(tb testing.TB, bin, password string) *server {
	dir := workDir(tb, "identity")
	logPath := filepath.Join(dir, "identity.log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	cmd := exec.Command(bin, "run", "identity", "--listen", addr, "--data-dir", filepath.Join(dir, "data"))
	// The password through the environment, as the command advises.
	cmd.Env = append(os.Environ(), "STRATA_BOOTSTRAP_PASSWORD="+password)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start overcloud run identity: %v", err)
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

	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/v3")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			tb.Fatalf("overcloud run identity exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("overcloud run identity did not answer GET %s/v3 within 60s", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &server{
		name: "Strata",
		base: base,
		pids: []int{cmd.Process.Pid},
		logs: []string{logPath},
		stop: stop,
	}
}

// keystoneScript is the script that installs and runs standalone Keystone.
func keystoneScript(tb testing.TB) string {
	return filepath.Join(moduleRoot(tb), "scripts", "keystone-standalone.sh")
}

// installKeystone makes sure Debian's Keystone is installed, and fails
// the benchmark with the script's output if it cannot be.
func installKeystone(tb testing.TB) {
	out, err := exec.Command(keystoneScript(tb), "install").CombinedOutput()
	if err != nil {
		tb.Fatalf("OpenStack Keystone (Debian's keystone) cannot be installed, so there is nothing to compare with: %v\n%s", err, out)
	}
}

// startKeystone starts standalone Keystone (uwsgi, SQLite, Fernet)
// through scripts/keystone-standalone.sh, bootstrapped with the admin
// password.
func startKeystone(tb testing.TB, password string) *server {
	dir := workDir(tb, "keystone")
	script := keystoneScript(tb)
	port := freePort(tb)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			tb.Errorf("stop keystone: %v\n%s", err, out)
		}
	}
	tb.Cleanup(stop)
	cmd := exec.Command(script, "start", dir, strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "KEYSTONE_BOOTSTRAP_PASSWORD="+password, fmt.Sprintf("KEYSTONE_PROCESSES=%d", keystoneProcesses()))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("OpenStack Keystone did not start, so there is nothing to compare with: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "keystone.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatalf("keystone.pid: %v", err)
	}
	return &server{
		name: "Keystone",
		base: fmt.Sprintf("http://127.0.0.1:%d", port),
		pids: []int{pid},
		logs: []string{
			filepath.Join(dir, "keystone.log"), filepath.Join(dir, "keystone-uwsgi.log"),
			filepath.Join(dir, "keystone.out"),
		},
		stop: stop,
	}
}

// keystoneProcesses is the number of uwsgi processes Keystone runs: two
// per core, as Debian's keystone-uwsgi.ini advises.
func keystoneProcesses() int { return 2 * runtime.NumCPU() }

// keystoneVersion is the installed keystone package's version.
func keystoneVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "keystone").Output()
	if err != nil {
		return "keystone (version unknown)"
	}
	return "keystone " + string(out)
}
