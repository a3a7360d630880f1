/* test_keyset.c — the keys directory: created 0700 with 0600 keys, a
 * directory open to group or others refused, key files found, and an
 * earlier deployment's keys retired into retired-<time>/. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/timeutil.h"
#include "gate/keyset.h"
#include "support/tmpdir.h"

struct fx {
	char root[64];
	char keys[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	tmpdir_make(f->root, sizeof f->root, "keyset");
	snprintf(f->keys, sizeof f->keys, "%s/keys", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tmpdir_remove(f->root);
	free(f);
	return 0;
}

static unsigned mode_of(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_mode & 07777;
}

static void touch(const char *dir, const char *name)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(name, fp);
	fclose(fp);
}

static void test_created_private(void **state)
{
	struct fx *f = *state;
	char msg[256] = "";
	mode_t old = umask(0); /* even with no umask at all */
	allot_err e = keyset_dir_prepare(f->keys, msg, sizeof msg);
	umask(old);
	assert_int_equal(e, ALLOT_OK);
	assert_int_equal(mode_of(f->keys), 0700);
	/* keyset_open makes the first token key, 0600. */
	struct keyset *ks = NULL;
	assert_int_equal(keyset_open(f->keys, &ks, msg, sizeof msg), ALLOT_OK);
	struct ed25519_keypair kp;
	char kid[PASETO_KID_MAX + 1], path[512];
	assert_int_equal(keyset_current(ks, &kp, kid), ALLOT_OK);
	ed25519_keypair_wipe(&kp);
	snprintf(path, sizeof path, "%s/%s.key", f->keys, kid);
	assert_int_equal(mode_of(path), 0600);
	keyset_free(ks);
	/* Prepared again: unchanged, fine. */
	assert_int_equal(keyset_dir_prepare(f->keys, msg, sizeof msg), ALLOT_OK);
}

static void test_open_directory_refused(void **state)
{
	struct fx *f = *state;
	static const unsigned modes[] = {0777, 0755, 0750, 0701, 0710, 0702};
	char msg[512] = "";
	assert_int_equal(mkdir(f->keys, 0700), 0);
	touch(f->keys, "log.key");
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		assert_int_equal(chmod(f->keys, modes[i]), 0);
		msg[0] = '\0';
		assert_int_equal(keyset_dir_prepare(f->keys, msg, sizeof msg), ALLOT_E_INVALID);
		assert_non_null(strstr(msg, "chmod 700"));
		assert_non_null(strstr(msg, f->keys));
		/* Nothing was changed: the operator decides. */
		assert_int_equal(mode_of(f->keys), modes[i]);
		struct keyset *ks = NULL;
		assert_int_not_equal(keyset_open(f->keys, &ks, msg, sizeof msg), ALLOT_OK);
		assert_null(ks);
	}
	assert_int_equal(chmod(f->keys, 0700), 0);
	assert_int_equal(keyset_dir_prepare(f->keys, msg, sizeof msg), ALLOT_OK);
	/* A file where the directory should be. */
	char file[160];
	snprintf(file, sizeof file, "%s/plain", f->root);
	touch(f->root, "plain");
	assert_int_equal(keyset_dir_prepare(file, msg, sizeof msg), ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "not a directory"));
}

/* 2026-12-06T11:00:00Z: both retirements in one second. */
static int64_t fixed_clock(void) { return 1796554800LL * US_PER_SEC; }

static void test_has_keys_and_retire(void **state)
{
	struct fx *f = *state;
	char msg[256] = "", name[64], sub[512];
	bool has = true;
	assert_int_equal(keyset_dir_prepare(f->keys, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(keyset_dir_has_keys(f->keys, &has, name, sizeof name, msg, sizeof msg),
			 ALLOT_OK);
	assert_false(has);
	assert_string_equal(name, "");
	touch(f->keys, "notes.txt");
	touch(f->keys, "k1796000000-0011aabb.key.tmp.77");
	assert_int_equal(keyset_dir_has_keys(f->keys, &has, name, sizeof name, msg, sizeof msg),
			 ALLOT_OK);
	assert_false(has);
	touch(f->keys, "k1796000000-0011aabb.key");
	assert_int_equal(keyset_dir_has_keys(f->keys, &has, name, sizeof name, msg, sizeof msg),
			 ALLOT_OK);
	assert_true(has);
	assert_string_equal(name, "k1796000000-0011aabb.key");
	touch(f->keys, "log.key");
	assert_int_equal(keyset_dir_has_keys(f->keys, &has, name, sizeof name, msg, sizeof msg),
			 ALLOT_OK);
	assert_string_equal(name, "log.key"); /* the log key is named first */

	time_set_clock(fixed_clock);
	assert_int_equal(keyset_dir_retire(f->keys, sub, sizeof sub, msg, sizeof msg), ALLOT_OK);
	char want[160];
	snprintf(want, sizeof want, "%s/retired-20261206T110000Z", f->keys);
	assert_string_equal(sub, want);
	assert_int_equal(mode_of(sub), 0700);
	assert_int_equal(keyset_dir_has_keys(f->keys, &has, name, sizeof name, msg, sizeof msg),
			 ALLOT_OK);
	assert_false(has);
	char p[640];
	snprintf(p, sizeof p, "%s/log.key", sub);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/k1796000000-0011aabb.key", sub);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/notes.txt", f->keys);
	assert_int_equal(access(p, F_OK), 0); /* only keys move */

	/* Twice in one second: a second directory, nothing overwritten. */
	touch(f->keys, "log.key");
	char sub2[512];
	assert_int_equal(keyset_dir_retire(f->keys, sub2, sizeof sub2, msg, sizeof msg), ALLOT_OK);
	time_set_clock(NULL);
	snprintf(want, sizeof want, "%s/retired-20261206T110000Z-2", f->keys);
	assert_string_equal(sub2, want);
	snprintf(p, sizeof p, "%s/log.key", sub2);
	assert_int_equal(access(p, F_OK), 0);
	/* A retired directory holds no key keyset_open would load. */
	struct keyset *ks = NULL;
	assert_int_equal(keyset_open(f->keys, &ks, msg, sizeof msg), ALLOT_OK);
	json_t *pub = keyset_public_json(ks);
	assert_int_equal(json_array_size(json_object_get(pub, "keys")), 1);
	json_decref(pub);
	keyset_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_created_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_directory_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_has_keys_and_retire, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
