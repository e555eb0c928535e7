package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// interp runs iPXE scripts the way iPXE does, for the commands the
// undercloud's scripts use and a few more: set, clear, inc, iseq, isset,
// echo, goto, sleep, exit, imgfree, kernel, initrd, boot, chain, sanboot,
// poweroff, and dhcp (which does nothing: the NIC is configured already).
// Settings are expanded in each line before it is split into commands
// joined by || and &&, and a failing command that no || catches ends the
// script with its error, as in iPXE.
type interp struct {
	fw       *firmware
	vars     map[string]string
	fetchers *fetchers
	kernel   *loaded
	initrds  []*loaded
}

// loaded is an image fetched into the machine's boot directory.
type loaded struct {
	url  string
	path string
	size int64
	// args is a kernel's command line.
	args []string
}

// Bounds of what the firmware fetches.
const (
	maxScript  = 1 << 20
	maxLoader  = 32 << 20
	maxKernel  = 256 << 20
	maxInitrd  = 1 << 30
	maxChain   = 8 // nested chains
	defaultGet = 5 * time.Minute
)

// errScriptExit ends a script with exit's status.
type errScriptExit struct{ code int }

func (e errScriptExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// chainURL fetches u and runs it: an iPXE script, or a Linux kernel that
// is booted at once, with args, and the initrds already fetched. It
// returns what was booted, or nil when the script ended without booting
// (exit, or its last line), or the script's error.
func (ip *interp) chainURL(ctx context.Context, u *url.URL, depth int, args ...string) (*target, error) {
	if depth >= maxChain {
		return nil, fmt.Errorf("%s: chains nested more than %d deep", u, maxChain)
	}
	path := filepath.Join(ip.fetchers.dir, "chained")
	n, err := ip.getFile(ctx, u, path, maxKernel, 0)
	if err != nil {
		return nil, err
	}
	if checkKernel(path) == nil {
		ip.kernel = &loaded{url: u.String(), path: path, size: n, args: args}
		return ip.boot()
	}
	b, err := readHead(path, maxScript+1)
	if err != nil {
		return nil, err
	}
	if len(b) > maxScript || !bytes.HasPrefix(b, []byte("#!ipxe")) {
		return nil, fmt.Errorf("%s: not an iPXE script (#!ipxe) nor a Linux kernel", u)
	}
	return ip.run(ctx, u, string(b), depth)
}

var labelRE = regexp.MustCompile(`^:(\S+)`)

// run runs a script fetched from base.
func (ip *interp) run(ctx context.Context, base *url.URL, text string, depth int) (*target, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	labels := map[string]int{}
	for i, l := range lines {
		if m := labelRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			labels[m[1]] = i + 1
		}
	}
	for pc := 0; pc < len(lines); {
		line := strings.TrimSpace(lines[pc])
		pc++
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ":") {
			continue
		}
		cmds, ops := splitLine(ip.expand(line))
		var rc error
		do := true
		for i, words := range cmds {
			if do {
				r := ip.command(ctx, base, words, depth)
				if r.target != nil {
					return r.target, nil
				}
				rc = r.err
				var exit errScriptExit
				if errors.As(rc, &exit) {
					if exit.code == 0 {
						return nil, nil
					}
					return nil, rc
				}
				if r.label != "" {
					next, ok := labels[r.label]
					if !ok {
						rc = fmt.Errorf("goto %s: no such label", r.label)
					} else {
						pc = next
					}
				}
			}
			if i < len(ops) {
				do = (ops[i] == "||") == (rc != nil)
			}
		}
		if rc != nil {
			return nil, rc
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

// splitLine splits a line into its commands' words and the || and &&
// between them.
func splitLine(line string) (cmds [][]string, ops []string) {
	var cur []string
	for _, w := range strings.Fields(line) {
		if w == "||" || w == "&&" {
			cmds = append(cmds, cur)
			ops = append(ops, w)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return append(cmds, cur), ops
}

var settingRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// expand replaces ${name} and ${name:type} by the setting's value; an
// unset setting expands to nothing, as in iPXE.
func (ip *interp) expand(line string) string {
	return settingRE.ReplaceAllStringFunc(line, func(m string) string {
		name, typ, _ := strings.Cut(m[2:len(m)-1], ":")
		name = settingName(name)
		v := ip.vars[name]
		if name == "mac" || strings.HasSuffix(name, "mac") {
			switch typ {
			case "hexhyp":
				return strings.ReplaceAll(v, ":", "-")
			case "hexraw":
				return strings.ReplaceAll(v, ":", "")
			}
		}
		return v
	})
}

// settingName drops a setting's scope (net0/, netX/) and type.
func settingName(s string) string {
	s, _, _ = strings.Cut(s, ":")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// result is what a command did.
type result struct {
	err    error
	target *target
	label  string // goto
}

func fail(format string, args ...any) result { return result{err: fmt.Errorf(format, args...)} }

// command runs one command of a script fetched from base.
func (ip *interp) command(ctx context.Context, base *url.URL, words []string, depth int) result {
	if len(words) == 0 {
		return result{}
	}
	name, args := words[0], words[1:]
	switch name {
	case "echo":
		nl := "\n"
		if len(args) > 0 && args[0] == "-n" {
			nl, args = "", args[1:]
		}
		ip.fw.con.Printf("%s%s", strings.Join(args, " "), nl)
	case "set":
		if len(args) == 0 {
			return fail("set: no setting named")
		}
		ip.vars[settingName(args[0])] = strings.Join(args[1:], " ")
	case "clear":
		if len(args) != 1 {
			return fail("clear: want one setting")
		}
		delete(ip.vars, settingName(args[0]))
	case "inc":
		if len(args) < 1 || len(args) > 2 {
			return fail("inc: want a setting and an optional increment")
		}
		by := 1
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return fail("inc: %q is not a number", args[1])
			}
			by = n
		}
		n, _ := strconv.Atoi(ip.vars[settingName(args[0])])
		ip.vars[settingName(args[0])] = strconv.Itoa(n + by)
	case "iseq":
		if len(args) != 2 {
			return fail("iseq: want two values")
		}
		if args[0] != args[1] {
			return fail("iseq: %q is not %q", args[0], args[1])
		}
	case "isset":
		if len(args) != 1 || args[0] == "" {
			return fail("isset: not set")
		}
	case "goto":
		if len(args) != 1 {
			return fail("goto: want one label")
		}
		return result{label: args[0]}
	case "sleep":
		if len(args) != 1 {
			return fail("sleep: want a number of seconds")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return fail("sleep: %q is not a number of seconds", args[0])
		}
		t := time.NewTimer(time.Duration(n) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return result{err: ctx.Err()}
		}
	case "exit":
		code := 0
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		return result{err: errScriptExit{code}}
	case "imgfree":
		ip.kernel, ip.initrds = nil, nil
	case "dhcp", "ifconf", "ifopen":
		// The NIC was configured before the script was fetched.
	case "kernel", "imgselect", "initrd", "imgfetch", "module", "chain", "imgexec", "boot":
		return ip.image(ctx, base, name, args, depth)
	case "sanboot":
		return ip.sanboot(ctx, args)
	case "poweroff":
		return result{target: &target{action: actionPowerOff}}
	default:
		return fail("%s: command not supported by this firmware", name)
	}
	return result{}
}

// imageOpts are the options of the image commands.
type imageOpts struct {
	timeout time.Duration
	rest    []string
}

// parseOpts reads iPXE's options: the ones that take a value are named in
// withValue. It returns the timeout, and the words after the options.
func parseOpts(args []string, withValue map[string]bool) (imageOpts, error) {
	var o imageOpts
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		opt, val, hasVal := strings.Cut(args[0], "=")
		args = args[1:]
		if withValue[opt] && !hasVal {
			if len(args) == 0 {
				return o, fmt.Errorf("%s: no value", opt)
			}
			val, args = args[0], args[1:]
		}
		if opt == "--timeout" || opt == "-t" {
			ms, err := strconv.Atoi(val)
			if err != nil || ms < 0 {
				return o, fmt.Errorf("--timeout: %q is not a number of milliseconds", val)
			}
			o.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	o.rest = args
	return o, nil
}

var imageValueOpts = map[string]bool{"--name": true, "-n": true, "--timeout": true, "-t": true}

// image runs kernel, initrd, chain and boot and their aliases.
func (ip *interp) image(ctx context.Context, base *url.URL, name string, args []string, depth int) result {
	o, err := parseOpts(args, imageValueOpts)
	if err != nil {
		return fail("%s: %v", name, err)
	}
	if name == "boot" || (name == "imgexec" && len(o.rest) == 0) {
		t, err := ip.boot()
		return result{target: t, err: err}
	}
	if len(o.rest) == 0 {
		return fail("%s: no image named", name)
	}
	u, err := base.Parse(o.rest[0])
	if err != nil {
		return fail("%s: %q is not a URI", name, o.rest[0])
	}
	switch name {
	case "kernel", "imgselect":
		return result{err: ip.fetchKernel(ctx, u, o.rest[1:], o.timeout)}
	case "initrd", "imgfetch", "module":
		return result{err: ip.fetchInitrd(ctx, u, o.timeout)}
	}
	// chain, imgexec: a script returns here when it ends.
	t, err := ip.chainURL(ctx, u, depth+1, o.rest[1:]...)
	return result{target: t, err: err}
}

// fetchKernel fetches the kernel and selects it with its command line.
func (ip *interp) fetchKernel(ctx context.Context, u *url.URL, args []string, timeout time.Duration) error {
	path := filepath.Join(ip.fetchers.dir, "kernel")
	n, err := ip.getFile(ctx, u, path, maxKernel, timeout)
	if err != nil {
		return err
	}
	if err := checkKernel(path); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	ip.kernel = &loaded{url: u.String(), path: path, size: n, args: args}
	return nil
}

// fetchInitrd fetches an initrd; it is checked when the kernel boots.
func (ip *interp) fetchInitrd(ctx context.Context, u *url.URL, timeout time.Duration) error {
	path := filepath.Join(ip.fetchers.dir, fmt.Sprintf("initrd-%d", len(ip.initrds)))
	n, err := ip.getFile(ctx, u, path, maxInitrd, timeout)
	if err != nil {
		return err
	}
	ip.initrds = append(ip.initrds, &loaded{url: u.String(), path: path, size: n})
	return nil
}

// boot boots the selected kernel with the initrds fetched.
func (ip *interp) boot() (*target, error) {
	if ip.kernel == nil {
		return nil, errors.New("boot: no kernel selected")
	}
	img := &osImage{
		kind:    osRamdisk,
		kernel:  ip.kernel.path,
		cmdline: strings.Join(ip.kernel.args, " "),
	}
	for _, i := range ip.initrds {
		img.initrds = append(img.initrds, i.path)
	}
	ip.fw.con.Printf("Booting the kernel (%d bytes) with %d initrd(s): %s\n", ip.kernel.size, len(ip.initrds), img.cmdline)
	return &target{action: actionRun, os: img}, nil
}

var sanbootValueOpts = map[string]bool{"--drive": true, "-d": true, "--filename": true, "-f": true, "--extra": true, "-e": true, "--label": true, "-l": true, "--uuid": true, "-u": true, "--timeout": true, "-t": true}

// sanboot boots a local disk (sanboot without a URI, as the undercloud's
// scripts for active nodes do); booting a SAN target is not supported.
func (ip *interp) sanboot(ctx context.Context, args []string) result {
	drive := 0x80
	for i := 0; i < len(args); i++ {
		if (args[i] == "--drive" || args[i] == "-d") && i+1 < len(args) {
			n, err := strconv.ParseInt(args[i+1], 0, 32)
			if err != nil {
				return fail("sanboot: --drive %q is not a drive number", args[i+1])
			}
			drive = int(n)
		}
	}
	o, err := parseOpts(args, sanbootValueOpts)
	if err != nil {
		return fail("sanboot: %v", err)
	}
	if len(o.rest) > 0 {
		return fail("sanboot: booting %s: SAN boot is not supported by this firmware", o.rest[0])
	}
	if drive < 0x80 {
		return fail("sanboot: drive %#x is not a hard disk", drive)
	}
	ip.fw.con.Printf("Booting from SAN device %#x\n", drive)
	t, err := ip.fw.diskboot(ctx, drive-0x80)
	if err == nil && t == nil {
		err = fmt.Errorf("sanboot: drive %#x is not bootable", drive)
	}
	return result{target: t, err: err}
}
