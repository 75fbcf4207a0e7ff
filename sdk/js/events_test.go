package parleyjs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerAPIEvents runs the SDK in node and feeds it the events the
// server API causes (permissions, track_muted, data from the server,
// closing with a removal reason): testdata/events_check.mjs asserts what
// the Room records and emits. Skipped where node is not installed.
func TestServerAPIEvents(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	sdk, err := filepath.Abs("parley.js")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "testdata/events_check.mjs", "file://"+sdk).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node: %v\n%s", err, out)
	}
}
