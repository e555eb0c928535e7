package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpTimeout bounds one QMP exchange when the caller's context has no
// nearer deadline.
const qmpTimeout = 5 * time.Second

// qmpResponse is one message from qemu: a command's return or error, or
// an asynchronous event (skipped).
type qmpResponse struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	QMP   json.RawMessage `json:"QMP"`
}

// qmp runs one command on the QMP socket at path: it connects, reads the
// greeting, negotiates capabilities, runs the command and decodes its
// return value into out (if not nil). One connection per command keeps
// no state between calls; qemu serves one QMP client at a time, and the
// Machine's lock orders the calls.
func qmp(ctx context.Context, path, command string, out any) error {
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > qmpTimeout {
		deadline = time.Now().Add(qmpTimeout)
	}
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	r := bufio.NewReader(c)
	read := func() (qmpResponse, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return qmpResponse{}, fmt.Errorf("qmp: read: %w", err)
			}
			var m qmpResponse
			if err := json.Unmarshal(line, &m); err != nil {
				return qmpResponse{}, fmt.Errorf("qmp: bad message %q: %w", line, err)
			}
			if m.Event != "" {
				continue
			}
			return m, nil
		}
	}
	greeting, err := read()
	if err != nil {
		return err
	}
	if greeting.QMP == nil {
		return errors.New("qmp: no greeting")
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		b, _ := json.Marshal(map[string]string{"execute": cmd})
		if _, err := c.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("qmp: write: %w", err)
		}
		m, err := read()
		if err != nil {
			return err
		}
		if m.Error != nil {
			return fmt.Errorf("qmp: %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		}
		if cmd == command && out != nil {
			if err := json.Unmarshal(m.Return, out); err != nil {
				return fmt.Errorf("qmp: %s: %w", cmd, err)
			}
		}
	}
	return nil
}
