package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/stratacloud/strata/inventory"
)

// historyFields are the fields of a history event in a list without detail;
// the detailed form adds historyDetailFields (API 1.78).
var (
	historyFields       = []string{"uuid", "created_at", "severity", "event"}
	historyDetailFields = []string{"event_type", "conductor", "user"}
	historySortKeys     = []string{"created_at", "uuid", "severity", "event_type", "event", "conductor", "user"}
)

// renderEvent shows one history event; a list without detail cuts long
// events at 255 characters, as Ironic does.
func (s *server) renderEvent(r *http.Request, node string, ev inventory.HistoryEvent, detail bool) map[string]any {
	out := map[string]any{
		"uuid":       ev.UUID,
		"created_at": isoTime(ev.CreatedAt),
		"severity":   ev.Severity,
		"event":      ev.Event,
		"links":      []link{{Href: s.base(r) + "/v1/nodes/" + node + "/history/" + ev.UUID, Rel: "self"}},
	}
	if detail {
		out["event_type"] = strOrNil(ev.EventType)
		out["conductor"] = strOrNil(ev.Conductor)
		out["user"] = strOrNil(ev.User)
	} else if len(ev.Event) > 255 {
		out["event"] = ev.Event[:251] + "..."
	}
	return out
}

// listHistory is GET /v1/nodes/{node}/history (API 1.78).
func (s *server) listHistory(r *http.Request) (any, error) {
	return s.history(r, false)
}

// getHistoryEvent is GET /v1/nodes/{node}/history/{event}; the event
// "detail" is the detailed list, which python-ironicclient asks for.
func (s *server) getHistoryEvent(r *http.Request) (any, error) {
	if r.PathValue("event") == "detail" {
		return s.history(r, true)
	}
	if !versionOf(r).atLeast(v78NodeHistory) {
		return nil, errNotFound
	}
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	events, err := s.nodes.History(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	id := strings.ToLower(r.PathValue("event"))
	i := slices.IndexFunc(events, func(ev inventory.HistoryEvent) bool { return ev.UUID == id })
	if i < 0 {
		return nil, errorf(http.StatusNotFound, "Node history record %s could not be found.", r.PathValue("event"))
	}
	return s.renderEvent(r, n.UUID, events[i], true), nil
}

func (s *server) history(r *http.Request, detailPath bool) (any, error) {
	v := versionOf(r)
	if !v.atLeast(v78NodeHistory) {
		return nil, errNotFound
	}
	q, err := parseQuery(r, "detail", "limit", "marker", "sort_key", "sort_dir")
	if err != nil {
		return nil, err
	}
	detail, err := q.boolean("detail")
	if err != nil {
		return nil, err
	}
	isDetail := detailPath || (detail != nil && *detail)
	sortKey, ok := q.get("sort_key")
	if ok && !slices.Contains(historySortKeys, sortKey) {
		return nil, badRequest("The sort_key value %q is an invalid field for sorting; use one of %s.", sortKey, strings.Join(historySortKeys, ", "))
	}
	desc, err := q.sortDir()
	if err != nil {
		return nil, err
	}
	marker, err := q.marker()
	if err != nil {
		return nil, err
	}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	events, err := s.nodes.History(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	if sortKey != "" && sortKey != "created_at" {
		slices.SortStableFunc(events, func(a, b inventory.HistoryEvent) int {
			return strings.Compare(eventKey(a, sortKey), eventKey(b, sortKey))
		})
	}
	if desc {
		slices.Reverse(events)
	}
	if marker != "" {
		i := slices.IndexFunc(events, func(ev inventory.HistoryEvent) bool { return ev.UUID == marker })
		if i < 0 {
			return nil, errorf(http.StatusNotFound, "Node history record %s could not be found.", marker)
		}
		events = events[i+1:]
	}
	more := len(events) > limit
	if more {
		events = events[:limit]
	}
	items := make([]map[string]any, 0, len(events))
	for _, ev := range events {
		items = append(items, s.renderEvent(r, n.UUID, ev, isDetail))
	}
	out := map[string]any{"history": items}
	if more {
		path := "nodes/" + r.PathValue("node") + "/history"
		if detailPath {
			path += "/detail"
		}
		out["next"] = s.nextLink(r, path, q, limit, events[len(events)-1].UUID)
	}
	return out, nil
}

func eventKey(ev inventory.HistoryEvent, key string) string {
	switch key {
	case "uuid":
		return ev.UUID
	case "severity":
		return ev.Severity
	case "event_type":
		return ev.EventType
	case "event":
		return ev.Event
	case "conductor":
		return ev.Conductor
	case "user":
		return ev.User
	}
	return ""
}
