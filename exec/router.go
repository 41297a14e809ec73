package exec

import (
	"context"
	"log/slog"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Router feeds every view of a source from the source's one reader ("read
// once, route to many"). Each pipeline gets only the rows after the last
// sequence it has been sent, so a pipeline that joins late, or a reader
// rewound for a new view, never makes another view count an event twice.
type Router struct {
	seqCol int
	log    *slog.Logger

	mu    sync.Mutex
	pipes []*route
}

type route struct {
	p    *Pipeline
	sent uint64 // last sequence handed to p
}

// NewRouter returns a router for source batches whose stream sequence is
// in column seqCol (Int64, ascending within a batch).
func NewRouter(seqCol int, log *slog.Logger) *Router {
	return &Router{seqCol: seqCol, log: log}
}

// Add starts routing to p, from the sequence after p.Position().
func (r *Router) Add(p *Pipeline) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pipes = append(r.pipes, &route{p: p, sent: p.Position()})
}

// Remove stops routing to p.
func (r *Router) Remove(p *Pipeline) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, rt := range r.pipes {
		if rt.p == p {
			r.pipes = append(r.pipes[:i], r.pipes[i+1:]...)
			return
		}
	}
}

// Len is the number of pipelines routed to.
func (r *Router) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pipes)
}

// Route sends rec (borrowed) to every pipeline that has not seen its rows.
// lastSeq is the last stream sequence rec covers (rejected messages
// included), so positions advance even past a batch of only rejects;
// pending is how many messages the stream held after it (Input.Pending). A
// pipeline that has stopped is dropped from the routes and logged; the
// others go on.
func (r *Router) Route(ctx context.Context, rec arrow.RecordBatch, lastSeq, pending uint64) error {
	r.mu.Lock()
	pipes := append([]*route(nil), r.pipes...)
	r.mu.Unlock()
	var seqs []int64
	if rec.NumRows() > 0 {
		seqs = rec.Column(r.seqCol).(*array.Int64).Int64Values()
	}
	for _, rt := range pipes {
		if lastSeq <= rt.sent {
			continue
		}
		from := sort.Search(len(seqs), func(i int) bool { return uint64(seqs[i]) > rt.sent })
		var part arrow.RecordBatch
		if from == 0 {
			rec.Retain()
			part = rec
		} else {
			part = rec.NewSlice(int64(from), rec.NumRows())
		}
		if err := rt.p.Send(ctx, Input{Rec: part, LastSeq: lastSeq, Pending: pending}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("view no longer receives events", "view", rt.p.Name(), "err", err)
			r.Remove(rt.p)
			continue
		}
		rt.sent = lastSeq
	}
	return nil
}

// MinPosition is the smallest position of the routed pipelines: every
// sequence up to it is processed by all of them. ok is false when there
// are none.
func (r *Router) MinPosition() (pos uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, rt := range r.pipes {
		if p := rt.p.Position(); i == 0 || p < pos {
			pos = p
		}
	}
	return pos, len(r.pipes) > 0
}
