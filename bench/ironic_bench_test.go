package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stratacloud/strata/undercloud/api"
)

// The load, the same for both servers.
const (
	defaultNodes       = 1000
	createConcurrency  = 16 // nodes being created at once
	walkConcurrency    = 50 // nodes in flight during a walk, for the client and the CLI
	listRepetitions    = 5
	defaultPoll        = 200 * time.Millisecond
	stepTimeout        = 10 * time.Minute // per node and step
	benchmarkTimeout   = 55 * time.Minute
	clientIdleConns    = 64
	imageSource        = "http://127.0.0.1:9/images/overcloud-full.qcow2"
	imageChecksumMD5   = "d41d8cd98f00b204e9800998ecf8427e"
	mib                = 1 << 20
	notApplicable      = -1
	maxLogErrorSamples = 3
)

// walkSteps take a node from enroll to active.
var walkSteps = []Step{
	{Verb: "manage", Want: "manageable"},
	{Verb: "provide", Want: "available"},
	{Verb: "active", Want: "active"},
}

// cliVerbs are the strata CLI's commands for the same steps.
var cliVerbs = []string{"manage", "provide", "deploy"}

// phase is what was measured over one phase of the load.
type phase struct {
	wall   time.Duration
	counts Counts
	writes int64 // write transactions (etcd revisions), or notApplicable
	cpu    time.Duration
	errs   *Errors
}

func (p phase) rps() float64 {
	if p.wall <= 0 {
		return 0
	}
	return float64(p.counts.Requests) / p.wall.Seconds()
}

// run is everything measured on one server.
type run struct {
	srv        *server
	nodes      int
	create     phase
	list       []time.Duration // each repetition
	listPages  int
	listed     int
	listWrites int64
	steps      []phase // one per walkSteps
	walk       phase   // the three steps together
	active     int     // nodes of the walk found active at the end
	peakCreate int64   // VmHWM after the create phase
	peakWalk   int64   // VmHWM after the walk
	peakEnd    int64   // VmHWM after the CLI walk
	stateWalk  int64   // stored state after the walk
	liveWalk   int64   // live keys and values after the walk, or notApplicable
	cliSteps   []phase // the CLI walk of a second batch, one per cliVerbs
	cliErr     error
	cliActive  int
	// otherCPU is the CPU the rest of the machine (the client, the CLI,
	// anything else running here) used during the run, in cores.
	otherCPU   float64
	logErrors  int
	logWarns   int
	logSamples []string
}

func (r *run) listMedian() time.Duration {
	s := slices.Clone(r.list)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func (r *run) cliTotal() time.Duration {
	var t time.Duration
	for _, p := range r.cliSteps {
		t += p.wall
	}
	return t
}

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a duration such as 200ms", name, s)
	}
	return d
}

// BenchmarkIronicComparison is the foundation issue's benchmark: create
// nodes with a port each, list them with detail, and walk them from enroll
// to active with --wait, on Strata's undercloud and on OpenStack Ironic
// (Debian's packages, standalone), one after the other on this machine,
// with the same client and the same load. It reports each server's
// numbers and the ratio Strata/Ironic.
//
// STRATA_BENCH_NODES sets the number of nodes (default 1000);
// STRATA_BENCH_POLL_INTERVAL how often a waiting client polls a node
// (default 200ms, for the client and for the CLI alike); STRATA_BENCH_OUT
// names a file that gets the results table too; STRATA_BENCH_KEEP=1 keeps
// the servers' files (logs, databases) and logs where they are.
func BenchmarkIronicComparison(b *testing.B) {
	nodes := envInt(b, "STRATA_BENCH_NODES", defaultNodes)
	poll := envDuration(b, "STRATA_BENCH_POLL_INTERVAL", defaultPoll)
	ctx, cancel := context.WithTimeout(context.Background(), benchmarkTimeout)
	defer cancel()

	// Ironic first: if it cannot be had, say so before spending time on
	// Strata.
	installIronic(b)
	binDir := b.TempDir()
	daemon, cli := buildStrata(b, binDir)

	b.ResetTimer()
	for range b.N {
		ironic := startIronic(b)
		ironicMax, err := MaxVersion(ctx, ironic.base)
		if err != nil {
			b.Fatalf("ironic: %v", err)
		}
		version, err := LowerVersion(api.MaxVersion, ironicMax)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("API microversion %s (Strata up to %s, Ironic up to %s), %d nodes, poll every %s",
			version, api.MaxVersion, ironicMax, nodes, poll)

		ir := measureServer(ctx, b, ironic, cli, version, nodes, poll)
		ironic.stop()
		st := measureServer(ctx, b, startStrata(b, daemon), cli, version, nodes, poll)
		st.srv.stop()

		report(b, st, ir, version, poll)
	}
}

