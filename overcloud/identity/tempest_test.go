package identity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/internal/etcdtest"
)

// Tempest, OpenStack's own conformance suite (tempest 33.0.0 from Debian),
// against the identity service on a loopback port: every test of
// tempest.api.identity, with dynamic credentials (Tempest creates a
// project and users for each test class through the admin API). A failure
// fails this test unless testdata/tempest-exclude.txt names the test and
// the missing feature it needs; a skip fails it unless the skip is one
// that tempestConf asks for.

const tempestBin = "/usr/bin/tempest"

// tempestRegex selects the tests: all of identity (v3 and admin v3; the
// v2.0 classes skip themselves, see configuredSkips).
const tempestRegex = `^tempest\.api\.identity`

// configuredSkips are the skip reasons that tempestConf causes on
// purpose, each for a feature the service does not have. A skip for any
// other reason is a failure: it would hide tests that should run.
var configuredSkips = []struct{ reason, why string }{
	{"Identity api v2 is not enabled", "the v2.0 API left Keystone in Queens; api_v2 = false"},
	{"Trusts aren't enabled", "trusts (OS-TRUST) are not implemented; trust = false"},
	{"Inherits aren't enabled", "inherited role assignments (OS-INHERIT) are not implemented; not in api_extensions"},
	{"OS-EC2 identity extension not enabled", "EC2 credentials (OS-EC2) are not implemented; not in api_extensions"},
	{"Application credential access rules are not available", "access rules of application credentials are not implemented; access_rules = false"},
	{"Security compliance not available", "PCI-DSS password rules (lockout, history, minimum age) are not implemented; security_compliance = false"},
}

// tempestConf is the workspace's etc/tempest.conf: only keystone is
// available, its one endpoint is public, and every feature flag says
// what the service implements.
var tempestConf = template.Must(template.New("tempest.conf").Parse(`[DEFAULT]
log_dir = {{.Dir}}/logs
log_file = tempest.log

[oslo_concurrency]
lock_path = {{.Dir}}/tempest_lock

[auth]
admin_username = admin
admin_password = {{.Password}}
admin_project_name = admin
admin_domain_name = Default
# A project and users per test class, made through the admin API.
use_dynamic_credentials = true
# No network service: no network, subnet and router per test class.
create_isolated_networks = false

[identity]
# Tempest does no discovery: it posts to {uri_v3}/auth/tokens.
uri_v3 = {{.URL}}/v3
auth_version = v3
region = RegionOne
# The default is adminURL; the catalog has all three, public is the usual.
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false
api_v2_admin = false
api_v3 = true
trust = false
access_rules = false
security_compliance = false
application_credentials = true
project_tags = true
# An explicit list (the default "all" claims every extension). Of those
# Tempest checks, OS-EC2 and OS-INHERIT, neither is implemented.
api_extensions =

[service_available]
nova = false
glance = false
cinder = false
swift = false
neutron = false
horizon = false
`))

