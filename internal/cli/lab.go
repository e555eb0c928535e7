package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/stratacloud/strata/lab"
)

// labOptions are the flags every lab command has: which lab.
type labOptions struct {
	g        *globalOptions
	Name     string
	StateDir string
}

func (l *labOptions) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&l.Name, "name", "", "the lab's `NAME` (env: STRATA_LAB; default: default, or lab.yaml's name for up)")
	f.StringVar(&l.StateDir, "state-dir", "", "the lab's state `DIR` (default: $STRATA_LAB_DIR/NAME, or /var/lib/strata/lab/NAME)")
}

// name is the lab's name: --name, else fallback (lab.yaml's), else
// $STRATA_LAB, else "default".
func (l *labOptions) name(fallback string) string {
	for _, n := range []string{l.Name, fallback, l.g.host.getenv("STRATA_LAB")} {
		if n != "" {
			return n
		}
	}
	return "default"
}

func (l *labOptions) dir(name string) string {
	if l.StateDir != "" {
		return l.StateDir
	}
	return lab.StateDir(l.g.host.getenv("STRATA_LAB_DIR"), name)
}

func newLabCommand(g *globalOptions) *cobra.Command {
	l := &labOptions{g: g}
	cmd := groupCommand("lab", "Run a virtual datacenter to try Strata on",
		`A lab is a virtual datacenter on this machine: network namespaces and
bridges for the provisioning network (ctlplane, 192.168.24.0/24), a BMC
network (192.168.25.0/24) and the overcloud networks (external,
internal_api, storage, storage_mgmt, tenant); a qemu VM per node that
PXE-boots from ctlplane; a virtual BMC per node (IPMI on UDP 623 and
Redfish on 443 at 192.168.25.10+i); and the undercloud, in a namespace of
its own at 192.168.24.1. The host reaches the undercloud's API through a
forward on 127.0.0.1 (see "strata lab env").

Power and boot devices of the VMs are driven only through their BMCs. A
lab daemon owns it all; "strata lab down" removes everything it made, also
after a crash. Needs root, qemu, ipmitool (make deps).`)
	cmd.Example = `  strata lab up --nodes 2
  eval "$(strata lab env)"
  strata node import /var/lib/strata/lab/default/instackenv.json
  strata node manage --all --wait
  openstack baremetal node power on node-0
  strata lab status
  strata lab console node-0 --follow
  strata lab exec -- ip -br addr
  strata lab down`
	l.addFlags(cmd)
	cmd.AddCommand(
		newLabUpCommand(l),
		newLabDownCommand(l),
		newLabStatusCommand(l),
		newLabConsoleCommand(l),
		newLabEnvCommand(l),
		newLabExecCommand(l),
		newLabRunCommand(l),
	)
	return cmd
}

// ---- lab up

type labUpOptions struct {
	l       *labOptions
	File    string
	Nodes   int
	Timeout time.Duration

	cfg lab.Config
	dir string
}

