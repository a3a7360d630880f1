/* gate.h — admission, reservation and settlement of gated inference
 * requests (SPEC section 7), for every route alike.
 *
 *   gate_admit:  model allowed (institution and token) → max_tokens within
 *                the limit → requests/tokens per minute and concurrent
 *                requests per level → the worst-case charge (prompt tokens +
 *                max_tokens at the model's rates) reserved at every level at
 *                once, under one lock, only if every level has room
 *                (hard: allocation + rollover; soft: + grace; the token's
 *                max_credits too)
 *   run          (the caller: bundled engine or upstream)
 *   gate_settle: the actual usage booked as usage records of the model's
 *                provider through the ledger (the same pricing as
 *                POST /v1/usage), then the reservation released.
 *
 * Because a reservation is held until its usage is booked, used + reserved
 * never under-counts, so under `hard` concurrent requests cannot overshoot.
 */
#ifndef ALLOT_GATE_GATE_H
#define ALLOT_GATE_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/token_claims.h"
#include "gate/glease.h"
#include "ledger/chist.h"
#include "ledger/quota.h"

/* max_tokens when a request gives none (capped by the charter's limit). */
#define GATE_DEFAULT_MAX_TOKENS 256
/* Width of the requests/tokens-per-minute windows. */
#define GATE_RATE_WINDOW_US (60LL * 1000000)

struct gate;
struct infer_engine;
struct ledger;

/* What the gate needs of the daemon's configuration (copied). */
struct gate_config {
	const char *models;      /* directory of the bundled models' files */
	const char *keys;        /* the token keyset's directory */
	const char *deployment;  /* the tokens' audience */
	int threads;             /* inference threads per engine */
	bool cuda;               /* engines on CUDA device cuda_device (else the CPU) */
	int cuda_device;
	/* Unit tests (their fake clocks): no model loader thread; models load
	 * at gate_open and when a charter is applied (gate/engines.h). */
	bool no_background;
	/* This node's stable name on a shared database (its leases' epoch,
	 * gate/glease.h); NULL: no leases. */
	const char *node;
};

/* A gate over led (not owned: it outlives the gate): its store, charter
 * history and reservations.  Loads the token keyset and the charter's
 * bundled models, and books what a previous process left queued. */
allot_err gate_open(struct ledger *led, const struct gate_config *cfg, struct gate **out,
		    char *msg, size_t msgsz);
void gate_free(struct gate *g);

/* The bundled engine serving model id, or NULL (not loaded). */
struct infer_engine *gate_engine(struct gate *g, const char *model);
/* "stories: ready (...)" lines for /readyz. */
void gate_engine_state(struct gate *g, char *out, size_t outsz);
/* The bundled engines (gate/engines.h: per-model state). */
struct gate_engines *gate_engines(struct gate *g);
/* Load and unload models for the charter in force now (a charter was
 * applied; the loader also checks every second). */
void gate_models_sync(struct gate *g);
/* "ready", "loading" or "failed" for a bundled model ("failed" when none). */
const char *gate_model_status(struct gate *g, const char *model);
struct gate_tokens *gate_tokens(struct gate *g);
/* The retry queue of settlements that could not be booked yet. */
struct settleq *gate_settleq(struct gate *g);
/* This node's leases (gate/glease.h), NULL without (SQLite, or off). */
struct glease *gate_leases(struct gate *g);

/* A request admitted and holding a reservation. */
struct gate_ticket {
	struct active_charter *ac;           /* held for the request's life */
	const struct charter_model *model;
	char keys[QUOTA_MAX_LEVELS + 1][STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8];
	size_t nkeys;                        /* levels reserved (+ the token) */
	int64_t reserved;                    /* micro-credits held at each key */
	int64_t rate_in, rate_out;           /* micro-credits per token */
	int prompt_tokens, max_tokens;
	int64_t started_us;
	int64_t remaining;                   /* most restrictive level, after reserving */
	char remaining_level[16];
	struct token_claims claims;
	uint64_t seq;                        /* settlement number */
	void *engine_hold;                   /* the bundled engine held (gate/engines.h) */
	/* Held in the store's budgets (gate/budget.h) instead of in memory:
	 * the reservation's id, the settlement's record base. */
	bool budget_db;
	char budget_id[SETTLE_BASE_MAX];
	struct glease_use lease;             /* admitted from this node's leases */
};

/* Admission.  On refusal returns the error and writes a message naming the
 * level (ALLOT_E_QUOTA), the limit (ALLOT_E_RATE, *retry_after_s set), or the
 * problem (ALLOT_E_FORBIDDEN, ALLOT_E_NOT_FOUND, ALLOT_E_INVALID).
 * max_tokens <= 0: the default.  On success the ticket holds a reservation
 * that gate_settle (exactly once) releases. */
allot_err gate_admit(struct gate *g, const struct token_claims *c,
		     const char *model, int prompt_tokens, int max_tokens,
		     struct gate_ticket *t, int *retry_after_s, char *msg, size_t msgsz);

/* Books the actual usage under the charter version that admitted it,
 * releases the reservation and the charter.  OUT: *charge booked;
 * t->remaining updated.  A booking failure is returned, and the settlement
 * goes to the durable retry queue (gate/settleq.h) with its expected charge
 * still reserved; it is never dropped. */
allot_err gate_settle(struct gate *g, struct gate_ticket *t,
		      int prompt_tokens, int completion_tokens, int64_t *charge);

/* Releases without booking (the request failed before any compute). */
void gate_cancel(struct gate *g, struct gate_ticket *t);

/* Member's remaining at the most restrictive level now (for headers). */
int64_t gate_remaining(struct gate *g, const struct token_claims *c, char level[16]);

/* What the token jti (one with max_credits) has been charged: the sum the
 * gate keeps from its first admission on, else read from the ledger. */
allot_err gate_token_spent(struct gate *g, const char *jti, int64_t *spent);

/* Models a member may use: charter models of their institution, narrowed by
 * the token's claim. */
bool gate_model_allowed(const struct charter *c, const struct token_claims *cl,
			const char *model);

#endif
