// Package cli is the strata command line: the operator's commands for the
// undercloud's node inventory (enroll, inspect, provide, deploy, power,
// ports), talking to the undercloud's Ironic-compatible API through
// gophercloud's bare metal client.
//
// Each command is an options struct with Complete, Validate and Run, its
// flags bound to the struct and its IO streams injected, so that the whole
// CLI runs in-process from tests and from testscript through Execute.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// IOStreams are the standard streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Exit codes of Execute.
const (
	ExitOK    = 0
	ExitError = 1 // the command ran and failed, or the API refused it
	ExitUsage = 2 // bad flags or arguments; nothing was sent to the API
)

// host is what the CLI takes from the process it runs in. Tests replace it
// so that a developer's own OS_* variables, terminal and clock do not leak
// into them.
type host struct {
	lookupEnv func(string) (string, bool)
	clock     clock
	// isTerminal reports whether w is an interactive terminal, which turns
	// line-per-change progress into a live progress line.
	isTerminal func(w io.Writer) bool
}

func defaultHost() *host {
	return &host{
		lookupEnv:  os.LookupEnv,
		clock:      realClock{},
		isTerminal: isTerminal,
	}
}

func (h *host) getenv(k string) string {
	v, _ := h.lookupEnv(k)
	return v
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0
}

// Execute runs the strata command line with args (without the program
// name) and returns the process exit code. It never calls os.Exit, so it
// can be called from tests and registered as a testscript command.
func Execute(ctx context.Context, args []string, streams IOStreams) int {
	return execute(ctx, args, streams, defaultHost())
}

func execute(ctx context.Context, args []string, streams IOStreams, h *host) int {
	root := newRootCommand(streams, h)
	root.SetArgs(normalizeArgs(args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	return reportError(streams.ErrOut, cmd, err)
}

// reportError prints err the way every strata command does and returns
// the exit code for it.
func reportError(w io.Writer, cmd *cobra.Command, err error) int {
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	fmt.Fprintf(w, "strata: %s\n", describeError(err))
	var usage *usageError
	if errors.As(err, &usage) {
		if cmd != nil {
			fmt.Fprintf(w, "See '%s --help'.\n", cmd.CommandPath())
		}
		return ExitUsage
	}
	return ExitError
}

// usageError is bad input on the command line: nothing was sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// silentError ends a command with an exit code after the command has
// already told the user what went wrong.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

var waitValueRE = regexp.MustCompile(`^[0-9]+$`)

// normalizeArgs lets "--wait 600" mean "--wait=600", as the openstack CLI
// does: --wait takes an optional number of seconds, and a bare number after
// it is that number, not a node name.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == "--wait" && i+1 < len(args) && waitValueRE.MatchString(args[i+1]) {
			out = append(out, "--wait="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

const rootLong = `strata manages a Strata installation: the undercloud's inventory of
bare-metal nodes (enroll, inspect, clean, deploy), their power and boot
devices, and their network ports (node, port); the identity service's
projects, users, roles and tokens (token, project, user, role, ...); and
labs, virtual datacenters on this machine (lab).

The undercloud's API is Ironic-compatible and the identity service's is
Keystone v3-compatible; strata finds them the way the openstack CLI does:
from a clouds.yaml entry named by --os-cloud or OS_CLOUD, or from OS_*
environment variables.

Environment:
  OS_CLOUD                  name of the clouds.yaml entry to use (--os-cloud)
  OS_CLIENT_CONFIG_FILE     clouds.yaml to read instead of the usual places:
                            ./clouds.yaml, ~/.config/openstack/clouds.yaml,
                            /etc/openstack/clouds.yaml
  OS_AUTH_TYPE              none, http_basic, password, token or
                            v3applicationcredential; default: password when
                            OS_AUTH_URL is set, none otherwise
  OS_ENDPOINT               the bare metal API, e.g. http://192.168.24.1:6385
                            (--os-endpoint; required with none and http_basic)
  OS_USERNAME, OS_PASSWORD  credentials for http_basic and password
  OS_AUTH_URL               the identity (keystone) endpoint for password,
                            token and application credentials; with
                            OS_PROJECT_NAME or OS_PROJECT_ID,
                            OS_USER_DOMAIN_NAME or OS_USER_DOMAIN_ID,
                            OS_PROJECT_DOMAIN_NAME or OS_PROJECT_DOMAIN_ID,
                            OS_REGION_NAME, OS_INTERFACE, OS_TOKEN,
                            OS_APPLICATION_CREDENTIAL_ID and
                            OS_APPLICATION_CREDENTIAL_SECRET
  OS_CACERT, OS_INSECURE    TLS: a CA bundle, or "true" to skip verification
  OS_BAREMETAL_API_VERSION  API microversion to request, e.g. 1.78, or
                            "latest" (default): the highest that both strata
                            (1.87) and the server support
  STRATA_POLL_INTERVAL      how often --wait polls a node (default 2s)

Exit status: 0 on success, 1 when the command or the API failed (for a
command on many nodes: when any node failed), 2 for bad flags or arguments.`

// globalOptions are the flags every command has, and what a command needs
// to reach the API and print its results.
type globalOptions struct {
	streams IOStreams
	host    *host

	Cloud      string
	Endpoint   string
	APIVersion string
	Format     string
	Columns    []string
	// Registry is the undercloud's OCI registry, for the container
	// commands.
	Registry string

	conn *connection
}

func (g *globalOptions) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.Cloud, "os-cloud", "", "the clouds.yaml entry `CLOUD` to use (env: OS_CLOUD)")
	f.StringVar(&g.Endpoint, "os-endpoint", "", "bare metal API endpoint `URL`, e.g. http://192.168.24.1:6385 (env: OS_ENDPOINT)")
	f.StringVar(&g.APIVersion, "os-baremetal-api-version", "", "API microversion `VERSION`, e.g. 1.78, or \"latest\" (env: OS_BAREMETAL_API_VERSION)")
	f.StringVarP(&g.Format, "format", "f", formatTable, "output `FORMAT`: table, json, yaml or value")
	f.StringArrayVarP(&g.Columns, "column", "c", nil, "show only this `COLUMN` (repeat for more): a field name (provision_state) or a heading (\"Provisioning State\")")
}

// validate checks the global flags; every command calls it.
func (g *globalOptions) validate() error {
	switch g.Format {
	case formatTable, formatJSON, formatYAML, formatValue:
	default:
		return usageErrorf("--format: %q is not one of table, json, yaml, value", g.Format)
	}
	if v := g.apiVersion(); v != "" && v != "latest" {
		if _, err := parseMicroversion(v); err != nil {
			return usageErrorf("--os-baremetal-api-version: %v", err)
		}
	}
	if _, err := g.pollInterval(); err != nil {
		return usageErrorf("STRATA_POLL_INTERVAL: %v", err)
	}
	return nil
}

func (g *globalOptions) apiVersion() string {
	if g.APIVersion != "" {
		return g.APIVersion
	}
	return g.host.getenv("OS_BAREMETAL_API_VERSION")
}

const defaultPollInterval = 2 * time.Second

func (g *globalOptions) pollInterval() (time.Duration, error) {
	s := g.host.getenv("STRATA_POLL_INTERVAL")
	if s == "" {
		return defaultPollInterval, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 2s or 500ms", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be more than zero", s)
	}
	return d, nil
}

