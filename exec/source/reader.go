package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBatchRows = 4096
	DefaultMaxWait   = 20 * time.Millisecond
)

// pullExpiry is the lifetime of one pull request; heartbeats come at
// half of it, so a consumer deleted while the stream is idle is noticed
// within about this long.
const pullExpiry = 5 * time.Second

// Config describes the stream of one source and how to batch it.
type Config struct {
	// Source is the source's name, used in the consumer's name
	// (ConsumerName), in logs and in errors.
	Source string
	// Stream is the JetStream stream's name; Subjects its subjects, used
	// when Run creates it (EnsureStream).
	Stream   string
	Subjects []string
	// Columns are the declared columns, in order; TimeColumn indexes the
	// event-time (WATERMARK) column among them.
	Columns    []Column
	TimeColumn int
	// NDJSON: a message holds many events, one JSON object per line
	// (format = 'ndjson'); empty lines are skipped. Otherwise a message is
	// one JSON object.
	NDJSON bool
	// BatchRows bounds a batch: it is handed over once it holds BatchRows
	// messages, or BatchRows rows and rejects (with NDJSON it may end a
	// message's lines over: a message is never split across batches); 0
	// means DefaultBatchRows.
	BatchRows int
	// MaxWait bounds how long a message waits in a partial batch: a batch
	// is handed over MaxWait after its first message arrived if it has
	// not filled up before (so also when traffic stops). 0 means
	// DefaultMaxWait.
	MaxWait time.Duration
}