func TestTempest(t *testing.T) {
	if _, err := os.Stat(tempestBin); err != nil {
		t.Fatalf("tempest is missing (make deps installs Debian's tempest package): %v", err)
	}
	exclude, err := readTempestExcludes(filepath.Join("testdata", "tempest-exclude.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}

	var logs syncBuffer
	srv, err := New(ctx, Config{
		Etcd:         etcdtest.Run(t),
		PasswordCost: 4,
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(runCtx) }()
	t.Cleanup(func() {
		ts.Close()
		stop()
		<-done
	})
	password := randomHex(16)
	if err := srv.Bootstrap(ctx, Bootstrap{Password: password, PublicURL: ts.URL + "/v3"}); err != nil {
		t.Fatal(err)
	}

	ws := newTempestWorkspace(ctx, t, ts.URL, password)
	start := time.Now()
	results, stderr, runErr := ws.run(ctx, tempestRegex)
	t.Logf("tempest reported %d tests in %s", len(results), time.Since(start).Round(time.Second))
	if len(results) == 0 {
		t.Fatalf("tempest reported no test (%v):\n%s", runErr, tail(stderr, 40))
	}

	v := judgeTempest(results, exclude)
	t.Logf("tempest: %d passed, %d skipped as configured (%d more tests in skipped or excluded classes), %d failed as excluded",
		v.passed, v.skipped, v.notRun, v.excluded)
	for _, p := range v.problems {
		t.Error(p)
	}
	if t.Failed() {
		if l := logs.String(); l != "" {
			t.Logf("identity's warnings and errors:\n%s", tail(l, 60))
		}
	}
}

// tempestExclude is one entry of the exclude list.
type tempestExclude struct {
	re     *regexp.Regexp
	reason string
	line   int
}

// readTempestExcludes reads the exclude list: blank lines and lines
// starting with # are ignored; every other line is "REGEX  # reason",
// and the reason is required.
func readTempestExcludes(path string) ([]tempestExclude, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []tempestExclude
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		expr, reason, _ := strings.Cut(line, "#")
		expr, reason = strings.TrimSpace(expr), strings.TrimSpace(reason)
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: %q gives no reason (REGEX  # the feature it needs)", path, n, expr)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		out = append(out, tempestExclude{re: re, reason: reason, line: n})
	}
	return out, sc.Err()
}

// tempestVerdict sorts the results out.
type tempestVerdict struct {
	passed, skipped, excluded int
	// notRun counts the tests of classes skipped (or excluded) as a whole.
	notRun   int
	problems []string
}

// testClass is the class part of a test id: a.b.Class.test_x[id-..] is
// a.b.Class.
func testClass(id string) string {
	id, _, _ = strings.Cut(id, "[")
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

func judgeTempest(results []testResult, exclude []tempestExclude) tempestVerdict {
	var v tempestVerdict
	// Classes whose fixture ended the class (skipped or failed): their
	// tests are listed ("exists") and never run.
	classDone := map[string]bool{}
	for _, r := range results {
		if class, ok := strings.CutPrefix(r.ID, "setUpClass ("); ok && (r.Status == "skip" || r.Status == "fail") {
			classDone[strings.TrimSuffix(class, ")")] = true
		}
	}
	used := make([]bool, len(exclude))
	excluded := func(id string) (tempestExclude, bool) {
		for i, e := range exclude {
			if e.re.MatchString(id) {
				used[i] = true
				return e, true
			}
		}
		return tempestExclude{}, false
	}
	for _, r := range results {
		e, isExcluded := excluded(r.ID)
		switch r.Status {
		case "success", "xfail":
			if isExcluded {
				v.problems = append(v.problems, fmt.Sprintf("%s passes, but line %d of the exclude list still excludes it (%s): take the entry out", r.ID, e.line, e.reason))
				continue
			}
			v.passed++
		case "skip":
			reason := strings.TrimSpace(r.Files["reason"])
			if !slices.ContainsFunc(configuredSkips, func(s struct{ reason, why string }) bool { return strings.Contains(reason, s.reason) }) {
				v.problems = append(v.problems, fmt.Sprintf("%s was skipped for a reason tempest.conf does not intend: %q", r.ID, reason))
				continue
			}
			v.skipped++
		case "fail", "uxsuccess":
			if isExcluded {
				v.excluded++
				continue
			}
			v.problems = append(v.problems, fmt.Sprintf("%s failed:\n%s", r.ID, tail(r.Files["traceback"], 25)))
		case "exists":
			if classDone[testClass(r.ID)] {
				v.notRun++
				continue
			}
			v.problems = append(v.problems, fmt.Sprintf("%s was listed but never ran", r.ID))
		default:
			v.problems = append(v.problems, fmt.Sprintf("%s ended with status %q", r.ID, r.Status))
		}
	}
	for i, e := range exclude {
		if !used[i] {
			v.problems = append(v.problems, fmt.Sprintf("line %d of the exclude list (%s) matches no test: take it out", e.line, e.re))
		}
	}
	return v
}

// tempestWorkspace is a Tempest workspace (tempest init) in a temporary
// directory, with a HOME of its own so that Tempest's workspace registry
// does not land in the real one.
type tempestWorkspace struct {
	dir  string
	home string
}

func newTempestWorkspace(ctx context.Context, t *testing.T, url, password string) *tempestWorkspace {
	t.Helper()
	root := t.TempDir()
	ws := &tempestWorkspace{dir: filepath.Join(root, "ws"), home: filepath.Join(root, "home")}
	if err := os.Mkdir(ws.home, 0o700); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := ws.command(ctx, root, io.Discard, &stderr, "init", ws.dir).Run(); err != nil {
		t.Fatalf("tempest init: %v\n%s", err, stderr.String())
	}
	var conf bytes.Buffer
	if err := tempestConf.Execute(&conf, map[string]string{"Dir": ws.dir, "URL": url, "Password": password}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws.dir, "etc", "tempest.conf"), conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return ws
}

// command is a tempest command in its own process group, so that the
// stestr workers it starts end with it when ctx ends.
func (ws *tempestWorkspace) command(ctx context.Context, dir string, stdout, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tempestBin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + ws.home,
		"LC_ALL=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs the tests that regex selects, two at a time, and returns their
// results, read from the subunit stream that Tempest writes.
func (ws *tempestWorkspace) run(ctx context.Context, regex string) ([]testResult, string, error) {
	var stdout, stderr bytes.Buffer
	cmd := ws.command(ctx, ws.dir, &stdout, &stderr, "run", "--regex", regex, "--concurrency", "2", "--subunit")
	// Tempest exits non-zero when a test fails: the results tell.
	runErr := cmd.Run()
	results, err := readSubunit(&stdout)
	if err != nil {
		return results, stderr.String(), fmt.Errorf("reading the subunit stream: %w (tempest: %v)", err, runErr)
	}
	return results, stderr.String(), runErr
}

// testResult is one test's outcome in a subunit stream.
type testResult struct {
	ID string
	// Status is the last status reported: success, fail, skip, xfail,
	// uxsuccess (or exists, inprogress if the stream ended early).
	Status string
	// Files are the attachments by name (traceback, reason, ...).
	Files map[string]string
}

// subunit v2 (https://github.com/testing-cabal/subunit, README "Version
// 2"): packets of a signature byte, 16 bits of flags, a varint length of
// the whole packet, optional fields in a fixed order, and a CRC32.
const (
	subunitSignature   = 0xb3
	subunitVersion     = 0x2000
	subunitTestID      = 0x0800
	subunitRouteCode   = 0x0400
	subunitTimestamp   = 0x0200
	subunitTags        = 0x0080
	subunitFileContent = 0x0040
	subunitMimeType    = 0x0020
	subunitStatusMask  = 0x0007
)

var subunitStatuses = [8]string{"", "exists", "inprogress", "success", "uxsuccess", "skip", "fail", "xfail"}

// readSubunit reads a subunit v2 stream to its end and returns the tests
// in the order they first appeared. Bytes between packets that are not
// subunit (stray output) are skipped.
func readSubunit(r io.Reader) ([]testResult, error) {
	br := bufio.NewReader(r)
	byID := map[string]*testResult{}
	var order []string
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if b != subunitSignature {
			continue
		}
		p, err := readSubunitPacket(br)
		if err != nil {
			return nil, err
		}
		if p.testID == "" {
			continue
		}
		res, ok := byID[p.testID]
		if !ok {
			res = &testResult{ID: p.testID, Files: map[string]string{}}
			byID[p.testID] = res
			order = append(order, p.testID)
		}
		if p.status != "" {
			res.Status = p.status
		}
		if p.fileName != "" {
			res.Files[p.fileName] += string(p.fileContent)
		}
	}
	out := make([]testResult, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

type subunitPacket struct {
	testID, status, fileName string
	fileContent              []byte
}

// readSubunitPacket reads the rest of a packet whose signature byte has
// been read.
func readSubunitPacket(br *bufio.Reader) (subunitPacket, error) {
	var p subunitPacket
	head := make([]byte, 3)
	if _, err := io.ReadFull(br, head[:2]); err != nil {
		return p, err
	}
	flags := binary.BigEndian.Uint16(head[:2])
	if flags&0xf000 != subunitVersion {
		return p, fmt.Errorf("subunit: packet version %#x is not 2", flags>>12)
	}
	first, err := br.ReadByte()
	if err != nil {
		return p, err
	}
	lenBytes := []byte{first}
	for range int(first >> 6) {
		b, err := br.ReadByte()
		if err != nil {
			return p, err
		}
		lenBytes = append(lenBytes, b)
	}
	length, _, err := subunitVarint(lenBytes)
	if err != nil {
		return p, err
	}
	headLen := 1 + 2 + len(lenBytes)
	if int(length) < headLen+4 {
		return p, fmt.Errorf("subunit: packet length %d is too short", length)
	}
	rest := make([]byte, int(length)-headLen)
	if _, err := io.ReadFull(br, rest); err != nil {
		return p, err
	}
	crc := crc32.NewIEEE()
	crc.Write([]byte{subunitSignature})
	crc.Write(head[:2])
	crc.Write(lenBytes)
	crc.Write(rest[:len(rest)-4])
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(rest[len(rest)-4:]); got != want {
		return p, fmt.Errorf("subunit: bad checksum %#x, packet says %#x", got, want)
	}
	body := rest[:len(rest)-4]
	d := subunitDecoder{buf: body}
	if flags&subunitTimestamp != 0 {
		d.skip(4)
		d.varint()
	}
	if flags&subunitTestID != 0 {
		p.testID = d.str()
	}
	if flags&subunitTags != 0 {
		for range d.varint() {
			d.str()
		}
	}
	if flags&subunitMimeType != 0 {
		d.str()
	}
	if flags&subunitFileContent != 0 {
		p.fileName = d.str()
		p.fileContent = d.bytes(int(d.varint()))
	}
	if flags&subunitRouteCode != 0 {
		d.str()
	}
	if d.err != nil {
		return p, d.err
	}
	p.status = subunitStatuses[flags&subunitStatusMask]
	return p, nil
}

// subunitVarint decodes a subunit varint: the top two bits of the first
// byte say how many more bytes follow (0 to 3), big-endian.
func subunitVarint(b []byte) (uint32, int, error) {
	if len(b) == 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	n := int(b[0]>>6) + 1
	if len(b) < n {
		return 0, 0, io.ErrUnexpectedEOF
	}
	v := uint32(b[0] & 0x3f)
	for _, x := range b[1:n] {
		v = v<<8 | uint32(x)
	}
	return v, n, nil
}

// subunitDecoder reads the fields of a packet body; the first error
// sticks.
type subunitDecoder struct {
	buf []byte
	err error
}

func (d *subunitDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.buf) {
		d.err = errors.New("subunit: field runs past the end of its packet")
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *subunitDecoder) skip(n int) { d.bytes(n) }

func (d *subunitDecoder) varint() uint32 {
	if d.err != nil {
		return 0
	}
	v, n, err := subunitVarint(d.buf)
	if err != nil {
		d.err = err
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *subunitDecoder) str() string { return string(d.bytes(int(d.varint()))) }

// TestReadSubunit decodes streams written by python-subunit's
// subunit-output (the library stestr and Tempest write with): statuses,
// tags, attachments with and without a MIME type, one larger than a
// two-byte length, and output that is not subunit between packets.
func TestReadSubunit(t *testing.T) {
	const bin = "/usr/bin/subunit-output"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("subunit-output is missing (python3-subunit comes with tempest; make deps): %v", err)
	}
	dir := t.TempDir()
	long := strings.Repeat("Traceback line of a failing test\n", 1000) // 33 kB: a 3-byte length
	files := map[string]string{"traceback.txt": long, "reason.txt": "Trusts aren't enabled"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stream bytes.Buffer
	for _, args := range [][]string{
		{"--inprogress", "a.test_one[id-1,smoke]", "--tag", "worker-0"},
		{"--fail", "a.test_one[id-1,smoke]", "--attach-file", filepath.Join(dir, "traceback.txt"), "--file-name", "traceback", "--mimetype", "text/plain;charset=utf8"},
		{"--skip", "setUpClass (a.B)", "--attach-file", filepath.Join(dir, "reason.txt"), "--file-name", "reason"},
		{"--success", "a.test_two", "--tag", "worker-1"},
	} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("subunit-output %v: %v", args, err)
		}
		stream.Write(out)
		stream.WriteString("stray output\n")
	}
	got, err := readSubunit(&stream)
	if err != nil {
		t.Fatal(err)
	}
	want := []testResult{
		{ID: "a.test_one[id-1,smoke]", Status: "fail", Files: map[string]string{"traceback": long}},
		{ID: "setUpClass (a.B)", Status: "skip", Files: map[string]string{"reason": "Trusts aren't enabled"}},
		{ID: "a.test_two", Status: "success", Files: map[string]string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded stream (-want +got):\n%s", diff)
	}

	// A flipped bit is caught by the checksum.
	good, _ := exec.Command(bin, "--success", "a.test_two").Output()
	bad := bytes.Clone(good)
	bad[len(bad)-6] ^= 0x01
	if _, err := readSubunit(bytes.NewReader(bad)); err == nil {
		t.Error("a corrupted packet was accepted")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
