package sink

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the dependency arrows honest: package sink imports exec,
// Arrow, pgx and the leaf packages sql/sqltypes and sql/sqlerr, and nothing
// of the planner, the catalog, the server or the rest of sql.
func TestDeps(t *testing.T) {
	const mod = "github.com/sessionsql/sessionsql/"
	out, err := exec.Command("go", "list", "-e", "-f", `{{join .Imports " "}}`, mod+"exec/sink", mod+"exec/sink/pgtest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		mod + "exec",
		mod + "exec/sink/pgtest",
		mod + "sql/sqlerr",
		mod + "sql/sqltypes",
		"github.com/apache/arrow-go/",
		"github.com/jackc/pgx/",
		"github.com/jackc/pgerrcode",
	}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.Contains(pkg, ".") { // the standard library
			continue
		}
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, a) && strings.HasSuffix(a, "/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("exec/sink imports %s", pkg)
		}
	}
}
