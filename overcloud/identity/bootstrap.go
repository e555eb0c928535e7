package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
)

// Bootstrap says what the first start of identity creates.
type Bootstrap struct {
	// Password is the admin user's password. It is needed only when the
	// service has not been bootstrapped yet.
	Password string
	// AdminUser and AdminProject name the admin; "admin" by default.
	AdminUser    string
	AdminProject string
	// Region is the region of the identity endpoints; "RegionOne".
	Region string
	// PublicURL is the identity endpoint published in the catalog, for
	// example http://192.0.2.10:5000/v3. Required.
	PublicURL string
	// InternalURL and AdminURL default to PublicURL.
	InternalURL string
	AdminURL    string
}

// ErrNoBootstrapPassword is returned by Bootstrap on a first start
// without a password.
var ErrNoBootstrapPassword = errors.New("identity: the first start needs an admin password to bootstrap with")

// Bootstrapped says whether Bootstrap has completed before.
func (s *Server) Bootstrapped(ctx context.Context) (bool, error) {
	_, err := s.st.Get(ctx, bootstrapKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Bootstrap creates, once, what a new cloud's identity needs: the default
// domain (ID "default"), the roles admin, member, reader and service
// (admin implying member, member implying reader), the admin project and
// user with the admin role on the project and on the system, the region,
// and the identity service with its public, internal and admin endpoints.
// Each step keeps what already exists, so an interrupted bootstrap can
// run again, and so can two processes at once; after it has completed
// once it does nothing.
func (s *Server) Bootstrap(ctx context.Context, b Bootstrap) error {
	done, err := s.Bootstrapped(ctx)
	if err != nil || done {
		return err
	}
	if b.AdminUser == "" {
		b.AdminUser = "admin"
	}
	if b.AdminProject == "" {
		b.AdminProject = "admin"
	}
	if b.Region == "" {
		b.Region = "RegionOne"
	}
	if b.PublicURL == "" {
		return errors.New("identity: bootstrap needs the public URL of the identity endpoint")
	}
	if err := validEndpointURL(b.PublicURL); err != nil {
		return fmt.Errorf("identity: bootstrap: public URL %q is not an http or https URL", b.PublicURL)
	}
	if b.InternalURL == "" {
		b.InternalURL = b.PublicURL
	}
	if b.AdminURL == "" {
		b.AdminURL = b.PublicURL
	}
	now := s.now().UTC()

	if _, err := ensure(ctx, s.st, domainNameKey("Default"), func() (string, any) {
		return DefaultDomainID, domain{ID: DefaultDomainID, Name: "Default", Description: "The default domain", Enabled: true, CreatedAt: now}
	}, domainsPrefix); err != nil {
		return err
	}
	roleIDs := map[string]string{}
	for _, name := range []string{"reader", "member", "admin", "service"} {
		implies := []string{}
		switch name {
		case "member":
			implies = []string{roleIDs["reader"]}
		case "admin":
			implies = []string{roleIDs["member"]}
		}
		id, err := ensure(ctx, s.st, roleNameKey("", name), func() (string, any) {
			id := newID()
			return id, role{ID: id, Name: name, Implies: implies, CreatedAt: now}
		}, rolesPrefix)
		if err != nil {
			return err
		}
		roleIDs[name] = id
	}
	projectID, err := ensure(ctx, s.st, projectNameKey(DefaultDomainID, b.AdminProject), func() (string, any) {
		id := newID()
		return id, project{ID: id, Name: b.AdminProject, DomainID: DefaultDomainID, ParentID: DefaultDomainID,
			Description: "Bootstrap project for initializing the cloud.", Enabled: true, CreatedAt: now}
	}, projectsPrefix)
	if err != nil {
		return err
	}
	if _, ok, err := idByName(ctx, s.st, userNameKey(DefaultDomainID, b.AdminUser)); err != nil {
		return err
	} else if !ok && b.Password == "" {
		return ErrNoBootstrapPassword
	}
	hash := ""
	if b.Password != "" {
		if hash, err = s.hasher.hash(ctx, b.Password); err != nil {
			return err
		}
	}
	userID, err := ensure(ctx, s.st, userNameKey(DefaultDomainID, b.AdminUser), func() (string, any) {
		id := newID()
		return id, user{ID: id, Name: b.AdminUser, DomainID: DefaultDomainID, Enabled: true,
			PasswordHash: hash, PasswordSetAt: now, CreatedAt: now}
	}, usersPrefix)
	if err != nil {
		return err
	}
	grant := store.PutJSON(assignmentKey(actorUser, userID, scopeProj, projectID, roleIDs["admin"]), assignment{CreatedAt: now})
	system := store.PutJSON(assignmentKey(actorUser, userID, scopeSystem, systemAll, roleIDs["admin"]), assignment{CreatedAt: now})
	if _, err := s.st.Commit(ctx, nil, []store.Op{grant, system}); err != nil {
		return err
	}
	if rg, err := lookup[region](ctx, s.st, regionsPrefix+seg(b.Region)); err != nil {
		return err
	} else if rg == nil {
		if err := createRecord(ctx, s.st, "region", b.Region, regionsPrefix+seg(b.Region), region{ID: b.Region}, "", b.Region); err != nil && !isConflict(err) {
			return err
		}
	}
	if err := s.bootstrapCatalog(ctx, b); err != nil {
		return err
	}
	if _, err := s.st.Create(ctx, bootstrapKey, []byte(fmt.Sprintf(`{"done_at":%q}`, now.Format("2006-01-02T15:04:05Z")))); err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	s.log.Info("identity bootstrapped", "admin_user", b.AdminUser, "admin_project", b.AdminProject,
		"region", b.Region, "public_url", b.PublicURL)
	return nil
}

func (s *Server) bootstrapCatalog(ctx context.Context, b Bootstrap) error {
	services, err := listRecords[catalogService](ctx, s.st, servicesPrefix)
	if err != nil {
		return err
	}
	svcID := ""
	for _, sv := range services {
		if sv.Type == "identity" {
			svcID = sv.ID
		}
	}
	if svcID == "" {
		svcID = newID()
		sv := catalogService{ID: svcID, Type: "identity", Name: "keystone", Description: "Identity", Enabled: true}
		if err := createRecord(ctx, s.st, "service", sv.Name, servicesPrefix+svcID, sv, "", svcID); err != nil {
			return err
		}
	}
	eps, err := listRecords[endpoint](ctx, s.st, endpointsPrefix)
	if err != nil {
		return err
	}
	for _, e := range []struct{ iface, url string }{{"public", b.PublicURL}, {"internal", b.InternalURL}, {"admin", b.AdminURL}} {
		exists := false
		for _, ep := range eps {
			exists = exists || (ep.ServiceID == svcID && ep.Interface == e.iface)
		}
		if exists {
			continue
		}
		ep := endpoint{ID: newID(), ServiceID: svcID, Interface: e.iface, URL: e.url, RegionID: b.Region, Enabled: true}
		if err := createRecord(ctx, s.st, "endpoint", ep.ID, endpointsPrefix+ep.ID, ep, "", ep.ID); err != nil {
			return err
		}
	}
	return nil
}

// ensure returns the ID a name index holds, creating the record (from
// newRecord, under prefix) and the index when there is none yet.
func ensure(ctx context.Context, st *store.Store, nameKey string, newRecord func() (string, any), prefix string) (string, error) {
	if id, ok, err := idByName(ctx, st, nameKey); err != nil || ok {
		return id, err
	}
	id, v := newRecord()
	err := createRecord(ctx, st, "record", "", prefix+seg(id), v, nameKey, id)
	if isConflict(err) {
		// Created concurrently by another process: use theirs.
		if id, ok, err := idByName(ctx, st, nameKey); err != nil || ok {
			return id, err
		}
	}
	return id, err
}

func isConflict(err error) bool {
	return errors.Is(err, store.ErrExists) || errors.Is(err, api.ErrConflict)
}
