package source

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the dependency arrows honest (STYLE.md section 2): the
// package imports nothing of this module but sql/sqltypes and sql/sqlerr,
// and directly only the standard library, Arrow, nats, fastjson and
// pgerrcode.
func TestDeps(t *testing.T) {
	const module = "github.com/sessionsql/sessionsql/"
	list := func(field string) []string {
		out, err := exec.Command("go", "list", "-f", `{{join .`+field+` "\n"}}`, ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	allowedOwn := map[string]bool{module + "sql/sqltypes": true, module + "sql/sqlerr": true}
	allowedDirect := []string{
		"github.com/apache/arrow-go/v18/",
		"github.com/nats-io/nats.go",
		"github.com/nats-io/nats-server/v2/",
		"github.com/valyala/fastjson",
		"github.com/jackc/pgerrcode",
	}
	for _, p := range list("Imports") {
		if strings.HasPrefix(p, module) {
			if !allowedOwn[p] {
				t.Errorf("imports %s", p)
			}
			continue
		}
		if !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowedDirect {
			ok = ok || strings.HasPrefix(p, a)
		}
		if !ok {
			t.Errorf("imports %s directly", p)
		}
	}
	for _, p := range list("Deps") {
		if strings.HasPrefix(p, module) && !allowedOwn[p] {
			t.Errorf("depends on %s", p)
		}
	}
}
