/* engines.h — the bundled engines the charter in force names (`file:`
 * models of a builtin provider), loaded and unloaded while the daemon runs
 * (docs/GATE.md, "Models follow the charter").
 *
 * A loader thread reconciles the loaded engines with the charter in force:
 * at start (synchronously), when kicked (a charter applied, SIGHUP), and
 * every second (a scheduled charter's models load at its `effective`).  A
 * new or changed model is loaded beside the others (state "loading", then
 * "ready" or "failed"); one the charter no longer names is retired: no new
 * request gets it, and it is closed once no admitted request holds it
 * (engines_hold at admission, engines_release at settlement) and
 * ENGINES_GRACE_US have passed (what a request looked up before admission,
 * for tokenizing, stays valid that long).  A failed load is tried again
 * when kicked.
 */
#ifndef ALLOT_GATE_ENGINES_H
#define ALLOT_GATE_ENGINES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* ALLOT_ENGINE_GRACE_MS sets it (tests: 0, so that only holds count). */
#define ENGINES_GRACE_US (10LL * 1000000)
#define ENGINES_POLL_MS 1000

struct chist;
struct gate_config;
struct gate_engines;
struct infer_engine;

/* Loads the bundled models of the charter in force in charters (not
 * owned: it outlives these engines) from cfg->models; starts the loader
 * thread unless cfg->no_background. */
allot_err engines_open(struct chist *charters, const struct gate_config *cfg,
		       struct gate_engines **out);
void engines_close(struct gate_engines *es);
/* Reconcile now (and retry failed loads). */
void engines_kick(struct gate_engines *es);

/* The ready engine serving model, or NULL.  Remembered on this thread for
 * the engines_hold that follows at admission. */
struct infer_engine *engines_get(struct gate_engines *es, const char *model);
/* A hold on the engine of model (the one engines_get returned on this
 * thread, else the current one) until engines_release; NULL when none. */
void *engines_hold(struct gate_engines *es, const char *model);
void engines_release(struct gate_engines *es, void *hold);

/* "ready", "loading" or "failed" for model, NULL when it is no bundled
 * model of the charter in force. */
const char *engines_model_state(struct gate_engines *es, const char *model);
/* {"model": {"state": ..., "detail": ...}} of the models in force. */
json_t *engines_json(struct gate_engines *es);
/* "stories: ready stories260K.gguf (f32, avx2); ..." for /readyz. */
void engines_describe(struct gate_engines *es, char *out, size_t outsz);
/* Whether every bundled model of the charter in force is ready. */
bool engines_all_ready(struct gate_engines *es);

#endif
