/* token_types.h — rows the store keeps for member tokens. */
#ifndef ALLOT_STORE_TOKEN_TYPES_H
#define ALLOT_STORE_TOKEN_TYPES_H

#include <stdint.h>

#include "common/ids.h"

struct token_row {
	char jti[STORE_ID_MAX];
	char institution[STORE_ID_MAX];
	char project[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];
	char kid[STORE_ID_MAX];
	int64_t iat, exp;
	char minted_by[STORE_ID_MAX];
};

/* A revocation: jti set, or (institution, member, before_us). */
struct token_revocation {
	int64_t id;                   /* the row's id (set by the store when read) */
	char jti[STORE_ID_MAX];
	char institution[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];
	int64_t before_us;
	int64_t revoked_at;
	char revoked_by[STORE_ID_MAX];
};

#endif
