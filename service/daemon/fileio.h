/* fileio.h — small file helpers shared by allotd and allot. */
#ifndef ALLOT_DAEMON_FILEIO_H
#define ALLOT_DAEMON_FILEIO_H

#include <stddef.h>

#include "common/err.h"

/* Reads a whole file of at most max bytes.  OUT: *data (malloc, NUL-
 * terminated, caller frees) and *len on success. */
allot_err file_read_all(const char *path, size_t max, char **data, size_t *len,
			char *msg, size_t msgsz);
/* Wipes a NUL-terminated secret in place. */
void OPENSSL_cleanse_str(char *s);

#endif
