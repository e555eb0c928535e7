package redfish

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/stratacloud/strata/lab/bmc"
)

// object is a JSON object of a response.
type object = map[string]any

const root = "/redfish/v1"

func systemPath(id string) string  { return root + "/Systems/" + id }
func managerPath(id string) string { return root + "/Managers/" + id }
func chassisPath(id string) string { return root + "/Chassis/" + id }

func link(path string) object { return object{"@odata.id": path} }

func links(paths ...string) []object {
	out := make([]object, len(paths))
	for i, p := range paths {
		out[i] = link(p)
	}
	return out
}

func collection(path, typ, name string, members []string) object {
	ms := make([]object, len(members))
	for i, m := range members {
		ms[i] = link(path + "/" + m)
	}
	return object{
		"@odata.id":           path,
		"@odata.type":         "#" + typ + "." + typ,
		"Name":                name,
		"Members":             ms,
		"Members@odata.count": len(ms),
	}
}

func statusOK() object { return object{"State": "Enabled", "Health": "OK"} }

func powerState(on bool) string {
	if on {
		return "On"
	}
	return "Off"
}

// system is a served machine, with what is fixed about it worked out once.
type system struct {
	id    string
	m     bmc.Machine
	hw    bmc.Hardware
	uuid  string
	nics  []string // resource ids, parallel to hw.NICs
	disks []string // resource ids, parallel to hw.Disks
	// ops holds a token while a power or boot operation is under way.
	ops chan struct{}
}

func newSystem(id string, m bmc.Machine) *system {
	hw := m.Hardware()
	sys := &system{id: id, m: m, hw: hw, ops: make(chan struct{}, 1)}
	if u, err := uuid.Parse(hw.UUID); err == nil {
		sys.uuid = u.String()
	} else {
		sys.uuid = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:strata:lab:redfish:system:"+id)).String()
	}
	names := make([]string, len(hw.NICs))
	for i, n := range hw.NICs {
		names[i] = n.Name
	}
	sys.nics = memberIDs(names, "NIC")
	names = make([]string, len(hw.Disks))
	for i, d := range hw.Disks {
		names[i] = d.Name
	}
	sys.disks = memberIDs(names, "Disk")
	return sys
}

// memberIDs names the members of a collection: by their names where those
// make unique URI segments, else by prefix and position.
func memberIDs(names []string, prefix string) []string {
	ids := make([]string, len(names))
	for i, n := range names {
		if !idPattern.MatchString(n) || slices.Contains(names[:i], n) {
			n = prefix + strconv.Itoa(i)
		}
		ids[i] = n
	}
	return ids
}

// lock waits for the system's turn to change power or boot state.
func (sys *system) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case sys.ops <- struct{}{}:
		return func() { <-sys.ops }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// render is the ComputerSystem resource.
func (sys *system) render(ctx context.Context) (object, error) {
	on, err := sys.m.PoweredOn(ctx)
	if err != nil {
		return nil, fmt.Errorf("system %s: power state: %w", sys.id, err)
	}
	hw, p := sys.hw, systemPath(sys.id)
	return object{
		"@odata.id":    p,
		"@odata.type":  "#ComputerSystem.v1_13_0.ComputerSystem",
		"Id":           sys.id,
		"Name":         sys.id,
		"UUID":         sys.uuid,
		"Manufacturer": hw.Manufacturer,
		"Model":        hw.Model,
		"SerialNumber": hw.Serial,
		"SystemType":   "Physical",
		"PowerState":   powerState(on),
		"Status":       statusOK(),
		"Boot":         renderBoot(sys.m.Boot()),
		"ProcessorSummary": object{
			"Count":                 hw.CPUs,
			"LogicalProcessorCount": hw.CPUs,
			"Model":                 hw.CPUModel,
			"Status":                statusOK(),
		},
		"MemorySummary": object{
			"TotalSystemMemoryGiB": float64(hw.MemoryMiB) / 1024,
			"Status":               statusOK(),
		},
		"Processors":         link(p + "/Processors"),
		"Memory":             link(p + "/Memory"),
		"EthernetInterfaces": link(p + "/EthernetInterfaces"),
		"SimpleStorage":      link(p + "/SimpleStorage"),
		"Storage":            link(p + "/Storage"),
		"Links": object{
			"ManagedBy": links(managerPath(sys.id)),
			"Chassis":   links(chassisPath(sys.id)),
		},
		"Actions": object{
			"#ComputerSystem.Reset": object{
				"target":                            p + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": resetTypeNames(),
			},
		},
	}, nil
}

