/* fileio.c — whole-file reads with a size limit. */
#include "daemon/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

allot_err file_read_all(const char *path, size_t max, char **data, size_t *len,
			char *msg, size_t msgsz)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		snprintf(msg, msgsz, "%s: %s", path, strerror(errno));
		return ALLOT_E_IO;
	}
	size_t cap = 4096, n = 0;
	char *p = malloc(cap + 1);
	allot_err e = ALLOT_OK;
	while (p) {
		size_t r = fread(p + n, 1, cap - n, f);
		n += r;
		if (n > max) {
			snprintf(msg, msgsz, "%s: larger than %zu bytes", path, max);
			e = ALLOT_E_TOO_LARGE;
			break;
		}
		if (r == 0) {
			if (ferror(f)) {
				snprintf(msg, msgsz, "%s: read error", path);
				e = ALLOT_E_IO;
			}
			break;
		}
		if (n == cap) {
			char *q = realloc(p, cap * 2 + 1);
			if (!q) {
				free(p);
				p = NULL;
				break;
			}
			p = q;
			cap *= 2;
		}
	}
	if (f != stdin)
		fclose(f);
	if (!p)
		return ALLOT_E_NOMEM;
	if (e) {
		free(p);
		return e;
	}
	p[n] = '\0';
	*data = p;
	*len = n;
	return ALLOT_OK;
}

void OPENSSL_cleanse_str(char *s)
{
	OPENSSL_cleanse(s, strlen(s));
}
