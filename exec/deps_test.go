package exec

import (
	osexec "os/exec"
	"strings"
	"testing"
)

// TestDeps enforces the dependency direction: nothing under exec/ imports
// planner, catalog, server, or sql other than its leaves sqlerr and
// sqltypes (checked over every transitive dependency of every exec
// package).
func TestDeps(t *testing.T) {
	out, err := osexec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/sessionsql/sessionsql/"
	allowed := map[string]bool{"sql/sqlerr": true, "sql/sqltypes": true, "windows": true, "windows/snap": true}
	for _, imp := range strings.Fields(string(out)) {
		rel, ours := strings.CutPrefix(imp, mod)
		if !ours || rel == "exec" || strings.HasPrefix(rel, "exec/") || allowed[rel] {
			continue
		}
		t.Errorf("exec depends on %s", imp)
	}
}