// measureServer runs the whole load on srv and measures it.
func measureServer(ctx context.Context, b *testing.B, srv *server, cli, version string, nodes int, poll time.Duration) *run {
	r := &run{srv: srv, nodes: nodes}
	c := NewClient(srv.base, version, clientIdleConns)
	runStart := time.Now()
	busyStart, _ := machineBusy()
	serverStart, _ := cpuTime(srv.pids...)
	defer func() {
		busy, err1 := machineBusy()
		server, err2 := cpuTime(srv.pids...)
		if err1 == nil && err2 == nil {
			r.otherCPU = ((busy - busyStart) - (server - serverStart)).Seconds() / time.Since(runStart).Seconds()
		}
	}()
	fail := func(what string, err error) {
		b.Fatalf("%s: %s: %v", srv.name, what, err)
	}

	// 1. Create.
	var uuids []string
	r.create = measure(ctx, srv, c, func() *Errors {
		var errs *Errors
		uuids, errs = c.CreateNodes(ctx, Batch{
			Prefix:       "bench",
			MACByte:      1,
			InstanceInfo: map[string]any{"image_source": imageSource, "image_checksum": imageChecksumMD5},
		}, nodes, createConcurrency)
		return errs
	})
	var err error
	if r.peakCreate, err = peakMemory(srv.pids...); err != nil {
		fail("peak memory", err)
	}

	// 2. List with detail.
	listStart := readWrites(ctx, srv)
	for range listRepetitions {
		t0 := time.Now()
		got, pages, err := c.ListDetail(ctx)
		if err != nil {
			fail("list detail", err)
		}
		r.list = append(r.list, time.Since(t0))
		r.listPages, r.listed = pages, len(got)
	}
	if listStart != notApplicable {
		r.listWrites = readWrites(ctx, srv) - listStart
	} else {
		r.listWrites = notApplicable
	}

	// 3. Walk enroll → manageable → available → active, each step over
	// every node, as `manage --all --wait` then `provide` then `deploy`.
	walkStart := snapshot(ctx, srv, c)
	for _, step := range walkSteps {
		r.steps = append(r.steps, measure(ctx, srv, c, func() *Errors {
			return c.Walk(ctx, uuids, step, walkConcurrency, poll, stepTimeout)
		}))
	}
	r.walk = walkStart.until(ctx, srv, c)
	r.walk.errs = &Errors{}
	for _, p := range r.steps {
		r.walk.errs.merge(p.errs)
	}
	if r.peakWalk, err = peakMemory(srv.pids...); err != nil {
		fail("peak memory", err)
	}
	if r.stateWalk, err = srv.stateSize(ctx); err != nil {
		fail("state size", err)
	}
	r.liveWalk = notApplicable
	if srv.liveSize != nil {
		if r.liveWalk, err = srv.liveSize(ctx); err != nil {
			fail("live data size", err)
		}
	}
	all, _, err := c.ListDetail(ctx)
	if err != nil {
		fail("list detail after the walk", err)
	}
	r.active = countActive(all, "bench-")

	// 4. The same walk through the strata CLI, on a second batch.
	if _, errs := c.CreateNodes(ctx, Batch{
		Prefix:       "cli",
		MACByte:      2,
		InstanceInfo: map[string]any{"image_source": imageSource, "image_checksum": imageChecksumMD5},
	}, nodes, createConcurrency); errs.Count() > 0 {
		fail("create the CLI's nodes", fmt.Errorf("%d errors, first: %s", errs.Count(), errs.Samples()[0]))
	}
	for _, verb := range cliVerbs {
		p := measure(ctx, srv, c, func() *Errors {
			errs := &Errors{}
			if err := runCLI(ctx, b, cli, srv, version, poll, verb); err != nil {
				errs.add(err)
			}
			return errs
		})
		r.cliSteps = append(r.cliSteps, p)
		if p.errs.Count() > 0 {
			r.cliErr = fmt.Errorf("%s: %s", verb, p.errs.Samples()[0])
			break
		}
	}
	if all, _, err = c.ListDetail(ctx); err != nil {
		fail("list detail after the CLI walk", err)
	}
	r.cliActive = countActive(all, "cli-")
	if r.peakEnd, err = peakMemory(srv.pids...); err != nil {
		fail("peak memory", err)
	}
	if procs, err := peakMemoryByProcess(srv.pids...); err == nil {
		b.Logf("%s: peak memory by process: %s", srv.name, strings.Join(procs, "; "))
	}
	r.logErrors, r.logWarns, r.logSamples = scanLogs(srv.logs)
	return r
}

