/* test_dblock.c — the database lock: created 0600 with its holder's line,
 * exclusive within a process and across processes, the holder named in the
 * refusal, released on close and on kill -9, symbolic links refused. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/dblock.h"
#include "support/tmpdir.h"

struct fx {
	char dir[64];
	char db[128];
	char lock[160];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	tmpdir_make(f->dir, sizeof f->dir, "dblock");
	snprintf(f->db, sizeof f->db, "%s/allot.db", f->dir);
	snprintf(f->lock, sizeof f->lock, "%s%s", f->db, DBLOCK_SUFFIX);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void read_file(const char *path, char *out, size_t outsz)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(out, 1, outsz - 1, fp);
	out[n] = '\0';
	fclose(fp);
}

static void test_applies(void **state)
{
	(void)state;
	assert_true(dblock_applies("var/allot.db"));
	assert_true(dblock_applies("/abs/path.db"));
	assert_false(dblock_applies(""));
	assert_false(dblock_applies(NULL));
	assert_false(dblock_applies(":memory:"));
	assert_false(dblock_applies("postgres://u@h/db"));
	assert_false(dblock_applies("postgresql://u@h/db"));
	struct dblock *l = NULL;
	char msg[256] = "";
	assert_int_equal(dblock_acquire(":memory:", "unit", &l, msg, sizeof msg), ALLOT_E_INVALID);
	assert_null(l);
	assert_non_null(strstr(msg, "not a database file path"));
}

static void test_acquire_writes_holder(void **state)
{
	struct fx *f = *state;
	struct dblock *l = NULL;
	char msg[512] = "", line[256], want[64];
	assert_int_equal(dblock_acquire(f->db, "unit test", &l, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(dblock_path(l), f->lock);
	struct stat sb;
	assert_int_equal(stat(f->lock, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	read_file(f->lock, line, sizeof line);
	snprintf(want, sizeof want, "pid %ld on host ", (long)getpid());
	assert_memory_equal(line, want, strlen(want));
	assert_non_null(strstr(line, " since "));
	assert_non_null(strstr(line, "(unit test)\n"));
	/* The database itself is not created by the lock. */
	assert_int_equal(access(f->db, F_OK), -1);
	dblock_release(l);
	/* The file stays; the next owner takes it and rewrites the line. */
	assert_int_equal(access(f->lock, F_OK), 0);
	assert_int_equal(dblock_acquire(f->db, "second", &l, msg, sizeof msg), ALLOT_OK);
	read_file(f->lock, line, sizeof line);
	assert_non_null(strstr(line, "(second)\n"));
	assert_null(strstr(line, "unit test"));
	dblock_release(l);
	dblock_release(NULL);
}

static void test_exclusive_in_process(void **state)
{
	struct fx *f = *state;
	struct dblock *a = NULL, *b = NULL;
	char msg[512] = "", want[64];
	assert_int_equal(dblock_acquire(f->db, "first", &a, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(dblock_acquire(f->db, "second", &b, msg, sizeof msg), ALLOT_E_CONFLICT);
	assert_null(b);
	snprintf(want, sizeof want, "pid %ld on host ", (long)getpid());
	assert_non_null(strstr(msg, want));
	assert_non_null(strstr(msg, "(first)"));
	assert_non_null(strstr(msg, f->lock));
	assert_null(strchr(msg, '\n'));
	/* The refused attempt left the holder's line alone. */
	char line[256];
	read_file(f->lock, line, sizeof line);
	assert_non_null(strstr(line, "(first)"));
	dblock_release(a);
	assert_int_equal(dblock_acquire(f->db, "second", &b, msg, sizeof msg), ALLOT_OK);
	dblock_release(b);
}

static void test_other_process_and_kill9(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct dblock *l = NULL;
		char m[512];
		char ok = dblock_acquire(f->db, "child", &l, m, sizeof m) == ALLOT_OK ? 'y' : 'n';
		if (write(p[1], &ok, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	char ok = 0;
	assert_int_equal(read(p[0], &ok, 1), 1);
	close(p[0]);
	assert_int_equal(ok, 'y');

	struct dblock *l = NULL;
	char msg[512] = "", want[64];
	assert_int_equal(dblock_acquire(f->db, "parent", &l, msg, sizeof msg), ALLOT_E_CONFLICT);
	snprintf(want, sizeof want, "pid %ld on host ", (long)pid);
	assert_non_null(strstr(msg, want));
	assert_non_null(strstr(msg, "(child)"));

	/* kill -9: the kernel drops the lock with the process. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(dblock_acquire(f->db, "parent", &l, msg, sizeof msg), ALLOT_OK);
	dblock_release(l);
}

static void test_holder_without_line(void **state)
{
	struct fx *f = *state;
	/* A holder that has locked but not yet written its line. */
	int fd = open(f->lock, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	struct dblock *l = NULL;
	char msg[512] = "";
	assert_int_equal(dblock_acquire(f->db, "late", &l, msg, sizeof msg), ALLOT_E_CONFLICT);
	assert_non_null(strstr(msg, "has not written its name yet"));
	/* A line with control characters is printed without them. */
	static const char evil[] = "pid 1\x1b[2J\n";
	assert_int_equal(pwrite(fd, evil, strlen(evil), 0), (ssize_t)strlen(evil));
	assert_int_equal(dblock_acquire(f->db, "late", &l, msg, sizeof msg), ALLOT_E_CONFLICT);
	assert_null(strchr(msg, '\x1b'));
	assert_non_null(strstr(msg, "pid 1?[2J"));
	close(fd);
	assert_int_equal(dblock_acquire(f->db, "late", &l, msg, sizeof msg), ALLOT_OK);
	dblock_release(l);
}

static void test_mode_tightened(void **state)
{
	struct fx *f = *state;
	int fd = open(f->lock, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	struct dblock *l = NULL;
	char msg[512] = "";
	assert_int_equal(dblock_acquire(f->db, "unit", &l, msg, sizeof msg), ALLOT_OK);
	struct stat sb;
	assert_int_equal(stat(f->lock, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	dblock_release(l);
}

static void test_bad_paths(void **state)
{
	struct fx *f = *state;
	struct dblock *l = NULL;
	char msg[512] = "", target[160], db[160];
	/* A symbolic link at the lock's name is not followed. */
	snprintf(target, sizeof target, "%s/elsewhere", f->dir);
	assert_int_equal(symlink(target, f->lock), 0);
	assert_int_equal(dblock_acquire(f->db, "unit", &l, msg, sizeof msg), ALLOT_E_IO);
	assert_null(l);
	assert_non_null(strstr(msg, "symbolic link"));
	assert_int_equal(access(target, F_OK), -1);
	/* A directory that does not exist. */
	snprintf(db, sizeof db, "%s/missing/allot.db", f->dir);
	assert_int_equal(dblock_acquire(db, "unit", &l, msg, sizeof msg), ALLOT_E_IO);
	assert_non_null(strstr(msg, "No such file or directory"));
	/* A directory where the lock file should be. */
	snprintf(db, sizeof db, "%s/d", f->dir);
	snprintf(target, sizeof target, "%s/d%s", f->dir, DBLOCK_SUFFIX);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(dblock_acquire(db, "unit", &l, msg, sizeof msg), ALLOT_E_IO);
	assert_null(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_applies),
		cmocka_unit_test_setup_teardown(test_acquire_writes_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_in_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_process_and_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_without_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_tightened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
