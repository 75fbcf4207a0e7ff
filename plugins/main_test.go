package plugins

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test plugins: the Go ones are built with the Go toolchain, the WAT ones
// with wat2wasm (Debian package wabt). `make plugins` builds them all into
// bin/plugins; when a binary there is missing or older than its sources,
// the tests build their own copy into a temporary directory.

var (
	repoRoot string // the module root
	buildDir string // where tests build what bin/plugins lacks
	cacheDir string // the wazero compilation cache shared by the tests

	buildMu sync.Mutex
	built   = map[string][]byte{}
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	tmp, err := os.MkdirTemp("", "parley-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	buildDir = filepath.Join(tmp, "bin")
	// Compiled code is cached across runs (keyed by module digest and
	// wazero version, so it is never stale): a Go plugin takes seconds to
	// compile under the race detector.
	cacheDir = os.Getenv("PARLEY_TEST_WAZERO_CACHE")
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = tmp
		}
		cacheDir = filepath.Join(base, "parley", "test-wazero")
		pruneCache(cacheDir, 512<<20)
	}
	return m.Run()
}

// pruneCache deletes the oldest files under dir, down to half of limit,
// when it holds more than limit bytes, so the shared cache does not grow
// without bound as plugins change.
func pruneCache(dir string, limit int64) {
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				files = append(files, file{p, info.Size(), info.ModTime()})
				total += info.Size()
			}
		}
		return nil
	})
	if total <= limit {
		return
	}
	slices.SortFunc(files, func(a, b file) int { return a.mod.Compare(b.mod) })
	for _, f := range files {
		if total <= limit/2 {
			return
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
}

// goPlugin returns the bytes of the Go plugin in dir (relative to
// plugins/, e.g. "stock/jwtauth" or "testdata/testplug").
func goPlugin(t testing.TB, dir string) []byte {
	name := filepath.Base(dir)
	out := filepath.Join("bin", "plugins", name+".wasm")
	if strings.HasPrefix(dir, "testdata/") {
		out = filepath.Join("bin", "plugins", "testdata", name+".wasm")
	}
	src := []string{filepath.Join("plugins", dir), "sdk/plugin", "abi", "go.mod"}
	return buildOnce(t, out, src, func(dst string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", dst, "./plugins/"+dir)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		return cmd
	})
}

// watPlugin returns the bytes of plugins/testdata/wat/<name>.wat.
func watPlugin(t testing.TB, name string) []byte {
	srcFile := filepath.Join("plugins", "testdata", "wat", name+".wat")
	out := filepath.Join("bin", "plugins", "testdata", name+".wasm")
	return buildOnce(t, out, []string{srcFile}, func(dst string) *exec.Cmd {
		if _, err := exec.LookPath("wat2wasm"); err != nil {
			t.Fatalf("wat2wasm not found: it comes with the Debian package wabt, which `make deps` installs")
		}
		return exec.Command("wat2wasm", "-o", dst, srcFile)
	})
}

// buildOnce returns the binary at out (relative to the repo root) when it
// is newer than every source, or else builds it once into buildDir.
func buildOnce(t testing.TB, out string, sources []string, cmd func(dst string) *exec.Cmd) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[out]; ok {
		return b
	}
	path := filepath.Join(repoRoot, out)
	if st, err := os.Stat(path); err != nil || st.ModTime().Before(newest(t, sources)) {
		path = filepath.Join(buildDir, out)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		c := cmd(path)
		c.Dir = repoRoot
		var stderr bytes.Buffer
		c.Stderr = &stderr
		start := time.Now()
		if err := c.Run(); err != nil {
			t.Fatalf("building %s: %v\n%s", out, err, stderr.String())
		}
		t.Logf("built %s in %v", out, time.Since(start).Round(time.Millisecond))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	built[out] = b
	return b
}

// newest returns the latest modification time of the files under paths.
func newest(t testing.TB, paths []string) time.Time {
	var latest time.Time
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(repoRoot, p), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(latest) {
				latest = info.ModTime()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", p, err)
		}
	}
	return latest
}
