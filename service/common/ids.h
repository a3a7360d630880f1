/* ids.h — sizes of identifiers shared by every module (with the NUL). */
#ifndef ALLOT_COMMON_IDS_H
#define ALLOT_COMMON_IDS_H

#define STORE_ID_MAX 65      /* ids are at most 64 bytes (SPEC charter ids) */
#define STORE_MEMBER_MAX 257 /* member ids may be e-mail addresses */

#endif
