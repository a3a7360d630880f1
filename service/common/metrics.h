/* metrics.h — the process-wide metrics registry: fixed series (counters,
 * gauges, histograms) with bounded labels, updated lock-free (relaxed
 * atomics) from any thread and rendered in the Prometheus text format by
 * GET /metrics.  Every series is listed in docs/METRICS.md.
 *
 * The series are a fixed table (metrics.c): a label value is an enum, never
 * a string from a request, so no label is unbounded.  Recording costs one
 * to three atomic adds; nothing allocates.
 */
#ifndef ALLOT_COMMON_METRICS_H
#define ALLOT_COMMON_METRICS_H

#include <stdint.h>

#include "common/buf.h"

/* allot_gate_admissions_total{outcome,level} */
enum metrics_adm_outcome {
	MADM_ADMITTED, MADM_QUOTA, MADM_RATE, MADM_FORBIDDEN, MADM_NOT_FOUND,
	MADM_INVALID, MADM_UNAVAILABLE, MADM_ERROR, MADM_N
};
/* The level that refused (or "none": admitted, or refused before any level). */
enum metrics_level {
	MLVL_NONE, MLVL_MEMBER, MLVL_PROJECT, MLVL_INSTITUTION, MLVL_POOL, MLVL_TOKEN, MLVL_N
};

/* Plain counters (names and help in metrics.c). */
enum metrics_counter {
	MC_SETTLEMENTS_BOOKED,     /* allot_gate_settlements_total{outcome="booked"} */
	MC_SETTLEMENTS_FAILED,     /* allot_gate_settlements_total{outcome="failed"} */
	MC_LEDGER_ACCEPTED,        /* allot_ledger_records_total{outcome=...} */
	MC_LEDGER_DUPLICATE,
	MC_LEDGER_CONFLICT,
	MC_LEDGER_REJECTED,
	MC_LEDGER_ERROR,
	MC_REJECT_MALFORMED,       /* allot_ledger_records_rejected_total{reason=...} */
	MC_REJECT_SIGNATURE,
	MC_REJECT_CHARTER,
	MC_INFER_PROMPT_TOKENS,    /* allot_infer_prompt_tokens_total */
	MC_INFER_GENERATED_TOKENS, /* allot_infer_generated_tokens_total */
	MC_INFER_REQUESTS,         /* allot_infer_requests_total */
	MC_WEBHOOK_DELIVERED,      /* allot_webhook_deliveries_total{outcome=...} */
	MC_WEBHOOK_FAILED,
	MC_STORE_ROUNDTRIPS,       /* allot_store_roundtrips_total (PostgreSQL statements) */
	MC_N
};

/* Gauges moved up and down by their owners. */
enum metrics_gauge {
	MG_RESERVATIONS,           /* allot_gate_reservations_held */
	MG_RESERVED_CREDITS,       /* allot_gate_reserved_credits (micro-credits, shown in credits) */
	MG_INFER_QUEUED,           /* allot_infer_queue_depth */
	MG_INFER_ACTIVE,           /* allot_infer_active_sequences */
	MG_N
};

enum metrics_hist {
	MH_GROUP_SIZE,             /* allot_ledger_group_commit_size (items per commit) */
	MH_FSYNC_SECONDS,          /* allot_store_fsync_duration_seconds */
	MH_INFER_BATCH,            /* allot_infer_batch_tokens (tokens per forward pass) */
	MH_INFER_TTFT,             /* allot_infer_time_to_first_token_seconds */
	MH_N
};

void metrics_admission(enum metrics_adm_outcome o, enum metrics_level l);
void metrics_add(enum metrics_counter c, uint64_t n);
void metrics_gauge_add(enum metrics_gauge g, int64_t delta);
/* value: microseconds for the _seconds histograms, a count for the others. */
void metrics_observe(enum metrics_hist h, int64_t value);

/* The current value (tests). */
uint64_t metrics_counter_get(enum metrics_counter c);
uint64_t metrics_admission_get(enum metrics_adm_outcome o, enum metrics_level l);
int64_t metrics_gauge_get(enum metrics_gauge g);
uint64_t metrics_hist_count(enum metrics_hist h);

/* Appends every series (HELP, TYPE, samples) to out. */
void metrics_render(struct buf *out);

#endif
