package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stratacloud/strata/agent/hwinfo"
)

// inspect collects the machine's hardware and sends it to the undercloud,
// trying again while the undercloud answers that the node is not ready
// for it (the conductor records inspect wait just after powering on).
func inspect(ctx context.Context, root string, nic BootNIC, c *client, out io.Writer) error {
	hw, err := hwinfo.Collect(root)
	if err != nil {
		return err
	}
	if err := hw.SetBootInterface(nic.MAC, nic.Addr.Addr()); err != nil {
		return err
	}
	fmt.Fprintf(out, "strata-agent: found %s\n", hw.Summary())
	for attempt := 1; ; attempt++ {
		err = c.continueInspection(ctx, hw)
		var ae *apiError
		if err == nil || attempt == 10 || (errors.As(err, &ae) && ae.status != http.StatusConflict && ae.status < 500) {
			break
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Second); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "strata-agent: inventory sent")
	return nil
}
