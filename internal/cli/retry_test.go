package cli

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// TestRetryBusy: a 503 for lack of workers is retried a few times; one
// for a concurrency limit until the command's deadline; a 409 of a
// creation never.
func TestRetryBusy(t *testing.T) {
	retry := retryBusy(newFakeClock(), time.Second, 3)
	refusal := func(status int, body string) error {
		return gophercloud.ErrUnexpectedResponseCode{Actual: status, Body: []byte(body)}
	}
	noWorkers := refusal(http.StatusServiceUnavailable, `{"error_message": "{\"faultstring\": \"Requested action cannot be performed due to lack of free conductor workers.\"}"}`)
	limited := refusal(http.StatusServiceUnavailable, `{"error_message": "{\"faultstring\": \"Concurrent action limit exceeded: 1 nodes are deploying, as many as this undercloud allows at once (max_concurrent_deploy = 1); try again when some have finished.\"}"}`)
	ctx := context.Background()
	if err := retry(ctx, http.MethodPut, "", nil, noWorkers, 3); err != nil {
		t.Errorf("no workers, attempt 3: %v, want a retry", err)
	}
	if err := retry(ctx, http.MethodPut, "", nil, noWorkers, 4); err == nil {
		t.Error("no workers, attempt 4: retried past the bound")
	}
	if err := retry(ctx, http.MethodPut, "", nil, limited, 1000); err != nil {
		t.Errorf("concurrency limit, attempt 1000: %v, want a retry", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := retry(done, http.MethodPut, "", nil, limited, 1000); err == nil {
		t.Error("concurrency limit after the deadline: retried")
	}
	if err := retry(ctx, http.MethodPost, "", nil, refusal(http.StatusConflict, "name taken"), 1); err == nil {
		t.Error("a 409 of a creation was retried")
	}
	if err := retry(ctx, http.MethodPut, "", nil, errors.New("connection refused"), 1); err == nil {
		t.Error("a network error was retried")
	}
}
