/* sqfx.c — see sqfx.h. */
#include "sqfx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "tmpdir.h"

int sqfx_setup(void **state)
{
	struct sqfx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	tmpdir_make(f->dir, sizeof f->dir, "sqfx");
	snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
	char msg[512] = "";
	if (store_sqlite_open(f->db, &f->st, msg, sizeof msg))
		fail_msg("store_sqlite_open: %s", msg);
	*state = f;
	return 0;
}

int sqfx_teardown(void **state)
{
	struct sqfx *f = *state;
	if (f->st)
		store_close(f->st);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}
