// Package ipxetest checks iPXE scripts in tests: a strict reading of iPXE's
// script syntax that catches what a template change can break (an unknown
// command, a goto without its label, a fetch without error handling, an
// unbalanced ${...}) before a machine runs the script.
package ipxetest

import (
	"errors"
	"fmt"
	"strings"
)

// commands are the iPXE commands Strata's scripts may use.
var commands = map[string]bool{
	"boot": true, "chain": true, "dhcp": true, "echo": true, "exit": true,
	"goto": true, "ifconf": true, "imgargs": true, "imgexec": true,
	"imgfetch": true, "imgfree": true, "imgselect": true, "inc": true,
	"initrd": true, "iseq": true, "isset": true, "kernel": true,
	"poweroff": true, "prompt": true, "reboot": true, "sanboot": true,
	"set": true, "sleep": true,
}

// fetches are the commands that can fail for reasons outside the script
// (the network, the server): each must have a || handler.
var fetches = map[string]bool{
	"boot": true, "chain": true, "imgexec": true, "imgfetch": true,
	"initrd": true, "kernel": true, "sanboot": true,
}

// Check reports the first problem in script, or nil.
func Check(script []byte) error {
	lines := strings.Split(string(script), "\n")
	if len(lines) == 0 || lines[0] != "#!ipxe" {
		return errors.New(`line 1: a script starts with "#!ipxe"`)
	}
	labels := map[string]bool{}
	type jump struct {
		line  int
		label string
	}
	var gotos []jump
	for i, raw := range lines[1:] {
		n := i + 2
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, ":") {
			name := line[1:]
			if !isName(name) {
				return fmt.Errorf("line %d: %q is not a label", n, line)
			}
			if labels[name] {
				return fmt.Errorf("line %d: label %q is defined twice", n, name)
			}
			labels[name] = true
			continue
		}
		if err := checkSettings(line); err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		// Split into commands at the operators.
		var cmds [][]string
		var ops []string
		cur := []string{}
		for _, f := range strings.Fields(line) {
			if f == "||" || f == "&&" {
				cmds = append(cmds, cur)
				ops = append(ops, f)
				cur = []string{}
				continue
			}
			cur = append(cur, f)
		}
		cmds = append(cmds, cur)
		for j, c := range cmds {
			if len(c) == 0 {
				// Only `cond && action ||` may end in an empty command:
				// the idiom that keeps a false condition from ending
				// the script.
				if j == len(cmds)-1 && j >= 2 && ops[j-1] == "||" && ops[j-2] == "&&" {
					continue
				}
				return fmt.Errorf("line %d: an operator without a command", n)
			}
			if !commands[c[0]] {
				return fmt.Errorf("line %d: unknown command %q", n, c[0])
			}
			if c[0] == "goto" {
				if len(c) != 2 {
					return fmt.Errorf("line %d: goto takes one label", n)
				}
				gotos = append(gotos, jump{n, c[1]})
			}
			if fetches[c[0]] {
				handled := j < len(ops) && ops[j] == "||" && len(cmds[j+1]) > 0
				if !handled {
					return fmt.Errorf("line %d: %s has no || handler for its failure", n, c[0])
				}
			}
		}
	}
	for _, g := range gotos {
		if !labels[g.label] {
			return fmt.Errorf("line %d: goto %s, but there is no :%s", g.line, g.label, g.label)
		}
	}
	return nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// checkSettings checks that every ${ is closed and names a setting.
func checkSettings(line string) error {
	for {
		i := strings.Index(line, "${")
		if i < 0 {
			if strings.Contains(line, "$") {
				return errors.New("a $ that does not start a ${setting}")
			}
			return nil
		}
		if strings.Contains(line[:i], "$") {
			return errors.New("a $ that does not start a ${setting}")
		}
		j := strings.IndexByte(line[i:], '}')
		if j < 0 {
			return errors.New("${ without }")
		}
		if name := line[i+2 : i+j]; name == "" || strings.ContainsAny(name, " {$") {
			return fmt.Errorf("${%s} is not a setting", name)
		}
		line = line[i+j+1:]
	}
}