func (g *globalOptions) printer() *printer {
	return &printer{out: g.streams.Out, format: g.Format, columns: g.Columns}
}

// command is what every strata command's options struct provides.
type command interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE adapts an options struct to cobra: Complete, Validate, Run.
func runE(g *globalOptions, o command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := g.validate(); err != nil {
			return err
		}
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// NewRootCommand returns the strata command with all its subcommands,
// reading from and writing to streams.
func NewRootCommand(streams IOStreams) *cobra.Command {
	return newRootCommand(streams, defaultHost())
}

func newRootCommand(streams IOStreams, h *host) *cobra.Command {
	g := &globalOptions{streams: streams, host: h}
	root := groupCommand("strata", "Install and run a bare-metal cloud", rootLong)
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	g.addFlags(root)
	root.AddCommand(newNodeCommand(g), newPortCommand(g), newLabCommand(g), newImageCommand(g), newOvercloudCommand(g), newContainerCommand(g))
	root.AddCommand(identityCommands(g)...)
	return root
}

// groupCommand is a command that only holds subcommands: run bare, it
// prints its help; run with an unknown subcommand, it says so.
func groupCommand(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:                        use,
		Short:                      short,
		Long:                       long,
		SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
			}
			return &usageError{msg: msg}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
}

// exactArgs requires n positional arguments, named in the usage line.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("expected %d argument(s), got %d; usage: %s", n, len(args), cmd.UseLine())
		}
		return nil
	}
}

// minArgs requires at least n positional arguments.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("expected at least %d argument(s), got %d; usage: %s", n, len(args), cmd.UseLine())
		}
		return nil
	}
}

// anyArgs accepts any positional arguments; the command checks them.
func anyArgs(*cobra.Command, []string) error { return nil }
