package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Output formats, the openstack CLI's -f.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
	formatValue = "value"
)

// column is one field of a record: its API name (the key in json and
// yaml) and its heading in a table.
type column struct {
	Field   string
	Heading string
}

// record is one object as the API returned it.
type record map[string]any

// printer writes records in the format the user chose, limited to the
// columns chosen with -c.
type printer struct {
	out     io.Writer
	format  string
	columns []string
}

// selectColumns picks the -c columns out of known (by field name or
// heading, case-insensitive), in the order given; with no -c it returns
// defaults.
func selectColumns(want []string, known, defaults []column) ([]column, error) {
	if len(want) == 0 {
		return defaults, nil
	}
	out := make([]column, 0, len(want))
	for _, w := range want {
		c, ok := findColumn(w, known)
		if !ok {
			names := make([]string, len(known))
			for i, k := range known {
				names[i] = k.Field
			}
			return nil, usageErrorf("--column: unknown column %q; known columns: %s", w, strings.Join(names, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

func findColumn(name string, known []column) (column, bool) {
	for _, k := range known {
		if strings.EqualFold(name, k.Field) || strings.EqualFold(name, k.Heading) {
			return k, true
		}
	}
	return column{}, false
}

// listAll prints rows with the columns chosen by -c among cols, or all
// of cols.
func (p *printer) listAll(cols []column, rows []record) error {
	sel, err := selectColumns(p.columns, cols, cols)
	if err != nil {
		return err
	}
	return p.list(sel, rows)
}

// list prints rows, one record each, as a table with headings.
func (p *printer) list(cols []column, rows []record) error {
	switch p.format {
	case formatJSON:
		out := make([]orderedRecord, len(rows))
		for i, r := range rows {
			out[i] = orderedRecord{cols: cols, rec: r}
		}
		return writeJSON(p.out, out)
	case formatYAML:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range rows {
			n, err := yamlRecord(cols, r)
			if err != nil {
				return err
			}
			seq.Content = append(seq.Content, n)
		}
		return writeYAML(p.out, seq)
	case formatValue:
		for _, r := range rows {
			vals := make([]string, len(cols))
			for i, c := range cols {
				vals[i] = cellText(r[c.Field])
			}
			fmt.Fprintln(p.out, strings.Join(vals, " "))
		}
		return nil
	}
	if len(rows) == 0 {
		return nil
	}
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.Heading
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = make([]string, len(cols))
		for j, c := range cols {
			cells[i][j] = cellText(r[c.Field])
		}
	}
	return writeTable(p.out, heads, cells)
}

// show prints one record as Field/Value pairs, its fields sorted by name
// (the openstack CLI's "show"). With -c, only those fields, in that order.
func (p *printer) show(rec record) error {
	cols, err := p.showColumns(rec)
	if err != nil {
		return err
	}
	switch p.format {
	case formatJSON:
		return writeJSON(p.out, orderedRecord{cols: cols, rec: rec})
	case formatYAML:
		n, err := yamlRecord(cols, rec)
		if err != nil {
			return err
		}
		return writeYAML(p.out, n)
	case formatValue:
		for _, c := range cols {
			fmt.Fprintln(p.out, cellText(rec[c.Field]))
		}
		return nil
	}
	cells := make([][]string, len(cols))
	for i, c := range cols {
		cells[i] = []string{c.Field, cellText(rec[c.Field])}
	}
	return writeTable(p.out, []string{"Field", "Value"}, cells)
}

func (p *printer) showColumns(rec record) ([]column, error) {
	known := make([]column, 0, len(rec))
	for k := range rec {
		known = append(known, column{Field: k, Heading: k})
	}
	sort.Slice(known, func(i, j int) bool { return known[i].Field < known[j].Field })
	if len(p.columns) == 0 {
		return known, nil
	}
	out := make([]column, 0, len(p.columns))
	for _, w := range p.columns {
		c, ok := findColumn(strings.ReplaceAll(strings.ToLower(w), " ", "_"), known)
		if !ok {
			c, ok = findColumn(w, known)
		}
		if !ok {
			return nil, usageErrorf("--column: %q is not a field of this output; fields: %s", w, strings.Join(fieldNames(known), ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

func fieldNames(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Field
	}
	return out
}

// cellText is how a value reads in a table or in -f value: strings as they
// are, null as None and booleans as True/False (as the openstack CLI
// prints them), objects and lists as compact JSON.
func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}

// writeTable draws an aligned, boxed table like the openstack CLI's.
// A cell with several lines takes several rows of the box.
func writeTable(w io.Writer, heads []string, rows [][]string) error {
	widths := make([]int, len(heads))
	for i, h := range heads {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			for _, line := range strings.Split(c, "\n") {
				widths[i] = max(widths[i], utf8.RuneCountInString(line))
			}
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(cells []string) {
		split := make([][]string, len(cells))
		height := 1
		for i, c := range cells {
			split[i] = strings.Split(c, "\n")
			height = max(height, len(split[i]))
		}
		for l := 0; l < height; l++ {
			b.WriteByte('|')
			for i, wd := range widths {
				s := ""
				if l < len(split[i]) {
					s = split[i][l]
				}
				b.WriteByte(' ')
				b.WriteString(s)
				b.WriteString(strings.Repeat(" ", wd-utf8.RuneCountInString(s)))
				b.WriteString(" |")
			}
			b.WriteByte('\n')
		}
	}
	rule()
	line(heads)
	rule()
	for _, r := range rows {
		line(r)
	}
	rule()
	_, err := io.WriteString(w, b.String())
	return err
}

// orderedRecord marshals to a JSON object with its columns in order.
type orderedRecord struct {
	cols []column
	rec  record
}

func (o orderedRecord) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, c := range o.cols {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(c.Field)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := marshalNoEscape(o.rec[c.Field])
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// yamlRecord is rec as a YAML mapping with its columns in order.
func yamlRecord(cols []column, rec record) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, c := range cols {
		var v yaml.Node
		if err := v.Encode(plainValue(rec[c.Field])); err != nil {
			return nil, err
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: c.Field}, &v)
	}
	return m, nil
}

// plainValue replaces json.Number with int64 or float64 throughout v, so
// that YAML writes numbers as numbers.
func plainValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return v.String()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = plainValue(x)
		}
		return out
	case record:
		return plainValue(map[string]any(v))
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plainValue(x)
		}
		return out
	}
	return v
}

func writeYAML(w io.Writer, n *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return err
	}
	return enc.Close()
}
