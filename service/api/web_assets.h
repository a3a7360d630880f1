/* web_assets.h — the dashboard's static files, embedded at build time
 * (scripts/embed-web.sh generates the table from service/web/). */
#ifndef ALLOT_API_WEB_ASSETS_H
#define ALLOT_API_WEB_ASSETS_H

#include <stddef.h>

#include "common/err.h"

struct web_asset {
	const char *name;          /* file name, e.g. "app.js" */
	const char *content_type;  /* "text/javascript; charset=utf-8" */
	const char *etag;          /* strong, quoted: "\"<32 hex>\"" */
	const unsigned char *data; /* NUL-terminated, size bytes before it */
	size_t size;
};

extern const struct web_asset web_assets[];
extern const size_t web_nassets;

/* api/web.c */
struct http_req;
struct http_resp;
/* The embedded file called name, or NULL. */
const struct web_asset *web_asset_find(const char *name);
/* Content-Security-Policy and the other headers every dashboard answer has. */
void web_security_headers(struct http_resp *resp);
/* Answers with file a: ETag, Cache-Control: no-cache, 304 when
 * If-None-Match names it.  Errors: ALLOT_E_NOMEM. */
allot_err web_send_asset(struct http_req *req, struct http_resp *resp, const struct web_asset *a);

#endif
