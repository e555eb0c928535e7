package conductor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// imageWrittenKey marks, in driver_internal_info, that the agent wrote
// the image: the deploying step then boots the machine from its disk
// instead of into the ramdisk.
const imageWrittenKey = "agent_image_written"

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ImageChecksum returns the SHA-256 an instance's image must have, from
// instance_info's image_os_hash_algo and image_os_hash_value (as Glance
// gives them) or image_checksum: the agent verifies every byte it writes
// against it, and nothing weaker than SHA-256 is accepted.
func ImageChecksum(info map[string]any) (string, error) {
	algo, _ := info["image_os_hash_algo"].(string)
	value, _ := info["image_os_hash_value"].(string)
	if value != "" {
		if algo != "" && algo != "sha256" {
			return "", inventory.Invalid("instance_info.image_os_hash_algo", "%q is not supported: use sha256", algo)
		}
		if !sha256Hex.MatchString(strings.ToLower(value)) {
			return "", inventory.Invalid("instance_info.image_os_hash_value", "%q is not a SHA-256 in hex", value)
		}
		return strings.ToLower(value), nil
	}
	sum, _ := info["image_checksum"].(string)
	sum = strings.ToLower(strings.TrimPrefix(sum, "sha256:"))
	switch {
	case sum == "":
		return "", inventory.Invalid("instance_info.image_checksum", "is required (or image_os_hash_value with image_os_hash_algo sha256)")
	case !sha256Hex.MatchString(sum):
		return "", inventory.Invalid("instance_info.image_checksum", "%q is not a SHA-256 in hex (MD5 is not accepted)", sum)
	}
	return sum, nil
}

// checkImage checks what the agent needs to deploy the node's image.
func checkImage(n *inventory.Node) error {
	src, _ := n.InstanceInfo["image_source"].(string)
	if src == "" {
		return inventory.Invalid("instance_info.image_source", "is required: the URL of the image to deploy")
	}
	if u, err := url.Parse(src); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return inventory.Invalid("instance_info.image_source", "%q is not an http(s) URL", src)
	}
	_, err := ImageChecksum(n.InstanceInfo)
	return err
}

// ContinueDeploy records the end of the agent's image write. On success
// the node goes back to deploying with a worker that sets its boot device
// to disk and reboots it, then active; on failure to deploy failed with
// the agent's message, and the machine is powered off.
func (c *Conductor) ContinueDeploy(ctx context.Context, node, token, failure string) (*inventory.Node, error) {
	var workCtx context.Context
	defer func() {
		if workCtx != nil {
			c.release()
		}
	}()
	n, rev, err := c.agentReport(ctx, node, token, inventory.StateWaitCallback, func(n *inventory.Node, tx *nodestore.Tx) error {
		if failure != "" {
			cause := fmt.Errorf("deploy failed on the node: %s", failure)
			c.move(n, tx, inventory.EventFail, inventory.StateDeployFailed, "", cause)
			n.LastError = oneLine(cause.Error())
			return nil
		}
		if workCtx == nil {
			wc, err := c.acquire()
			if err != nil {
				return err
			}
			workCtx = wc
		}
		n.DriverInternalInfo[imageWrittenKey] = true
		c.move(n, tx, inventory.EventResume, inventory.StateDeploying, "", nil)
		tx.Ops = append(tx.Ops, store.PutLeased(nodestore.LockKey(n.UUID), []byte(c.cfg.Name), c.currentLease()))
		n.Reservation = c.cfg.Name
		return nil
	})
	if err != nil {
		return nil, err
	}
	id := n.UUID
	if failure != "" {
		c.log.Warn("deploy failed on the node", "node", id, "err", failure)
		c.powerOffAfter(ctx, n, "a failed deploy")
		return n, nil
	}
	c.log.Info("image written; booting the node from its disk", "node", id)
	wc := workCtx
	workCtx = nil // the worker releases it
	go c.work(wc, id, rev)
	return n, nil
}

// AgentImage checks an agent's token and returns the image its node is
// being deployed with: the source URL and its SHA-256.
func (c *Conductor) AgentImage(ctx context.Context, node, token string) (source, sum string, err error) {
	n, _, err := c.nodes.GetNode(ctx, node)
	if err != nil {
		return "", "", err
	}
	if err := checkAgentToken(n, token); err != nil {
		return "", "", err
	}
	if n.ProvisionState != inventory.StateWaitCallback {
		return "", "", fmt.Errorf("node %s is %s, not being deployed: %w", n.UUID, n.ProvisionState, inventory.ErrInvalidState)
	}
	if err := checkImage(n); err != nil {
		return "", "", err
	}
	sum, _ = ImageChecksum(n.InstanceInfo)
	source, _ = n.InstanceInfo["image_source"].(string)
	return source, sum, nil
}

// errNoImage is the deploy phase's answer when the node's image is not
// deployable; it names what is wrong.
var errNoImage = errors.New("the node's image can not be deployed")
