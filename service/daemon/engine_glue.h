/* engine_glue.h — how allotd loads and uses the bundled inference engine.
 * Until the engine lands, these report "no model" and the CLI modes say the
 * engine is not built in. */
#ifndef ALLOT_DAEMON_ENGINE_GLUE_H
#define ALLOT_DAEMON_ENGINE_GLUE_H

#include "daemon/app.h"

int engine_glue_cli(int argc, char **argv);
void engine_glue_load(struct app *app);
void engine_glue_free(struct app *app);

#endif
