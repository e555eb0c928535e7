package api

import (
	"net/http"
	"net/url"
	"strconv"
)

// PageRequest is a client's limit/marker: at most Limit items after the
// item whose ID is Marker. A zero Limit means the service's default.
type PageRequest struct {
	Limit  int
	Marker string
}

// ParsePage reads limit and marker from the query. A limit above max is
// lowered to max (as Nova does); a limit that is not a positive integer is
// a 400.
func ParsePage(r *http.Request, max int) (PageRequest, error) {
	q := r.URL.Query()
	p := PageRequest{Marker: q.Get("marker")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return PageRequest{}, BadRequest("Invalid input for query parameter 'limit': %q is not a non-negative integer.", s)
		}
		p.Limit = n
	}
	if max > 0 && (p.Limit == 0 || p.Limit > max) {
		p.Limit = max
	}
	return p, nil
}

// Paginate returns the page of items (already in listing order) that p
// asks for, and the marker of the next page, empty on the last one. A
// marker that names no item is a 400, as in Nova and Glance.
func Paginate[T any](items []T, id func(T) string, p PageRequest) ([]T, string, error) {
	start := 0
	if p.Marker != "" {
		start = -1
		for i, it := range items {
			if id(it) == p.Marker {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, "", BadRequest("Marker %q could not be found.", p.Marker)
		}
	}
	rest := items[start:]
	if p.Limit <= 0 || len(rest) <= p.Limit {
		return rest, "", nil
	}
	page := rest[:p.Limit]
	return page, id(page[len(page)-1]), nil
}

// NextHref is the URL of the next page: base (scheme and host) with the
// request's path and query, its marker replaced by next.
func NextHref(base string, r *http.Request, limit int, next string) string {
	q := r.URL.Query()
	q.Set("marker", next)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return base + r.URL.Path + "?" + q.Encode()
}

// SelfHref is the request's own URL under base.
func SelfHref(base string, r *http.Request) string {
	if r.URL.RawQuery == "" {
		return base + r.URL.Path
	}
	return base + r.URL.Path + "?" + r.URL.RawQuery
}

// CollectionLinks is Keystone's "links" object on a collection.
type CollectionLinks struct {
	Self     string  `json:"self"`
	Previous *string `json:"previous"`
	Next     *string `json:"next"`
}

// NewCollectionLinks returns the links of a listing; next is the next
// page's marker, or empty on the last page.
func NewCollectionLinks(base string, r *http.Request, limit int, next string) CollectionLinks {
	l := CollectionLinks{Self: SelfHref(base, r)}
	if next != "" {
		h := NextHref(base, r, limit, next)
		l.Next = &h
	}
	return l
}

// Link is a Nova or Neutron style link, as in "servers_links".
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// NextLinks returns [{"rel":"next",...}] when there is a next page, and
// nil otherwise (the "<collection>_links" key is then left out).
func NextLinks(base string, r *http.Request, limit int, next string) []Link {
	if next == "" {
		return nil
	}
	return []Link{{Rel: "next", Href: NextHref(base, r, limit, next)}}
}

// BaseURL is scheme://host of the request as the client addressed it.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host}
	return u.String()
}