// Validate reports what is wrong with c, after defaults.
func (c Config) Validate() error {
	if c.Source == "" {
		return errors.New("source config: no source name")
	}
	if c.Stream == "" {
		return fmt.Errorf("source %q: no stream name", c.Source)
	}
	if c.BatchRows < 0 || c.MaxWait < 0 {
		return fmt.Errorf("source %q: negative batch size or wait", c.Source)
	}
	if err := ValidateColumns(c.Columns, c.TimeColumn); err != nil {
		return fmt.Errorf("source %q: %w", c.Source, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}

// Batch is a run of messages of the stream handed to a Handler.
type Batch struct {
	// Rec holds the messages that decoded, in stream order, in the schema
	// of BatchSchema. It is borrowed: the reader releases it when
	// HandleBatch returns; a handler that keeps it calls Retain.
	Rec arrow.RecordBatch
	// FirstSeq and LastSeq are the stream sequences of the first and the
	// last message this batch covers, rejected ones included. Batches of
	// one Run cover increasing, disjoint ranges; sequences between
	// batches are gaps in the stream (deleted messages).
	FirstSeq, LastSeq uint64
	// Pending is how many messages the stream held after LastSeq for
	// the consumer when the last one was delivered (the server's count in
	// its ack subject): 0 when the reader had caught up.
	Pending uint64
}

// Reject is a message that could not be decoded: a row for the source's
// dead-letter table.
type Reject struct {
	Seq uint64
	// Payload is the message's body; the handler may keep it.
	Payload []byte
	// Reason says why, naming the column (see Decoder).
	Reason string
	// At is when the stream stored the message, so a replay from a
	// checkpoint produces the same rows.
	At time.Time
}

// Handler receives what a Reader reads. Both calls come from the Run
// goroutine, never concurrently. An error ends Run, which returns it.
type Handler interface {
	// HandleBatch receives the next batch. Its Rec may have 0 rows when
	// every message it covers was rejected, so that positions advance.
	HandleBatch(ctx context.Context, b Batch) error
	// HandleRejects receives the rejects of a batch before HandleBatch
	// receives that batch. rs is the handler's to keep.
	HandleRejects(ctx context.Context, rs []Reject) error
}

// Stats are a Reader's counters, over all its runs.
type Stats struct {
	Messages    uint64 // messages handed over: events plus rejects
	Events      uint64 // rows handed over in batches
	Rejects     uint64 // rejects handed over
	Batches     uint64 // calls of HandleBatch
	Redelivered uint64 // redeliveries dropped
	LastSeq     uint64 // stream sequence of the newest message handed over
	// ProcessedSeq is the newest sequence the caller said is processed
	// (Processed).
	ProcessedSeq uint64
}

// Reader reads one source's stream with a durable pull consumer and hands
// it to a Handler as batches and rejects. See doc.go.
type Reader struct {
	js       jetstream.JetStream
	cfg      Config
	mem      memory.Allocator
	log      *slog.Logger
	consumer string // durable name
	prefetch int    // messages the consumer keeps requested ahead

	running atomic.Bool

	messages, events, rejects, batches, redelivered, lastSeq, processedSeq atomic.Uint64
}

// NewReader returns a reader of cfg's stream through js. Batches are
// allocated from mem. It returns cfg.Validate's error.
func NewReader(js jetstream.JetStream, cfg Config, mem memory.Allocator, log *slog.Logger) (*Reader, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Columns = append([]Column(nil), cfg.Columns...)
	cfg.Subjects = append([]string(nil), cfg.Subjects...)
	return &Reader{
		js:       js,
		cfg:      cfg,
		mem:      mem,
		log:      log.With("component", "source", "source", cfg.Source),
		consumer: ConsumerName(cfg.Source),
		prefetch: max(2*cfg.BatchRows, 1024),
	}, nil
}

// Schema returns the schema of the reader's batches.
func (r *Reader) Schema() *arrow.Schema { return BatchSchema(r.cfg.Columns, r.cfg.TimeColumn) }

// ConsumerName returns the name of the reader's durable consumer.
func (r *Reader) ConsumerName() string { return r.consumer }

// Stats returns the reader's counters. Safe from any goroutine.
func (r *Reader) Stats() Stats {
	return Stats{
		Messages:     r.messages.Load(),
		Events:       r.events.Load(),
		Rejects:      r.rejects.Load(),
		Batches:      r.batches.Load(),
		Redelivered:  r.redelivered.Load(),
		LastSeq:      r.lastSeq.Load(),
		ProcessedSeq: r.processedSeq.Load(),
	}
}

// Processed says that every message with stream sequence <= seq is
// processed. It only records seq, for Stats.ProcessedSeq (it never goes
// back); nothing is sent to the server (see doc.go, "Positions, not
// acknowledgements"). Safe from any goroutine.
func (r *Reader) Processed(seq uint64) {
	for {
		old := r.processedSeq.Load()
		if seq <= old || r.processedSeq.CompareAndSwap(old, seq) {
			return
		}
	}
}

// errConsumerGone means the consumer was deleted under a running reader.
var errConsumerGone = errors.New("consumer deleted")

// errConnectionLost means the connection to NATS broke under a running
// reader: messages the server had sent may never have arrived, and with
// AckNone they are not sent again, so the consumer must be re-created at
// the next message once the connection is back.
var errConnectionLost = errors.New("connection to NATS lost")

// Run reads the stream, starting at stream sequence startSeq (0 and 1
// both mean the first message), until ctx is done or something fails. It
// creates the stream if absent (EnsureStream) and re-creates the durable
// consumer positioned at startSeq. It returns ctx.Err() when ctx is done;
// messages received but not yet handed over are then dropped (the next
// Run, from the caller's checkpoint, delivers them again). Any other
// return is the error that stopped it.
//
// Run sets the processed sequence to startSeq-1: messages
// before startSeq are taken as processed. One Reader runs one Run at a
// time.
//
// If the consumer is deleted while Run reads (by an operator, say), Run
// logs a warning and re-creates it at the message after the last one
// received, so nothing is lost or repeated. Stop Run before deleting the
// consumer for good (DeleteConsumer).
func (r *Reader) Run(ctx context.Context, startSeq uint64, h Handler) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("source %q: reader is already running", r.cfg.Source)
	}
	defer r.running.Store(false)
	if startSeq == 0 {
		startSeq = 1
	}
	r.processedSeq.Store(startSeq - 1)
	r.log.Info("source reader started", "stream", r.cfg.Stream, "start_seq", startSeq)
	err := r.run(ctx, startSeq, h)
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	r.log.Info("source reader stopped", "last_seq", r.lastSeq.Load(), "err", err)
	return err
}

