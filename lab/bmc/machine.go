// Package bmc holds what the lab's virtual BMCs share: the machine a BMC
// controls, and a simple in-memory machine for tests and simulated nodes.
// The protocols live in the subpackages ipmi (IPMI 2.0 over RMCP+) and
// redfish (Redfish over HTTPS).
package bmc

import (
	"context"
	"errors"
	"sync"
)

// Boot devices a BMC can set, with Ironic's names.
const (
	BootNone  = ""
	BootPXE   = "pxe"
	BootDisk  = "disk"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
)

// BootConfig is the boot override a BMC holds for its machine.
type BootConfig struct {
	// Device is one of the Boot* constants; BootNone means no override.
	Device string
	// Persistent applies the override to every boot; otherwise it is
	// consumed by the next boot.
	Persistent bool
	// UEFI asks for a UEFI boot of the device rather than a legacy one.
	UEFI bool
}

// Hardware describes a machine, for the BMC's inventory answers (Redfish
// ProcessorSummary, MemorySummary, EthernetInterfaces, SimpleStorage; IPMI
// device ID).
type Hardware struct {
	UUID         string
	Serial       string
	Manufacturer string
	Model        string
	CPUs         int
	CPUModel     string
	MemoryMiB    int
	NICs         []NIC
	Disks        []Disk
	// Firmware is "uefi" or "bios".
	Firmware string
}

// NIC is a network interface of a machine.
type NIC struct {
	Name string
	MAC  string
}

// Disk is a disk of a machine.
type Disk struct {
	Name      string
	SizeBytes int64
	Serial    string
	Model     string
}

// Machine is what a virtual BMC controls: a qemu VM, a simulated node, or
// the in-memory Sim. Every method is safe for concurrent use.
type Machine interface {
	// PoweredOn reports whether the machine is running.
	PoweredOn(ctx context.Context) (bool, error)
	// PowerOn starts the machine; it boots per the boot override (which it
	// consumes unless persistent). Starting a running machine is no error.
	PowerOn(ctx context.Context) error
	// PowerOff stops the machine: at once, or, if graceful, by asking the
	// guest to shut down (ACPI). Stopping a stopped machine is no error.
	PowerOff(ctx context.Context, graceful bool) error
	// Reset restarts a running machine (a hard reset, or graceful: a
	// shutdown then a start); a stopped machine is started.
	Reset(ctx context.Context, graceful bool) error
	// Boot returns the current boot override.
	Boot() BootConfig
	// SetBoot sets the boot override.
	SetBoot(ctx context.Context, b BootConfig) error
	// Hardware describes the machine.
	Hardware() Hardware
}

// ErrUnsupported is returned for a request the machine can not carry out.
var ErrUnsupported = errors.New("not supported by this machine")

// Sim is an in-memory machine: power and boot state only. The lab's fleet
// nodes and the BMC packages' tests use it.
type Sim struct {
	mu   sync.Mutex
	on   bool
	boot BootConfig
	hw   Hardware
	// Boots counts power-ons and resets, with the device each booted from.
	boots []string
}

var _ Machine = (*Sim)(nil)

// NewSim returns a stopped machine with the given hardware.
func NewSim(hw Hardware) *Sim { return &Sim{hw: hw} }

// PoweredOn reports the power state.
func (s *Sim) PoweredOn(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on, nil
}

// PowerOn starts the machine.
func (s *Sim) PowerOn(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on {
		s.on = true
		s.bootLocked()
	}
	return nil
}

// PowerOff stops the machine.
func (s *Sim) PowerOff(context.Context, bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = false
	return nil
}

// Reset restarts (or starts) the machine.
func (s *Sim) Reset(context.Context, bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = true
	s.bootLocked()
	return nil
}

func (s *Sim) bootLocked() {
	dev := s.boot.Device
	if dev == BootNone {
		dev = BootDisk
	}
	s.boots = append(s.boots, dev)
	if !s.boot.Persistent {
		s.boot.Device = BootNone
	}
}

// Boot returns the boot override.
func (s *Sim) Boot() BootConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boot
}

// SetBoot sets the boot override.
func (s *Sim) SetBoot(_ context.Context, b BootConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.boot = b
	return nil
}

// Hardware describes the machine.
func (s *Sim) Hardware() Hardware { return s.hw }

// Boots returns the device of every boot so far, oldest first.
func (s *Sim) Boots() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.boots...)
}
