package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ProgressTable is the table in the sink database that records, per
// materialized view, the last epoch whose changes are committed: the
// epoch's number and the stream position its checkpoint covers. An epoch's
// result changes and its progress row are written in one transaction, so
// the row says exactly which checkpoint the result tables reflect.
const ProgressTable = "sessionsql_progress"

// EnsureProgress creates the progress table in the current schema if it
// does not exist.
func (p *Postgres) EnsureProgress(ctx context.Context) error {
	if p.closed.Load() {
		return fmt.Errorf("sink table %q: %w", ProgressTable, ErrClosed)
	}
	_, err := p.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ProgressTable+` (
	view_name    TEXT PRIMARY KEY,
	epoch        BIGINT NOT NULL,
	position     BIGINT NOT NULL,
	committed_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("sink table %q: create: %w", ProgressTable, err)
	}
	return nil
}

// Progress returns the view's last committed epoch and its position; ok
// is false when the view has committed none.
func (p *Postgres) Progress(ctx context.Context, view string) (epoch, pos uint64, ok bool, err error) {
	var e, ps int64
	err = p.pool.QueryRow(ctx, `SELECT epoch, position FROM `+ProgressTable+` WHERE view_name = $1`, view).Scan(&e, &ps)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("sink: read progress of %q: %w", view, err)
	}
	return uint64(e), uint64(ps), true, nil
}

// SetProgressTx records, inside tx, that the view's epoch is committed
// with its position.
func (p *Postgres) SetProgressTx(ctx context.Context, tx pgx.Tx, view string, epoch, pos uint64) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+ProgressTable+` (view_name, epoch, position) VALUES ($1, $2, $3)
ON CONFLICT (view_name) DO UPDATE SET epoch = EXCLUDED.epoch, position = EXCLUDED.position, committed_at = now()`,
		view, int64(epoch), int64(pos))
	if err != nil {
		return fmt.Errorf("sink: record progress of %q: %w", view, err)
	}
	return nil
}

// DeleteProgress forgets the view's progress (DROP, or CREATE of a view
// whose name an earlier one had).
func (p *Postgres) DeleteProgress(ctx context.Context, view string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM `+ProgressTable+` WHERE view_name = $1`, view); err != nil {
		return fmt.Errorf("sink: delete progress of %q: %w", view, err)
	}
	return nil
}
