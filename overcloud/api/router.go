package api

import "net/http"

// Routes serves mux, but answers requests that match no route (404) or no
// method of a route (405, with its Allow header) with a JSON error body in
// errs' format instead of ServeMux's plain text.
func Routes(mux *http.ServeMux, errs *Errors) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern: ServeMux's own 404, 405 or redirect handler. Run it
		// on a recorder to learn which, then answer in our format.
		rec := &probe{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			errs.Write(w, r, NotFound("The resource could not be found."))
		case http.StatusMethodNotAllowed:
			if allow := rec.Header().Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			errs.Write(w, r, &Error{Kind: ErrMethodNotAllowed, Message: "The method " + r.Method + " is not supported for this resource."})
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.code)
			_, _ = w.Write(rec.body)
		}
	})
}

// probe records what ServeMux's fallback handler would answer.
type probe struct {
	header http.Header
	code   int
	body   []byte
}

func (p *probe) Header() http.Header { return p.header }

func (p *probe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

func (p *probe) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	p.body = append(p.body, b...)
	return len(b), nil
}
