/* err.c — names and HTTP statuses of allot_err. */
#include "common/err.h"

#define INVALID "invalid_request_error"
#define SERVER "server_error"
static const struct {
	const char *code;
	int status;
	const char *type; /* OpenAI's error type */
} err_table[ALLOT_E__COUNT] = {
	[ALLOT_OK]              = {"ok", 200, SERVER},
	[ALLOT_E_INVALID]       = {"invalid_request", 400, INVALID},
	[ALLOT_E_UNAUTHORIZED]  = {"unauthorized", 401, "authentication_error"},
	[ALLOT_E_QUOTA]         = {"quota_exceeded", 402, "insufficient_quota"},
	[ALLOT_E_FORBIDDEN]     = {"forbidden", 403, "permission_error"},
	[ALLOT_E_NOT_FOUND]     = {"not_found", 404, "not_found_error"},
	[ALLOT_E_METHOD]        = {"method_not_allowed", 405, INVALID},
	[ALLOT_E_CONFLICT]      = {"conflict", 409, INVALID},
	[ALLOT_E_TOO_LARGE]     = {"too_large", 413, INVALID},
	[ALLOT_E_MEDIA_TYPE]    = {"unsupported_media_type", 415, INVALID},
	[ALLOT_E_UNPROCESSABLE] = {"validation_failed", 422, INVALID},
	[ALLOT_E_RATE]          = {"rate_limited", 429, "rate_limit_error"},
	[ALLOT_E_INTERNAL]      = {"internal", 500, SERVER},
	[ALLOT_E_UPSTREAM]      = {"upstream_error", 502, SERVER},
	[ALLOT_E_UNAVAILABLE]   = {"unavailable", 503, SERVER},
	[ALLOT_E_NOMEM]         = {"out_of_memory", 500, SERVER},
	[ALLOT_E_IO]            = {"io_error", 500, SERVER},
	[ALLOT_E_STORE]         = {"store_error", 500, SERVER},
	[ALLOT_E_UNSUPPORTED]   = {"unsupported", 400, INVALID},
};

const char *err_code(allot_err e)
{
	if ((unsigned)e >= ALLOT_E__COUNT)
		return "internal";
	return err_table[e].code;
}

int err_http_status(allot_err e)
{
	if ((unsigned)e >= ALLOT_E__COUNT)
		return 500;
	return err_table[e].status;
}

const char *err_type(allot_err e)
{
	if ((unsigned)e >= ALLOT_E__COUNT)
		return SERVER;
	return err_table[e].type;
}
