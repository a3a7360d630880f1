/* migrate.c — helpers over the embedded migration tables. */
#include "store/migrate.h"

int migrate_latest(const struct migration *m)
{
	int v = 0;
	for (; m->version; m++)
		if (m->version > v)
			v = m->version;
	return v;
}
