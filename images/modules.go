package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Module is a loadable kernel module.
type Module struct {
	// Name is the module's name, with underscores ("virtio_net").
	Name string
	// Path is relative to the kernel's modules directory
	// ("kernel/drivers/net/virtio_net.ko").
	Path string
	// Depends names the modules that must be loaded first.
	Depends []string
}

// ModuleName is the canonical name of a module: its file's base name
// without the .ko suffix, with dashes as underscores, as the kernel and
// modprobe spell it.
func ModuleName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ModuleClosure returns the named modules and everything they depend on,
// in an order that loads every module after its dependencies (ties by
// name, so the order is the same on every run). A name the kernel has
// built in is left out; a name it has neither built in nor as a module is
// an error. Dependencies are read from each module's .modinfo section,
// because Debian's package ships no modules.dep (depmod writes it when
// the package is installed).
func (k Kernel) ModuleClosure(names []string) ([]Module, error) {
	index, err := k.moduleIndex()
	if err != nil {
		return nil, err
	}
	builtin, err := k.builtinModules()
	if err != nil {
		return nil, err
	}
	loaded := map[string]*Module{}
	var visit func(name, wantedBy string) error
	visit = func(name, wantedBy string) error {
		name = ModuleName(name)
		if _, ok := loaded[name]; ok || builtin[name] {
			return nil
		}
		rel, ok := index[name]
		if !ok {
			if wantedBy != "" {
				return fmt.Errorf("module %s (needed by %s): not in kernel %s", name, wantedBy, k.Release)
			}
			return fmt.Errorf("module %s: not in kernel %s, neither built in nor a module", name, k.Release)
		}
		deps, err := moduleDepends(filepath.Join(k.ModulesDir(), rel))
		if err != nil {
			return err
		}
		m := &Module{Name: name, Path: rel, Depends: deps}
		loaded[name] = m
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return loadOrder(loaded), nil
}

// loadOrder sorts modules so that each comes after its dependencies.
func loadOrder(mods map[string]*Module) []Module {
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Module
	done := map[string]bool{}
	var place func(n string)
	place = func(n string) {
		if done[n] {
			return
		}
		done[n] = true // modules do not depend on each other in cycles
		m := mods[n]
		for _, d := range m.Depends {
			if _, ok := mods[d]; ok {
				place(d)
			}
		}
		out = append(out, *m)
	}
	for _, n := range names {
		place(n)
	}
	return out
}

// moduleIndex maps every module's name to its path.
func (k Kernel) moduleIndex() (map[string]string, error) {
	dir := k.ModulesDir()
	index := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".ko") {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		index[ModuleName(path)] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel %s modules: %w", k.Release, err)
	}
	return index, nil
}

// builtinModules reads modules.builtin: the modules compiled into the
// kernel image.
func (k Kernel) builtinModules() (map[string]bool, error) {
	data, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out[ModuleName(line)] = true
		}
	}
	return out, sc.Err()
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", path, err)
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, ModuleName(d))
			}
		}
	}
	slices.Sort(deps)
	return deps, nil
}