func countActive(nodes []NodeState, prefix string) int {
	n := 0
	for _, node := range nodes {
		if node.Name != nil && strings.HasPrefix(*node.Name, prefix) && node.ProvisionState == "active" {
			n++
		}
	}
	return n
}

// readWrites reads srv's write counter, or notApplicable.
func readWrites(ctx context.Context, srv *server) int64 {
	if srv.writes == nil {
		return notApplicable
	}
	n, err := srv.writes(ctx)
	if err != nil {
		return notApplicable
	}
	return n
}

// mark is the state of the counters at the start of a phase.
type mark struct {
	t      time.Time
	counts Counts
	writes int64
	cpu    time.Duration
}

func snapshot(ctx context.Context, srv *server, c *Client) mark {
	cpu, _ := cpuTime(srv.pids...)
	return mark{t: time.Now(), counts: c.Counts(), writes: readWrites(ctx, srv), cpu: cpu}
}

func (m mark) until(ctx context.Context, srv *server, c *Client) phase {
	p := phase{wall: time.Since(m.t), counts: c.Counts().Sub(m.counts), writes: notApplicable}
	if m.writes != notApplicable {
		if w := readWrites(ctx, srv); w != notApplicable {
			p.writes = w - m.writes
		}
	}
	if cpu, err := cpuTime(srv.pids...); err == nil {
		p.cpu = cpu - m.cpu
	}
	return p
}

// measure runs f as one phase.
func measure(ctx context.Context, srv *server, c *Client, f func() *Errors) phase {
	m := snapshot(ctx, srv, c)
	errs := f()
	p := m.until(ctx, srv, c)
	p.errs = errs
	return p
}

// runCLI runs `strata node VERB --all --wait --concurrency N` against srv.
func runCLI(ctx context.Context, b *testing.B, cli string, srv *server, version string, poll time.Duration, verb string) error {
	out, err := os.CreateTemp(b.TempDir(), "cli-"+verb+"-*.log")
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, cli, "node", verb, "--all", "--wait", "--concurrency", strconv.Itoa(walkConcurrency))
	cmd.Env = append(os.Environ(),
		"OS_AUTH_TYPE=none",
		"OS_ENDPOINT="+srv.base,
		"OS_BAREMETAL_API_VERSION="+version,
		"STRATA_POLL_INTERVAL="+poll.String(),
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("strata node %s --all --wait: %v; last output:\n%s", verb, err, tail(out.Name(), 15))
	}
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// scanLogs counts the lines of a server's logs that report an error
// (Strata's JSON lines at level ERROR, Ironic's oslo.log lines at ERROR or
// CRITICAL and Python tracebacks) or a warning, and returns the first few
// errors.
func scanLogs(paths []string) (errs, warns int, samples []string) {
	n := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			line := s.Text()
			if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, " WARNING ") {
				warns++
			}
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, " ERROR ") ||
				strings.Contains(line, " CRITICAL ") || strings.HasPrefix(line, "Traceback") {
				n++
				if len(samples) < maxLogErrorSamples {
					if len(line) > 400 {
						line = line[:400] + "..."
					}
					samples = append(samples, filepath.Base(p)+": "+line)
				}
			}
		}
		f.Close()
	}
	return n, warns, samples
}

// row is a line of the report: a metric's value for each server; a
// negative value is not applicable.
type row struct {
	metric  string
	unit    string
	strata  float64
	ironic  float64
	noRatio bool
}

func secs(d time.Duration) float64 { return d.Seconds() }

func perNode(writes int64, nodes int) float64 {
	if writes == notApplicable {
		return notApplicable
	}
	return float64(writes) / float64(nodes)
}

