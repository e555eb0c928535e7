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
	if err := retryConflict(ctx, func() error { return c.continueInspection(ctx, hw) }); err != nil {
		return err
	}
	fmt.Fprintln(out, "strata-agent: inventory sent")
	return nil
}

// retryConflict calls report until it succeeds, fails for good, or has
// been tried ten times: a conflict (the conductor has not yet recorded
// the wait state it powered the node on for) or a server error is worth
// another try.
func retryConflict(ctx context.Context, report func() error) error {
	var err error
	for attempt := 1; attempt <= 10; attempt++ {
		err = report()
		var ae *apiError
		if err == nil || (errors.As(err, &ae) && ae.status != http.StatusConflict && ae.status < 500) {
			return err
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Second); err != nil {
			return err
		}
	}
	return err
}
