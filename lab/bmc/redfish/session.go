package redfish

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"
)

// session is a login to one BMC view. Its token is kept only as a hash.
type session struct {
	id       string
	scope    string
	user     string
	token    [sha256.Size]byte
	created  time.Time
	lastUsed time.Time
}

// sessionStore holds the sessions of every view. A session expires when
// it has not been used for the timeout; expired sessions are dropped when
// next looked at, and whenever a view is full.
type sessionStore struct {
	timeout time.Duration
	max     int
	now     func() time.Time

	mu      sync.Mutex
	byToken map[[sha256.Size]byte]*session
	byID    map[string]*session
	count   map[string]int // sessions per scope
}

func newSessionStore(timeout time.Duration, max int, now func() time.Time) *sessionStore {
	return &sessionStore{
		timeout: timeout, max: max, now: now,
		byToken: map[[sha256.Size]byte]*session{},
		byID:    map[string]*session{},
		count:   map[string]int{},
	}
}

// create opens a session in scope and returns it with its token.
func (st *sessionStore) create(scope, user string) (session, string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if st.count[scope] >= st.max {
		st.sweepLocked(now)
		if st.count[scope] >= st.max {
			return session{}, "", errSessionLimit
		}
	}
	token := rand.Text() + rand.Text() // 52 base32 characters, 260 bits
	s := &session{scope: scope, user: user, token: sha256.Sum256([]byte(token)), created: now, lastUsed: now}
	for {
		var b [8]byte
		rand.Read(b[:])
		s.id = hex.EncodeToString(b[:])
		if st.byID[s.id] == nil {
			break
		}
	}
	st.byID[s.id] = s
	st.byToken[s.token] = s
	st.count[scope]++
	return *s, token, nil
}

// use returns the live session of scope with token, and marks it used, or
// nil.
func (st *sessionStore) use(scope, token string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byToken[sha256.Sum256([]byte(token))]
	if s == nil || s.scope != scope {
		return nil
	}
	now := st.now()
	if st.expired(s, now) {
		st.deleteLocked(s)
		return nil
	}
	s.lastUsed = now
	c := *s
	return &c
}

// get returns the live session id of scope.
func (st *sessionStore) get(scope, id string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil || s.scope != scope {
		return session{}, false
	}
	if st.expired(s, st.now()) {
		st.deleteLocked(s)
		return session{}, false
	}
	return *s, true
}

// remove ends the session id of scope.
func (st *sessionStore) remove(scope, id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil || s.scope != scope {
		return false
	}
	expired := st.expired(s, st.now())
	st.deleteLocked(s)
	return !expired
}

// list returns the ids of the live sessions of scope, sorted.
func (st *sessionStore) list(scope string) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweepLocked(st.now())
	var ids []string
	for id, s := range st.byID {
		if s.scope == scope {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastUsed) >= st.timeout
}

func (st *sessionStore) sweepLocked(now time.Time) {
	for _, s := range st.byID {
		if st.expired(s, now) {
			st.deleteLocked(s)
		}
	}
}

func (st *sessionStore) deleteLocked(s *session) {
	delete(st.byID, s.id)
	delete(st.byToken, s.token)
	if st.count[s.scope]--; st.count[s.scope] <= 0 {
		delete(st.count, s.scope)
	}
}

func (v *view) getSessionService(*http.Request) (reply, error) {
	return reply{body: object{
		"@odata.id":      root + "/SessionService",
		"@odata.type":    "#SessionService.v1_1_8.SessionService",
		"Id":             "SessionService",
		"Name":           "Session Service",
		"ServiceEnabled": true,
		"SessionTimeout": int(v.s.cfg.SessionTimeout / time.Second),
		"Sessions":       link(sessionsPath),
		"Status":         statusOK(),
	}}, nil
}

func (v *view) getSessions(*http.Request) (reply, error) {
	return reply{body: collection(sessionsPath, "SessionCollection", "Session Collection", v.s.sessions.list(v.scope))}, nil
}

// renderSession never shows the token or a password.
func renderSession(s session) object {
	return object{
		"@odata.id":   sessionsPath + "/" + s.id,
		"@odata.type": "#Session.v1_3_0.Session",
		"Id":          s.id,
		"Name":        "User Session",
		"UserName":    s.user,
		"CreatedTime": s.created.UTC().Format(time.RFC3339),
	}
}

// createSession logs in: the body carries the credentials; the answer is
// 201 with the token in X-Auth-Token and the session's URI in Location.
func (v *view) createSession(r *http.Request) (reply, error) {
	body, err := decodeObject(r)
	if err != nil {
		return reply{}, err
	}
	var creds [2]string
	for i, name := range []string{"UserName", "Password"} {
		raw, ok := body[name]
		if !ok {
			return reply{}, errorf(msgPropertyMissing, name).about("/" + name)
		}
		if err := json.Unmarshal(raw, &creds[i]); err != nil {
			value := compact(raw)
			if name == "Password" {
				value = "(hidden)"
			}
			return reply{}, errorf(msgPropertyValueTypeError, value, name).about("/" + name)
		}
	}
	if !v.credentialsOK(creds[0], creds[1]) {
		v.s.log.Info("login failed", "remote", r.RemoteAddr, "bmc", v.scope)
		return reply{}, errorf(msgUnauthorized, sessionsPath, "invalid username or password")
	}
	s, token, err := v.s.sessions.create(v.scope, creds[0])
	if err != nil {
		return reply{}, err
	}
	v.s.log.Info("session created", "session", s.id, "remote", r.RemoteAddr, "bmc", v.scope)
	obj := renderSession(s)
	return reply{
		status: http.StatusCreated,
		body:   obj,
		header: map[string]string{"X-Auth-Token": token, "Location": obj["@odata.id"].(string)},
	}, nil
}

func (v *view) getSession(r *http.Request) (reply, error) {
	s, ok := v.s.sessions.get(v.scope, r.PathValue("sid"))
	if !ok {
		return reply{}, errorf(msgResourceNotFound, "Session", r.PathValue("sid"))
	}
	return reply{body: renderSession(s)}, nil
}

func (v *view) deleteSession(r *http.Request) (reply, error) {
	id := r.PathValue("sid")
	if !v.s.sessions.remove(v.scope, id) {
		return reply{}, errorf(msgResourceNotFound, "Session", id)
	}
	v.s.log.Info("session deleted", "session", id, "bmc", v.scope)
	return reply{status: http.StatusNoContent}, nil
}
