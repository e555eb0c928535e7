package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// progress shows nodes moving through provision states on the error
// stream: on a terminal a live line with a spinner, elsewhere (logs, CI) a
// line per state change with the time since the node's action began.
type progress struct {
	w     io.Writer
	tty   bool
	clock clock

	mu       sync.Mutex
	start    time.Time
	total    int
	nodes    map[string]*nodeProgress
	finished int
	failed   int
	frame    int
	single   string // the only node's label, when there is one

	stop chan struct{}
	wg   sync.WaitGroup
}

type nodeProgress struct {
	state string
	begun time.Time
	done  bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newProgress(w io.Writer, tty bool, c clock, total int) *progress {
	p := &progress{
		w:     w,
		tty:   tty,
		clock: c,
		start: c.Now(),
		total: total,
		nodes: make(map[string]*nodeProgress),
		stop:  make(chan struct{}),
	}
	if tty {
		tick, stopTick := c.Ticker(150 * time.Millisecond)
		p.wg.Go(func() {
			defer stopTick()
			for {
				select {
				case <-p.stop:
					return
				case <-tick:
					p.mu.Lock()
					p.frame++
					p.redraw()
					p.mu.Unlock()
				}
			}
		})
	}
	return p
}

// begin starts the clock of a node whose action was just requested.
func (p *progress) begin(label, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes[label] = &nodeProgress{state: state, begun: p.clock.Now()}
	if p.total == 1 {
		p.single = label
	}
	p.redraw()
}

// observe records the state a node was seen in.
func (p *progress) observe(label, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[label]
	if !ok || n.state == state {
		return
	}
	n.state = state
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s (%s)\n", label, state, p.since(n.begun))
		return
	}
	p.redraw()
}

// end marks a node as finished.
func (p *progress) end(label string, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[label]
	if !ok || n.done {
		return
	}
	n.done = true
	p.finished++
	if failed {
		p.failed++
	}
	if p.tty && (failed || p.total == 1) {
		// Keep a line for what went wrong above the live line.
		p.clearLine()
		fmt.Fprintf(p.w, "%s: %s (%s)\n", label, n.state, p.since(n.begun))
	}
	p.redraw()
}

// close stops the live line and clears it.
func (p *progress) close() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.clearLine()
	}
}

func (p *progress) since(t time.Time) string {
	return formatElapsed(p.clock.Now().Sub(t))
}

func (p *progress) clearLine() { fmt.Fprint(p.w, "\r\x1b[K") }

// redraw draws the live line; the caller holds mu.
func (p *progress) redraw() {
	if !p.tty {
		return
	}
	spin := spinner[p.frame%len(spinner)]
	var line string
	if n, ok := p.nodes[p.single]; ok && p.total == 1 {
		if n.done {
			return
		}
		line = fmt.Sprintf("%s %s: %s %s", spin, p.single, n.state, p.since(n.begun))
	} else {
		counts := map[string]int{}
		for _, n := range p.nodes {
			if !n.done {
				counts[n.state]++
			}
		}
		states := make([]string, 0, len(counts))
		for s := range counts {
			states = append(states, s)
		}
		sort.Strings(states)
		parts := make([]string, len(states))
		for i, s := range states {
			parts[i] = fmt.Sprintf("%s: %d", s, counts[s])
		}
		line = fmt.Sprintf("%s %d/%d done", spin, p.finished, p.total)
		if p.failed > 0 {
			line += fmt.Sprintf(", %d failed", p.failed)
		}
		if len(parts) > 0 {
			line += " · " + strings.Join(parts, ", ")
		}
		line += " · " + p.since(p.start)
	}
	fmt.Fprint(p.w, "\r"+line+"\x1b[K")
}

// formatElapsed is a duration to the second: 0s, 42s, 3m5s, 1h2m3s.
func formatElapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}
