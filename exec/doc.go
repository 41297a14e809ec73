// Package exec runs continuous queries: the operator and pipeline
// interfaces, the router that feeds every view of a source from one reader,
// and the window-aggregate and emitter operators.
//
// Batches are arrow.RecordBatch values of up to a few thousand rows. Rows
// never cross an operator boundary one by one. Nothing under exec/ imports
// planner, sql (except sql/sqlerr), catalog or server.
package exec
