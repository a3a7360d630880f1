/* principal.c — roles of principals and what they may read
 * (auth/principal.h). */
#include "auth/principal.h"

#include <string.h>

const char *principal_role_name(unsigned role)
{
	switch (role) {
	case ROLE_ADMIN: return "admin";
	case ROLE_AUDITOR: return "auditor";
	case ROLE_INSTITUTION: return "institution";
	case ROLE_PROVIDER: return "provider";
	case ROLE_MEMBER: return "member";
	}
	return "none";
}

unsigned principal_role_parse(const char *name)
{
	static const struct { const char *n; unsigned r; } t[] = {
		{"admin", ROLE_ADMIN}, {"auditor", ROLE_AUDITOR},
		{"institution", ROLE_INSTITUTION}, {"provider", ROLE_PROVIDER}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(name, t[i].n) == 0)
			return t[i].r;
	return 0;
}

unsigned principal_role_of(const struct principal *who)
{
	return who ? who->role : 0;
}

bool principal_reads_institution(const struct principal *who, const char *inst)
{
	if (who->role & (ROLE_ADMIN | ROLE_AUDITOR))
		return true;
	return (who->role & (ROLE_INSTITUTION | ROLE_MEMBER)) &&
	       strcmp(who->institution, inst) == 0;
}
