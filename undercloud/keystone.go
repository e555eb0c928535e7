package undercloud

import (
	"context"

	ocapi "github.com/stratacloud/strata/overcloud/api"
	"github.com/stratacloud/strata/undercloud/api"
)

// keystoneValidator asks the identity service about tokens with the
// overcloud's shared token client, for the API's Keystone auth.
type keystoneValidator struct {
	remote *ocapi.RemoteValidator
}

var _ api.TokenValidator = keystoneValidator{}

func newKeystoneValidator(k KeystoneConfig) keystoneValidator {
	ud, pd := k.UserDomain, k.ProjectDomain
	if ud == "" {
		ud = "Default"
	}
	if pd == "" {
		pd = "Default"
	}
	return keystoneValidator{remote: &ocapi.RemoteValidator{
		AuthURL:       k.AuthURL,
		Username:      k.Username,
		UserDomain:    ud,
		Password:      k.Password,
		Project:       k.Project,
		ProjectDomain: pd,
	}}
}

// ValidateToken returns the token's user name and its roles on its scope.
func (v keystoneValidator) ValidateToken(ctx context.Context, token string) (string, []string, error) {
	c, err := v.remote.ValidateToken(ctx, token)
	if err != nil {
		return "", nil, err
	}
	return c.UserName, c.Roles, nil
}
