/* tmpdir.c — see tmpdir.h. */
#include "tmpdir.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

void tmpdir_make(char *dir, size_t dirsz, const char *name)
{
	int n = snprintf(dir, dirsz, "/tmp/allot-test-%s.XXXXXX", name);
	if (n < 0 || (size_t)n >= dirsz)
		fail_msg("tmpdir_make: the name %s is too long", name);
	if (!mkdtemp(dir))
		fail_msg("tmpdir_make: mkdtemp %s failed", dir);
}

static int tmpdir_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm, 8, FTW_DEPTH | FTW_PHYS);
}
