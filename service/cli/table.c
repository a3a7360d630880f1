/* table.c — aligned human tables for the CLI: rows of cells collected
 * first, then printed with every column as wide as its widest cell (the
 * last column is not padded).  Widths count UTF-8 characters, not bytes. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

static size_t utf8_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void cli_table_init(struct cli_table *t, size_t ncols)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols > CLI_TABLE_MAX_COLS ? CLI_TABLE_MAX_COLS : ncols;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->oom)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells2 = realloc(t->cells, cap * t->ncols * sizeof *cells2);
		if (!cells2) {
			t->oom = true;
			return;
		}
		t->cells = cells2;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = cells[i] ? cells[i] : "-";
		char *d = strdup(v);
		if (!d)
			t->oom = true;
		t->cells[t->nrows * t->ncols + i] = d;
	}
	t->nrows++;
}

void cli_table_print(struct cli_table *t, FILE *f)
{
	size_t w[CLI_TABLE_MAX_COLS] = {0};
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			const char *v = t->cells[r * t->ncols + i];
			size_t n = v ? utf8_width(v) : 0;
			if (n > w[i])
				w[i] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *v = t->cells[r * t->ncols + i];
			v = v ? v : "";
			size_t pad = w[i] - utf8_width(v);
			if (t->right_mask & (1u << i)) {
				for (size_t k = 0; k < pad; k++)
					fputc(' ', f);
				fputs(v, f);
				fputs(i + 1 == t->ncols ? "\n" : "  ", f);
			} else if (i + 1 == t->ncols) {
				fprintf(f, "%s\n", v);
			} else {
				fputs(v, f);
				for (size_t k = utf8_width(v); k < w[i] + 2; k++)
					fputc(' ', f);
			}
		}
	}
	if (t->oom)
		fputs("(out of memory: table incomplete)\n", f);
}

void cli_table_release(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof *t);
}

const char *cli_time(const json_t *v, char out[CLI_TIME_MAX])
{
	if (json_is_string(v)) {
		snprintf(out, CLI_TIME_MAX, "%s", json_string_value(v));
		return out;
	}
	if (!json_is_integer(v))
		return "-";
	char tmp[TIME_FMT_MAX];
	snprintf(out, CLI_TIME_MAX, "%s", time_format_rfc3339(json_integer_value(v), tmp));
	return out;
}
