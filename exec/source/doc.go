// Package source reads a source's events from NATS JetStream and turns
// them into Arrow record batches.
//
// It owns:
//
//   - the embedded NATS server (StartEmbedded): JetStream on disk, in
//     process, for the default `sessionsql serve`;
//   - streams (EnsureStream): created when absent, file storage, limits
//     retention; an existing stream is left as it is, unless its retention
//     would let acks delete messages (work queue, interest), which is
//     refused;
//   - the durable pull consumer of each source and the loop that reads it
//     (Reader), through nats.go's jetstream package, which talks to the
//     embedded server and to an external one (--nats) alike;
//   - the JSON decoder (Decoder): one hand-written pass over each message
//     (scan) that validates it and writes matched fields straight into
//     typed column buffers, copied into Arrow arrays once per batch; a
//     message it is unsure of (any reject, escaped field names, deep
//     nesting) goes to the previous fastjson path, so rejects and their
//     reasons come from one place;
//   - dead letters: messages that do not decode are handed over as Reject
//     values for the source's <source>_rejects table;
//   - publishing (Publish, EncodeJSON), for INSERT INTO <source> VALUES.
//
// It imports Arrow, nats, fastjson, sql/sqltypes and sql/sqlerr (with
// pgerrcode's constants) and the standard library; never planner,
// catalog, server or sql (deps_test.go checks).
//
// # Batches
//
// A batch's schema is the source's declared columns in order, then "_seq"
// (SeqColumn, BIGINT, not null): the message's stream sequence. The
// event-time column is never null; others are null where the message had
// null or no such field (BatchSchema). TIMESTAMP and TIMESTAMPTZ values
// are milliseconds since the Unix epoch in UTC.
//
// The decoder's format rules (name matching, types, timestamps, what is
// rejected) are on Decoder, and testdata/decode/* shows them at work. It
// is checked against an independent encoding/json decoder by the tests
// and by FuzzDecode.
//
// Rows are in stream order. Within one Run, every message with a sequence
// >= the start sequence reaches the handler exactly once, as a row or as a
// reject; a redelivery of a sequence already received is dropped (and
// counted) before decoding. A batch covers at most Config.BatchRows
// messages, and is handed over at most Config.MaxWait after its first
// message arrived.
//
// Ownership: Handler.HandleBatch borrows Batch.Rec; the reader releases it
// when the call returns. A handler that keeps it calls Retain and owns a
// Release. Decoder.NewBatch gives its caller the batch to release.
//
// # Rejects
//
// A message that is not a UTF-8 JSON object, has a field of the wrong type
// or out of range, or lacks the event time is a reject: it appends no row,
// and is handed to Handler.HandleRejects with its sequence, raw payload,
// a reason naming the column, and the time the stream stored it (so a
// replay produces identical rows). The payload is the raw message and may
// be invalid UTF-8 (that is one reason for rejecting it): store it as
// bytea, or escape it, not as text. Rejects are handed over before the
// HandleBatch that covers their sequences, so a checkpoint taken after a
// batch includes its rejects. A batch whose
// messages were all rejected still comes, with 0 rows, so positions
// advance. Rejects are counted (Stats) and logged at Warn once per batch,
// never per message.
//
// # Positions, not acknowledgements
//
// The consumer acks nothing (AckNone). Exactly-once comes from positions:
// the engine checkpoints the sequence its state covers, and each Run
// re-creates the consumer at the sequence it is given, so acks would not
// make restarts any more exact; and a source's stream has limits
// retention (EnsureStream refuses the others), so acks would not free
// messages either. What acks would cost is real: with AckAll the server
// keeps an entry per delivered, unacked message, and the transport ran
// at 0.63x the messages per second of AckNone on the development machine
// (BenchmarkTransport). The engine calls Reader.Processed(seq) once every
// view has processed the messages <= seq; the reader only records it
// (Stats.ProcessedSeq, the metric sessionsql_source_processed_sequence).
// The pull requests' size (two batches, at least 1024 messages) bounds
// what is delivered and not yet handed over.
//
// # Consumer lifecycle
//
// The durable consumer is named ConsumerName(source). Run deletes it and
// creates it anew at the start sequence (DeliverAll or
// DeliverByStartSequence), then reads with Consumer.Consume, which keeps
// two batches' worth of messages (at least 1024, at most about 8 MiB)
// requested ahead. When the connection breaks, messages the server had
// sent may be lost with it, and AckNone never sends them again: so once
// reconnected the reader re-creates the consumer at the message after the
// last one received (tested by restarting the embedded server under a
// running reader). Its message handler decodes
// into the batch on the subscription's goroutine, and a timer hands a
// partial batch over MaxWait after its first message; a mutex keeps the
// two apart (uncontended but for the timer). A Handler that blocks blocks
// the handler, and no more messages are pulled meanwhile. If the consumer is deleted
// under a running reader, the reader re-creates it at the message after
// the last one received and goes on, logged at Warn: nothing is lost or
// repeated. The server tells a waiting pull request at once; without one,
// missing heartbeats reveal it within about 5 s. DeleteConsumer removes
// the consumer for DROP SOURCE; stop the Run first, or it comes back.
//
// # Cost
//
// On the development machine (2 shared cores, whose speed drifts by 2x
// from day to day), decoding a 116-byte event of six columns takes
// 0.1-0.3 µs of CPU, 3.3-9.7M events per CPU-second (BenchmarkDecode,
// no allocation; the fastjson path alone about a third of that). The
// transport without decoding (BenchmarkTransport) moved 0.63x the
// messages with AckAll than with AckNone, and Consume beat the Messages
// iterator by about a fifth in a standalone comparison.
package source
