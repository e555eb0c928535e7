// Package policy decides who may do what, with rules written in
// oslo.policy's language so that OpenStack's default rules read as they
// do upstream and operators can override them the same way:
//
//	role:admin or (role:reader and system_scope:all)
//	rule:admin_required or user_id:%(target.user.id)s
//
// A check is "@" (always), "!" (never), "role:NAME", "rule:NAME", or
// "ATTR:VALUE", which compares a credential attribute with a literal or
// with a target value written %(key)s; "not", "and", "or" and parentheses
// combine checks, in that order of precedence.
package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Subject is what a rule is checked against: the caller's credentials.
type Subject interface {
	// Attr returns a credential attribute such as user_id, project_id,
	// domain_id or system_scope.
	Attr(name string) (string, bool)
	// HasRole says whether the caller holds the role on its scope.
	HasRole(name string) bool
}

// Target is what the action is about, keyed as in the rules:
// "target.project.domain_id", "user_id", ...
type Target map[string]string

// Enforcer holds a parsed rule set.
type Enforcer struct {
	rules map[string]node
}

// maxDepth bounds rule:NAME indirection, so that a cycle is a denial, not
// a stack overflow.
const maxDepth = 32

// New parses rules, with overrides replacing rules of the same name. Every
// rule:NAME reference must name a rule.
func New(rules, overrides map[string]string) (*Enforcer, error) {
	all := maps.Clone(rules)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, overrides)
	e := &Enforcer{rules: make(map[string]node, len(all))}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		n, err := parse(all[name])
		if err != nil {
			return nil, fmt.Errorf("policy rule %q: %w", name, err)
		}
		e.rules[name] = n
	}
	for _, name := range slices.Sorted(maps.Keys(e.rules)) {
		for _, ref := range refs(e.rules[name]) {
			if _, ok := e.rules[ref]; !ok {
				return nil, fmt.Errorf("policy rule %q: refers to unknown rule %q", name, ref)
			}
		}
	}
	return e, nil
}

// Allowed says whether s may perform action on target. An action with no
// rule is denied.
func (e *Enforcer) Allowed(action string, s Subject, target Target) bool {
	n, ok := e.rules[action]
	if !ok {
		return false
	}
	return n.eval(e, s, target, 0)
}

// Has says whether the enforcer has a rule for action.
func (e *Enforcer) Has(action string) bool {
	_, ok := e.rules[action]
	return ok
}

// node is a parsed rule.
type node interface {
	eval(e *Enforcer, s Subject, t Target, depth int) bool
}

type constCheck bool

func (c constCheck) eval(*Enforcer, Subject, Target, int) bool { return bool(c) }

type notNode struct{ n node }

func (n notNode) eval(e *Enforcer, s Subject, t Target, d int) bool { return !n.n.eval(e, s, t, d) }

type andNode []node

func (a andNode) eval(e *Enforcer, s Subject, t Target, d int) bool {
	for _, n := range a {
		if !n.eval(e, s, t, d) {
			return false
		}
	}
	return true
}

type orNode []node

func (o orNode) eval(e *Enforcer, s Subject, t Target, d int) bool {
	for _, n := range o {
		if n.eval(e, s, t, d) {
			return true
		}
	}
	return false
}

type ruleCheck string

func (r ruleCheck) eval(e *Enforcer, s Subject, t Target, d int) bool {
	n, ok := e.rules[string(r)]
	if !ok || d >= maxDepth {
		return false
	}
	return n.eval(e, s, t, d+1)
}

type roleCheck string

func (r roleCheck) eval(_ *Enforcer, s Subject, t Target, _ int) bool {
	name, ok := resolve(string(r), t)
	return ok && name != "" && s.HasRole(name)
}

type attrCheck struct{ attr, match string }

func (a attrCheck) eval(_ *Enforcer, s Subject, t Target, _ int) bool {
	want, ok := resolve(a.match, t)
	if !ok || want == "" {
		return false
	}
	got, ok := s.Attr(a.attr)
	return ok && got == want
}

// resolve expands a match: %(key)s is the target's value for key (absent
// keys fail), a quoted string is itself without quotes.
func resolve(match string, t Target) (string, bool) {
	if strings.HasPrefix(match, "%(") && strings.HasSuffix(match, ")s") {
		v, ok := t[match[2:len(match)-2]]
		return v, ok
	}
	if len(match) >= 2 && (match[0] == '\'' || match[0] == '"') && match[len(match)-1] == match[0] {
		return match[1 : len(match)-1], true
	}
	return match, true
}

func refs(n node) []string {
	switch n := n.(type) {
	case ruleCheck:
		return []string{string(n)}
	case notNode:
		return refs(n.n)
	case andNode:
		var out []string
		for _, c := range n {
			out = append(out, refs(c)...)
		}
		return out
	case orNode:
		var out []string
		for _, c := range n {
			out = append(out, refs(c)...)
		}
		return out
	}
	return nil
}

// parse parses one rule. The empty rule always passes, as in oslo.policy.
func parse(rule string) (node, error) {
	toks := tokenize(rule)
	if len(toks) == 0 {
		return constCheck(true), nil
	}
	p := &parser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return n, nil
}

// tokenize splits on white space and peels parentheses off the ends of
// each word; the parentheses inside %(key)s stay in their check.
func tokenize(s string) []string {
	var out []string
	for _, w := range strings.Fields(s) {
		for strings.HasPrefix(w, "(") {
			out = append(out, "(")
			w = w[1:]
		}
		trail := 0
		for strings.HasSuffix(w, ")") && !strings.HasSuffix(w, ")s") {
			trail++
			w = w[:len(w)-1]
		}
		if w != "" {
			out = append(out, w)
		}
		for range trail {
			out = append(out, ")")
		}
	}
	return out
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) or() (node, error) {
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	terms := orNode{n}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		n, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) and() (node, error) {
	n, err := p.not()
	if err != nil {
		return nil, err
	}
	terms := andNode{n}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) not() (node, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.atom()
}

func (p *parser) atom() (node, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return nil, fmt.Errorf("rule ends where a check was expected")
	case tok == "(":
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing closing parenthesis")
		}
		p.pos++
		return n, nil
	case tok == ")" || strings.EqualFold(tok, "and") || strings.EqualFold(tok, "or"):
		return nil, fmt.Errorf("unexpected %q", tok)
	}
	p.pos++
	return check(tok)
}

func check(tok string) (node, error) {
	switch tok {
	case "@":
		return constCheck(true), nil
	case "!":
		return constCheck(false), nil
	}
	kind, match, ok := strings.Cut(tok, ":")
	if !ok || kind == "" || match == "" {
		return nil, fmt.Errorf("check %q is not KIND:MATCH", tok)
	}
	switch kind {
	case "rule":
		return ruleCheck(match), nil
	case "role":
		return roleCheck(match), nil
	}
	return attrCheck{attr: kind, match: match}, nil
}

// Check parses rule and reports whether it is well formed, for tools
// that validate a policy file before it is used.
func Check(rule string) error {
	_, err := parse(rule)
	return err
}