func (v *view) getSystems(*http.Request) (reply, error) {
	return reply{body: collection(root+"/Systems", "ComputerSystemCollection", "Computer System Collection", v.systemIDs())}, nil
}

func (v *view) getSystem(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	obj, err := sys.render(r.Context())
	if err != nil {
		return reply{}, err
	}
	return reply{body: obj}, nil
}

// member finds a member of one of a system's collections: its index in
// ids, or a not-found error naming the resource type.
func member(ids []string, id, typ string) (int, error) {
	if i := slices.Index(ids, id); i >= 0 {
		return i, nil
	}
	return 0, errorf(msgResourceNotFound, typ, id)
}

func (v *view) getEthernetInterfaces(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{body: collection(systemPath(sys.id)+"/EthernetInterfaces", "EthernetInterfaceCollection",
		"Ethernet Interface Collection", sys.nics)}, nil
}

func (v *view) getEthernetInterface(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	i, err := member(sys.nics, r.PathValue("nic"), "EthernetInterface")
	if err != nil {
		return reply{}, err
	}
	nic := sys.hw.NICs[i]
	mac := nic.MAC
	if hw, err := net.ParseMAC(mac); err == nil {
		mac = hw.String()
	}
	name := nic.Name
	if name == "" {
		name = sys.nics[i]
	}
	return reply{body: object{
		"@odata.id":           systemPath(sys.id) + "/EthernetInterfaces/" + sys.nics[i],
		"@odata.type":         "#EthernetInterface.v1_6_0.EthernetInterface",
		"Id":                  sys.nics[i],
		"Name":                name,
		"MACAddress":          mac,
		"PermanentMACAddress": mac,
		"InterfaceEnabled":    true,
		"LinkStatus":          "LinkUp",
		"Status":              statusOK(),
	}}, nil
}

// The storage collections have one controller, "1", with every disk.
const controllerID = "1"

func (v *view) getSimpleStorages(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{body: collection(systemPath(sys.id)+"/SimpleStorage", "SimpleStorageCollection",
		"Simple Storage Collection", []string{controllerID})}, nil
}

func (v *view) getSimpleStorage(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	if _, err := member([]string{controllerID}, r.PathValue("ss"), "SimpleStorage"); err != nil {
		return reply{}, err
	}
	devices := make([]object, len(sys.hw.Disks))
	for i, d := range sys.hw.Disks {
		devices[i] = object{
			"Name":          diskName(d, sys.disks[i]),
			"Model":         d.Model,
			"CapacityBytes": d.SizeBytes,
			"Status":        statusOK(),
		}
	}
	return reply{body: object{
		"@odata.id":   systemPath(sys.id) + "/SimpleStorage/" + controllerID,
		"@odata.type": "#SimpleStorage.v1_3_0.SimpleStorage",
		"Id":          controllerID,
		"Name":        "Simple Storage Controller",
		"Devices":     devices,
		"Status":      statusOK(),
	}}, nil
}

func diskName(d bmc.Disk, id string) string {
	if d.Name != "" {
		return d.Name
	}
	return id
}

func (v *view) getStorages(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{body: collection(systemPath(sys.id)+"/Storage", "StorageCollection",
		"Storage Collection", []string{controllerID})}, nil
}

