/* csv.h — cells of the CSV files allot writes (reports, usage pages).
 *
 * RFC 4180: a cell holding a comma, a double quote, CR or LF is quoted and
 * its quotes doubled.  On top of that, a TEXT cell that a spreadsheet would
 * read as a formula is neutralised as OWASP recommends ("CSV injection"):
 * a cell whose first byte is '=', '+', '-', '@', TAB or CR (or whose first
 * character is the full-width ＝ ＋ － ＠, which some spreadsheets fold to
 * ASCII) is written as a quoted cell with a single quote in front:
 * `=1+1` becomes `"'=1+1"`.  A NUMBER cell that really is a number
 * (csv_is_number: an optional '-', digits, optionally '.' and digits) is
 * written as it is, so negative charges stay numbers; anything else in a
 * numeric column is treated as text.  Everything here is pure. */
#ifndef ALLOT_COMMON_CSV_H
#define ALLOT_COMMON_CSV_H

#include <stdbool.h>

#include "common/buf.h"

/* true when s is -?[0-9]+(\.[0-9]+)? and nothing else. */
bool csv_is_number(const char *s);

/* true when a spreadsheet could read the text cell s as a formula. */
bool csv_is_formula(const char *s);

/* Appends s (NULL: empty) as a text cell: neutralised and quoted as above. */
void csv_text(struct buf *b, const char *s);

/* Appends s (NULL: empty) as a numeric cell: as it is when csv_is_number,
 * else as csv_text. */
void csv_number(struct buf *b, const char *s);

#endif
