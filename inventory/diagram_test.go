package inventory_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stratacloud/strata/inventory"
)

// TestStatesDocumentGolden keeps docs/states.md in step with the table;
// go test ./inventory -run Golden -update rewrites it.
func TestStatesDocumentGolden(t *testing.T) {
	got := inventory.StatesDocument()
	want := goldenFile(t, filepath.Join("..", "docs", "states.md"), []byte(got))
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("docs/states.md is stale; run go test ./inventory -run Golden -update (-file +generated):\n%s", diff)
	}
}

func TestDiagramDOTGolden(t *testing.T) {
	got := inventory.DiagramDOT()
	want := goldenFile(t, filepath.Join("testdata", "states.dot"), []byte(got))
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDiagramsAreDeterministic(t *testing.T) {
	for name, f := range map[string]func() string{
		"DiagramDOT":     inventory.DiagramDOT,
		"DiagramMermaid": inventory.DiagramMermaid,
		"StatesDocument": inventory.StatesDocument,
	} {
		first := f()
		for range 20 {
			if f() != first {
				t.Fatalf("%s gives different output from one call to the next", name)
			}
		}
	}
}

// kindOf is the kind of a state as the diagrams draw it.
func kindOf(s string) string {
	switch {
	case inventory.IsStable(s):
		return "stable"
	case slices.Contains(inventory.UnstableStates, s):
		return "busy"
	}
	return "halted"
}

func isAPIEvent(ev inventory.Event) bool {
	return slices.ContainsFunc(inventory.Verbs, func(v inventory.Verb) bool { return v.Event == ev })
}

func TestDiagramDOT(t *testing.T) {
	dot := inventory.DiagramDOT()
	if !strings.HasPrefix(dot, "digraph ") || !strings.HasSuffix(dot, "}\n") {
		t.Fatalf("not a digraph:\n%s", dot)
	}
	nodeRE := regexp.MustCompile(`(?m)^\t"([^"]+)" \[(shape=[^\]]*)\];$`)
	edgeRE := regexp.MustCompile(`(?m)^\t"([^"]+)" -> "([^"]+)" \[label="([^"]+)"(.*)\];$`)

	styles := map[string]map[string]bool{}
	for _, m := range nodeRE.FindAllStringSubmatch(dot, -1) {
		k := kindOf(m[1])
		if styles[k] == nil {
			styles[k] = map[string]bool{}
		}
		styles[k][m[2]] = true
	}
	checkKinds(t, styles, len(nodeRE.FindAllString(dot, -1)))

	var got []inventory.Transition
	for _, m := range edgeRE.FindAllStringSubmatch(dot, -1) {
		tr := inventory.Transition{From: m[1], Event: inventory.Event(m[3]), To: m[2]}
		got = append(got, tr)
		if dashed := strings.Contains(m[4], "style=dashed"); dashed == isAPIEvent(tr.Event) {
			t.Errorf("edge %v: dashed=%v, but dashed edges are for internal events", tr, dashed)
		}
	}
	if diff := cmp.Diff(inventory.Transitions, got); diff != "" {
		t.Errorf("edges differ from the table (-want +got):\n%s", diff)
	}
}

func TestDiagramMermaid(t *testing.T) {
	mm := inventory.DiagramMermaid()
	if !strings.HasPrefix(mm, "flowchart ") {
		t.Fatalf("not a flowchart:\n%s", mm)
	}
	nodeRE := regexp.MustCompile(`(?m)^    (s_\w+)(\(\["|\["|\{\{")([^"]+)("\]\)|"\]|"\}\}):::(\w+)$`)
	edgeRE := regexp.MustCompile(`(?m)^    (s_\w+) (-->|-\.->)\|(\w+)\| (s_\w+)$`)

	ids := map[string]string{}
	styles := map[string]map[string]bool{}
	for _, m := range nodeRE.FindAllStringSubmatch(mm, -1) {
		id, state, class := m[1], m[3], m[5]
		if prev, dup := ids[id]; dup {
			t.Errorf("id %s is used for %q and %q", id, prev, state)
		}
		ids[id] = state
		if class != kindOf(state) {
			t.Errorf("state %q has class %s, want %s", state, class, kindOf(state))
		}
		k := kindOf(state)
		if styles[k] == nil {
			styles[k] = map[string]bool{}
		}
		styles[k][m[2]+m[4]+class] = true
	}
	checkKinds(t, styles, len(ids))

	var got []inventory.Transition
	for _, m := range edgeRE.FindAllStringSubmatch(mm, -1) {
		tr := inventory.Transition{From: ids[m[1]], Event: inventory.Event(m[3]), To: ids[m[4]]}
		got = append(got, tr)
		if dotted := m[2] == "-.->"; dotted == isAPIEvent(tr.Event) {
			t.Errorf("edge %v: dotted=%v, but dotted edges are for internal events", tr, dotted)
		}
	}
	if diff := cmp.Diff(inventory.Transitions, got); diff != "" {
		t.Errorf("edges differ from the table (-want +got):\n%s", diff)
	}
	lines := strings.Count(mm, "\n")
	if want := 1 + 3 + len(ids) + len(got); lines != want {
		t.Errorf("%d lines, want %d: some line is neither a node nor an edge", lines, want)
	}
}

// checkKinds checks that every state is drawn once, and that each kind of
// state (stable, busy, halted) has one style that no other kind has.
func checkKinds(t *testing.T, styles map[string]map[string]bool, nodes int) {
	t.Helper()
	if want := len(inventory.AllStates()); nodes != want {
		t.Errorf("%d states drawn, want %d", nodes, want)
	}
	seen := map[string]string{}
	for _, k := range []string{"stable", "busy", "halted"} {
		if len(styles[k]) != 1 {
			t.Errorf("%s states are drawn in %d styles, want 1", k, len(styles[k]))
		}
		for style := range styles[k] {
			if other, dup := seen[style]; dup {
				t.Errorf("%s and %s states are drawn alike: %s", other, k, style)
			}
			seen[style] = k
		}
	}
}

func TestStatesDocumentTable(t *testing.T) {
	doc := inventory.StatesDocument()
	if !strings.Contains(doc, "```mermaid\n"+inventory.DiagramMermaid()+"```\n") {
		t.Error("the document does not hold the mermaid diagram")
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `([^`]+)`( \\(internal\\))? \\| `([^`]+)` \\| (`([^`]+)`)? \\|$")
	var got []inventory.Transition
	for _, m := range rowRE.FindAllStringSubmatch(doc, -1) {
		tr := inventory.Transition{From: m[1], Event: inventory.Event(m[2]), To: m[4]}
		got = append(got, tr)
		if internal := m[3] != ""; internal == isAPIEvent(tr.Event) {
			t.Errorf("row %v: marked internal=%v", tr, internal)
		}
		if m[6] != inventory.Target(tr.To) {
			t.Errorf("row %v: target %q, want %q", tr, m[6], inventory.Target(tr.To))
		}
	}
	if diff := cmp.Diff(inventory.Transitions, got); diff != "" {
		t.Errorf("the transitions table differs from Transitions (-want +got):\n%s", diff)
	}
	for _, v := range inventory.Verbs {
		if row := fmt.Sprintf("| `%s` | `%s` | 1.%d |", v.Name, v.Event, v.MinVersion); !strings.Contains(doc, row) {
			t.Errorf("the document lacks the verb row %s", row)
		}
	}
}
