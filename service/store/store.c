/* store.c — picks a backend from the URI. */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

bool store_uri_is_pg(const char *uri)
{
	return uri && (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0);
}

/* Appends s (n bytes) to out at *w, within outsz (cut, always terminated). */
static void put(char *out, size_t outsz, size_t *w, const char *s, size_t n)
{
	while (n-- && *w + 1 < outsz)
		out[(*w)++] = *s++;
	out[*w] = '\0';
}

const char *store_uri_printable(const char *uri, char *buf, size_t bufsz)
{
	if (!store_uri_is_pg(uri))
		return uri ? uri : "";
	size_t w = 0;
	buf[0] = '\0';
	const char *auth = strstr(uri, "://") + 3;
	put(buf, bufsz, &w, uri, (size_t)(auth - uri));
	size_t alen = strcspn(auth, "/?");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (auth[i] == '@')
			at = auth + i;
	const char *host = auth;
	if (at) { /* user[:password]@: the user only */
		put(buf, bufsz, &w, auth, strcspn(auth, ":@"));
		put(buf, bufsz, &w, "@", 1);
		host = at + 1;
	}
	const char *q = host + strcspn(host, "?");
	put(buf, bufsz, &w, host, (size_t)(q - host));
	/* the parameters but a password */
	char sep = '?';
	while (*q) {
		q++;
		size_t n = strcspn(q, "&");
		if (n && strncmp(q, "password=", 9) != 0) {
			put(buf, bufsz, &w, &sep, 1);
			put(buf, bufsz, &w, q, n);
			sep = '&';
		}
		q += n;
	}
	return buf;
}

allot_err store_open(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	if (store_uri_is_pg(uri))
		return store_pg_open(uri, out, msg, msgsz);
	return store_sqlite_open(uri, out, msg, msgsz);
}

allot_err store_open_readonly(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	if (store_uri_is_pg(uri))
		return store_pg_open_readonly(uri, out, msg, msgsz);
	return store_sqlite_open_readonly(uri, out, msg, msgsz);
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}
