package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratacloud/strata/internal/store"
	"github.com/stratacloud/strata/inventory"
	"github.com/stratacloud/strata/undercloud/nodestore"
)

// statesURL is where a client polls after an asynchronous request.
func (s *server) statesURL(r *http.Request) string {
	return s.base(r) + "/v1/nodes/" + r.PathValue("node") + "/states"
}

// nodeStates is GET /v1/nodes/{node}/states.
func (s *server) nodeStates(r *http.Request) (any, error) {
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	v := versionOf(r)
	names := []string{"last_error", "power_state", "provision_state", "target_power_state", "target_provision_state", "provision_updated_at"}
	if v.atLeast(v12RAIDConfig) {
		names = append(names, "raid_config", "target_raid_config")
	}
	if v.atLeast(v75BootMode) {
		names = append(names, "boot_mode", "secure_boot")
	}
	out := map[string]any{"console_enabled": false}
	for _, name := range names {
		f, _ := lookupField(nodeFields, name)
		out[name] = shown(f, n)
	}
	out["provision_state"] = legacyState(out["provision_state"], v)
	out["target_provision_state"] = legacyState(out["target_provision_state"], v)
	return out, nil
}

// provisionParams are the members of a PUT .../states/provision body.
var provisionParams = []string{"target", "configdrive", "clean_steps", "deploy_steps", "service_steps",
	"rescue_password", "disable_ramdisk", "runbook"}

// setProvisionState is PUT /v1/nodes/{node}/states/provision: it checks the
// request as Ironic does, then hands it to the conductor.
func (s *server) setProvisionState(r *http.Request) (any, error) {
	v := versionOf(r)
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if err := body.allow(provisionParams...); err != nil {
		return nil, err
	}
	if body.has("runbook") {
		return nil, tooNew("the runbook parameter", v92Runbooks, v)
	}
	target, err := body.str("target")
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, badRequest("Missing mandatory parameter: target.")
	}
	verb, ok := inventory.LookupVerb(target)
	if !ok {
		return nil, badRequest("The requested action %q could not be understood. Valid actions are: %s.", target, strings.Join(verbNames(v), ", "))
	}
	if !v.atLeast(verb.MinVersion) {
		return nil, tooNew("the provision action "+strconv.Quote(target), verb.MinVersion, v)
	}
	req := ProvisionRequest{Verb: target, User: userOf(r)}
	if req.ConfigDrive, err = configDrive(body, target, v); err != nil {
		return nil, err
	}
	if req.CleanSteps, err = steps(body, "clean_steps", false); err != nil {
		return nil, err
	}
	if req.DeploySteps, err = steps(body, "deploy_steps", true); err != nil {
		return nil, err
	}
	if req.ServiceSteps, err = steps(body, "service_steps", false); err != nil {
		return nil, err
	}
	if req.RescuePassword, err = body.str("rescue_password"); err != nil {
		return nil, err
	}
	disable, err := body.boolean("disable_ramdisk")
	if err != nil {
		return nil, err
	}
	if disable != nil {
		req.DisableRamdisk = *disable
	}

	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	if err := checkProvision(n, verb, req, body, disable != nil, v); err != nil {
		return nil, err
	}
	if err := s.conductor.Provision(r.Context(), n.UUID, req); err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return accepted(s.statesURL(r)), nil
}

// verbNames lists the provision actions of version v.
func verbNames(v version) []string {
	var out []string
	for _, verb := range inventory.Verbs {
		if v.atLeast(verb.MinVersion) {
			out = append(out, verb.Name)
		}
	}
	return out
}

func isDeployVerb(target string) bool {
	return target == "active" || target == "deploy" || target == "rebuild"
}