func (r *Reader) run(ctx context.Context, startSeq uint64, h Handler) error {
	s, err := EnsureStream(ctx, r.js, r.cfg.Stream, r.cfg.Subjects)
	if err != nil {
		return fmt.Errorf("source %q: %w", r.cfg.Source, err)
	}
	if st := s.CachedInfo().State; startSeq > 1 && st.Msgs > 0 && startSeq < st.FirstSeq {
		r.log.Warn("stream no longer holds the messages to resume from; they were removed by its limits",
			"stream", r.cfg.Stream, "start_seq", startSeq, "first_seq", st.FirstSeq)
	}
	dec, err := NewDecoder(r.mem, r.cfg.Columns, r.cfg.TimeColumn)
	if err != nil {
		return fmt.Errorf("source %q: %w", r.cfg.Source, err)
	}
	defer dec.Release()

	rn := newRun(r, h, dec, startSeq)
	defer rn.timer.Stop()
	for {
		err := rn.consume(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, errConnectionLost):
			if err := r.waitConnected(ctx); err != nil {
				return err
			}
			r.log.Info("connection to NATS back; re-creating the consumer at the next message",
				"consumer", r.consumer, "next_seq", rn.next)
			continue
		case !errors.Is(err, errConsumerGone):
			return err
		}
		r.log.Warn("consumer was deleted while reading; re-creating it",
			"consumer", r.consumer, "next_seq", rn.next)
	}
}

