/* charter_int.h — private to service/charter: helpers shared by the
 * charter's source files (diagnostics, id indexes).  Not for other modules. */
#ifndef ALLOT_CHARTER_CHARTER_INT_H
#define ALLOT_CHARTER_CHARTER_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "charter/charter.h"

#define CHARTER_NOT_FOUND ((size_t)-1)

/* Appends "FILE:LINE:COLUMN: message" (warning: "...: warning: message").
 * Sets errs->oom on allocation failure.  After CHARTER_MAX_ERRORS errors,
 * further errors are dropped and counted in errs->dropped_. */
void charter_diag_add(struct charter_errors *errs, bool warning, const char *file,
		      struct charter_mark m, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Stable sort of both lists by position, then appends the "too many errors"
 * line if errors were dropped.  from_err/from_warn: sort only entries added
 * after these counts (earlier entries belong to other calls). */
void charter_diag_finish(struct charter_errors *errs, const char *file,
			 size_t from_err, size_t from_warn);

/* A sorted index over an array of structs each holding a char *id at byte
 * offset off: idx[k] is the position of the k-th smallest id.  From malloc();
 * NULL when n == 0 or on allocation failure (*oom set then). */
size_t *charter_index_build(const void *base, size_t n, size_t stride, size_t off,
			    bool *oom);
/* Position of id in the array, or CHARTER_NOT_FOUND. */
size_t charter_index_find(const size_t *idx, const void *base, size_t n, size_t stride,
			  size_t off, const char *id);

#endif
