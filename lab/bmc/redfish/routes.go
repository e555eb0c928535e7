package redfish

import (
	"net/http"
)

// RedfishVersion is the version of the Redfish specification the service
// claims.
const RedfishVersion = "1.11.0"

func (v *view) routes() {
	const (
		get, patch, post, del = http.MethodGet, http.MethodPatch, http.MethodPost, http.MethodDelete
		sys                   = root + "/Systems/{id}"
	)
	v.handle("/redfish", methods{get: v.getVersions})
	v.handle(root, methods{get: v.getRoot})
	v.handle(root+"/odata", methods{get: v.getODataService})

	v.handle(root+"/Systems", methods{get: v.getSystems})
	v.handle(sys, methods{get: v.getSystem, patch: v.patchSystem})
	v.handle(sys+"/Actions/ComputerSystem.Reset", methods{post: v.resetSystem})
	v.handle(sys+"/EthernetInterfaces", methods{get: v.getEthernetInterfaces})
	v.handle(sys+"/EthernetInterfaces/{nic}", methods{get: v.getEthernetInterface})
	v.handle(sys+"/SimpleStorage", methods{get: v.getSimpleStorages})
	v.handle(sys+"/SimpleStorage/{ss}", methods{get: v.getSimpleStorage})
	v.handle(sys+"/Storage", methods{get: v.getStorages})
	v.handle(sys+"/Storage/{st}", methods{get: v.getStorage})
	v.handle(sys+"/Storage/{st}/Drives/{drive}", methods{get: v.getDrive})
	v.handle(sys+"/Processors", methods{get: v.getProcessors})
	v.handle(sys+"/Processors/{cpu}", methods{get: v.getProcessor})
	v.handle(sys+"/Memory", methods{get: v.getMemories})
	v.handle(sys+"/Memory/{dimm}", methods{get: v.getMemory})

	v.handle(root+"/Managers", methods{get: v.getManagers})
	v.handle(root+"/Managers/{id}", methods{get: v.getManager})
	v.handle(root+"/Managers/{id}/Actions/Manager.Reset", methods{post: v.resetManager})
	v.handle(root+"/Chassis", methods{get: v.getChassisCollection})
	v.handle(root+"/Chassis/{id}", methods{get: v.getChassis})

	v.handle(root+"/SessionService", methods{get: v.getSessionService})
	v.handle(sessionsPath, methods{get: v.getSessions, post: v.createSession})
	v.handle(sessionsPath+"/{sid}", methods{get: v.getSession, del: v.deleteSession})

	v.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v.fail(w, r, errorf(msgInvalidURI, r.URL.Path))
	})
}

func (v *view) getVersions(*http.Request) (reply, error) {
	return reply{body: object{"v1": root + "/"}}, nil
}

func (v *view) getRoot(*http.Request) (reply, error) {
	return reply{body: object{
		"@odata.id":      root + "/",
		"@odata.type":    "#ServiceRoot.v1_11_0.ServiceRoot",
		"Id":             "RootService",
		"Name":           "Strata lab Redfish BMC",
		"Product":        "Strata lab Redfish BMC",
		"Vendor":         "Strata",
		"RedfishVersion": RedfishVersion,
		"UUID":           v.s.cfg.UUID,
		"Systems":        link(root + "/Systems"),
		"Managers":       link(root + "/Managers"),
		"Chassis":        link(root + "/Chassis"),
		"SessionService": link(root + "/SessionService"),
		"Links":          object{"Sessions": link(sessionsPath)},
	}}, nil
}

// getODataService is the OData service document: the service root's
// top-level resources.
func (v *view) getODataService(*http.Request) (reply, error) {
	entries := []object{{"name": "Service", "kind": "Singleton", "url": root + "/"}}
	for _, name := range []string{"Systems", "Managers", "Chassis", "SessionService"} {
		entries = append(entries, object{"name": name, "kind": "Singleton", "url": root + "/" + name})
	}
	return reply{body: object{"@odata.context": root + "/$metadata", "value": entries}}, nil
}