// checkProvision applies Ironic's checks of a provisioning request, in
// Ironic's order, against the node as it is now. The conductor checks the
// transition again when it takes the node.
func checkProvision(n *inventory.Node, verb inventory.Verb, req ProvisionRequest, body object, hasDisable bool, v version) error {
	target := verb.Name
	if n.Maintenance && isDeployVerb(target) {
		return badRequest("The provisioning operation can't be performed on node %s because it's in maintenance mode.", n.UUID)
	}
	if _, err := inventory.Next(n.ProvisionState, verb.Event); err != nil {
		if locked := lockedErr(n); locked != nil {
			return locked
		}
		return badRequest("The requested action %q can not be performed on node %q while it is in state %q.", target, n.UUID, n.ProvisionState)
	}
	if hasDisable {
		switch target {
		case "clean":
			if !v.atLeast(v70DisableRamdisk) {
				return tooNew("disable_ramdisk", v70DisableRamdisk, v)
			}
		case "service":
			return tooNew("disable_ramdisk with the service action", v108ServiceRamdisk, v)
		default:
			return badRequest("disable_ramdisk is supported only with manual cleaning or servicing.")
		}
	}
	if len(req.CleanSteps) > 0 && target != "clean" {
		return badRequest(`"clean_steps" is only valid when setting target provision state to clean.`)
	}
	if len(req.DeploySteps) > 0 {
		if !v.atLeast(v69DeploySteps) {
			return tooNew("deploy_steps", v69DeploySteps, v)
		}
		if !isDeployVerb(target) {
			return badRequest(`"deploy_steps" is only valid when setting target provision state to active, deploy or rebuild.`)
		}
	}
	if body.has("rescue_password") && target != "rescue" {
		return badRequest(`"rescue_password" is only valid when setting target provision state to rescue.`)
	}
	if target == "abort" {
		if n.ProvisionState == inventory.StateInspectWait && !v.atLeast(v41InspectAbort) {
			return tooNew("aborting inspection", v41InspectAbort, v)
		}
		if n.ProvisionState == inventory.StateWaitCallback && !v.atLeast(v110DeployWaitAbort) {
			return tooNew("aborting a deployment in wait call-back", v110DeployWaitAbort, v)
		}
	}
	if len(req.ServiceSteps) > 0 && target != "service" {
		return badRequest(`"service_steps" is only valid when setting target provision state to service.`)
	}
	switch target {
	case "clean":
		if len(req.CleanSteps) == 0 {
			return badRequest(`"clean_steps" is required when setting target provision state to clean.`)
		}
	case "service":
		if len(req.ServiceSteps) == 0 {
			return badRequest(`"service_steps" is required when setting target provision state to service.`)
		}
	case "rescue":
		if strings.TrimSpace(req.RescuePassword) == "" {
			return badRequest(`A non-empty "rescue_password" is required when setting target provision state to rescue.`)
		}
	case "deleted", "undeploy", "rebuild":
		if n.Protected {
			return errorf(http.StatusForbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted.", n.UUID)
		}
	}
	return nil
}

// b64Alphabet is what a base64-encoded config drive may contain.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r\t "

// configDrive reads and checks the configdrive member: a URL, a gzipped and
// base64-encoded image, or (from 1.56) an object to build one from.
func configDrive(body object, target string, v version) (any, error) {
	cd, ok := body["configdrive"]
	if !ok || cd == nil || cd == "" {
		return nil, nil
	}
	allowed := target == "active" || target == "deploy" || (target == "rebuild" && v.atLeast(v35RebuildConfigDrive))
	if !allowed {
		return nil, badRequest("Adding a config drive is only supported when setting provision state to active, deploy or rebuild (from API 1.%d), not %s.", v35RebuildConfigDrive, target)
	}
	switch cd := cd.(type) {
	case string:
		if strings.Contains(cd, "://") {
			return cd, nil
		}
		if strings.Trim(cd, b64Alphabet) != "" {
			return nil, badRequest("Invalid configdrive format: it is neither a JSON, nor a URL, nor a base64 string.")
		}
		return cd, nil
	case map[string]any:
		if !v.atLeast(v56BuildConfigDrive) {
			return nil, tooNew("a JSON object for configdrive", v56BuildConfigDrive, v)
		}
		for k, val := range cd {
			switch k {
			case "meta_data", "network_data":
				if _, ok := val.(map[string]any); !ok {
					return nil, badRequest("Invalid configdrive format: %s must be an object, got %s.", k, describe(val))
				}
			case "vendor_data":
				if !v.atLeast(v59ConfigDriveVendor) {
					return nil, tooNew("vendor_data in configdrive", v59ConfigDriveVendor, v)
				}
				if _, ok := val.(map[string]any); !ok {
					return nil, badRequest("Invalid configdrive format: vendor_data must be an object, got %s.", describe(val))
				}
			case "user_data":
				switch val.(type) {
				case map[string]any, []any, string, nil:
				default:
					return nil, badRequest("Invalid configdrive format: user_data must be an object, an array, a string or null, got %s.", describe(val))
				}
			default:
				return nil, badRequest("Invalid configdrive format: unknown member %q (allowed: meta_data, network_data, user_data, vendor_data).", k)
			}
		}
		return cd, nil
	}
	return nil, badRequest("Invalid configdrive format: expected a string or an object, got %s.", describe(cd))
}

// stepInterfaces are the driver interfaces a step may name (Ironic's
// CLEANING_INTERFACE_PRIORITY and DEPLOYING_INTERFACE_PRIORITY).
var stepInterfaces = []string{"vendor", "power", "management", "firmware", "deploy", "bios", "raid"}

// steps reads and checks a list of clean, deploy or service steps.
func steps(body object, name string, deploy bool) ([]map[string]any, error) {
	raw, err := body.list(name)
	if err != nil || raw == nil {
		return nil, err
	}
	ifaces := stepInterfaces
	if name == "service_steps" {
		ifaces = append(slices.Clone(ifaces), "network")
	}
	kind := strings.TrimSuffix(name, "_steps")
	allowed := []string{"interface", "step", "args", "order", "execute_on_child_nodes", "limit_child_node_execution"}
	if deploy {
		allowed = []string{"interface", "step", "args", "priority"}
	}
	out := make([]map[string]any, 0, len(raw))
	for i, item := range raw {
		st, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest("Invalid %s: step %d is %s, not an object.", name, i+1, describe(item))
		}
		for k := range st {
			if !slices.Contains(allowed, k) {
				return nil, badRequest("Invalid %s: step %d has the unknown member %q (allowed: %s).", name, i+1, k, strings.Join(allowed, ", "))
			}
		}
		iface, _ := st["interface"].(string)
		if !slices.Contains(ifaces, iface) {
			return nil, badRequest("Invalid %s: step %d must name its interface, one of %s.", name, i+1, strings.Join(ifaces, ", "))
		}
		if step, _ := st["step"].(string); step == "" {
			return nil, badRequest("Invalid %s: step %d must name the %s step to run.", name, i+1, kind)
		}
		if args, ok := st["args"]; ok {
			if _, isObj := args.(map[string]any); !isObj {
				return nil, badRequest("Invalid %s: the args of step %d must be an object.", name, i+1)
			}
		} else if deploy {
			return nil, badRequest("Invalid %s: step %d must have args.", name, i+1)
		}
		for _, k := range []string{"priority", "order"} {
			val, ok := st[k]
			if !ok {
				if k == "priority" && deploy {
					return nil, badRequest("Invalid %s: step %d must have a priority.", name, i+1)
				}
				continue
			}
			if !isNonNegativeInt(val) {
				return nil, badRequest("Invalid %s: the %s of step %d must be a non-negative integer.", name, k, i+1)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func isNonNegativeInt(v any) bool {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		return err == nil && n >= 0
	case string:
		return v != "" && strings.Trim(v, "0123456789") == ""
	}
	return false
}

// setPowerState is PUT /v1/nodes/{node}/states/power.
func (s *server) setPowerState(r *http.Request) (any, error) {
	v := versionOf(r)
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if err := body.allow("target", "timeout"); err != nil {
		return nil, err
	}
	target, err := body.str("target")
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, badRequest("Missing mandatory parameter: target.")
	}
	var timeout time.Duration
	if raw, ok := body["timeout"]; ok && raw != nil {
		num, isNum := raw.(json.Number)
		secs, err := strconv.ParseInt(num.String(), 10, 64)
		if !isNum || err != nil {
			return nil, badRequest("Invalid value for timeout: expected an integer number of seconds, got %s.", describe(raw))
		}
		if !v.atLeast(v27SoftPower) {
			return nil, tooNew("the timeout parameter", v27SoftPower, v)
		}
		if secs < 1 {
			return nil, badRequest("timeout has to be positive integer, got %d.", secs)
		}
		timeout = time.Duration(secs) * time.Second
	}
	if (target == inventory.SoftPowerOff || target == inventory.SoftRebooting) && !v.atLeast(v27SoftPower) {
		return nil, tooNew("the power target "+strconv.Quote(target), v27SoftPower, v)
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(inventory.PowerTargets, target) {
		return nil, badRequest("The requested action %q can not be performed on node %q while it is in state %q. Valid power targets are: %s.",
			target, n.UUID, powerStateName(n.PowerState), strings.Join(inventory.PowerTargets, ", "))
	}
	if n.ProvisionState == inventory.StateCleaning || n.ProvisionState == inventory.StateCleanWait {
		return nil, badRequest("The requested action %q can not be performed on node %q while it is in state %q.", target, n.UUID, n.ProvisionState)
	}
	if err := s.conductor.SetPower(r.Context(), n.UUID, target, timeout); err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return accepted(s.statesURL(r)), nil
}

func powerStateName(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// getBootDevice is GET /v1/nodes/{node}/management/boot_device.
func (s *server) getBootDevice(r *http.Request) (any, error) {
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	device, persistent, err := s.conductor.BootDevice(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	if device == "" {
		return map[string]any{"boot_device": nil, "persistent": nil}, nil
	}
	return map[string]any{"boot_device": device, "persistent": persistent}, nil
}

// setBootDevice is PUT /v1/nodes/{node}/management/boot_device.
func (s *server) setBootDevice(r *http.Request) (any, error) {
	body, err := readObject(r, false)
	if err != nil {
		return nil, err
	}
	if err := body.allow("boot_device", "persistent"); err != nil {
		return nil, err
	}
	device, err := body.str("boot_device")
	if err != nil {
		return nil, err
	}
	if device == "" {
		return nil, badRequest("Missing mandatory parameter: boot_device.")
	}
	persistent, err := body.boolean("persistent")
	if err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	supported, err := s.conductor.SupportedBootDevices(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	if !slices.Contains(supported, device) {
		return nil, badRequest("Invalid boot device %s for node %s: the supported boot devices are %s.", device, n.UUID, strings.Join(supported, ", "))
	}
	if err := s.conductor.SetBootDevice(r.Context(), n.UUID, device, persistent != nil && *persistent); err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return noContent(), nil
}

// supportedBootDevices is GET .../management/boot_device/supported.
func (s *server) supportedBootDevices(r *http.Request) (any, error) {
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	devices, err := s.conductor.SupportedBootDevices(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	if devices == nil {
		devices = []string{}
	}
	return map[string]any{"supported_boot_devices": devices}, nil
}

// setMaintenance is PUT /v1/nodes/{node}/maintenance.
func (s *server) setMaintenance(r *http.Request) (any, error) {
	body, err := readObject(r, true)
	if err != nil {
		return nil, err
	}
	if err := body.allow("reason"); err != nil {
		return nil, err
	}
	reason, err := body.str("reason")
	if err != nil {
		return nil, err
	}
	return s.maintenance(r, true, reason)
}

// unsetMaintenance is DELETE /v1/nodes/{node}/maintenance.
func (s *server) unsetMaintenance(r *http.Request) (any, error) {
	return s.maintenance(r, false, "")
}

func (s *server) maintenance(r *http.Request, on bool, reason string) (any, error) {
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	user := userOf(r)
	_, _, err = s.nodes.UpdateNode(r.Context(), n.UUID, func(n *inventory.Node, tx *nodestore.Tx) error {
		if err := lockedErr(n); err != nil {
			return err
		}
		if n.Maintenance == on && n.MaintenanceReason == reason {
			return store.ErrNoChange
		}
		n.Maintenance, n.MaintenanceReason = on, reason
		event := "maintenance set"
		if reason != "" {
			event += ": " + reason
		}
		if !on {
			n.Fault = ""
			event = "maintenance unset"
		}
		ev := s.nodes.NewHistory("maintenance", "INFO", event)
		ev.User = user
		tx.Record(ev)
		return nil
	})
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	return accepted(""), nil
}

// validateNode is GET /v1/nodes/{node}/validate.
func (s *server) validateNode(r *http.Request) (any, error) {
	if _, err := parseQuery(r); err != nil {
		return nil, err
	}
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	return s.validate(r, n)
}

// validateByQuery is GET /v1/nodes/validate?node=<ident>, the older form.
func (s *server) validateByQuery(r *http.Request) (any, error) {
	q, err := parseQuery(r, "node", "node_uuid")
	if err != nil {
		return nil, err
	}
	ident, ok := q.get("node_uuid")
	if ok && !inventory.IsUUID(ident) {
		return nil, badRequest("Expected a UUID for node_uuid: %s.", ident)
	}
	if !ok {
		if ident, ok = q.get("node"); !ok {
			return nil, badRequest("Missing mandatory parameter: node.")
		}
	}
	n, err := s.findNode(r, ident)
	if err != nil {
		return nil, err
	}
	return s.validate(r, n)
}

func (s *server) validate(r *http.Request, n *inventory.Node) (any, error) {
	res, err := s.conductor.Validate(r.Context(), n.UUID)
	if err != nil {
		return nil, nodeErr(n.UUID, err)
	}
	if res == nil {
		res = map[string]ValidateResult{}
	}
	return res, nil
}
