/* cmsg.h — private helper of service/crypto and service/tlog: write a
 * human-readable reason into an optional caller buffer.
 *
 * Every fallible call of these modules takes (char *msg, size_t msgcap);
 * msg may be NULL (msgcap is then ignored).  The message never contains
 * secret material.  Not part of any public API.
 */
#ifndef ALLOT_CRYPTO_CMSG_H
#define ALLOT_CRYPTO_CMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

__attribute__((format(printf, 4, 5)))
static inline allot_err cmsg(allot_err e, char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (msg && cap) {
		va_start(ap, fmt);
		vsnprintf(msg, cap, fmt, ap);
		va_end(ap);
	}
	return e;
}

#endif
