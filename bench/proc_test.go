package bench

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestProcessMeasures(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })

	self := os.Getpid()
	tree, err := processTree(self)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tree, self) || !slices.Contains(tree, child.Process.Pid) {
		t.Errorf("processTree(%d) = %v, want it and its child %d", self, tree, child.Process.Pid)
	}
	own, err := peakMemory(self)
	if err != nil {
		t.Fatal(err)
	}
	withChild, err := peakMemory(self, child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if own <= 0 || withChild < own {
		t.Errorf("peakMemory: self %d bytes, with child %d bytes", own, withChild)
	}
	if _, err := cpuTime(self); err != nil {
		t.Error(err)
	}
}

func TestLowerVersion(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"1.87", "1.82", "1.82"},
		{"1.9", "1.10", "1.9"},
		{"1.1", "1.1", "1.1"},
	} {
		got, err := LowerVersion(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("LowerVersion(%q, %q) = %q, %v; want %q", tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := LowerVersion("2.0", "1.1"); err == nil {
		t.Error("LowerVersion(2.0, 1.1): no error")
	}
}
