package windows

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps windows/ at the bottom of the tree: besides the standard
// library it imports only Arrow and its own encoding of checkpoints
// (windows/snap), in every transitive dependency of ours.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/sessionsql/sessionsql/") && imp != "github.com/sessionsql/sessionsql/windows" && imp != "github.com/sessionsql/sessionsql/windows/snap" {
			t.Errorf("windows depends on %s", imp)
		}
	}
}
