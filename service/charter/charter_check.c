/* charter_check.c — rules between the active charter and its successor, and
 * the offline check of a charter file (`allot charter check`, `allotd --check`). */
#include "charter/charter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charter/charter_int.h"
#include "common/timeutil.h"

allot_err charter_check_successor(const struct charter *active,
				  const struct charter *next,
				  struct charter_errors *errs)
{
	size_t err0 = errs->nerrors + errs->dropped_, e0 = errs->nerrors,
	       w0 = errs->nwarnings;
	const char *file = next->file;

	if (!active)
		return ALLOT_OK;
	if (strcmp(active->id, next->id) != 0)
		charter_diag_add(errs, false, file, next->id_mark,
				 "charter id '%s' differs from the active charter's '%s'",
				 next->id, active->id);
	if (next->version <= active->version)
		charter_diag_add(errs, false, file, next->version_mark,
				 "version %lld does not increase the active version %lld",
				 (long long)next->version, (long long)active->version);
	if (next->effective_us < active->effective_us) {
		char a[TIME_FMT_MAX], b[TIME_FMT_MAX];
		charter_diag_add(errs, false, file, next->effective_mark,
				 "effective %s is before the active charter's %s",
				 time_format_rfc3339(next->effective_us, b),
				 time_format_rfc3339(active->effective_us, a));
	}
	if (strcmp(active->timezone, next->timezone) != 0)
		charter_diag_add(errs, true, file, next->timezone_mark,
				 "timezone changes from %s to %s: period boundaries move",
				 active->timezone, next->timezone);
	if (strcmp(active->unit, next->unit) != 0)
		charter_diag_add(errs, true, file, next->unit_mark.line ? next->unit_mark
									: next->id_mark,
				 "unit changes from '%s' to '%s'", active->unit, next->unit);
	charter_diag_finish(errs, file, e0, w0);
	if (errs->oom)
		return ALLOT_E_NOMEM;
	return errs->nerrors + errs->dropped_ > err0 ? ALLOT_E_CONFLICT : ALLOT_OK;
}

/* Reads at most max + 1 bytes of path (so that an oversized file is seen as
 * such).  *buf from malloc().  Returns 0 or an errno value. */
static int read_file(const char *path, size_t max, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t cap = 64 * 1024, n = 0;
	char *b = malloc(cap);
	if (!b) {
		close(fd);
		return ENOMEM;
	}
	for (;;) {
		if (n > max)
			break; /* enough to know it is too large */
		if (n == cap) {
			cap *= 2;
			char *nb = realloc(b, cap);
			if (!nb) {
				free(b);
				close(fd);
				return ENOMEM;
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(b);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

int charter_check_file(const char *path, FILE *out, FILE *err)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	char *buf = NULL;
	size_t len = 0;
	int e = read_file(path, CHARTER_MAX_BYTES, &buf, &len);
	if (e) {
		fprintf(err, "%s: cannot read: %s\n", path, strerror(e));
		return 1;
	}
	allot_err rc = charter_parse(path, buf, len, &c, &errs);
	free(buf);
	charter_errors_print(&errs, err);
	if (rc == ALLOT_E_NOMEM)
		fprintf(err, "%s: out of memory\n", path);
	else if (rc == ALLOT_OK)
		fprintf(out, "charter OK\n");
	charter_errors_release(&errs);
	charter_free(c);
	return rc == ALLOT_OK ? 0 : 1;
}
