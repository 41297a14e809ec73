package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBenchSmall runs `sessionsql bench` on a small workload: it must
// publish, drain, run the view to the end and print every figure.
func TestBenchSmall(t *testing.T) {
	for _, perMessage := range []string{"1", "100"} {
		t.Run("per-message="+perMessage, func(t *testing.T) { benchSmall(t, perMessage) })
	}
}

func benchSmall(t *testing.T, perMessage string) {
	var out, progress bytes.Buffer
	c, err := parseBenchFlags([]string{"--events", "20000", "--users", "500", "--events-per-message", perMessage, "--data-dir", t.TempDir()}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if err := runBench(context.Background(), c, &out, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	for _, want := range []string{"decode JSON -> Arrow", "JetStream consume, no processing", "end to end, live table", "state per open window", "peak RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), " 0 sessions written") {
		t.Errorf("no session written:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--events", "0"}, {"--events-per-message", "0"}, {"--postgres", "x"}, {"extra"}} {
		if _, err := parseBenchFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseBenchFlags(%q) accepted", args)
		}
	}
}
