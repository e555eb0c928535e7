// Package ipxe renders the iPXE scripts that tell a network-booting machine
// what to do: boot a kernel and a ramdisk, boot from its local disk, leave
// the network boot to the firmware, or chain to another script.
//
// Scripts come from Go templates (scripts.tmpl) and are golden-tested. Every
// value that goes into a script is checked first: iPXE expands ${...} and
// treats ||, && and line breaks as syntax, so a value carrying them could
// change what the script does. Render refuses such values instead of
// escaping them.
package ipxe

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/template"
)

// Action is what a script makes the machine do.
type Action int

// Actions.
const (
	// Exit leaves iPXE, so that the firmware goes on to its next boot
	// device. It does not loop: the script fetches nothing.
	Exit Action = iota
	// Ramdisk fetches a kernel and an initrd and boots them, retrying
	// failed fetches with a growing delay; after Attempts it gives up with
	// poweroff (or exit where iPXE lacks poweroff, as Debian's does).
	Ramdisk
	// LocalDisk boots the first local disk: in BIOS mode with
	// `sanboot --no-describe --drive 0x80` (and exit if that fails), in
	// UEFI mode with exit, which hands control back to the UEFI boot
	// manager and its next boot entry (sanboot's drive numbers are a BIOS
	// INT 13h notion).
	LocalDisk
	// Chain fetches and runs another script, retrying like Ramdisk.
	Chain
)

func (a Action) String() string {
	switch a {
	case Exit:
		return "exit"
	case Ramdisk:
		return "ramdisk"
	case LocalDisk:
		return "local-disk"
	case Chain:
		return "chain"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// BootMode is the firmware interface the machine boots with.
type BootMode string

// Boot modes, with Ironic's names.
const (
	BIOS BootMode = "bios"
	UEFI BootMode = "uefi"
)

// DefaultAttempts is how many times a script tries its fetches before it
// gives up. With delays of 1, 2, 3, ... seconds, ten attempts take about
// 45 seconds plus the fetches.
const DefaultAttempts = 10

// Script is what to render. Which fields matter depends on Action.
type Script struct {
	Action Action
	// Title says, in one line, which machine this is for and why it does
	// what it does. It is written as the script's comment and echoed on
	// the machine's console.
	Title string

	// Kernel and Initrd are the URLs of the kernel and the initrd
	// (Ramdisk).
	Kernel, Initrd string
	// Args is the kernel command line (Ramdisk), one parameter each. The
	// script adds initrd=<name> itself, which the Linux EFI stub needs to
	// find the initrd iPXE loaded.
	Args []string

	// URL is the script to chain to (Chain). It may use iPXE settings
	// such as ${mac:hexhyp}, expanded by iPXE on the machine.
	URL string

	// BootMode picks how LocalDisk boots the disk; empty means BIOS.
	BootMode BootMode

	// Attempts is how many times fetches are tried before the script
	// gives up (Ramdisk, Chain); 0 means DefaultAttempts.
	Attempts int
	// Timeout, in milliseconds, bounds each fetch (iPXE's --timeout);
	// 0 leaves iPXE's default.
	Timeout int
}

// ErrInvalid is returned, wrapped, for a script that can not be rendered
// safely; the message names the field.
var ErrInvalid = errors.New("invalid script")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

//go:embed scripts.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).ParseFS(templateFS, "scripts.tmpl"))

// Render writes s as an iPXE script to w.
func Render(w io.Writer, s Script) error {
	if err := s.validate(); err != nil {
		return err
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultAttempts
	}
	if s.BootMode == "" {
		s.BootMode = BIOS
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, s.Action.String(), s); err != nil {
		return fmt.Errorf("rendering the %s script: %w", s.Action, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Bytes renders s and returns the script.
func Bytes(s Script) ([]byte, error) {
	var buf bytes.Buffer
	if err := Render(&buf, s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Script) validate() error {
	if err := checkText("title", s.Title); err != nil {
		return err
	}
	if s.Attempts < 0 || s.Attempts > 1000 {
		return invalid("attempts", "%d is not between 0 and 1000", s.Attempts)
	}
	if s.Timeout < 0 {
		return invalid("timeout", "%d is negative", s.Timeout)
	}
	switch s.Action {
	case Exit:
	case Ramdisk:
		if err := checkURL("kernel", s.Kernel, false); err != nil {
			return err
		}
		if err := checkURL("initrd", s.Initrd, false); err != nil {
			return err
		}
		for i, a := range s.Args {
			if err := checkArg(fmt.Sprintf("args[%d]", i), a); err != nil {
				return err
			}
		}
	case LocalDisk:
		switch s.BootMode {
		case "", BIOS, UEFI:
		default:
			return invalid("boot mode", "%q is neither %q nor %q", s.BootMode, BIOS, UEFI)
		}
	case Chain:
		if err := checkURL("url", s.URL, true); err != nil {
			return err
		}
	default:
		return invalid("action", "unknown action %d", int(s.Action))
	}
	return nil
}

// checkText accepts text for comments and echo: printable, and free of what
// iPXE would expand or parse as an operator.
func checkText(field, s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "%q contains a control character", s)
		}
	}
	if strings.ContainsAny(s, "$|&#\\\"'") {
		return invalid(field, "%q contains one of $ | & # \\ \" '", s)
	}
	return nil
}

// checkArg accepts one kernel parameter: no spaces, and nothing iPXE would
// expand or parse.
func checkArg(field, s string) error {
	if s == "" {
		return invalid(field, "is empty")
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return invalid(field, "%q contains a space or a control character", s)
		}
	}
	if strings.ContainsAny(s, "$|&#\\\"'") {
		return invalid(field, "%q contains one of $ | & # \\ \" '", s)
	}
	return nil
}

// checkURL accepts an http, https or tftp URL with a host. With settings,
// the URL may use iPXE settings (${name} or ${name:type}), which iPXE
// expands on the machine.
func checkURL(field, s string, settings bool) error {
	if s == "" {
		return invalid(field, "is empty")
	}
	plain := s
	if settings {
		var err error
		if plain, err = withoutSettings(s); err != nil {
			return invalid(field, "%q: %v", s, err)
		}
	}
	if err := checkArg(field, plain); err != nil {
		return err
	}
	u, err := url.Parse(plain)
	if err != nil {
		return invalid(field, "%q is not a URL", s)
	}
	switch u.Scheme {
	case "http", "https", "tftp":
	default:
		return invalid(field, "%q is not an http, https or tftp URL", s)
	}
	if u.Host == "" {
		return invalid(field, "%q has no host", s)
	}
	return nil
}

// withoutSettings replaces each ${name} in s with a plain token, refusing
// settings whose names are not made of letters, digits and -_.:/ .
func withoutSettings(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", errors.New("unterminated ${")
		}
		name := s[i+2 : i+j]
		if name == "" {
			return "", errors.New("empty ${}")
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/", r)) {
				return "", fmt.Errorf("setting %q has a character other than letters, digits and -_.:/", name)
			}
		}
		b.WriteString(s[:i])
		b.WriteString("setting")
		s = s[i+j+1:]
	}
}
