package images_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratacloud/strata/images"
)

// TestConfigDriveReadByLinux builds a config drive and has independent
// readers check it: blkid finds the config-2 label and isoinfo reads the
// files. (This machine's kernel has no isofs: TestTestImageBoots has the
// Debian kernel mount a config drive in qemu.)
func TestConfigDriveReadByLinux(t *testing.T) {
	cd := images.ConfigDrive{
		MetaData: map[string]any{"uuid": "5d6c5d2c-66e5-4b1e-9b3c-6f1b4d0e7a11", "name": "node-1", "hostname": "compute-0",
			"public_keys": map[string]any{"default": "ssh-ed25519 AAAA test"}},
		NetworkData: map[string]any{"links": []any{map[string]any{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}}},
		UserData:    []byte("#cloud-config\nhostname: compute-0\n"),
	}
	mtime := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	iso, err := cd.Build(mtime)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := cd.Build(mtime)
	if string(again) != string(iso) {
		t.Error("two builds of the same config drive differ")
	}
	path := filepath.Join(t.TempDir(), "cd.iso")
	if err := os.WriteFile(path, iso, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command("blkid", "-p", "-o", "export", path).CombinedOutput()
	if err != nil {
		t.Fatalf("blkid: %v\n%s", err, out)
	}
	for _, want := range []string{"LABEL=config-2", "TYPE=iso9660"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("blkid says\n%s\nwithout %s", out, want)
		}
	}
	out, err = exec.Command("isoinfo", "-f", "-i", path).CombinedOutput()
	if err != nil {
		t.Fatalf("isoinfo: %v\n%s", err, out)
	}
	for _, want := range []string{"/OPENSTACK/LATEST/META_DATA.JSON;1", "/OPENSTACK/LATEST/NETWORK_DATA.JSON;1", "/OPENSTACK/LATEST/USER_DATA.;1", "/OPENSTACK/LATEST/VENDOR_DATA.JSON;1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("isoinfo lists\n%s\nwithout %s", out, want)
		}
	}

	extract := func(name string) string {
		out, err := exec.Command("isoinfo", "-i", path, "-x", name).Output()
		if err != nil {
			t.Fatalf("isoinfo -x %s: %v", name, err)
		}
		return string(out)
	}
	var meta, network map[string]any
	if err := json.Unmarshal([]byte(extract("/OPENSTACK/LATEST/META_DATA.JSON;1")), &meta); err != nil {
		t.Fatalf("meta_data.json: %v", err)
	}
	if meta["uuid"] != cd.MetaData["uuid"] || meta["hostname"] != "compute-0" {
		t.Errorf("meta_data.json is %v", meta)
	}
	if err := json.Unmarshal([]byte(extract("/OPENSTACK/LATEST/NETWORK_DATA.JSON;1")), &network); err != nil || len(network["links"].([]any)) != 1 {
		t.Errorf("network_data.json is %v (%v)", network, err)
	}
	if got := extract("/OPENSTACK/LATEST/USER_DATA.;1"); got != string(cd.UserData) {
		t.Errorf("user_data is %q, want %q", got, cd.UserData)
	}
}

// TestISO9660ManyFiles fills a directory past one sector of records and
// has isoinfo read every file back.
func TestISO9660ManyFiles(t *testing.T) {
	files := map[string][]byte{}
	for i := range 120 {
		name := "D/F" + strings.Repeat("X", i%20) + "_" + string(rune('A'+i%26)) + string(rune('A'+i/26)) + ".TXT"
		files[name] = []byte(strings.Repeat(name, i))
	}
	files["EMPTY"] = nil
	iso, err := images.BuildISO9660("MANY", files, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "many.iso")
	if err := os.WriteFile(path, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		out, err := exec.Command("isoinfo", "-i", path, "-x", "/"+strings.ToUpper(name)+map[bool]string{true: ";1", false: ".;1"}[strings.Contains(name, ".")]).Output()
		if err != nil || string(out) != string(data) {
			t.Errorf("isoinfo reads %d bytes of %s (%v), want %d", len(out), name, err, len(data))
		}
	}
	list, err := exec.Command("isoinfo", "-i", path, "-f").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(list), ";1"); n != len(files) {
		t.Errorf("isoinfo lists %d files, want %d", n, len(files))
	}
}

func TestISO9660RefusesBadNames(t *testing.T) {
	for _, p := range []string{"a-b", "dir.x/f", "a..b", "", "a//b", strings.Repeat("a", 31), "1/2/3/4/5/6/7/8/9"} {
		if _, err := images.BuildISO9660("V", map[string][]byte{p: nil}, time.Unix(0, 0)); err == nil {
			t.Errorf("%q: no error", p)
		}
	}
	if _, err := images.BuildISO9660(strings.Repeat("v", 33), nil, time.Unix(0, 0)); err == nil {
		t.Error("a 33-character volume identifier: no error")
	}
}

// TestReadISO9660 reads back what BuildISO9660 wrote, and what
// genisoimage (an independent writer, as Ironic uses) made of the same
// files.
func TestReadISO9660(t *testing.T) {
	cd := images.ConfigDrive{MetaData: map[string]any{"uuid": "u-1", "hostname": "h"}, UserData: []byte("#!/bin/sh\necho hi\n")}
	iso, err := cd.Build(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	vol, files, err := images.ReadISO9660(bytes.NewReader(iso), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if vol != "config-2" || string(files["openstack/latest/user_data"]) != string(cd.UserData) || !strings.Contains(string(files["openstack/latest/meta_data.json"]), `"uuid":"u-1"`) {
		t.Errorf("volume %q, files %v", vol, files)
	}

	dir := t.TempDir()
	src := filepath.Join(dir, "src", "openstack", "latest")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "meta_data.json"), []byte(`{"uuid":"from-genisoimage"}`), 0o644)
	os.WriteFile(filepath.Join(src, "user_data"), bytes.Repeat([]byte("x"), 5000), 0o644)
	out := filepath.Join(dir, "g.iso")
	if b, err := exec.Command("genisoimage", "-quiet", "-o", out, "-V", "config-2", "-r", "-J", "-l", filepath.Join(dir, "src")).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage (make deps installs it): %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vol, files, err = images.ReadISO9660(f, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if vol != "config-2" || string(files["openstack/latest/meta_data.json"]) != `{"uuid":"from-genisoimage"}` || len(files["openstack/latest/user_data"]) != 5000 {
		t.Errorf("genisoimage's drive: volume %q, files %v", vol, keys(files))
	}
	if _, _, err := images.ReadISO9660(bytes.NewReader(make([]byte, 64<<10)), 1<<20); err == nil {
		t.Error("zeros read as an ISO")
	}
	if _, _, err := images.ReadISO9660(bytes.NewReader(iso), 10); err == nil {
		t.Error("a file over the bound was read")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
