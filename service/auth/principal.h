/* principal.h — who is calling: an API key's role and scope, or a member
 * token's claims.  Set on every authenticated request (http_req.who). */
#ifndef ALLOT_AUTH_PRINCIPAL_H
#define ALLOT_AUTH_PRINCIPAL_H

#include <stdint.h>

#include "store/store.h"

#define PRINCIPAL_MODELS_MAX 32

struct principal {
	unsigned role;                       /* one ROLE_* bit (http/server.h) */
	char key_id[STORE_ID_MAX];           /* API key id, or token jti */
	char institution[STORE_ID_MAX];      /* institution keys and members */
	char provider[STORE_ID_MAX];         /* provider keys */
	/* members only (from the token) */
	char project[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];
	char models[PRINCIPAL_MODELS_MAX][STORE_ID_MAX];
	size_t nmodels;                      /* 0: every model the institution has */
	int64_t max_credits;                 /* -1: no ceiling */
};

const char *principal_role_name(unsigned role);
/* ROLE_* bit for "admin", "auditor", "institution", "provider"; 0 if none. */
unsigned principal_role_parse(const char *name);

#endif
