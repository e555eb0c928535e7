package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/overcloud/policy"
)

// Users, their passwords, and groups.

type userInput struct {
	Name             *string        `json:"name"`
	DomainID         *string        `json:"domain_id"`
	DefaultProjectID *string        `json:"default_project_id"`
	Description      *string        `json:"description"`
	Email            *string        `json:"email"`
	Enabled          *bool          `json:"enabled"`
	Password         *string        `json:"password"`
	Options          map[string]any `json:"options"`
	// Extra is every other attribute of the request.
	Extra map[string]json.RawMessage `json:"-"`
}

var userAttributes = setOf("name", "domain_id", "default_project_id", "description", "email", "enabled", "password", "options")

func (in *userInput) UnmarshalJSON(b []byte) error {
	type plain userInput
	if err := json.Unmarshal(b, (*plain)(in)); err != nil {
		return err
	}
	var err error
	in.Extra, err = extraAttributes(b, userAttributes)
	return err
}

// userView never includes the password hash.
func (s *Server) userView(r *http.Request, u *user) map[string]any {
	v := withExtra(map[string]any{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": map[string]any{},
		"links": links(s.base(r) + "/v3/users/" + u.ID),
	}, u.Extra)
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	return v
}

func userTarget(u *user) policy.Target {
	return policy.Target{"target.user.id": u.ID, "target.user.domain_id": u.DomainID, "user_id": u.ID}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	dom, err := s.listDomainFilter(r, "identity:list_users")
	if err != nil {
		return err
	}
	enabled, err := filterBool(r, "enabled")
	if err != nil {
		return err
	}
	all, err := listRecords[user](r.Context(), s.st, usersPrefix)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	all = slices.DeleteFunc(all, func(u user) bool {
		return (name != "" && u.Name != name) || (dom != "" && u.DomainID != dom) || (enabled != nil && u.Enabled != *enabled)
	})
	return s.writeUsers(w, r, all)
}

func (s *Server) writeUsers(w http.ResponseWriter, r *http.Request, us []user) error {
	return writeList(w, r, s, "users", us, func(u *user) string { return u.ID }, func(u *user) map[string]any { return s.userView(r, u) })
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	u, err := fetch(s, r, "identity:get_user", usersPrefix+id, "user", id, userTarget)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"user": s.userView(r, &u)})
	return nil
}

