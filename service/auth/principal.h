/* principal.h — who is calling: an API key's role and scope, or a member
 * token's claims.  Set on every authenticated request (http_req.who).  The
 * roles are bits, so that a route table holds the set it allows
 * (api/routes.c; the HTTP layer only tests the bits against each other). */
#ifndef ALLOT_AUTH_PRINCIPAL_H
#define ALLOT_AUTH_PRINCIPAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define PRINCIPAL_MODELS_MAX 32

enum {
	ROLE_NONE = 0,
	ROLE_ADMIN = 1u << 0,
	ROLE_AUDITOR = 1u << 1,
	ROLE_INSTITUTION = 1u << 2,
	ROLE_PROVIDER = 1u << 3,
	ROLE_MEMBER = 1u << 4,
	/* A route for everyone: no credential needed.  The same bit as
	 * HTTP_ROUTE_PUBLIC (http/server.h; api/routes.c checks it). */
	ROLE_PUBLIC = 1u << 7,
};

struct principal {
	unsigned role;                       /* one ROLE_* bit */
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

/* "admin", "auditor", "institution", "provider", "member"; "none" for
 * anything else. */
const char *principal_role_name(unsigned role);
/* ROLE_* bit of an API key's role: "admin", "auditor", "institution",
 * "provider" (members hold tokens, not keys); 0 if none. */
unsigned principal_role_parse(const char *name);
/* The role bit of who; 0 for no principal. */
unsigned principal_role_of(const struct principal *who);
/* Whether who may read institution inst: admins and auditors read every
 * institution, institution keys and members their own. */
bool principal_reads_institution(const struct principal *who, const char *inst);

#endif
