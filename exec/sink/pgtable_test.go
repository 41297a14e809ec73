package sink

import "testing"

// TestDeleteSQL shows the delete statement for each set of NULL patterns.
func TestDeleteSQL(t *testing.T) {
	spec := specOf(t, "t", []string{"a BIGINT", "b TEXT", "v BIGINT"}, "a", "b")
	tbl := newPGTable(nil, spec, "s")
	stage := tbl.deleteStage.Sanitize()
	tests := []struct {
		name     string
		patterns []uint64
		want     string
	}{
		{"no NULLs", []uint64{0},
			`DELETE FROM "s"."t" AS t USING ` + stage + ` AS s WHERE s."sessionsql_batch" = $1 AND t."a" = s."a" AND t."b" = s."b"`},
		{"b NULL", []uint64{2},
			`DELETE FROM "s"."t" AS t USING ` + stage + ` AS s WHERE s."sessionsql_batch" = $1 AND t."a" = s."a" AND s."b" IS NULL AND t."b" IS NULL`},
		{"three patterns", []uint64{0, 3, 1},
			`WITH d0 AS (DELETE FROM "s"."t" AS t USING ` + stage + ` AS s WHERE s."sessionsql_batch" = $1 AND t."a" = s."a" AND t."b" = s."b"), ` +
				`d1 AS (DELETE FROM "s"."t" AS t USING ` + stage + ` AS s WHERE s."sessionsql_batch" = $1 AND s."a" IS NULL AND t."a" IS NULL AND s."b" IS NULL AND t."b" IS NULL) ` +
				`DELETE FROM "s"."t" AS t USING ` + stage + ` AS s WHERE s."sessionsql_batch" = $1 AND s."a" IS NULL AND t."a" IS NULL AND t."b" = s."b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tbl.deleteSQL(tc.patterns); got != tc.want {
				t.Fatalf("deleteSQL(%v) =\n%s\nwant\n%s", tc.patterns, got, tc.want)
			}
		})
	}
	// A user column named like the batch column pushes it aside.
	clash := newPGTable(nil, specOf(t, "t", []string{"sessionsql_batch BIGINT", "v BIGINT"}, "sessionsql_batch"), "s")
	if clash.batchCol != "sessionsql_batch_" {
		t.Fatalf("batch column %q", clash.batchCol)
	}
}