// waitConnected waits until the connection to NATS is up again (or
// closed for good, which is an error).
func (r *Reader) waitConnected(ctx context.Context) error {
	nc := r.js.Conn()
	for {
		switch nc.Status() {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED:
			return fmt.Errorf("source %q: %w", r.cfg.Source, nats.ErrConnectionClosed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run is the state of one Run. The consumer's message handler and the
// MaxWait timer both work on it, under mu: one at a time, and neither
// once stopped is set.
type run struct {
	r     *Reader
	h     Handler
	dec   *Decoder
	timer *time.Timer // calls expire MaxWait after a batch's first message

	mu      sync.Mutex
	ctx     context.Context // of the current consume
	failed  chan error      // the first error of the handler or the timer (buffered, 1)
	stopped bool            // after an error: drop whatever still comes
	next    uint64          // stream sequence after the newest message received

	// The current batch: messages received but not handed over.
	n           int    // messages in it, rows and rejects
	first, last uint64 // their sequences
	lastReply   string // the last one's ack subject
	deadline    time.Time
	rejects     []Reject
}

// newRun returns the state of a Run from stream sequence next.
func newRun(r *Reader, h Handler, dec *Decoder, next uint64) *run {
	rn := &run{r: r, h: h, dec: dec, next: next, ctx: context.Background()}
	rn.timer = time.AfterFunc(time.Hour, rn.expire)
	rn.timer.Stop()
	return rn
}

// consume creates the consumer at rn.next and reads until an error.
//
// Messages come through Consumer.Consume: its handler runs on the
// subscription's goroutine and decodes each message into the batch
// there. Consumer.Messages costs more CPU per message (its Next arms a
// heartbeat timer and crosses a channel for every message; see
// BenchmarkTransport). The handler blocks while the Handler
// does (backpressure), and the client pulls no more meanwhile.
func (rn *run) consume(ctx context.Context) error {
	r := rn.r
	cons, err := rn.createConsumer(ctx)
	if err != nil {
		return err
	}
	// Registered before the first pull: a break after it is seen.
	nc := r.js.Conn()
	broken := nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer nc.RemoveStatusListener(broken)
	rn.mu.Lock()
	rn.ctx, rn.failed, rn.stopped = ctx, make(chan error, 1), false
	if rn.n > 0 {
		// A batch begun under the previous consumer: its MaxWait goes on.
		rn.timer.Reset(max(time.Until(rn.deadline), 0))
	}
	rn.mu.Unlock()
	noHeartbeat := make(chan struct{}, 1)
	cc, err := cons.Consume(rn.handle,
		jetstream.PullMaxMessagesWithBytesLimit(r.prefetch, pullBytes(nc)), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				// The client re-pulls by itself; a missing consumer sends
				// no heartbeats, so look whether it still exists.
				select {
				case noHeartbeat <- struct{}{}:
				default:
				}
			case errors.Is(err, jetstream.ErrConsumerDeleted):
				rn.fail(errConsumerGone)
			default:
				r.log.Debug("consumer reports", "consumer", r.consumer, "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("source %q: read consumer %q: %w", r.cfg.Source, r.consumer, err)
	}
	defer func() {
		// Once Closed, no handler runs: the next consume starts clean.
		cc.Stop()
		<-cc.Closed()
		rn.mu.Lock()
		rn.stopped = true
		rn.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-rn.failed:
			return err
		case <-broken:
			return errConnectionLost
		case <-cc.Closed():
			return fmt.Errorf("source %q: read consumer %q: the subscription closed", r.cfg.Source, r.consumer)
		case <-noHeartbeat:
			if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
				return errConsumerGone
			}
			r.log.Debug("no heartbeat from the server", "consumer", r.consumer)
		}
	}
}

// pullBytes bounds the bytes one pull request asks for. A client may fall
// 64 MiB behind by default (the server's max_pending for a connection,
// nats.go's pending limit for a subscription); past that the server drops
// the connection, or the client the messages, and what was in flight is
// lost. 8192 messages of NDJSON can weigh far more (100 events each: ~95
// MB). 8 MiB, or two of the largest messages the server takes; the client
// keeps at most about two requests' worth.
func pullBytes(nc *nats.Conn) int {
	return int(max(8<<20, 2*nc.MaxPayload()))
}

// fail records the first error of the current consume and stops taking
// messages. rn.mu must not be held.
func (rn *run) fail(err error) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.failLocked(err)
}

func (rn *run) failLocked(err error) {
	if rn.stopped {
		return
	}
	rn.stopped = true
	rn.timer.Stop()
	select {
	case rn.failed <- err:
	default:
	}
}

// handle is the consumer's message handler.
func (rn *run) handle(msg jetstream.Msg) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.stopped {
		return
	}
	if err := rn.receive(rn.ctx, msg); err != nil {
		rn.failLocked(err)
	}
}

// expire hands a partial batch over once MaxWait has passed since its
// first message (the timer's function).
func (rn *run) expire() {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.stopped || rn.n == 0 {
		return
	}
	if wait := time.Until(rn.deadline); wait > 0 {
		rn.timer.Reset(wait) // a newer batch than the one that set the timer
		return
	}
	if err := rn.flush(rn.ctx); err != nil {
		rn.failLocked(err)
	}
}

// createAttempts bounds the retries of a failed consumer create (about 10 s).
const createAttempts = 15

// createConsumer deletes the durable consumer and creates it anew,
// positioned at rn.next.
func (rn *run) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	r := rn.r
	if err := r.js.DeleteConsumer(ctx, r.cfg.Stream, r.consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("source %q: delete consumer %q: %w", r.cfg.Source, r.consumer, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       r.consumer,
		Description:   "sessionsql source " + r.cfg.Source,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckNonePolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
	if rn.next > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = rn.next
	}
	// The server can fail a create right after a delete (its store may
	// still be removing the old consumer's files): retry for a while.
	var cons jetstream.Consumer
	var err error
	for attempt, wait := 1, 50*time.Millisecond; ; attempt++ {
		cons, err = r.js.CreateConsumer(ctx, r.cfg.Stream, cfg)
		if err == nil || ctx.Err() != nil || attempt == createAttempts {
			break
		}
		r.log.Warn("create consumer failed; retrying", "consumer", r.consumer, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	if err != nil {
		return nil, fmt.Errorf("source %q: create consumer %q on stream %q at sequence %d: %w",
			r.cfg.Source, r.consumer, r.cfg.Stream, rn.next, err)
	}
	r.log.Debug("consumer created", "consumer", r.consumer, "start_seq", rn.next)
	return cons, nil
}

// receive adds one message to the current batch; rn.mu is held.
func (rn *run) receive(ctx context.Context, msg jetstream.Msg) error {
	r := rn.r
	seq, ok := streamSeq(msg.Reply())
	if !ok {
		return fmt.Errorf("source %q: message without a JetStream ack subject (reply %q)", r.cfg.Source, msg.Reply())
	}
	if seq < rn.next {
		r.redelivered.Add(1)
		return nil
	}
	rn.next = seq + 1
	if rn.n == 0 {
		rn.first = seq
		rn.deadline = time.Now().Add(r.cfg.MaxWait)
		rn.timer.Reset(r.cfg.MaxWait)
	}
	rn.n++
	rn.last, rn.lastReply = seq, msg.Reply()
	data := msg.Data()
	if !r.cfg.NDJSON {
		rn.decode(seq, data, msg)
	} else {
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if len(bytes.TrimSpace(line)) > 0 {
				rn.decode(seq, line, msg)
			}
		}
	}
	if rn.n >= r.cfg.BatchRows || rn.dec.Len()+len(rn.rejects) >= r.cfg.BatchRows {
		return rn.flush(ctx)
	}
	return nil
}

// decode appends one event of message msg to the batch, or a reject.
func (rn *run) decode(seq uint64, payload []byte, msg jetstream.Msg) {
	if reason, ok := rn.dec.Append(seq, payload); !ok {
		rj := Reject{Seq: seq, Payload: payload, Reason: reason}
		if md, err := msg.Metadata(); err == nil {
			rj.At = md.Timestamp.UTC()
		}
		rn.rejects = append(rn.rejects, rj)
	}
}

// flush hands the current batch over: its rejects first, then its rows;
// rn.mu is held.
func (rn *run) flush(ctx context.Context) error {
	r := rn.r
	rn.timer.Stop()
	if rn.n == 0 {
		return nil
	}
	nrej := len(rn.rejects)
	if nrej > 0 {
		rs := rn.rejects
		rn.rejects = nil // the handler keeps rs
		if err := rn.h.HandleRejects(ctx, rs); err != nil {
			return rn.handlerErr(ctx, "rejects", err)
		}
	}
	rec := rn.dec.NewBatch()
	rows := rec.NumRows()
	pending, _ := ackToken(rn.lastReply, 8)
	err := rn.h.HandleBatch(ctx, Batch{Rec: rec, FirstSeq: rn.first, LastSeq: rn.last, Pending: pending})
	rec.Release()
	if err != nil {
		return rn.handlerErr(ctx, "batch", err)
	}
	r.messages.Add(uint64(rn.n))
	r.events.Add(uint64(rows))
	r.rejects.Add(uint64(nrej))
	r.batches.Add(1)
	r.lastSeq.Store(rn.last)
	if nrej > 0 {
		r.log.Warn("messages rejected", "count", nrej, "first_seq", rn.first, "last_seq", rn.last)
	}
	r.log.Debug("batch", "first_seq", rn.first, "last_seq", rn.last, "rows", rows, "rejects", nrej)
	rn.n = 0
	return nil
}

func (rn *run) handlerErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("source %q: handle %s %d-%d: %w", rn.r.cfg.Source, what, rn.first, rn.last, err)
}

// streamSeq returns the stream sequence in a JetStream ack subject (see
// ackToken). It is Msg.Metadata without the allocation.
func streamSeq(reply string) (uint64, bool) { return ackToken(reply, 5) }

// ackToken returns number token i of a JetStream ack subject, counted in
// the short form (5: the stream sequence, 8: the messages pending):
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>...]
//
// (9 tokens, or 11 and more, where the numbers sit two further on).
func ackToken(reply string, i int) (uint64, bool) {
	if !strings.HasPrefix(reply, "$JS.ACK.") {
		return 0, false
	}
	pos := i
	switch n := strings.Count(reply, ".") + 1; {
	case n == 9:
	case n >= 11:
		pos += 2
	default:
		return 0, false
	}
	s := reply
	for range pos {
		i := strings.IndexByte(s, '.')
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
