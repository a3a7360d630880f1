/* csv.c — RFC 4180 cells, formula-neutralised (see csv.h). */
#include "common/csv.h"

#include <string.h>

bool csv_is_number(const char *s)
{
	if (!s)
		return false;
	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

bool csv_is_formula(const char *s)
{
	/* UTF-8 of U+FF1D ＝, U+FF0B ＋, U+FF0D －, U+FF20 ＠ */
	static const char *const wide[] = {"\xef\xbc\x9d", "\xef\xbc\x8b", "\xef\xbc\x8d",
					   "\xef\xbc\xa0", NULL};
	if (!s || !*s)
		return false;
	if (strchr("=+-@\t\r", *s))
		return true;
	for (size_t i = 0; wide[i]; i++)
		if (strncmp(s, wide[i], 3) == 0)
			return true;
	return false;
}

void csv_text(struct buf *b, const char *s)
{
	if (!s)
		s = "";
	bool formula = csv_is_formula(s);
	if (!formula && strpbrk(s, ",\"\r\n") == NULL) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	if (formula)
		buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

void csv_number(struct buf *b, const char *s)
{
	if (csv_is_number(s))
		buf_puts(b, s);
	else
		csv_text(b, s);
}
