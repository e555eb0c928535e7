package agent

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sfdiskTable is what sfdisk --json says of a disk.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// imageDisk makes a disk of diskMiB whose first imageMiB hold an image
// that sfdisk partitioned with script (label mbr or gpt).
func imageDisk(t *testing.T, label, script string, imageMiB, diskMiB int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, imageMiB<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", path)
	cmd.Stdin = strings.NewReader("label: " + label + "\n" + script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if err := os.Truncate(path, diskMiB<<20); err != nil { // the image, written onto a larger disk
		t.Fatal(err)
	}
	return path
}

func addPartition(t *testing.T, path string, size int64) (int64, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return addEndPartition(f, st.Size(), size, "config-2")
}

func table(t *testing.T, path string) sfdiskTable {
	var tb sfdiskTable
	out, err := exec.Command("sfdisk", "--json", path).Output() // stdout: before, sfdisk warns that the GPT is not at the disk's end
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	if err := json.Unmarshal(out, &tb); err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestAddEndPartition adds the config drive partition behind images
// partitioned by sfdisk and has sfdisk and sgdisk, independent readers,
// check the result.
func TestAddEndPartition(t *testing.T) {
	const imageMiB, diskMiB = 64, 512
	cases := []struct {
		label, script string
		size          int64
		wantType      string
	}{
		{"dos", "start=2048, type=ef, bootable\n", 64 << 20, "83"},
		{"gpt", "start=2048, size=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nsize=16MiB\n", 64 << 20, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
		{"gpt", "start=2048, size=32MiB\n", 70<<20 + 1, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}, // rounded up to 71 MiB
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			path := imageDisk(t, c.label, c.script, imageMiB, diskMiB)
			before := table(t, path).PartitionTable.Partitions
			off, err := addPartition(t, path, c.size)
			if err != nil {
				t.Fatal(err)
			}
			wantSectors := (c.size + 1<<20 - 1) >> 20 << 11
			tb := table(t, path).PartitionTable
			if len(tb.Partitions) != len(before)+1 {
				t.Fatalf("sfdisk sees %d partitions, want %d: %+v", len(tb.Partitions), len(before)+1, tb.Partitions)
			}
			p := tb.Partitions[len(tb.Partitions)-1]
			if p.Start*512 != off || p.Size != wantSectors || p.Start%2048 != 0 || !strings.EqualFold(p.Type, c.wantType) {
				t.Errorf("new partition %+v at offset %d, want %d sectors of type %s, aligned", p, off, wantSectors, c.wantType)
			}
			end := p.Start + p.Size
			if room := int64(diskMiB<<11) - end; room < 0 || room > 2048+34 {
				t.Errorf("the partition ends at sector %d, not at the disk's end (%d sectors)", end, diskMiB<<11)
			}
			for i, b := range before {
				if tb.Partitions[i].Start != b.Start || tb.Partitions[i].Size != b.Size {
					t.Errorf("partition %d moved: %+v, was %+v", i+1, tb.Partitions[i], b)
				}
			}
			if c.label == "gpt" {
				if p.Name != "config-2" {
					t.Errorf("name %q, want config-2", p.Name)
				}
				if tb.LastLBA != diskMiB<<11-34 {
					t.Errorf("last usable LBA %d, want %d: the GPT was not stretched to the disk", tb.LastLBA, diskMiB<<11-34)
				}
				if out := command(t, "sgdisk", "--verify", path); !strings.Contains(out, "No problems found") {
					t.Errorf("sgdisk --verify:\n%s", out)
				}
			} else {
				command(t, "sfdisk", "--verify", path)
			}
		})
	}
}

func TestAddEndPartitionRefuses(t *testing.T) {
	cases := []struct {
		name, label, script string
		imageMiB, diskMiB   int64
		want                string
	}{
		{"no table", "", "", 64, 512, "no partition table"},
		{"image fills the disk", "dos", "start=2048\n", 512, 512, "no room"},
		{"four primaries", "dos", "size=8MiB\nsize=8MiB\nsize=8MiB\nsize=8MiB\n", 64, 512, "all in use"},
		{"gpt fills the disk", "gpt", "start=2048\n", 512, 512, "no room"},
		{"disk too small", "dos", "start=2048, size=1MiB\n", 8, 32, "no room"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var path string
			if c.label == "" {
				path = filepath.Join(t.TempDir(), "disk")
				os.WriteFile(path, nil, 0o644)
				os.Truncate(path, c.diskMiB<<20)
			} else {
				path = imageDisk(t, c.label, c.script, c.imageMiB, c.diskMiB)
			}
			before, _ := os.ReadFile(path)
			_, err := addPartition(t, path, 64<<20)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the disk changed")
			}
		})
	}
}
