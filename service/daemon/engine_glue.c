/* engine_glue.c — placeholder binding of the inference engine (see .h). */
#include "daemon/engine_glue.h"

#include <stdio.h>

int engine_glue_cli(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "allotd: the inference engine is not part of this build yet\n");
	return 1;
}

void engine_glue_load(struct app *app)
{
	snprintf(app->engine_state, sizeof app->engine_state, "no model (engine not built in)");
}

void engine_glue_free(struct app *app) { (void)app; }
