package source

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchMessages is how many events the consume benchmarks read per run.
const benchMessages = 200_000

// benchStream starts a server and fills stream BENCH with benchMessages
// copies of benchEvent. It returns the server.
func benchStream(b *testing.B) *Embedded {
	b.Helper()
	e := startServer(b)
	js := connect(b, e.ClientURL())
	ctx := context.Background()
	if _, err := EnsureStream(ctx, js, "BENCH", []string{"bench"}); err != nil {
		b.Fatal(err)
	}
	const chunk = 10_000
	payloads := make([][]byte, chunk)
	for i := range payloads {
		payloads[i] = benchEvent
	}
	for range benchMessages / chunk {
		if err := Publish(ctx, js, "bench", payloads); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// countingHandler counts rows and cancels when it has seen want of them.
type countingHandler struct {
	rows, want int
	cancel     context.CancelFunc
}

func (h *countingHandler) HandleRejects(ctx context.Context, rs []Reject) error {
	return fmt.Errorf("unexpected reject: %s", rs[0].Reason)
}

func (h *countingHandler) HandleBatch(ctx context.Context, b Batch) error {
	h.rows += int(b.Rec.NumRows())
	if h.rows >= h.want {
		h.cancel()
	}
	return nil
}

// BenchmarkReaderConsume reads benchMessages events of ~116 B from an
// embedded server through a Reader (decode included) and reports
// events/s, and events per CPU second of the process, which holds the
// server too. Sub-benchmarks vary the prefetch (PullMaxMessages) and the
// connection (TCP on loopback, or nats.InProcessServer).
func BenchmarkReaderConsume(b *testing.B) {
	e := benchStream(b)
	for _, tc := range []struct {
		name     string
		prefetch int
		inproc   bool
	}{
		{"prefetch=1024", 1024, false},
		{"prefetch=8192(default)", 0, false},
		{"prefetch=32768", 32768, false},
		{"prefetch=8192/inprocess", 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var opts []nats.Option
			if tc.inproc {
				opts = append(opts, nats.InProcessServer(e.Server()))
			}
			js := connect(b, e.ClientURL(), opts...)
			r, err := NewReader(js, Config{Source: "bench", Stream: "BENCH", Subjects: []string{"bench"},
				Columns: benchCols, TimeColumn: 5}, memory.NewGoAllocator(), testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			if tc.prefetch > 0 {
				r.prefetch = tc.prefetch
			}
			events := 0
			cpu0 := processCPU()
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				h := &countingHandler{want: benchMessages, cancel: cancel}
				if err := r.Run(ctx, 1, h); !errors.Is(err, context.Canceled) {
					b.Fatal(err)
				}
				cancel()
				events += h.rows
			}
			reportRate(b, events, processCPU()-cpu0)
		})
	}
}

// BenchmarkTransport measures the transport alone, without decoding:
// Consumer.Messages with AckNone and with AckAll's pending tracking on the
// server, Consumer.Consume with AckNone (what Reader uses), and a loop of
// Consumer.Fetch.
func BenchmarkTransport(b *testing.B) {
	e := benchStream(b)
	js := connect(b, e.ClientURL())
	ctx := context.Background()
	newConsumer := func(b *testing.B, ack jetstream.AckPolicy) jetstream.Consumer {
		cfg := jetstream.ConsumerConfig{AckPolicy: ack, InactiveThreshold: time.Minute}
		if ack != jetstream.AckNonePolicy {
			// What Reader used before it went AckNone: room for 2^21
			// unacked messages, no redelivery.
			cfg.MaxAckPending, cfg.AckWait = 1<<21, 24*time.Hour
		}
		c, err := js.CreateOrUpdateConsumer(ctx, "BENCH", cfg)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	for _, ack := range []jetstream.AckPolicy{jetstream.AckNonePolicy, jetstream.AckAllPolicy} {
		b.Run(fmt.Sprintf("messages/prefetch=8192/%s", ack), func(b *testing.B) {
			events := 0
			cpu0 := processCPU()
			for b.Loop() {
				it, err := newConsumer(b, ack).Messages(jetstream.PullMaxMessages(8192))
				if err != nil {
					b.Fatal(err)
				}
				for range benchMessages {
					if _, err := it.Next(); err != nil {
						b.Fatal(err)
					}
				}
				it.Stop()
				events += benchMessages
			}
			reportRate(b, events, processCPU()-cpu0)
		})
	}
	b.Run("consume/prefetch=8192/AckNone", func(b *testing.B) {
		events := 0
		cpu0 := processCPU()
		for b.Loop() {
			done := make(chan struct{})
			n := 0
			cc, err := newConsumer(b, jetstream.AckNonePolicy).Consume(func(jetstream.Msg) {
				if n++; n == benchMessages {
					close(done)
				}
			}, jetstream.PullMaxMessages(8192))
			if err != nil {
				b.Fatal(err)
			}
			<-done
			cc.Stop()
			<-cc.Closed()
			events += benchMessages
		}
		reportRate(b, events, processCPU()-cpu0)
	})
	for _, n := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("fetch/batch=%d/AckNone", n), func(b *testing.B) {
			events := 0
			cpu0 := processCPU()
			for b.Loop() {
				c := newConsumer(b, jetstream.AckNonePolicy)
				got := 0
				for got < benchMessages {
					mb, err := c.Fetch(n, jetstream.FetchMaxWait(time.Second))
					if err != nil {
						b.Fatal(err)
					}
					for range mb.Messages() {
						got++
					}
					if err := mb.Error(); err != nil {
						b.Fatal(err)
					}
				}
				events += got
			}
			reportRate(b, events, processCPU()-cpu0)
		})
	}
}