func (v *view) getStorage(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	if _, err := member([]string{controllerID}, r.PathValue("st"), "Storage"); err != nil {
		return reply{}, err
	}
	p := systemPath(sys.id) + "/Storage/" + controllerID
	drives := make([]string, len(sys.disks))
	for i, d := range sys.disks {
		drives[i] = p + "/Drives/" + d
	}
	return reply{body: object{
		"@odata.id":          p,
		"@odata.type":        "#Storage.v1_9_0.Storage",
		"Id":                 controllerID,
		"Name":               "Storage Controller",
		"Drives":             links(drives...),
		"Drives@odata.count": len(drives),
		"Status":             statusOK(),
	}}, nil
}

func (v *view) getDrive(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	if _, err := member([]string{controllerID}, r.PathValue("st"), "Storage"); err != nil {
		return reply{}, err
	}
	i, err := member(sys.disks, r.PathValue("drive"), "Drive")
	if err != nil {
		return reply{}, err
	}
	d := sys.hw.Disks[i]
	return reply{body: object{
		"@odata.id":     systemPath(sys.id) + "/Storage/" + controllerID + "/Drives/" + sys.disks[i],
		"@odata.type":   "#Drive.v1_9_0.Drive",
		"Id":            sys.disks[i],
		"Name":          diskName(d, sys.disks[i]),
		"Model":         d.Model,
		"SerialNumber":  d.Serial,
		"CapacityBytes": d.SizeBytes,
		"Status":        statusOK(),
	}}, nil
}

// Each CPU of a machine is a processor of one core, as sushy-tools shows a
// VM's vCPUs.
func cpuIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "CPU" + strconv.Itoa(i)
	}
	return ids
}

func (v *view) getProcessors(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{body: collection(systemPath(sys.id)+"/Processors", "ProcessorCollection",
		"Processor Collection", cpuIDs(sys.hw.CPUs))}, nil
}

func (v *view) getProcessor(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	i, err := member(cpuIDs(sys.hw.CPUs), r.PathValue("cpu"), "Processor")
	if err != nil {
		return reply{}, err
	}
	id := "CPU" + strconv.Itoa(i)
	return reply{body: object{
		"@odata.id":             systemPath(sys.id) + "/Processors/" + id,
		"@odata.type":           "#Processor.v1_7_0.Processor",
		"Id":                    id,
		"Name":                  "Processor " + strconv.Itoa(i),
		"Socket":                "CPU " + strconv.Itoa(i),
		"ProcessorType":         "CPU",
		"ProcessorArchitecture": "x86",
		"InstructionSet":        "x86-64",
		"Model":                 sys.hw.CPUModel,
		"TotalCores":            1,
		"TotalThreads":          1,
		"Status":                statusOK(),
	}}, nil
}

// A machine's memory is one module.
func dimmIDs(hw bmc.Hardware) []string {
	if hw.MemoryMiB <= 0 {
		return nil
	}
	return []string{"DIMM0"}
}

func (v *view) getMemories(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{body: collection(systemPath(sys.id)+"/Memory", "MemoryCollection",
		"Memory Module Collection", dimmIDs(sys.hw))}, nil
}

func (v *view) getMemory(r *http.Request) (reply, error) {
	sys, err := v.lookup(r.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	if _, err := member(dimmIDs(sys.hw), r.PathValue("dimm"), "Memory"); err != nil {
		return reply{}, err
	}
	return reply{body: object{
		"@odata.id":        systemPath(sys.id) + "/Memory/DIMM0",
		"@odata.type":      "#Memory.v1_7_0.Memory",
		"Id":               "DIMM0",
		"Name":             "Memory Module 0",
		"MemoryType":       "DRAM",
		"MemoryDeviceType": "DDR4",
		"CapacityMiB":      sys.hw.MemoryMiB,
		"VolatileSizeMiB":  sys.hw.MemoryMiB,
		"Status":           statusOK(),
	}}, nil
}
