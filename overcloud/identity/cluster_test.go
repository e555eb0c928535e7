package identity

import (
	"context"
	"testing"
	"time"

	"github.com/stratacloud/strata/overcloud/identity/keyring"
)

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	ctx := context.Background()
	old := env.adminToken(t)
	states := func() []keyring.State {
		var s []keyring.State
		for _, k := range env.srv.Keys() {
			s = append(s, k.State)
		}
		return s
	}
	if got := states(); len(got) != 2 || got[0] != keyring.Primary && got[1] != keyring.Primary {
		t.Fatalf("initial keys = %v, want a primary and a staged key", got)
	}

	// One rotation: the old primary is a secondary, its tokens still open.
	if err := env.srv.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(); len(got) != 3 || got[0] != keyring.Staged || got[1] != keyring.Primary || got[2] != keyring.Secondary {
		t.Fatalf("keys after one rotation = %v", got)
	}
	env.srv.auth.Purge()
	env.must(t, 200, "GET", "/v3/auth/catalog", old, nil)
	newer := env.adminToken(t)

	// A second rotation drops the key that sealed the old token.
	if err := env.srv.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(); len(got) != 3 {
		t.Fatalf("keys after two rotations = %v, want 3 kept", got)
	}
	env.srv.auth.Purge()
	env.must(t, 401, "GET", "/v3/auth/catalog", old, nil)
	env.must(t, 200, "GET", "/v3/auth/catalog", newer, nil)
	env.must(t, 200, "GET", "/v3/auth/catalog", env.adminToken(t), nil)

	// RotateIfOlder leaves recent keys alone.
	if rotated, err := env.srv.keys.RotateIfOlder(ctx, time.Hour); err != nil || rotated {
		t.Errorf("RotateIfOlder(1h) right after a rotation = %v, %v", rotated, err)
	}
	env.clock.Advance(2 * time.Hour)
	if rotated, err := env.srv.keys.RotateIfOlder(ctx, time.Hour); err != nil || !rotated {
		t.Errorf("RotateIfOlder(1h) two hours later = %v, %v", rotated, err)
	}
}

func TestConfigRefusesUnsafeRotation(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), Config{Etcd: nil})
	if err == nil {
		t.Error("New without etcd succeeded")
	}
	env := newTestEnv(t, nil, nil)
	_, err = New(context.Background(), Config{Etcd: env.etcd, TokenExpiration: 2 * time.Hour, KeyRotation: time.Hour})
	if err == nil {
		t.Error("rotating every hour with 2h tokens and 3 keys was accepted")
	}
}

// TestTwoProcesses runs two identity services on one etcd, as two
// controllers would: a token from one is valid at the other, across a key
// rotation made by the first, and a revocation at one is honoured by the
// other, whose cache already held the token.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	a := newTestEnv(t, nil, nil)
	b := newTestEnv(t, a.etcd, nil)
	tok := a.adminToken(t)
	b.must(t, 200, "GET", "/v3/auth/catalog", tok, nil)

	if err := a.srv.RotateKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	fresh := a.adminToken(t) // sealed with a key b learns from etcd
	b.clock.Advance(2 * time.Second)
	b.must(t, 200, "GET", "/v3/auth/catalog", fresh, nil)

	a.must(t, 204, "DELETE", "/v3/auth/tokens", tok, nil, "X-Subject-Token", tok)
	// b learns of the revocation through its watch: poll for it.
	deadline := time.Now().Add(20 * time.Second)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		r := b.do(t, "GET", "/v3/auth/catalog", tok, nil)
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still accepts a token revoked at a: %d", r.status)
		}
		<-poll.C
	}
	b.must(t, 200, "GET", "/v3/auth/catalog", fresh, nil)
}
