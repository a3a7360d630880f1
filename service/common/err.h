/* err.h — the one project-wide error enum.
 *
 * Every fallible call returns an allot_err.  http/server.c maps it to an
 * HTTP status (err_http_status) and writes OpenAI's error shape
 * {"error":{"message","type","code","param"}} (err_type, err_code).
 */
#ifndef ALLOT_COMMON_ERR_H
#define ALLOT_COMMON_ERR_H

typedef enum allot_err {
	ALLOT_OK = 0,
	ALLOT_E_INVALID,      /* malformed or semantically invalid input   400 */
	ALLOT_E_UNAUTHORIZED, /* missing, unknown or wrong credential      401 */
	ALLOT_E_QUOTA,        /* allocation exhausted at some level        402 */
	ALLOT_E_FORBIDDEN,    /* credential valid, role may not do this    403 */
	ALLOT_E_NOT_FOUND,    /* unknown id or route                       404 */
	ALLOT_E_METHOD,       /* route exists, method does not             405 */
	ALLOT_E_CONFLICT,     /* same id, different content; stale version 409 */
	ALLOT_E_TOO_LARGE,    /* body or field over a named limit          413 */
	ALLOT_E_MEDIA_TYPE,   /* wrong Content-Type                        415 */
	ALLOT_E_UNPROCESSABLE,/* well-formed but fails validation          422 */
	ALLOT_E_RATE,         /* rate or concurrency limit                 429 */
	ALLOT_E_INTERNAL,     /* bug or unexpected state                   500 */
	ALLOT_E_UPSTREAM,     /* remote provider failed                    502 */
	ALLOT_E_UNAVAILABLE,  /* not ready (no model, store closed)        503 */
	ALLOT_E_NOMEM,        /* allocation failed                         500 */
	ALLOT_E_IO,           /* file or socket error                      500 */
	ALLOT_E_STORE,        /* database error                            500 */
	ALLOT_E_UNSUPPORTED,  /* valid but not supported by this build     400 */
	ALLOT_E__COUNT
} allot_err;

/* Stable machine-readable code, e.g. "invalid", "quota_exceeded". */
const char *err_code(allot_err e);
/* HTTP status for e. */
int err_http_status(allot_err e);
/* OpenAI's error "type" for e: invalid_request_error, authentication_error,
 * permission_error, not_found_error, rate_limit_error, insufficient_quota
 * or server_error. */
const char *err_type(allot_err e);

#endif
