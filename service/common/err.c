/* err.c — names and HTTP statuses of allot_err. */
#include "common/err.h"

static const struct {
	const char *code;
	int status;
} err_table[ALLOT_E__COUNT] = {
	[ALLOT_OK]              = {"ok", 200},
	[ALLOT_E_INVALID]       = {"invalid_request", 400},
	[ALLOT_E_UNAUTHORIZED]  = {"unauthorized", 401},
	[ALLOT_E_QUOTA]         = {"quota_exceeded", 402},
	[ALLOT_E_FORBIDDEN]     = {"forbidden", 403},
	[ALLOT_E_NOT_FOUND]     = {"not_found", 404},
	[ALLOT_E_METHOD]        = {"method_not_allowed", 405},
	[ALLOT_E_CONFLICT]      = {"conflict", 409},
	[ALLOT_E_TOO_LARGE]     = {"too_large", 413},
	[ALLOT_E_MEDIA_TYPE]    = {"unsupported_media_type", 415},
	[ALLOT_E_UNPROCESSABLE] = {"validation_failed", 422},
	[ALLOT_E_RATE]          = {"rate_limited", 429},
	[ALLOT_E_INTERNAL]      = {"internal", 500},
	[ALLOT_E_UPSTREAM]      = {"upstream_error", 502},
	[ALLOT_E_UNAVAILABLE]   = {"unavailable", 503},
	[ALLOT_E_NOMEM]         = {"out_of_memory", 500},
	[ALLOT_E_IO]            = {"io_error", 500},
	[ALLOT_E_STORE]         = {"store_error", 500},
	[ALLOT_E_UNSUPPORTED]   = {"unsupported", 400},
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
