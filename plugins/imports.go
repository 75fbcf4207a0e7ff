package plugins

import (
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/parleyhq/parley/abi"
)

// hookSet is the set of hooks a plugin serves, indexed like abi.Hooks.
type hookSet [numHooks]bool

const numHooks = 6

// hookIndex returns the position of h in abi.Hooks, or -1.
func hookIndex(h abi.Hook) int {
	return slices.Index(abi.Hooks, h)
}

// list returns the hooks in the set, init excluded.
func (s hookSet) list() []abi.Hook {
	var hs []abi.Hook
	for i, ok := range s {
		if ok && abi.Hooks[i] != abi.HookInit {
			hs = append(hs, abi.Hooks[i])
		}
	}
	return hs
}

// checkModule verifies a compiled plugin against the ABI and the spec's
// grants before anything is instantiated, and returns the hooks it exports.
// Errors name the offending import or export.
func checkModule(spec Spec, cm wazero.CompiledModule) (hookSet, error) {
	var hooks hookSet
	imports := cm.ImportedFunctions()
	// A wrong major makes every other import look unknown: report it first.
	for _, f := range imports {
		mod, name, _ := f.Import()
		if _, major, ok := abi.ParseModuleName(mod); ok && major != abi.Major {
			return hooks, fmt.Errorf("%w: plugin %q imports %s.%s: it was built for plugin ABI v%d, this host speaks v%d (%s)",
				ErrABIMismatch, spec.Name, mod, name, major, abi.Major, abi.Version)
		}
	}
	core := false
	for _, f := range imports {
		isCore, err := checkImport(spec, f)
		if err != nil {
			return hooks, err
		}
		core = core || isCore
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return hooks, fmt.Errorf("%w: plugin %q imports memory %s.%s; a plugin defines and exports its own memory",
			ErrUnknownImport, spec.Name, mod, name)
	}
	if !core {
		return hooks, fmt.Errorf("%w: plugin %q imports nothing from %s: not a Parley v%d plugin",
			ErrABIMismatch, spec.Name, abi.ModuleCore, abi.Major)
	}
	return checkExports(spec, cm)
}

// checkImport checks one imported function and reports whether it is from
// the core module.
func checkImport(spec Spec, f api.FunctionDefinition) (bool, error) {
	mod, name, _ := f.Import()
	if mod == abi.ModuleWASI {
		return false, nil
	}
	c, _, ok := abi.ParseModuleName(mod)
	if !ok {
		return false, fmt.Errorf("%w: plugin %q imports %s.%s; the host provides only %s and parley_* modules",
			ErrUnknownImport, spec.Name, mod, name, abi.ModuleWASI)
	}
	capability := abi.Capability(c)
	if c != "" && !capability.Valid() {
		return false, fmt.Errorf("%w: plugin %q imports %s.%s: no such capability module (known: %v)",
			ErrUnknownImport, spec.Name, mod, name, abi.Capabilities)
	}
	if c != "" && !spec.granted(capability) {
		return false, fmt.Errorf("%w: plugin %q imports %s.%s, which needs capability %q; granted: %v",
			ErrCapabilityNotGranted, spec.Name, mod, name, capability, spec.Capabilities)
	}
	hf, ok := lookupHostFunc(capability, name)
	if !ok {
		return false, fmt.Errorf("%w: plugin %q imports %s.%s: no such function in ABI %s (built for a newer host?)",
			ErrUnknownImport, spec.Name, mod, name, abi.Version)
	}
	if !slices.Equal(f.ParamTypes(), hf.params) || !slices.Equal(f.ResultTypes(), hf.results) {
		return false, fmt.Errorf("%w: plugin %q imports %s.%s as %s, the ABI defines %s",
			ErrUnknownImport, spec.Name, mod, name, sig(f.ParamTypes(), f.ResultTypes()), sig(hf.params, hf.results))
	}
	return c == "", nil
}

// checkExports checks the memory and hook exports.
func checkExports(spec Spec, cm wazero.CompiledModule) (hookSet, error) {
	var hooks hookSet
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		return hooks, fmt.Errorf("%w: plugin %q does not export its memory as %q", ErrBadExport, spec.Name, abi.ExportMemory)
	}
	fns := cm.ExportedFunctions()
	if _, ok := fns[abi.ExportStart]; ok {
		return hooks, fmt.Errorf("%w: plugin %q exports %s: it is a WASI command, a plugin must be a reactor (Go: -buildmode=c-shared)",
			ErrBadExport, spec.Name, abi.ExportStart)
	}
	any := false
	for i, h := range abi.Hooks {
		f, ok := fns[h.Export()]
		if !ok {
			continue
		}
		if len(f.ParamTypes()) != 0 || !slices.Equal(f.ResultTypes(), []api.ValueType{i32}) {
			return hooks, fmt.Errorf("%w: plugin %q exports %s as %s, hooks are () -> i32",
				ErrBadExport, spec.Name, h.Export(), sig(f.ParamTypes(), f.ResultTypes()))
		}
		hooks[i] = true
		any = any || h != abi.HookInit
	}
	if !any {
		return hooks, fmt.Errorf("%w: plugin %q exports no hook (parley_auth, parley_join ...)", ErrBadExport, spec.Name)
	}
	return hooks, nil
}

// sig formats a wasm function type like "(i32, i32) -> i32".
func sig(params, results []api.ValueType) string {
	f := func(ts []api.ValueType) string {
		s := "("
		for i, t := range ts {
			if i > 0 {
				s += ", "
			}
			s += api.ValueTypeName(t)
		}
		return s + ")"
	}
	return f(params) + " -> " + f(results)
}