func validPassword(pw string) error {
	if len(pw) > maxPasswordLen {
		return api.BadRequest("Invalid input for field 'user.password': it is longer than %d characters.", maxPasswordLen)
	}
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		User *userInput `json:"user"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.User
	if in == nil || in.Name == nil {
		return api.BadRequest("'user.name' is a required property.")
	}
	now := s.now().UTC()
	u := user{ID: newID(), Name: *in.Name, DomainID: callerDomain(r), Enabled: true, CreatedAt: now}
	if in.DomainID != nil {
		u.DomainID = *in.DomainID
	}
	if err := validName("user.name", u.Name, 255); err != nil {
		return err
	}
	if in.DefaultProjectID != nil {
		u.DefaultProjectID = *in.DefaultProjectID
	}
	if in.Description != nil {
		u.Description = *in.Description
	}
	if in.Email != nil {
		u.Email = *in.Email
	}
	if in.Enabled != nil {
		u.Enabled = *in.Enabled
	}
	if err := validExtra("user", in.Extra); err != nil {
		return err
	}
	u.Extra = in.Extra
	ctx := r.Context()
	if err := s.enforce(r, "identity:create_user", userTarget(&u)); err != nil {
		return err
	}
	if ok, err := s.domainExists(ctx, u.DomainID); err != nil {
		return err
	} else if !ok {
		// Keystone's DomainNotFound: a 404, as Tempest expects.
		return notFound("domain", u.DomainID)
	}
	if in.Password != nil && *in.Password != "" {
		if err := validPassword(*in.Password); err != nil {
			return err
		}
		h, err := s.hasher.hash(ctx, *in.Password)
		if err != nil {
			return err
		}
		u.PasswordHash, u.PasswordSetAt = h, now
	}
	if err := createRecord(ctx, s.st, "user", u.Name, usersPrefix+u.ID, u, userNameKey(u.DomainID, u.Name), u.ID); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "user created", "user_id", u.ID, "name", u.Name, "by", caller(r).UserID)
	api.WriteJSON(w, http.StatusCreated, map[string]any{"user": s.userView(r, &u)})
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	var body struct {
		User *userInput `json:"user"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.User
	if in == nil {
		return api.BadRequest("'user' is a required property.")
	}
	if in.Name != nil {
		if err := validName("user.name", *in.Name, 255); err != nil {
			return err
		}
	}
	if in.Password != nil {
		if err := validPassword(*in.Password); err != nil {
			return err
		}
	}
	old, err := fetch(s, r, "identity:update_user", usersPrefix+id, "user", id, userTarget)
	if err != nil {
		return err
	}
	if in.DomainID != nil && *in.DomainID != old.DomainID {
		return api.BadRequest("Invalid input for field 'user.domain_id': a user cannot move to another domain.")
	}
	ctx := r.Context()
	hash := ""
	if in.Password != nil && *in.Password != "" {
		if hash, err = s.hasher.hash(ctx, *in.Password); err != nil {
			return err
		}
	}
	revoke := false
	u, err := updateRecord(ctx, s.st, "user", id, usersPrefix+id,
		func(u *user) string { return userNameKey(u.DomainID, u.Name) },
		func(u *user) error {
			revoke = false
			if in.Name != nil {
				u.Name = *in.Name
			}
			if in.DefaultProjectID != nil {
				u.DefaultProjectID = *in.DefaultProjectID
			}
			if in.Description != nil {
				u.Description = *in.Description
			}
			if in.Email != nil {
				u.Email = *in.Email
			}
			if in.Enabled != nil {
				revoke = u.Enabled && !*in.Enabled
				u.Enabled = *in.Enabled
			}
			if in.Password != nil {
				u.PasswordHash, u.PasswordSetAt = hash, s.now().UTC()
				revoke = true
			}
			u.Extra = mergeExtra(u.Extra, in.Extra)
			return validExtra("user", u.Extra)
		})
	if err != nil {
		return err
	}
	if revoke {
		if err := s.revokeUser(ctx, id); err != nil {
			return err
		}
	}
	s.changed()
	api.WriteJSON(w, http.StatusOK, map[string]any{"user": s.userView(r, &u)})
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	if _, err := fetch(s, r, "identity:delete_user", usersPrefix+id, "user", id, userTarget); err != nil {
		return err
	}
	if err := s.removeUser(r.Context(), id); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "user deleted", "user_id", id, "by", caller(r).UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeUser deletes a user, revokes its tokens, and deletes its grants,
// group memberships and application credentials.
func (s *Server) removeUser(ctx context.Context, id string) error {
	if _, err := deleteRecord(ctx, s.st, "user", id, usersPrefix+id,
		func(u *user) string { return userNameKey(u.DomainID, u.Name) }, nil); err != nil {
		return err
	}
	if err := s.revokeUser(ctx, id); err != nil {
		return err
	}
	ops := []store.Op{
		store.DelPrefix(assignmentsPrefix + actorUser + "/" + seg(id) + "/"),
		store.DelPrefix(userGroupsPrefix + seg(id) + "/"),
		store.DelPrefix(appCredNameKey(id, "")),
	}
	groups, err := listKeys(ctx, s.st, userGroupsPrefix+seg(id)+"/")
	if err != nil {
		return err
	}
	for _, g := range groups {
		ops = append(ops, store.Del(membersPrefix+seg(g)+"/"+seg(id)))
	}
	creds, err := listKeys(ctx, s.st, appCredNameKey(id, ""))
	if err != nil {
		return err
	}
	for _, name := range creds {
		if acID, ok, err := idByName(ctx, s.st, appCredNameKey(id, name)); err == nil && ok {
			ops = append(ops, store.Del(appCredsPrefix+acID))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := s.st.Commit(ctx, nil, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// changePassword is POST /v3/users/{user_id}/password. It needs no token
// (a user whose password expired has none) but the original password,
// and is throttled like a login.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	var body struct {
		User *struct {
			Password         *string `json:"password"`
			OriginalPassword *string `json:"original_password"`
		} `json:"user"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.User == nil || body.User.Password == nil || body.User.OriginalPassword == nil {
		return api.BadRequest("'user.password' and 'user.original_password' are required properties.")
	}
	if *body.User.Password == "" {
		return api.BadRequest("Invalid input for field 'user.password': it must not be empty.")
	}
	if err := validPassword(*body.User.Password); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.authPassword(ctx, &userRef{ID: id, Password: *body.User.OriginalPassword}); err != nil {
		return err
	}
	hash, err := s.hasher.hash(ctx, *body.User.Password)
	if err != nil {
		return err
	}
	if _, err := updateRecord(ctx, s.st, "user", id, usersPrefix+id, nil, func(u *user) error {
		u.PasswordHash, u.PasswordSetAt = hash, s.now().UTC()
		return nil
	}); err != nil {
		return err
	}
	if err := s.revokeUser(ctx, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed", "user_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type groupInput struct {
	Name        *string `json:"name"`
	DomainID    *string `json:"domain_id"`
	Description *string `json:"description"`
}

func (s *Server) groupView(r *http.Request, g *group) map[string]any {
	return map[string]any{
		"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description,
		"links": links(s.base(r) + "/v3/groups/" + g.ID),
	}
}

func groupTarget(g *group) policy.Target {
	return policy.Target{"target.group.id": g.ID, "target.group.domain_id": g.DomainID}
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	dom, err := s.listDomainFilter(r, "identity:list_groups")
	if err != nil {
		return err
	}
	all, err := listRecords[group](r.Context(), s.st, groupsPrefix)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	all = slices.DeleteFunc(all, func(g group) bool {
		return (name != "" && g.Name != name) || (dom != "" && g.DomainID != dom)
	})
	return s.writeGroups(w, r, all)
}

func (s *Server) writeGroups(w http.ResponseWriter, r *http.Request, gs []group) error {
	return writeList(w, r, s, "groups", gs, func(g *group) string { return g.ID }, func(g *group) map[string]any { return s.groupView(r, g) })
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("group_id")
	g, err := fetch(s, r, "identity:get_group", groupsPrefix+id, "group", id, groupTarget)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"group": s.groupView(r, &g)})
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Group *groupInput `json:"group"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Group
	if in == nil || in.Name == nil {
		return api.BadRequest("'group.name' is a required property.")
	}
	g := group{ID: newID(), Name: *in.Name, DomainID: callerDomain(r), CreatedAt: s.now().UTC()}
	if in.DomainID != nil {
		g.DomainID = *in.DomainID
	}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if err := validName("group.name", g.Name, 64); err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.enforce(r, "identity:create_group", groupTarget(&g)); err != nil {
		return err
	}
	if ok, err := s.domainExists(ctx, g.DomainID); err != nil {
		return err
	} else if !ok {
		return notFound("domain", g.DomainID)
	}
	if err := createRecord(ctx, s.st, "group", g.Name, groupsPrefix+g.ID, g, groupNameKey(g.DomainID, g.Name), g.ID); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"group": s.groupView(r, &g)})
	return nil
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("group_id")
	var body struct {
		Group *groupInput `json:"group"`
	}
	if err := api.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	in := body.Group
	if in == nil {
		return api.BadRequest("'group' is a required property.")
	}
	if in.Name != nil {
		if err := validName("group.name", *in.Name, 64); err != nil {
			return err
		}
	}
	old, err := fetch(s, r, "identity:update_group", groupsPrefix+id, "group", id, groupTarget)
	if err != nil {
		return err
	}
	if in.DomainID != nil && *in.DomainID != old.DomainID {
		return api.BadRequest("Invalid input for field 'group.domain_id': a group cannot move to another domain.")
	}
	g, err := updateRecord(r.Context(), s.st, "group", id, groupsPrefix+id,
		func(g *group) string { return groupNameKey(g.DomainID, g.Name) },
		func(g *group) error {
			if in.Name != nil {
				g.Name = *in.Name
			}
			if in.Description != nil {
				g.Description = *in.Description
			}
			return nil
		})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"group": s.groupView(r, &g)})
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("group_id")
	if _, err := fetch(s, r, "identity:delete_group", groupsPrefix+id, "group", id, groupTarget); err != nil {
		return err
	}
	if err := s.removeGroup(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeGroup deletes a group, its memberships and its grants.
func (s *Server) removeGroup(ctx context.Context, id string) error {
	if _, err := deleteRecord(ctx, s.st, "group", id, groupsPrefix+id,
		func(g *group) string { return groupNameKey(g.DomainID, g.Name) }, nil); err != nil {
		return err
	}
	defer s.changed()
	members, err := listKeys(ctx, s.st, membersPrefix+seg(id)+"/")
	if err != nil {
		return err
	}
	ops := []store.Op{
		store.DelPrefix(membersPrefix + seg(id) + "/"),
		store.DelPrefix(assignmentsPrefix + actorGroup + "/" + seg(id) + "/"),
	}
	for _, u := range members {
		ops = append(ops, store.Del(userGroupsPrefix+seg(u)+"/"+seg(id)))
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := s.st.Commit(ctx, nil, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// membership resolves the group and user of a membership request, and
// checks action on them.
func (s *Server) membership(r *http.Request, action string) (group, user, error) {
	ctx := r.Context()
	gid, uid := r.PathValue("group_id"), r.PathValue("user_id")
	g, err := fetch(s, r, action, groupsPrefix+gid, "group", gid, groupTarget)
	if err != nil {
		return group{}, user{}, err
	}
	u, _, err := getRecord[user](ctx, s.st, usersPrefix+uid, "user", uid)
	if err != nil {
		return group{}, user{}, err
	}
	t := groupTarget(&g)
	t["target.user.domain_id"] = u.DomainID
	if err := s.enforce(r, action, t); err != nil {
		return group{}, user{}, err
	}
	return g, u, nil
}

func (s *Server) addUserToGroup(w http.ResponseWriter, r *http.Request) error {
	g, u, err := s.membership(r, "identity:add_user_to_group")
	if err != nil {
		return err
	}
	v := []byte(`{}`)
	if _, err := s.st.Commit(r.Context(), nil, []store.Op{
		store.Put(membersPrefix+seg(g.ID)+"/"+seg(u.ID), v),
		store.Put(userGroupsPrefix+seg(u.ID)+"/"+seg(g.ID), v),
	}); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) checkUserInGroup(w http.ResponseWriter, r *http.Request) error {
	g, u, err := s.membership(r, "identity:check_user_in_group")
	if err != nil {
		return err
	}
	if _, err := s.st.Get(r.Context(), membersPrefix+seg(g.ID)+"/"+seg(u.ID)); err != nil {
		return api.NotFound("User %s is not a member of group %s.", u.ID, g.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeUserFromGroup(w http.ResponseWriter, r *http.Request) error {
	g, u, err := s.membership(r, "identity:remove_user_from_group")
	if err != nil {
		return err
	}
	ctx := r.Context()
	key := membersPrefix + seg(g.ID) + "/" + seg(u.ID)
	rec, err := s.st.Get(ctx, key)
	if err != nil {
		return api.NotFound("User %s is not a member of group %s.", u.ID, g.ID)
	}
	if _, err := s.st.Commit(ctx, []store.Cond{store.Unchanged(key, rec.ModRevision)}, []store.Op{
		store.Del(key), store.Del(userGroupsPrefix + seg(u.ID) + "/" + seg(g.ID)),
	}); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listUsersInGroup(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("group_id")
	g, err := fetch(s, r, "identity:list_users_in_group", groupsPrefix+id, "group", id, groupTarget)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ids, err := listKeys(ctx, s.st, membersPrefix+seg(g.ID)+"/")
	if err != nil {
		return err
	}
	var us []user
	for _, uid := range ids {
		u, err := lookup[user](ctx, s.st, usersPrefix+uid)
		if err != nil {
			return err
		}
		if u != nil {
			us = append(us, *u)
		}
	}
	return s.writeUsers(w, r, us)
}

func (s *Server) listGroupsForUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	u, err := fetch(s, r, "identity:list_groups_for_user", usersPrefix+id, "user", id, userTarget)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ids, err := listKeys(ctx, s.st, userGroupsPrefix+seg(u.ID)+"/")
	if err != nil {
		return err
	}
	var gs []group
	for _, gid := range ids {
		g, err := lookup[group](ctx, s.st, groupsPrefix+gid)
		if err != nil {
			return err
		}
		if g != nil {
			gs = append(gs, *g)
		}
	}
	return s.writeGroups(w, r, gs)
}