func newLabUpCommand(l *labOptions) *cobra.Command {
	o := &labUpOptions{l: l}
	cmd := &cobra.Command{
		Use:   "up [FILE]",
		Short: "Bring a lab up",
		Long: `Bring a lab up from a lab.yaml (FILE or --file), or with --nodes N default nodes
(node-0 … alternating IPMI and Redfish BMCs, 1 vCPU, 512 MiB, a 4 GiB
sparse disk, SeaBIOS); with neither, two default nodes. --nodes with --file
replaces the file's nodes.

It starts the lab daemon in the background (its log is daemon.log in the
state directory) and returns when the lab is ready, printing the path of
the lab's instackenv.json and how to point the clients at the undercloud.
On failure it takes down what was built. (-f is the output format, as
for every strata command: give the lab.yaml as FILE or with --file.)

lab.yaml:

  name: demo
  accel: auto                 # auto (KVM only where a probe boot works), tcg, kvm
  bmc: {username: admin}      # password: generated unless given
  undercloud:
    api_port: 0               # port of the API forward on 127.0.0.1; 0: free
    power_sync_interval: 10s
  nodes:
    - name: node-0
      kind: vm                # vm (a qemu VM) or sim (a simulated machine:
                              # real network boot, the agent run as a process
                              # against the node's rendered hardware; no CPU)
      cpus: 1
      memory_mb: 512
      disks: [{size: 4GiB, serial: node-0-disk0}]
      nics: [ctlplane, internal_api]   # the first NIC PXE-boots, on ctlplane
      firmware: bios          # bios (SeaBIOS) or uefi (OVMF)
      bmc: ipmi               # ipmi or redfish`,
		Example: `  strata lab up --nodes 2
  strata lab up lab.yaml
  strata lab up --name ci --nodes 4 -f json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("expected at most one lab.yaml, got %d arguments", len(args))
			}
			return nil
		},
	}
	cmd.RunE = runE(l.g, o)
	f := cmd.Flags()
	f.StringVar(&o.File, "file", "", "the lab.yaml `FILE` to bring up")
	f.IntVar(&o.Nodes, "nodes", 0, "bring up `N` default nodes (instead of the file's)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for the lab to be ready")
	return cmd
}

func (o *labUpOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		if o.File != "" {
			return usageErrorf("give the lab.yaml as FILE or with --file, not both")
		}
		o.File = args[0]
	}
	if o.File != "" {
		cfg, err := lab.LoadConfig(o.File)
		if err != nil {
			return usageErrorf("--file: %v", err)
		}
		o.cfg = cfg
	}
	if o.Nodes > 0 || (o.File == "" && !cmd.Flags().Changed("nodes")) {
		n := o.Nodes
		if n == 0 {
			n = 2
		}
		o.cfg.Nodes = lab.DefaultNodes(n)
	}
	o.cfg.Name = o.l.name(o.cfg.Name)
	o.dir = o.l.dir(o.cfg.Name)
	return nil
}

func (o *labUpOptions) Validate() error {
	if o.Nodes < 0 || o.Nodes > lab.MaxNodes {
		return usageErrorf("--nodes: %d is not between 1 and %d", o.Nodes, lab.MaxNodes)
	}
	if o.Timeout <= 0 {
		return usageErrorf("--timeout: must be more than zero")
	}
	cfg := o.cfg
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("a lab needs root (network namespaces, bridges, taps)")
	}
	return nil
}

func (o *labUpOptions) Run(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	daemon := exec.Command(exe, "lab", "run", "--state-dir", o.dir)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st, err := lab.Launch(ctx, o.cfg, o.dir, daemon)
	if err != nil {
		if errors.Is(err, lab.ErrUp) {
			return err
		}
		fmt.Fprintf(o.l.g.streams.ErrOut, "strata: lab up failed; taking down what was built\n")
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer dcancel()
		if derr := lab.Down(dctx, o.dir, nil); derr != nil {
			err = fmt.Errorf("%w\n(and lab down: %v)", err, derr)
		}
		return err
	}
	path := lab.InstackenvPath(o.dir)
	out := o.l.g.streams.Out
	switch o.l.g.Format {
	case formatJSON, formatYAML:
		return printData(out, o.l.g.Format, map[string]any{
			"name": st.Name, "prefix": st.Prefix, "state_dir": o.dir, "instackenv": path,
			"api_url": st.APIURL, "undercloud_url": st.UndercloudURL, "accel": st.Accel,
			"nodes": len(st.Nodes), "test_image_url": st.TestImageURL, "test_image_sha256": st.TestImageSHA256,
		})
	case formatValue:
		fmt.Fprintln(out, path)
		return nil
	}
	envCmd := "strata lab env"
	if st.Name != "default" {
		envCmd += " --name " + st.Name
	}
	if o.l.StateDir != "" {
		envCmd += " --state-dir " + o.dir
	}
	nodes := fmt.Sprintf("%d nodes", len(st.Nodes))
	if len(st.Nodes) == 1 {
		nodes = "1 node"
	}
	fmt.Fprintf(out, "Lab %s is up: %s (%s), namespaces %s-net, %s-uc, %s-bmc.\n",
		st.Name, nodes, st.Accel, st.Prefix, st.Prefix, st.Prefix)
	fmt.Fprintf(out, "Undercloud API: %s (%s inside the lab)\n", st.APIURL, st.UndercloudURL)
	fmt.Fprintf(out, "instackenv.json: %s\n\n", path)
	fmt.Fprintf(out, "Point the clients at the undercloud, then enroll the nodes:\n")
	fmt.Fprintf(out, "  eval \"$(%s)\"\n  strata node import %s\n  strata node manage --all --wait\n", envCmd, path)
	return nil
}

// printData writes v as JSON or YAML.
func printData(w io.Writer, format string, v any) error {
	if format == formatYAML {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var m any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(m); err != nil {
			return err
		}
		return enc.Close()
	}
	return writeJSON(w, v)
}

// ---- lab down

type labDownOptions struct {
	l   *labOptions
	dir string
}

func newLabDownCommand(l *labOptions) *cobra.Command {
	o := &labDownOptions{l: l}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Take a lab down, removing everything it made",
		Long: `Stop the lab daemon (which stops the VMs and the undercloud), then remove
every namespace, interface and process the lab's state file lists, even if
the daemon had crashed or was killed, and the state directory with the
disks and logs. Taking down a lab that is not up does nothing.`,
		Example: `  strata lab down
  strata lab down --name ci`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(l.g, o)
	return cmd
}

func (o *labDownOptions) Complete(*cobra.Command, []string) error {
	o.dir = o.l.dir(o.l.name(""))
	return nil
}

func (o *labDownOptions) Validate() error { return nil }

func (o *labDownOptions) Run(ctx context.Context) error {
	if _, err := os.Stat(o.dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(o.l.g.streams.Out, "Lab %s is not up.\n", o.l.name(""))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err := lab.Down(ctx, o.dir, func(msg string) { fmt.Fprintln(o.l.g.streams.ErrOut, msg) })
	if err != nil {
		return err
	}
	fmt.Fprintf(o.l.g.streams.Out, "Lab %s is down.\n", o.l.name(""))
	return nil
}

// ---- lab status

type labStatusOptions struct {
	l   *labOptions
	dir string
}

func newLabStatusCommand(l *labOptions) *cobra.Command {
	o := &labStatusOptions{l: l}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a lab's networks, nodes, power states, BMCs and processes",
		Long: `Show the lab's phase, its daemon and undercloud processes, its networks
(subnet, bridge, the undercloud's address) and its nodes: power (on while
the node's qemu runs), qemu's PID, BMC type and address, MACs, firmware.`,
		Example: `  strata lab status
  strata lab status -f json`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(l.g, o)
	return cmd
}

func (o *labStatusOptions) Complete(*cobra.Command, []string) error {
	o.dir = o.l.dir(o.l.name(""))
	return nil
}

func (o *labStatusOptions) Validate() error { return nil }

func (o *labStatusOptions) Run(context.Context) error {
	st, err := lab.LoadStatus(o.dir)
	if err != nil {
		return err
	}
	out := o.l.g.streams.Out
	nodes := make([]map[string]any, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		bmcURL := n.BMCAddr + ":623"
		if n.BMC == lab.BMCRedfish {
			bmcURL = "https://" + n.BMCAddr + "/redfish/v1/Systems/" + n.Name
		}
		nodes = append(nodes, map[string]any{
			"name": n.Name, "power": n.Power, "pid": n.PID, "bmc": n.BMC, "bmc_address": bmcURL,
			"macs": n.MACs, "networks": n.Networks, "firmware": n.Firmware, "console": n.Console,
		})
	}
	if o.l.g.Format == formatJSON || o.l.g.Format == formatYAML {
		var uc any
		if st.Undercloud != nil {
			uc = st.Undercloud.PID
		}
		nets := make([]map[string]any, 0, len(lab.Networks))
		for _, n := range lab.Networks {
			nets = append(nets, map[string]any{"name": n.Name, "subnet": n.Subnet.String(), "bridge": n.Bridge(), "undercloud": addrOrNone(n)})
		}
		return printData(out, o.l.g.Format, map[string]any{
			"name": st.Name, "prefix": st.Prefix, "phase": st.Phase, "error": st.Error,
			"daemon_pid": st.Daemon.PID, "daemon_running": st.DaemonRunning, "accel": st.Accel,
			"undercloud_pid": uc, "api_url": st.APIURL, "undercloud_url": st.UndercloudURL,
			"test_image_url": st.TestImageURL, "test_image_sha256": st.TestImageSHA256,
			"namespaces": st.Namespaces, "networks": nets, "nodes": nodes,
		})
	}
	daemon := "not running"
	if st.DaemonRunning {
		daemon = fmt.Sprintf("pid %d", st.Daemon.PID)
	}
	fmt.Fprintf(out, "Lab %s (%s): %s, daemon %s, accel %s\n", st.Name, st.Prefix, st.Phase, daemon, st.Accel)
	if st.Error != "" {
		fmt.Fprintf(out, "Error: %s\n", st.Error)
	}
	uc := "not running"
	if st.Undercloud != nil {
		uc = fmt.Sprintf("pid %d", st.Undercloud.PID)
	}
	fmt.Fprintf(out, "Undercloud: %s at %s, reached from the host at %s\n", uc, st.UndercloudURL, st.APIURL)
	if st.TestImageURL != "" {
		fmt.Fprintf(out, "Test image: %s (sha256 %s)\n", st.TestImageURL, st.TestImageSHA256)
	}
	fmt.Fprintf(out, "Namespaces: %s\n\n", strings.Join(st.Namespaces, ", "))
	var netRows [][]string
	for _, n := range lab.Networks {
		netRows = append(netRows, []string{n.Name, n.Subnet.String(), n.Bridge(), addrOrNone(n)})
	}
	if err := writeTable(out, []string{"Network", "Subnet", "Bridge", "Undercloud"}, netRows); err != nil {
		return err
	}
	var rows [][]string
	for _, n := range nodes {
		pid := ""
		if p := n["pid"].(int); p > 0 {
			pid = fmt.Sprint(p)
		}
		rows = append(rows, []string{n["name"].(string), n["power"].(string), pid, n["bmc"].(string), n["bmc_address"].(string),
			strings.Join(n["macs"].([]string), "\n"), n["firmware"].(string)})
	}
	return writeTable(out, []string{"Node", "Power", "PID", "BMC", "BMC Address", "MACs", "Firmware"}, rows)
}

func addrOrNone(n lab.Network) string {
	if !n.Undercloud.IsValid() {
		return ""
	}
	return n.Undercloud.String()
}

// ---- lab console

type labConsoleOptions struct {
	l      *labOptions
	Node   string
	Follow bool

	path string
}

func newLabConsoleCommand(l *labOptions) *cobra.Command {
	o := &labConsoleOptions{l: l}
	cmd := &cobra.Command{
		Use:   "console NODE",
		Short: "Print a node's serial console",
		Long: `Print what a node's serial console has written (firmware, iPXE, the
kernel), across its power cycles; with --follow, keep printing what it
writes until interrupted.`,
		Example: `  strata lab console node-0
  strata lab console node-0 --follow`,
		Args: exactArgs(1),
	}
	cmd.RunE = runE(l.g, o)
	cmd.Flags().BoolVar(&o.Follow, "follow", false, "keep printing the console as it is written")
	return cmd
}

func (o *labConsoleOptions) Complete(_ *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

func (o *labConsoleOptions) Validate() error { return nil }

func (o *labConsoleOptions) Run(ctx context.Context) error {
	st, err := lab.LoadState(o.l.dir(o.l.name("")))
	if err != nil {
		return err
	}
	n, ok := st.Node(o.Node)
	if !ok {
		names := make([]string, len(st.Nodes))
		for i, n := range st.Nodes {
			names[i] = n.Name
		}
		return usageErrorf("lab %s has no node %q; its nodes: %s", st.Name, o.Node, strings.Join(names, ", "))
	}
	f, err := os.Open(n.Console)
	if errors.Is(err, os.ErrNotExist) {
		if !o.Follow {
			return nil // never powered on
		}
	} else if err != nil {
		return err
	}
	copyNew := func() error {
		if f == nil {
			if f, err = os.Open(n.Console); err != nil {
				return nil // not written yet
			}
		}
		_, err := io.Copy(o.l.g.streams.Out, f)
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if err := copyNew(); err != nil || !o.Follow {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if err := copyNew(); err != nil {
			return err
		}
	}
}

// ---- lab env

type labEnvOptions struct {
	l *labOptions
}

func newLabEnvCommand(l *labOptions) *cobra.Command {
	o := &labEnvOptions{l: l}
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print the shell exports that point the clients at the lab's undercloud",
		Long: `Print OS_AUTH_TYPE, OS_ENDPOINT, OS_USERNAME and OS_PASSWORD for the
lab's undercloud (http_basic, through the forward on 127.0.0.1), as shell
exports: both strata and the openstack CLI use them.`,
		Example: `  eval "$(strata lab env)"
  openstack baremetal node list`,
		Args: exactArgs(0),
	}
	cmd.RunE = runE(l.g, o)
	return cmd
}

func (o *labEnvOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *labEnvOptions) Validate() error                         { return nil }

func (o *labEnvOptions) Run(context.Context) error {
	env, err := lab.Env(o.l.dir(o.l.name("")))
	if err != nil {
		return err
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(o.l.g.streams.Out, "export %s=%s\n", k, shellQuote(v))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ---- lab exec

type labExecOptions struct {
	l    *labOptions
	Args []string
}

func newLabExecCommand(l *labOptions) *cobra.Command {
	o := &labExecOptions{l: l}
	cmd := &cobra.Command{
		Use:   "exec -- COMMAND [ARG...]",
		Short: "Run a command in the undercloud's network namespace",
		Long: `Run a command in the undercloud's network namespace, where the lab's
networks are: ctlplane 192.168.24.1, bmc 192.168.25.1 (the BMCs at
192.168.25.10+i), external 10.0.0.1. The OS_* variables point the clients
at the undercloud's API there. The exit status is the command's.`,
		Example: `  strata lab exec -- ip -br addr
  strata lab exec -- openstack baremetal node list
  strata lab exec -- ipmitool -I lanplus -H 192.168.25.10 -U admin -P PASSWORD power status`,
		Args: minArgs(1),
	}
	cmd.RunE = runE(l.g, o)
	return cmd
}

func (o *labExecOptions) Complete(_ *cobra.Command, args []string) error {
	o.Args = args
	return nil
}

func (o *labExecOptions) Validate() error { return nil }

func (o *labExecOptions) Run(ctx context.Context) error {
	s := o.l.g.streams
	code, err := lab.Exec(ctx, o.l.dir(o.l.name("")), o.Args, s.In, s.Out, s.ErrOut)
	if err != nil {
		return err
	}
	if code != 0 {
		return &silentError{code: code}
	}
	return nil
}

// ---- lab run (the daemon)

type labRunOptions struct {
	l   *labOptions
	dir string
}

func newLabRunCommand(l *labOptions) *cobra.Command {
	o := &labRunOptions{l: l}
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "Run the lab daemon (started by lab up)",
		Example: `  strata lab run --state-dir /var/lib/strata/lab/default`,
		Hidden:  true,
		Args:    exactArgs(0),
	}
	cmd.RunE = runE(l.g, o)
	return cmd
}

func (o *labRunOptions) Complete(*cobra.Command, []string) error {
	o.dir = o.l.StateDir
	return nil
}

func (o *labRunOptions) Validate() error {
	if o.dir == "" {
		return usageErrorf("--state-dir: required")
	}
	return nil
}

func (o *labRunOptions) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(o.l.g.streams.ErrOut, nil))
	return lab.Run(ctx, o.dir, log)
}
