/* appfx.c — see appfx.h. */
#include "appfx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/timeutil.h"
#include "gate/gate.h"
#include "tmpdir.h"

void appfx_start(struct appfx *f)
{
	memset(&f->app, 0, sizeof f->app);
	f->app.cfg.db = f->db;
	f->app.cfg.charter = f->charter;
	f->app.cfg.keys = f->keys;
	f->app.cfg.models = f->dir;
	f->app.cfg.deployment = "unit";
	f->app.cfg.threads = 1;
	f->app.cfg.no_background = true; /* fake clocks: no loader or webhook threads */
	char msg[512] = "";
	if (app_open(&f->app, msg, sizeof msg) != ALLOT_OK)
		fail_msg("app_open: %s", msg);
	if (app_gate_open(&f->app, &f->gate, msg, sizeof msg) != ALLOT_OK)
		fail_msg("app_gate_open: %s", msg);
	f->app.gate = f->gate;
}

void appfx_open(struct appfx *f, const char *charter_text)
{
	memset(f, 0, sizeof *f);
	tmpdir_make(f->dir, sizeof f->dir, "appfx");
	snprintf(f->db, sizeof f->db, "%s/allot.db", f->dir);
	snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
	snprintf(f->charter, sizeof f->charter, "%s/charter.yaml", f->dir);
	FILE *fp = fopen(f->charter, "w");
	assert_non_null(fp);
	fputs(charter_text, fp);
	fclose(fp);
	setenv("ALLOT_ADMIN_KEY", "unit-test-admin-key-0123456789", 1);
	appfx_start(f);
}

void appfx_stop(struct appfx *f)
{
	gate_free(f->gate);
	f->gate = NULL;
	f->app.gate = NULL;
	app_close(&f->app);
}

void appfx_close(struct appfx *f)
{
	appfx_stop(f);
	tmpdir_remove(f->dir);
}

struct token_claims appfx_claims(const char *inst, const char *proj, const char *sub,
				 const char *jti, int64_t now)
{
	struct token_claims c;
	memset(&c, 0, sizeof c);
	snprintf(c.iss, sizeof c.iss, "allotd:unit");
	snprintf(c.inst, sizeof c.inst, "%s", inst);
	snprintf(c.proj, sizeof c.proj, "%s", proj);
	snprintf(c.sub, sizeof c.sub, "%s", sub);
	snprintf(c.jti, sizeof c.jti, "%s", jti);
	c.iat = c.nbf = now;
	c.exp = now + 3600 * US_PER_SEC;
	return c;
}
