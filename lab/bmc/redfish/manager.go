package redfish

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/google/uuid"
)

// Every system has a manager (its BMC) and a chassis, with the system's id.

var managerResetTypes = []string{"GracefulRestart", "ForceRestart"}

func (v *view) getManagers(*http.Request) (reply, error) {
	return reply{body: collection(root+"/Managers", "ManagerCollection", "Manager Collection", v.systemIDs())}, nil
}

func (v *view) getManager(r *http.Request) (reply, error) {
	id := r.PathValue("id")
	sys, err := v.lookup(id)
	if err != nil {
		return reply{}, errorf(msgResourceNotFound, "Manager", id)
	}
	p := managerPath(sys.id)
	return reply{body: object{
		"@odata.id":       p,
		"@odata.type":     "#Manager.v1_10_0.Manager",
		"Id":              sys.id,
		"Name":            "Manager of " + sys.id,
		"ManagerType":     "BMC",
		"UUID":            uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:strata:lab:redfish:manager:"+sys.id)).String(),
		"Model":           "Strata lab Redfish BMC",
		"FirmwareVersion": "1.0.0",
		"PowerState":      "On",
		"Status":          statusOK(),
		"Links": object{
			"ManagerForServers": links(systemPath(sys.id)),
			"ManagerForChassis": links(chassisPath(sys.id)),
		},
		"Actions": object{
			"#Manager.Reset": object{
				"target":                            p + "/Actions/Manager.Reset",
				"ResetType@Redfish.AllowableValues": managerResetTypes,
			},
		},
	}}, nil
}

// resetManager is the Manager.Reset action. The emulated BMC restarts in no
// time: it checks the request and answers 204.
func (v *view) resetManager(r *http.Request) (reply, error) {
	id := r.PathValue("id")
	if _, err := v.lookup(id); err != nil {
		return reply{}, errorf(msgResourceNotFound, "Manager", id)
	}
	body, err := decodeObject(r)
	if err != nil {
		return reply{}, err
	}
	const action = "Manager.Reset"
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if k != "ResetType" {
			return reply{}, errorf(msgActionParameterUnknown, action, k).about("/" + k)
		}
	}
	if raw, ok := body["ResetType"]; ok { // optional for a manager
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return reply{}, errorf(msgActionParameterValueTypeError, compact(raw), "ResetType", action).about("/ResetType")
		}
		if !slices.Contains(managerResetTypes, s) {
			return reply{}, errorf(msgActionParameterValueNotInList, s, "ResetType", action).about("/ResetType")
		}
	}
	v.s.log.Info("manager reset", "manager", id)
	return reply{status: http.StatusNoContent}, nil
}

func (v *view) getChassisCollection(*http.Request) (reply, error) {
	return reply{body: collection(root+"/Chassis", "ChassisCollection", "Chassis Collection", v.systemIDs())}, nil
}

func (v *view) getChassis(r *http.Request) (reply, error) {
	id := r.PathValue("id")
	sys, err := v.lookup(id)
	if err != nil {
		return reply{}, errorf(msgResourceNotFound, "Chassis", id)
	}
	on, err := sys.m.PoweredOn(r.Context())
	if err != nil {
		return reply{}, err
	}
	return reply{body: object{
		"@odata.id":    chassisPath(sys.id),
		"@odata.type":  "#Chassis.v1_14_0.Chassis",
		"Id":           sys.id,
		"Name":         "Chassis of " + sys.id,
		"ChassisType":  "RackMount",
		"Manufacturer": sys.hw.Manufacturer,
		"Model":        sys.hw.Model,
		"SerialNumber": sys.hw.Serial,
		"PowerState":   powerState(on),
		"Status":       statusOK(),
		"Links": object{
			"ComputerSystems": links(systemPath(sys.id)),
			"ManagedBy":       links(managerPath(sys.id)),
		},
	}}, nil
}
