package sim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadTable reads the test image's MBR and GPT, and tables sfdisk
// writes, including a GPT whose primary copy is damaged.
func TestReadTable(t *testing.T) {
	sfdisk := func(t *testing.T, size int64, script string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "disk")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Truncate(p, size)
		cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", p)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk (make deps installs fdisk): %v\n%s", err, out)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		disk   func(t *testing.T) string
		damage int64 // a byte to zero, if not 0
		want   table
	}{
		{"test image mbr", func(t *testing.T) string { return testImage(t, false) }, 0, table{kind: "mbr", bootCode: true, parts: []partition{
			{number: 1, start: 2048, size: 129024, mbrType: mbrESP, bootable: true}}}},
		{"test image gpt", func(t *testing.T) string { return testImage(t, true) }, 0, table{kind: "gpt", bootCode: true, parts: []partition{
			{number: 1, start: 2048, size: 128991, gptType: gptESP, bootable: true}}}},
		{"sfdisk mbr", func(t *testing.T) string {
			return sfdisk(t, 64<<20, "label: dos\nstart=2048, size=4096, type=83\nstart=8192, type=82, bootable\n")
		}, 0, table{kind: "mbr", parts: []partition{
			{number: 1, start: 2048, size: 4096, mbrType: 0x83},
			{number: 2, start: 8192, size: 122880, mbrType: 0x82, bootable: true}}}},
		{"sfdisk gpt, primary damaged", func(t *testing.T) string {
			return sfdisk(t, 64<<20, "label: gpt\nstart=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
		}, 512 + 100, table{kind: "gpt", parts: []partition{
			{number: 1, start: 2048, size: 4096, gptType: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}}}},
		{"blank", func(t *testing.T) string { return writeTemp(t, "blank", make([]byte, 1<<20)) }, 0, table{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.disk(t)
			if tc.damage != 0 {
				data, _ := os.ReadFile(p)
				data[tc.damage] ^= 0xff
				p = writeTemp(t, "damaged", data)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			got, err := readTable(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(table{}, partition{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSyslinux(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, dir string
		want           bootEntry
		err            string
	}{
		{"test image", "DEFAULT test\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\nLABEL test\n  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND console=tty0 console=ttyS0,115200 quiet\n", "/",
			bootEntry{label: "test", kernel: "/vmlinuz", initrds: []string{"/initrd.gz"}, append: "console=tty0 console=ttyS0,115200 quiet"}, ""},
		{"relative paths and initrd= in APPEND", "# boot\nUI menu.c32\nDEFAULT linux\nLABEL rescue\n\tLINUX r\nLABEL linux\n\tLINUX vmlinuz\n\tAPPEND root=/dev/vda1 initrd=a.img,b.img ro\n", "/EFI/BOOT",
			bootEntry{label: "linux", kernel: "/EFI/BOOT/vmlinuz", initrds: []string{"/EFI/BOOT/a.img", "/EFI/BOOT/b.img"}, append: "root=/dev/vda1 ro"}, ""},
		{"DEFAULT is a command line", "DEFAULT /vmlinuz initrd=/i.gz quiet\n", "/",
			bootEntry{label: "/vmlinuz", kernel: "/vmlinuz", initrds: []string{"/i.gz"}, append: "quiet"}, ""},
		{"the first label", "LABEL one\nKERNEL /k1\nAPPEND -\nLABEL two\nKERNEL /k2\n", "/",
			bootEntry{label: "one", kernel: "/k1"}, ""},
		{"ontimeout", "DEFAULT menu\nONTIMEOUT two\nLABEL one\nKERNEL /k1\nLABEL two\nKERNEL /k2\n", "/",
			bootEntry{label: "two", kernel: "/k2"}, ""},
		{"nothing", "PROMPT 1\n", "/", bootEntry{}, "boots nothing"},
		{"no kernel", "LABEL x\nAPPEND quiet\n", "/", bootEntry{}, "names no kernel"},
		{"com32", "DEFAULT menu.c32\n", "/", bootEntry{}, "COM32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSyslinux(tc.cfg, tc.dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(bootEntry{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindBootEntry has the firmware find the test image's boot entry,
// MBR and GPT, as BIOS and UEFI firmware, and nothing on disks that do
// not boot.
func TestFindBootEntry(t *testing.T) {
	for _, tc := range []struct {
		name, firmware string
		gpt            bool
		err            string
	}{
		{"mbr bios", FirmwareBIOS, false, ""},
		{"mbr uefi", FirmwareUEFI, false, ""},
		{"gpt bios", FirmwareBIOS, true, ""},
		{"gpt uefi", FirmwareUEFI, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine(t, Config{Firmware: tc.firmware, Disks: []Disk{{SizeBytes: 128 << 20}}})
			putImage(t, testImage(t, tc.gpt), m.DiskPath(0))
			fw, console := testFirmware(t, m)
			got, err := fw.diskboot(context.Background(), anyDrive)
			if err != nil || got == nil || got.os.kind != osDisk || len(got.os.initrds) != 1 {
				t.Fatalf("%+v, %v\n%s", got, err, console())
			}
			if err := checkKernel(got.os.kernel); err != nil {
				t.Error(err)
			}
			if got.os.cmdline != "console=tty0 console=ttyS0,115200 quiet" {
				t.Errorf("command line %q", got.os.cmdline)
			}
		})
	}
	t.Run("not bootable", func(t *testing.T) {
		m := testMachine(t, Config{Disks: []Disk{{SizeBytes: 64 << 20}, {SizeBytes: 64 << 20}}})
		// The second disk has a table but no boot code, nor an active
		// partition.
		putImage(t, testImage(t, false), m.DiskPath(1))
		f, _ := os.OpenFile(m.DiskPath(1), os.O_WRONLY, 0)
		f.WriteAt(make([]byte, 440), 0)
		f.Close()
		fw, console := testFirmware(t, m)
		got, err := fw.diskboot(context.Background(), anyDrive)
		if err != nil || got != nil {
			t.Fatalf("%+v, %v, want nothing to boot", got, err)
		}
		if missing := contains(console(), "vda: not bootable: no partition table", "vdb: not bootable: no boot code in its MBR"); len(missing) > 0 {
			t.Errorf("the console lacks %q:\n%s", missing, console())
		}
	})
}
