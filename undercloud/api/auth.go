package api

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Authenticator identifies who made a request. The API calls it for every
// request except version discovery.
type Authenticator interface {
	// Authenticate returns the name of the requesting user, or an error
	// wrapping ErrUnauthorized when the request has no valid credential.
	Authenticate(r *http.Request) (user string, err error)
}

// NoAuth is Ironic's auth_strategy=noauth: every request is the admin.
type NoAuth struct{}

// Authenticate accepts every request as the user "admin".
func (NoAuth) Authenticate(*http.Request) (string, error) { return "admin", nil }

// BasicAuth is Ironic's auth_strategy=http_basic: HTTP basic credentials
// checked against an Apache htpasswd file with bcrypt entries.
type BasicAuth struct {
	users map[string][]byte
	// dummy is compared against when the user is unknown, so that an
	// unknown user costs as much time as a wrong password.
	dummy []byte
}

// LoadHTPasswd reads an htpasswd file for BasicAuth.
func LoadHTPasswd(path string) (*BasicAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	a, err := ParseHTPasswd(f)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return a, nil
}

// ParseHTPasswd reads htpasswd entries ("user:hash", one per line; blank
// lines and lines starting with # are skipped). Only bcrypt hashes ($2y$,
// $2a$, $2b$, as written by `htpasswd -B`) are accepted: the other schemes
// of htpasswd (MD5 $apr1$, SHA1 {SHA}, crypt, plain text) are refused, since
// they are too weak to keep BMC-controlling credentials.
func ParseHTPasswd(r io.Reader) (*BasicAuth, error) {
	a := &BasicAuth{users: map[string][]byte{}}
	sc := bufio.NewScanner(r)
	line := 0
	cost := bcrypt.DefaultCost
	for sc.Scan() {
		line++
		entry := strings.TrimSpace(sc.Text())
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		user, hash, ok := strings.Cut(entry, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: expected user:hash", line)
		}
		if !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
			return nil, fmt.Errorf("line %d: the password of user %q is not a bcrypt hash ($2y$, $2a$ or $2b$); create it with htpasswd -B", line, user)
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: the bcrypt hash of user %q is malformed: %w", line, user, err)
		}
		if _, dup := a.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", line, user)
		}
		a.users[user] = []byte(hash)
		cost = c
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("no users")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("%x", secret)), cost)
	if err != nil {
		return nil, err
	}
	a.dummy = dummy
	return a, nil
}

// Authenticate checks the request's basic credentials.
func (a *BasicAuth) Authenticate(r *http.Request) (string, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", fmt.Errorf("authorization required: send HTTP basic credentials: %w", ErrUnauthorized)
	}
	hash, known := a.users[user]
	if !known {
		hash = a.dummy
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(pass)); err != nil || !known {
		return "", fmt.Errorf("incorrect username or password: %w", ErrUnauthorized)
	}
	return user, nil
}
