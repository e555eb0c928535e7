package conductor_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/conductor"
)

func TestConfigDriveImageForms(t *testing.T) {
	iso, err := images.ConfigDrive{MetaData: map[string]any{"uuid": "u"}}.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(iso)
	zw.Close()
	node := func(cd any) *inventory.Node {
		return &inventory.Node{UUID: "0b6e1e43-5b5e-4a8c-9d0e-111111111111", Name: "web-1", InstanceInfo: map[string]any{"configdrive": cd}}
	}
	ctx := context.Background()
	for name, cd := range map[string]any{
		"gzipped base64": base64.StdEncoding.EncodeToString(gz.Bytes()),
		"plain base64":   base64.StdEncoding.EncodeToString(iso),
	} {
		got, err := conductor.ConfigDriveImage(ctx, node(cd), nil)
		if err != nil || !bytes.Equal(got, iso) {
			t.Errorf("%s: %d bytes, %v; want the ISO back", name, len(got), err)
		}
	}
	got, err := conductor.ConfigDriveImage(ctx, node(map[string]any{"meta_data": map[string]any{"hostname": "given"}, "user_data": map[string]any{"a": 1}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"uuid":"0b6e1e43-5b5e-4a8c-9d0e-111111111111"`, `"name":"web-1"`, `"hostname":"given"`, `{"a":1}`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("the built drive has no %s", want)
		}
	}
	if got, err := conductor.ConfigDriveImage(ctx, &inventory.Node{}, nil); got != nil || err != nil {
		t.Errorf("no config drive: %d bytes, %v", len(got), err)
	}
	for name, cd := range map[string]string{"not an ISO": base64.StdEncoding.EncodeToString([]byte("hello")), "not base64": "###"} {
		if _, err := conductor.ConfigDriveImage(ctx, node(cd), nil); !errors.Is(err, inventory.ErrInvalid) {
			t.Errorf("%s: %v, want invalid input", name, err)
		}
	}
}

// TestDeployRefusesABadInlineConfigDrive: the request fails, the node
// stays available.
func TestDeployRefusesABadInlineConfigDrive(t *testing.T) {
	ctx := context.Background()
	nodes, _ := newNodes(t)
	c, _ := start(t, nodes, conductor.Config{Name: "c1"})
	n, err := nodes.CreateNode(ctx, &inventory.Node{Name: "n0", Driver: inventory.DriverFake, ProvisionState: inventory.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Verb: "active", ConfigDrive: base64.StdEncoding.EncodeToString([]byte("hello"))})
	if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), "not an ISO 9660 image") {
		t.Fatalf("%v, want the config drive refused", err)
	}
	if got, _, _ := nodes.GetNode(ctx, n.UUID); got.ProvisionState != inventory.StateAvailable || got.InstanceInfo["configdrive"] != nil {
		t.Errorf("the node changed: %s, %v", got.ProvisionState, got.InstanceInfo)
	}
}
