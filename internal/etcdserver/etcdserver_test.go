package etcdserver

import (
	"context"
	"errors"
	"testing"
)

func TestStartPutGetRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	s.Close()

	s, err = Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer s.Close()
	cli, err = s.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart got %v, want k=v", resp.Kvs)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	_, err := Start(context.Background(), Config{Dir: t.TempDir(), ClientURL: "http://0.0.0.0:2379"})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("got %v, want ErrNotLoopback", err)
	}
}
