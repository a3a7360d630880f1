/* unicode_tab.h — Unicode character classes for pre-tokenization:
 * letters (\p{L}), numbers (\p{N}), white space, other.  Pure table lookups, thread-safe. */
#ifndef ALLOT_INFER_UNICODE_TAB_H
#define ALLOT_INFER_UNICODE_TAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum uclass { UC_LETTER, UC_NUMBER, UC_SPACE, UC_OTHER };

enum uclass unicode_class(uint32_t cp);

#endif
