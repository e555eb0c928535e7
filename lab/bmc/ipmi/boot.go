package ipmi

import (
	"context"

	"github.com/stratacloud/strata/lab/bmc"
)

// System boot option parameters (IPMI v2.0 table 28-14).
const (
	bootParamSetInProgress = 0
	bootParamSvcPartition  = 1
	bootParamSvcScan       = 2
	bootParamValidClearing = 3
	bootParamInfoAck       = 4
	bootParamFlags         = 5
)

// bootParamLen is each supported parameter's data length.
var bootParamLen = map[byte]int{
	bootParamSetInProgress: 1,
	bootParamSvcPartition:  1,
	bootParamSvcScan:       1,
	bootParamValidClearing: 1,
	bootParamInfoAck:       2,
	bootParamFlags:         5,
}

// Set-in-progress states.
const (
	setComplete   = 0
	setInProgress = 1
	commitWrite   = 2
)

// bootState holds the boot option parameters the machine does not: the
// boot device, its persistence and its EFI flag live in the machine. The
// Server's mutex guards it.
type bootState struct {
	// inProgress is set while progressOwner, a session, holds the
	// set-in-progress lock; the lock ends with the session.
	inProgress    bool
	progressOwner uint32
	svcPartition  byte
	svcScan       byte
	validClearing byte
	infoAck       byte
	// flags are the bits of the boot flags that the machine does not
	// model (CMOS clear, keyboard lock, screen blank, verbosity, …):
	// stored and returned as set.
	flags [5]byte
}

// Boot flag bits of parameter 5.
const (
	bootFlagValid      = 0x80 // data 1
	bootFlagPersistent = 0x40 // data 1
	bootFlagEFI        = 0x20 // data 1
	bootDeviceShift    = 2    // data 2, bits 5:2
	bootDeviceMask     = 0x0f
	bootFlags2Kept     = 0xc3 // data 2 bits kept: CMOS clear, lock keyboard, screen blank, lock reset
)

// Boot device selectors (data 2, bits 5:2).
const (
	bootSelNone        = 0x0
	bootSelPXE         = 0x1
	bootSelDisk        = 0x2
	bootSelDiskSafe    = 0x3
	bootSelCDROM       = 0x5
	bootSelBIOS        = 0x6
	bootSelRemoteCDROM = 0x8
	bootSelRemoteDisk  = 0xb
)

// deviceForSelector maps boot device selectors to the machine's devices;
// selectors it has no device for (diagnostic partition, floppies, remote
// primary media) are missing.
var deviceForSelector = map[byte]string{
	bootSelNone:        bmc.BootNone,
	bootSelPXE:         bmc.BootPXE,
	bootSelDisk:        bmc.BootDisk,
	bootSelDiskSafe:    bmc.BootDisk,
	bootSelCDROM:       bmc.BootCDROM,
	bootSelBIOS:        bmc.BootBIOS,
	bootSelRemoteCDROM: bmc.BootCDROM,
	bootSelRemoteDisk:  bmc.BootDisk,
}

var selectorForDevice = map[string]byte{
	bmc.BootNone:  bootSelNone,
	bmc.BootPXE:   bootSelPXE,
	bmc.BootDisk:  bootSelDisk,
	bmc.BootCDROM: bootSelCDROM,
	bmc.BootBIOS:  bootSelBIOS,
}

func (s *Server) setBootOptions(ctx context.Context, rq *request) (byte, []byte) {
	if len(rq.data) < 1 {
		return ccBadLength, nil
	}
	param, data := rq.data[0]&0x7f, rq.data[1:]
	n, ok := bootParamLen[param]
	if !ok {
		return ccParamUnsupported, nil
	}
	if len(data) != n {
		return ccBadLength, nil
	}
	if param == bootParamFlags {
		return s.setBootFlags(ctx, data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.boot
	switch param {
	case bootParamSetInProgress:
		held := b.inProgress && s.alive(b.progressOwner)
		switch data[0] & 0x03 {
		case setComplete:
			b.inProgress = false
		case setInProgress:
			if held {
				return ccSetInProgress, nil
			}
			b.inProgress, b.progressOwner = true, rq.sessionID
		case commitWrite:
			// Writes take effect at once; nothing waits for a commit.
		default:
			return ccInvalidField, nil
		}
	case bootParamSvcPartition:
		b.svcPartition = data[0]
	case bootParamSvcScan:
		b.svcScan = data[0] & 0x03
	case bootParamValidClearing:
		b.validClearing = data[0] & 0x1f
	case bootParamInfoAck:
		mask := data[0]
		b.infoAck = b.infoAck&^mask | data[1]&mask
	}
	return ccOK, nil
}

func (s *Server) setBootFlags(ctx context.Context, d []byte) (byte, []byte) {
	cfg := bmc.BootConfig{
		Persistent: d[0]&bootFlagPersistent != 0,
		UEFI:       d[0]&bootFlagEFI != 0,
	}
	if d[0]&bootFlagValid != 0 {
		dev, ok := deviceForSelector[d[1]>>bootDeviceShift&bootDeviceMask]
		if !ok {
			return ccInvalidField, nil
		}
		cfg.Device = dev
	}
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	err := s.cfg.Machine.SetBoot(ctx, cfg)
	s.log.Info("ipmi boot device set", "device", cfg.Device, "persistent", cfg.Persistent, "uefi", cfg.UEFI, "err", err)
	if cc := s.machineCC("set boot", err); cc != ccOK {
		return cc, nil
	}
	s.mu.Lock()
	s.boot.flags = [5]byte{0, d[1] & bootFlags2Kept, d[2], d[3], d[4]}
	s.mu.Unlock()
	return ccOK, nil
}

func (s *Server) getBootOptions(_ context.Context, rq *request) (byte, []byte) {
	if len(rq.data) != 3 {
		return ccBadLength, nil
	}
	param := rq.data[0] & 0x7f
	if _, ok := bootParamLen[param]; !ok {
		return ccParamUnsupported, nil
	}
	out := []byte{0x01, param} // parameter version 1; valid, unlocked
	if param == bootParamFlags {
		boot := s.cfg.Machine.Boot()
		s.mu.Lock()
		flags := s.boot.flags
		s.mu.Unlock()
		if boot.Device != bmc.BootNone {
			flags[0] |= bootFlagValid
		}
		if boot.Persistent {
			flags[0] |= bootFlagPersistent
		}
		if boot.UEFI {
			flags[0] |= bootFlagEFI
		}
		flags[1] |= selectorForDevice[boot.Device] << bootDeviceShift
		return ccOK, append(out, flags[:]...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.boot
	switch param {
	case bootParamSetInProgress:
		state := byte(setComplete)
		if b.inProgress && s.alive(b.progressOwner) {
			state = setInProgress
		}
		out = append(out, state)
	case bootParamSvcPartition:
		out = append(out, b.svcPartition)
	case bootParamSvcScan:
		out = append(out, b.svcScan)
	case bootParamValidClearing:
		out = append(out, b.validClearing)
	case bootParamInfoAck:
		out = append(out, 0x00, b.infoAck)
	}
	return ccOK, out
}
