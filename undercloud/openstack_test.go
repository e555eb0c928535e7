package undercloud_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stratacloud/strata/internal/etcdtest"
	"github.com/stratacloud/strata/undercloud"
)

// TestOpenstackCLI drives the undercloud with the real `openstack
// baremetal` client, on the embedded etcd.
func TestOpenstackCLI(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t, undercloud.Config{})
	openstackSuite(t, addr, nil)
}

// TestOpenstackCLIExternalCluster is the same suite on a three-member
// external etcd cluster (Debian's etcd-server), with one member killed in
// the middle of the run: nothing acknowledged before or after is lost.
func TestOpenstackCLIExternalCluster(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.StartCluster(t, 3)
	addr := startDaemon(t, undercloud.Config{Etcd: undercloud.EtcdConfig{Endpoints: cluster.Endpoints()}})
	openstackSuite(t, addr, func() { cluster.Kill(1) })
}

// openstackSuite creates, lists, shows, patches and deletes nodes and ports
// and walks a fake-hardware node enroll → manageable → available → active
// → available. midway, if set, runs after the first records are written.
func openstackSuite(t *testing.T, addr string, midway func()) {
	out := mustOpenstack(t, addr, "baremetal", "node", "create", "--driver", "fake-hardware", "--name", "os-0",
		"--driver-info", "ipmi_password=hunter2", "--driver-info", "ipmi_address=127.0.0.1", "-f", "json")
	n0 := decode[map[string]any](t, out)
	if n0["provision_state"] != "enroll" || n0["name"] != "os-0" {
		t.Fatalf("created node: %v", n0)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatal("the BMC password came back from node create")
	}
	uuid0 := n0["uuid"].(string)
	mustOpenstack(t, addr, "baremetal", "node", "create", "--driver", "fake-hardware", "--name", "os-1")
	out = mustOpenstack(t, addr, "baremetal", "port", "create", "52:54:00:12:34:56", "--node", uuid0, "-f", "json")
	port := decode[map[string]any](t, out)
	if port["address"] != "52:54:00:12:34:56" || port["node_uuid"] != uuid0 {
		t.Fatalf("created port: %v", port)
	}

	if midway != nil {
		midway()
	}

	// A second port with the same MAC is refused, and says why.
	out, err := openstack(t, addr, "baremetal", "port", "create", "52:54:00:12:34:56", "--node", uuid0)
	if err == nil || !strings.Contains(out, "already exists") {
		t.Fatalf("duplicate MAC: err %v, output %q", err, out)
	}

	list := decode[[]map[string]any](t, mustOpenstack(t, addr, "baremetal", "node", "list", "-f", "json"))
	if len(list) != 2 {
		t.Fatalf("node list: %v", list)
	}
	show := decode[map[string]any](t, mustOpenstack(t, addr, "baremetal", "node", "show", "os-0", "-f", "json"))
	if di, _ := show["driver_info"].(map[string]any); di["ipmi_password"] != "******" || di["ipmi_address"] != "127.0.0.1" {
		t.Fatalf("driver_info shown as %v", show["driver_info"])
	}

	mustOpenstack(t, addr, "baremetal", "node", "set", "os-0", "--property", "cpus=4", "--extra", "rack=r1", "--resource-class", "baremetal")
	mustOpenstack(t, addr, "baremetal", "node", "unset", "os-0", "--extra", "rack")
	show = node(t, addr, "os-0")
	if props, _ := show["properties"].(map[string]any); fmt.Sprint(props["cpus"]) != "4" {
		t.Fatalf("properties after set: %v", show["properties"])
	}
	if extra, _ := show["extra"].(map[string]any); len(extra) != 0 {
		t.Fatalf("extra after unset: %v", show["extra"])
	}
	if show["resource_class"] != "baremetal" {
		t.Fatalf("resource_class after set: %v", show["resource_class"])
	}

	ports := decode[[]map[string]any](t, mustOpenstack(t, addr, "baremetal", "port", "list", "--node", uuid0, "-f", "json"))
	if len(ports) != 1 || ports[0]["Address"] != "52:54:00:12:34:56" {
		t.Fatalf("port list: %v", ports)
	}
	mustOpenstack(t, addr, "baremetal", "port", "show", port["uuid"].(string))

	// The walk, with the client's own --wait where it polls quickly.
	mustOpenstack(t, addr, "baremetal", "node", "manage", "os-0", "--wait", "60")
	waitField(t, addr, "os-0", "provision_state", "manageable")
	mustOpenstack(t, addr, "baremetal", "node", "provide", "os-0")
	waitField(t, addr, "os-0", "provision_state", "available")
	mustOpenstack(t, addr, "baremetal", "node", "deploy", "os-0")
	waitField(t, addr, "os-0", "provision_state", "active")

	// An active node can not be deleted.
	out, err = openstack(t, addr, "baremetal", "node", "delete", "os-0")
	if err == nil || !strings.Contains(out, "active") {
		t.Fatalf("delete of an active node: err %v, output %q", err, out)
	}
	mustOpenstack(t, addr, "baremetal", "node", "undeploy", "os-0")
	n := waitField(t, addr, "os-0", "provision_state", "available")
	if n["last_error"] != nil {
		t.Fatalf("last_error after the walk: %v", n["last_error"])
	}

	// Power, boot device, maintenance, validate, history.
	mustOpenstack(t, addr, "baremetal", "node", "power", "on", "os-1")
	waitField(t, addr, "os-1", "power_state", "power on")
	mustOpenstack(t, addr, "baremetal", "node", "boot", "device", "set", "os-1", "pxe")
	if out := mustOpenstack(t, addr, "baremetal", "node", "boot", "device", "show", "os-1", "-f", "json"); !strings.Contains(out, `"pxe"`) {
		t.Fatalf("boot device show: %s", out)
	}
	mustOpenstack(t, addr, "baremetal", "node", "maintenance", "set", "os-1", "--reason", "fan replaced")
	if n := node(t, addr, "os-1"); n["maintenance"] != true || n["maintenance_reason"] != "fan replaced" {
		t.Fatalf("maintenance: %v %v", n["maintenance"], n["maintenance_reason"])
	}
	mustOpenstack(t, addr, "baremetal", "node", "maintenance", "unset", "os-1")
	mustOpenstack(t, addr, "baremetal", "node", "validate", "os-1")
	hist := mustOpenstack(t, addr, "baremetal", "node", "history", "list", "os-0", "-f", "json")
	for _, step := range []string{"enroll -> verifying", "deploying -> active", "deleting -> cleaning"} {
		if !strings.Contains(hist, step) {
			t.Errorf("history lacks %q:\n%s", step, hist)
		}
	}

	// Delete: a port, then both nodes (os-0 from manageable).
	mustOpenstack(t, addr, "baremetal", "port", "delete", port["uuid"].(string))
	mustOpenstack(t, addr, "baremetal", "node", "manage", "os-0", "--wait", "60")
	mustOpenstack(t, addr, "baremetal", "node", "delete", "os-0", "os-1")
	list = decode[[]map[string]any](t, mustOpenstack(t, addr, "baremetal", "node", "list", "-f", "json"))
	if len(list) != 0 {
		t.Fatalf("nodes left after delete: %v", list)
	}
}
