package undercloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/stratacloud/strata/undercloud/api"
	"github.com/stratacloud/strata/undercloud/registry"
)

// startRegistry opens the OCI registry's store under DATA_DIR/registry
// and its listener. Pulls need no credential (nodes pull by digest);
// pushes need the API's: HTTP basic credentials from the htpasswd file,
// or, without authentication, a client on this host.
func startRegistry(cfg Config, auth api.Authenticator, log *slog.Logger) (*registry.Registry, *http.Server, net.Listener, error) {
	authorize := func(r *http.Request) error {
		if cfg.Auth == AuthNone {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			if isLoopback(host) {
				return nil
			}
			return errors.New("this undercloud has no authentication: pushes are taken only from its own host")
		}
		if _, err := auth.Authenticate(r); err != nil {
			return fmt.Errorf("pushing needs the undercloud's credentials (HTTP basic): %w", err)
		}
		return nil
	}
	g, err := registry.New(registry.Config{Dir: filepath.Join(cfg.DataDir, "registry"), Authorize: authorize, Logger: log.With("part", "registry")})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("registry: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Registry.Listen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("registry.listen: %w", err)
	}
	return g, &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, ln, nil
}
