package expr

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the package a leaf: it may import only the standard
// library, Arrow, pgerrcode and the sql/sqltypes and sql/sqlerr leaves
// (never planner, server, catalog, other parts of sql, or exec).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{
		"github.com/apache/arrow-go/v18/arrow",
		"github.com/jackc/pgerrcode",
		"github.com/sessionsql/sessionsql/sql/sqltypes",
		"github.com/sessionsql/sessionsql/sql/sqlerr",
	}
	for _, imp := range strings.Fields(string(out)) {
		if !strings.Contains(strings.Split(imp, "/")[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			if imp == a || strings.HasPrefix(imp, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("exec/expr imports %s", imp)
		}
	}
}
