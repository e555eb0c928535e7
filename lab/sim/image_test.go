package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/stratacloud/strata/images"
)

// TestExtractInit checks the ramdisk as the kernel would, and takes its
// /init out.
func TestExtractInit(t *testing.T) {
	agent := []byte("\x7fELF the agent")
	good := map[string]cpio.Record{
		"init":        cpio.StaticRecord(agent, cpio.Info{Mode: cpio.S_IFREG | 0o755}),
		"etc/strata":  cpio.Directory("", 0o755),
		"dev/console": cpio.CharDev("", 0o600, 5, 1),
	}
	plain := makeCpio(t, good, false)
	for _, tc := range []struct {
		name    string
		initrds [][]byte
		err     string
	}{
		{"gzip", [][]byte{makeCpio(t, good, true)}, ""},
		{"plain", [][]byte{plain}, ""},
		{"the last /init wins", [][]byte{makeCpio(t, map[string]cpio.Record{"init": cpio.StaticFile("", "old", 0o755)}, true), plain}, ""},
		{"no init", [][]byte{makeCpio(t, map[string]cpio.Record{"sbin/init": cpio.StaticFile("", "x", 0o755)}, true)}, "has no /init"},
		{"init not executable", [][]byte{makeCpio(t, map[string]cpio.Record{"init": cpio.StaticFile("", "x", 0o644)}, true)}, "not executable"},
		{"init a directory", [][]byte{makeCpio(t, map[string]cpio.Record{"init": cpio.Directory("", 0o755)}, false)}, "not a regular file"},
		{"truncated", [][]byte{plain[:len(plain)-200]}, "truncated"},
		{"no trailer", [][]byte{plain[:bytes.LastIndex(plain, []byte("070701"))]}, "no TRAILER!!!"},
		{"not an archive", [][]byte{[]byte("hello, world")}, "neither a newc cpio archive"},
		{"bad gzip", [][]byte{append([]byte{0x1f, 0x8b}, make([]byte, 30)...)}, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for i, rd := range tc.initrds {
				paths = append(paths, writeTemp(t, "initrd"+string(rune('0'+i)), rd))
			}
			dst := filepath.Join(t.TempDir(), "init")
			err := extractInit(paths, t.TempDir(), dst)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			st, _ := os.Stat(dst)
			if !bytes.Equal(got, agent) || st.Mode().Perm() != 0o755 {
				t.Errorf("/init is %q (%s), want the agent, executable", got, st.Mode())
			}
		})
	}
}

// TestUnpackTree unpacks an initramfs, and refuses ones that would write
// outside the tree: through "..", or through a link.
func TestUnpackTree(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	good := makeCpio(t, map[string]cpio.Record{
		"init":          cpio.StaticFile("", "#!/bin/busybox sh\n", 0o755),
		"bin/busybox":   cpio.StaticFile("", "busybox", 0o755),
		"bin/sh":        cpio.Symlink("", "busybox"),
		"etc/abs":       cpio.Symlink("", "/etc/hostname"),
		"dev/console":   cpio.CharDev("", 0o600, 5, 1),
		"lib/modules/x": cpio.StaticFile("", "module", 0o644),
	}, true)
	dir := filepath.Join(t.TempDir(), "image")
	os.MkdirAll(filepath.Join(dir, "stale"), 0o755)
	if err := unpackTree([]string{writeTemp(t, "good", good)}, t.TempDir(), dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := checkInit(dir); err != nil {
		t.Error(err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh: %q, %v", l, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lib/modules/x")); string(b) != "module" {
		t.Errorf("lib/modules/x: %q", b)
	}
	for _, gone := range []string{"dev/console", "stale"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s is in the tree", gone)
		}
	}

	outside := t.TempDir()
	for _, tc := range []struct {
		name  string
		files map[string]cpio.Record
	}{
		{"dot-dot", map[string]cpio.Record{"../../escaped": cpio.StaticFile("", "x", 0o644)}},
		{"absolute link", map[string]cpio.Record{"a": cpio.Symlink("", outside), "a/escaped": cpio.StaticFile("", "x", 0o644)}},
		{"relative link", map[string]cpio.Record{"a": cpio.Symlink("", "../../../../../../../../.."+outside), "a/escaped": cpio.StaticFile("", "x", 0o644)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "b", "image")
			rd := writeTemp(t, "bad", makeCpio(t, tc.files, true))
			if err := unpackTree([]string{rd}, t.TempDir(), dir, uid, gid); err == nil {
				t.Error("unpacked without an error")
			}
			if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
				t.Fatal("the archive wrote outside its tree")
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "escaped")); err == nil {
				t.Fatal("the archive wrote outside its tree")
			}
		})
	}
}

// TestDeployRamdisk checks what images.Ramdisk builds, as the lab's
// deploy ramdisk: the firmware takes its /init.
func TestDeployRamdisk(t *testing.T) {
	k, err := images.FindKernel("")
	if err != nil {
		t.Fatal(err)
	}
	init := writeTemp(t, "agent", []byte("\x7fELF an agent"))
	var b bytes.Buffer
	if err := (images.Ramdisk{Kernel: k, Init: init, Modules: []string{"virtio_net"}}).Build(&b); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "init")
	if err := extractInit([]string{writeTemp(t, "ramdisk", b.Bytes())}, t.TempDir(), dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "\x7fELF an agent" {
		t.Errorf("/init is %q", got)
	}
	if err := checkKernel(k.Vmlinuz()); err != nil {
		t.Errorf("the Debian kernel: %v", err)
	}
}
