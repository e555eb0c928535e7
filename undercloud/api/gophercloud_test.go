package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"

	"github.com/stratacloud/strata/undercloud/api"
)

// TestGophercloud drives the API with gophercloud's bare metal client, the
// library Metal3 and the strata CLI use, with both of the standalone
// authentication schemes.
func TestGophercloud(t *testing.T) {
	const password = "s3cret-pw"
	auth, err := api.LoadHTPasswd(htpasswd(t, map[string]string{"metal3": password}, "$2y$"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) (*testServer, *gophercloud.ServiceClient)
	}{
		{"noauth", func(t *testing.T) (*testServer, *gophercloud.ServiceClient) {
			ts := newServer(t)
			c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.url + "/v1/"})
			if err != nil {
				t.Fatal(err)
			}
			return ts, c
		}},
		{"http_basic", func(t *testing.T) (*testServer, *gophercloud.ServiceClient) {
			ts := newServer(t, func(c *api.Config) { c.Auth = auth })
			c, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{
				IronicEndpoint: ts.url + "/v1/", IronicUser: "metal3", IronicUserPassword: password,
			})
			if err != nil {
				t.Fatal(err)
			}
			return ts, c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, client := tc.client(t)
			client.Microversion = "1.81" // what Metal3's baremetal-operator asks for
			ctx := context.Background()

			node, err := nodes.Create(ctx, client, nodes.CreateOpts{
				Name:   "gc-0",
				Driver: "redfish",
				DriverInfo: map[string]any{
					"redfish_address":  "https://10.0.0.9",
					"redfish_username": "root",
					"redfish_password": "calvin",
				},
				Properties:    map[string]any{"cpu_arch": "x86_64"},
				ResourceClass: "baremetal",
				Owner:         "metal3",
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if node.ProvisionState != "enroll" || node.Name != "gc-0" || node.DriverInfo["redfish_password"] != "******" || node.CreatedAt.IsZero() {
				t.Errorf("created %+v", node)
			}

			got, err := nodes.Get(ctx, client, "gc-0").Extract()
			if err != nil {
				t.Fatal(err)
			}
			if got.UUID != node.UUID || got.Owner != "metal3" || got.ResourceClass != "baremetal" {
				t.Errorf("got %+v", got)
			}

			pages, err := nodes.ListDetail(client, nodes.ListOpts{Driver: "redfish"}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			list, err := nodes.ExtractNodes(pages)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].UUID != node.UUID || list[0].DriverInfo["redfish_address"] != "https://10.0.0.9" {
				t.Errorf("listed %+v", list)
			}
			pages, err = nodes.List(client, nodes.ListOpts{Fields: []string{"uuid", "name"}}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if short, err := nodes.ExtractNodes(pages); err != nil || len(short) != 1 || short[0].Name != "gc-0" {
				t.Errorf("short list %+v, %v", short, err)
			}

			updated, err := nodes.Update(ctx, client, node.UUID, nodes.UpdateOpts{
				nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "http://images/os.qcow2"},
				nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/driver_info/redfish_password", Value: "new"},
				nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/properties/cpu_arch"},
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if updated.InstanceInfo["image_source"] != "http://images/os.qcow2" || len(updated.Properties) != 0 || updated.DriverInfo["redfish_password"] != "******" {
				t.Errorf("updated %+v", updated)
			}

			port, err := ports.Create(ctx, client, ports.CreateOpts{NodeUUID: node.UUID, Address: "52:54:00:12:34:56"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if port.Address != "52:54:00:12:34:56" || !port.PXEEnabled {
				t.Errorf("port %+v", port)
			}
			if _, err := ports.Create(ctx, client, ports.CreateOpts{NodeUUID: node.UUID, Address: "52:54:00:12:34:56"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
				t.Errorf("duplicate MAC: %v", err)
			}
			port, err = ports.Update(ctx, client, port.UUID, ports.UpdateOpts{
				ports.UpdateOperation{Op: ports.AddOp, Path: "/extra/nic", Value: "eno1"},
				ports.UpdateOperation{Op: ports.ReplaceOp, Path: "/pxe_enabled", Value: false},
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if port.Extra["nic"] != "eno1" || port.PXEEnabled {
				t.Errorf("updated port %+v", port)
			}
			pages, err = ports.ListDetail(client, ports.ListOpts{NodeUUID: node.UUID}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pl, err := ports.ExtractPorts(pages); err != nil || len(pl) != 1 || pl[0].UUID != port.UUID {
				t.Errorf("ports %+v, %v", pl, err)
			}

			if err := nodes.ChangeProvisionState(ctx, client, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := nodes.ChangePowerState(ctx, client, node.UUID, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := nodes.SetBootDevice(ctx, client, node.UUID, nodes.BootDeviceOpts{BootDevice: "pxe"}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := nodes.SetMaintenance(ctx, client, node.UUID, nodes.MaintenanceOpts{Reason: "check"}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := nodes.UnsetMaintenance(ctx, client, node.UUID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if v, err := nodes.Validate(ctx, client, node.UUID).Extract(); err != nil || !v.Power.Result {
				t.Errorf("validate %+v, %v", v, err)
			}
			got, err = nodes.Get(ctx, client, node.UUID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if got.ProvisionState != "manageable" || got.PowerState != "power on" || got.Maintenance {
				t.Errorf("node after actions %+v", got)
			}

			if err := ports.Delete(ctx, client, port.UUID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := nodes.Delete(ctx, client, node.UUID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if _, err := nodes.Get(ctx, client, node.UUID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("deleted node: %v", err)
			}
			_ = ts
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		ts := newServer(t, func(c *api.Config) { c.Auth = auth })
		client, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{
			IronicEndpoint: ts.url + "/v1/", IronicUser: "metal3", IronicUserPassword: "nope",
		})
		if err != nil {
			t.Fatal(err)
		}
		before := ts.snapshot(t)
		_, err = nodes.Create(context.Background(), client, nodes.CreateOpts{Driver: "ipmi"}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Errorf("create with a wrong password: %v", err)
		}
		ts.unchanged(t, before)
	})

	t.Run("no microversion is 1.1", func(t *testing.T) {
		ts := newServer(t)
		client, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.url + "/v1"})
		if err != nil {
			t.Fatal(err)
		}
		node, err := nodes.Create(context.Background(), client, nodes.CreateOpts{Driver: "ipmi"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		// Before 1.11 a new node is available, which 1.1 shows as null.
		if node.ProvisionState != "" || node.Name != "" {
			t.Errorf("created at 1.1: %+v", node)
		}
	})
}