func report(b *testing.B, st, ir *run, version string, poll time.Duration) {
	n := st.nodes
	var rows []row
	add := func(metric, unit string, s, i float64) {
		rows = append(rows, row{metric: metric, unit: unit, strata: s, ironic: i})
	}
	addOnly := func(metric, unit string, s, i float64) {
		rows = append(rows, row{metric: metric, unit: unit, strata: s, ironic: i, noRatio: true})
	}
	add(fmt.Sprintf("create %d nodes + %d ports: wall", n, n), "s", secs(st.create.wall), secs(ir.create.wall))
	add("create: requests/s", "req/s", st.create.rps(), ir.create.rps())
	add("create: server CPU", "s", secs(st.create.cpu), secs(ir.create.cpu))
	add(fmt.Sprintf("list /v1/nodes/detail: median of %d", listRepetitions), "ms",
		float64(st.listMedian().Microseconds())/1000, float64(ir.listMedian().Microseconds())/1000)
	addOnly("list: pages", "", float64(st.listPages), float64(ir.listPages))
	addOnly("list: nodes listed", "", float64(st.listed), float64(ir.listed))
	for i, step := range walkSteps {
		add(fmt.Sprintf("walk %s (→ %s): wall", step.Verb, step.Want), "s", secs(st.steps[i].wall), secs(ir.steps[i].wall))
	}
	add("walk enroll → active: wall", "s", secs(st.walk.wall), secs(ir.walk.wall))
	add("walk: requests/s", "req/s", st.walk.rps(), ir.walk.rps())
	add("walk: requests per node", "req", float64(st.walk.counts.Requests)/float64(n), float64(ir.walk.counts.Requests)/float64(n))
	add("walk: server CPU", "s", secs(st.walk.cpu), secs(ir.walk.cpu))
	addOnly("walk: retried 409/503", "req", float64(st.walk.counts.Retries), float64(ir.walk.counts.Retries))
	addOnly(fmt.Sprintf("walk: nodes active at the end (of %d)", n), "", float64(st.active), float64(ir.active))
	for i, verb := range cliVerbs {
		s, ir2 := float64(notApplicable), float64(notApplicable)
		if i < len(st.cliSteps) {
			s = secs(st.cliSteps[i].wall)
		}
		if i < len(ir.cliSteps) {
			ir2 = secs(ir.cliSteps[i].wall)
		}
		add(fmt.Sprintf("strata node %s --all --wait: wall", verb), "s", s, ir2)
	}
	cliTotal := func(r *run) float64 {
		if r.cliErr != nil {
			return notApplicable
		}
		return secs(r.cliTotal())
	}
	add("strata CLI walk enroll → active: wall", "s", cliTotal(st), cliTotal(ir))
	addOnly(fmt.Sprintf("CLI walk: nodes active at the end (of %d)", n), "", float64(st.cliActive), float64(ir.cliActive))
	add("peak memory (VmHWM) after create", "MiB", float64(st.peakCreate)/mib, float64(ir.peakCreate)/mib)
	add("peak memory (VmHWM) after walk", "MiB", float64(st.peakWalk)/mib, float64(ir.peakWalk)/mib)
	add(fmt.Sprintf("peak memory (VmHWM) at the end (%d nodes)", 2*n), "MiB", float64(st.peakEnd)/mib, float64(ir.peakEnd)/mib)
	addOnly("etcd writes per node: create (node + port)", "txn", perNode(st.create.writes, n), notApplicable)
	addOnly("etcd writes per node: list detail ×5", "txn", perNode(st.listWrites, n), notApplicable)
	for i, step := range walkSteps {
		addOnly("etcd writes per node: "+step.Verb, "txn", perNode(st.steps[i].writes, n), notApplicable)
	}
	addOnly("etcd writes per node: walk enroll → active", "txn", perNode(st.walk.writes, n), notApplicable)
	add(fmt.Sprintf("stored state after walk (Strata: %s; Ironic: %s)", st.srv.stateName, ir.srv.stateName), "MiB",
		float64(st.stateWalk)/mib, float64(ir.stateWalk)/mib)
	addOnly("etcd live keys + values after walk (no history)", "MiB", float64(st.liveWalk)/mib, notApplicable)
	errCount := func(r *run) float64 {
		e := r.create.errs.Count() + r.walk.errs.Count()
		if r.cliErr != nil {
			e++
		}
		return float64(e)
	}
	addOnly("client errors (create, walk, CLI)", "", errCount(st), errCount(ir))
	addOnly("rest of the machine during the run (client, CLI, others)", "cores", st.otherCPU, ir.otherCPU)
	addOnly("server log lines at ERROR", "", float64(st.logErrors), float64(ir.logErrors))
	addOnly("server log lines at WARN(ING)", "", float64(st.logWarns), float64(ir.logWarns))

	var out bytes.Buffer
	fmt.Fprintf(&out, "\nStrata undercloud vs OpenStack Ironic (Debian %s), %d nodes, API %s, client concurrency %d (create) / %d (walk), poll %s\n\n",
		ironicVersion(), n, version, createConcurrency, walkConcurrency, poll)
	w := tabwriter.NewWriter(&out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, " metric\t unit\t Strata\t Ironic\t Strata/Ironic\t")
	for _, r := range rows {
		ratio := ""
		if !r.noRatio && r.strata >= 0 && r.ironic > 0 {
			ratio = fmt.Sprintf("%.3f", r.strata/r.ironic)
		}
		fmt.Fprintf(w, " %s\t %s\t %s\t %s\t %s\t\n", r.metric, r.unit, value(r.strata), value(r.ironic), ratio)
	}
	w.Flush()
	for _, r := range []*run{st, ir} {
		for _, e := range append(r.create.errs.Samples(), r.walk.errs.Samples()...) {
			fmt.Fprintf(&out, "%s client error: %s\n", r.srv.name, e)
		}
		if r.cliErr != nil {
			fmt.Fprintf(&out, "%s CLI error: %v\n", r.srv.name, r.cliErr)
		}
		for _, l := range r.logSamples {
			fmt.Fprintf(&out, "%s log: %s\n", r.srv.name, l)
		}
	}
	fmt.Fprintln(&out)
	os.Stdout.Write(out.Bytes())
	if path := os.Getenv("STRATA_BENCH_OUT"); path != "" {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			b.Errorf("STRATA_BENCH_OUT: %v", err)
		}
	}

	metric := func(v float64, unit string) {
		if v >= 0 {
			b.ReportMetric(v, unit)
		}
	}
	ratio := func(s, i float64, unit string) {
		if s >= 0 && i > 0 {
			b.ReportMetric(s/i, unit)
		}
	}
	metric(secs(st.create.wall), "strata-create-s")
	metric(secs(ir.create.wall), "ironic-create-s")
	ratio(secs(st.create.wall), secs(ir.create.wall), "create-ratio")
	metric(float64(st.listMedian().Milliseconds()), "strata-list-ms")
	metric(float64(ir.listMedian().Milliseconds()), "ironic-list-ms")
	ratio(secs(st.listMedian()), secs(ir.listMedian()), "list-ratio")
	metric(secs(st.walk.wall), "strata-walk-s")
	metric(secs(ir.walk.wall), "ironic-walk-s")
	ratio(secs(st.walk.wall), secs(ir.walk.wall), "walk-ratio")
	metric(st.walk.rps(), "strata-walk-req/s")
	metric(ir.walk.rps(), "ironic-walk-req/s")
	metric(cliTotal(st), "strata-cliwalk-s")
	metric(cliTotal(ir), "ironic-cliwalk-s")
	metric(float64(st.peakWalk)/mib, "strata-peak-MiB")
	metric(float64(ir.peakWalk)/mib, "ironic-peak-MiB")
	ratio(float64(st.peakWalk), float64(ir.peakWalk), "peak-ratio")
	metric(perNode(st.walk.writes, n), "strata-walk-etcd-writes/node")
	metric(perNode(st.create.writes, n), "strata-create-etcd-writes/node")

	if errCount(st) > 0 || st.active != n || st.cliActive != n {
		b.Errorf("Strata: %v client errors, %d of %d nodes active after the walk, %d of %d after the CLI walk",
			errCount(st), st.active, n, st.cliActive, n)
	}
	if errCount(ir) > 0 || ir.active != n {
		b.Logf("Ironic: %v client errors, %d of %d nodes active after the walk, %d of %d after the CLI walk",
			errCount(ir), ir.active, n, ir.cliActive, n)
	}
}

func value(v float64) string {
	switch {
	case v < 0:
		return "n/a"
	case v == float64(int64(v)) && v < 1e6:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// ironicVersion is the installed ironic-api package's version.
func ironicVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "ironic-api").Output()
	if err != nil {
		return "ironic-api (version unknown)"
	}
	return "ironic-api " + string(out)
}
