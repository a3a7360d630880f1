/* tmpdir.h — a temporary directory for a test's files, removed at the end
 * with everything in it. */
#ifndef ALLOT_TESTS_TMPDIR_H
#define ALLOT_TESTS_TMPDIR_H

#include <stddef.h>

/* Makes a new directory /tmp/allot-test-NAME.XXXXXX: OUT: its path in dir
 * (dirsz at least 64 for a short name).  Fails the test on an error. */
void tmpdir_make(char *dir, size_t dirsz, const char *name);
/* Removes dir and everything below it (links are removed, not followed). */
void tmpdir_remove(const char *dir);

#endif
