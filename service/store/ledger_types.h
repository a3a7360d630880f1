/* ledger_types.h — rows the store keeps for the ledger (store/store.h):
 * one usage record (its fields; ledger/record.h parses, checks and seals
 * it) and the row the ledger books it as. */
#ifndef ALLOT_STORE_LEDGER_TYPES_H
#define ALLOT_STORE_LEDGER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ids.h"

/* Quantities are integers 1..10^12 units (seconds, tokens): a million GPUs
 * for ten days in GPU-seconds is under 10^12, and quantity × rate stays far
 * inside int64 for any rate the charter can hold. */
#define RECORD_QUANTITY_MAX 1000000000000LL
#define RECORD_ID_MAX 129      /* record ids: 1..128 bytes */
/* Usage may end at most this far in the future (clock skew between hosts). */
#define RECORD_FUTURE_SKEW_US (5LL * 60 * 1000000)

enum record_kind { RECORD_USAGE, RECORD_ADJUSTMENT, RECORD_VOID };
enum record_adjustment { ADJ_NONE, ADJ_CREDIT, ADJ_REFUND, ADJ_DEBIT };

struct usage_record {
	char record_id[RECORD_ID_MAX];
	char provider[STORE_ID_MAX];
	bool has_seq;
	int64_t seq;
	char institution[STORE_ID_MAX];
	char project[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];      /* "" when null */
	char resource[STORE_ID_MAX];
	char cls[STORE_ID_MAX];             /* "" when null */
	char model[STORE_ID_MAX];           /* "" when null */
	int64_t quantity;
	int64_t start_us, end_us;
	enum record_kind kind;
	enum record_adjustment adjustment;
	char supersedes[RECORD_ID_MAX];     /* "" when null */
	uint8_t sig[64];
	bool has_sig;
	char *canonical;                    /* from malloc(); record_release */
	size_t canonical_len;
	uint8_t sha256[32];
};

/* "usage", "adjustment", "void". */
const char *record_kind_name(enum record_kind k);
/* "credit", "refund", "debit"; NULL for ADJ_NONE. */
const char *record_adjustment_name(enum record_adjustment a);

/* The sealed spelling of a record's canonical bytes: every field the
 * record holds, "kind" always, times as time_format_rfc3339 writes them,
 * keys in byte order (what record_seal gives a record allot writes itself,
 * and what most providers sign).  From malloc (NUL after its *len bytes);
 * NULL when out of memory. */
char *record_canonical_sealed(const struct usage_record *r, size_t *len);
/* Whether r's canonical bytes are its sealed spelling: the stores then keep
 * none and rebuild them when the row is read (docs/LEDGER.md, "Storage"). */
bool record_canonical_rebuilds(const struct usage_record *r);
/* A row's canonical bytes as read: stored (n > 0: a copy) or rebuilt from
 * r's fields (n == 0).  Sets r->canonical (from malloc) and its length;
 * ALLOT_E_NOMEM. */
allot_err record_canonical_load(struct usage_record *r, const void *stored, size_t n);

/* Width of a usage bucket: 15 minutes, the gcd of all UTC offsets. */
#define LEDGER_BUCKET_US (15LL * 60 * 1000000)

struct ledger_row {
	struct usage_record rec;  /* canonical bytes owned by rec */
	int64_t received_us;
	int64_t book_us;
	bool late;
	int64_t charter_version;
	int64_t rate_micro;
	int64_t charge_micro;
	bool overage;
	bool from_gate;
	int64_t row_id;           /* set by ledger_insert / ledger_find */
};

/* A provider record the ledger refused, kept so that the same record sent
 * again gets the same answer (migration 0013, docs/LEDGER.md). */
#define LEDGER_REASON_MAX 320
struct ledger_rejection {
	int64_t id;               /* set by reject_list */
	char provider[STORE_ID_MAX];
	char record_id[RECORD_ID_MAX];
	bool has_seq;
	int64_t seq;
	uint8_t sha256[32];
	char reason[LEDGER_REASON_MAX];
	int64_t received_us;
};

/* The log's view of a booked row (tlog/leaf.h): pointers into row, valid
 * while it is. */
struct tlog_usage;
void store_row_leaf_entry(const struct ledger_row *row, struct tlog_usage *out);

/* A booked row's usage leaf as both backends append it: its bytes
 * (tlog_leaf_usage; *data from malloc, the caller frees) and its name,
 * "provider/record_id".  ALLOT_E_NOMEM or ALLOT_OK. */
#define STORE_LEAF_NAME_MAX (STORE_ID_MAX + RECORD_ID_MAX)
allot_err store_row_leaf(const struct ledger_row *row, char **data, size_t *len,
			 char name[STORE_LEAF_NAME_MAX]);

/* Sum of charges of one level over [from_us, to_us) (bucket-aligned):
 * institution NULL = the whole pool; project NULL = the institution;
 * member NULL = the project. */
struct ledger_level {
	const char *institution;
	const char *project;
	const char *member;
};

/* One of several sums asked at once (store_ops.ledger_sums): level lv's
 * charges in [from_us, to_us), into sum. */
struct ledger_sum_req {
	struct ledger_level lv;
	int64_t from_us, to_us;
	int64_t sum;
};

/* Filters for listing records (GET /v1/usage); NULL/0 = any. */
struct ledger_filter {
	const char *institution, *project, *member, *provider, *resource, *model, *kind;
	int64_t from_us, to_us;   /* on book_us; to_us 0 = no bound */
	int64_t after_id;         /* cursor */
	int64_t limit;
};

/* ---- what the ledger's read operations give (store/store.h) ---- */

/* One group of ledger_report: the values of the group_by columns in their
 * order (project qualified "inst/proj", member "inst/proj" or
 * "inst/proj/member"), the 15-minute bucket's start when by bucket, and
 * the sums; an ungrouped report over no rows is one row of zeros. */
#define LEDGER_GROUP_MAX 6
struct ledger_report_row {
	const char *group[LEDGER_GROUP_MAX];
	int64_t bucket_us;
	int64_t charge;           /* µcredits */
	int64_t quantity;         /* net (docs/LEDGER.md, "Reports") */
	int64_t records;
};

/* A provider's sequence numbers (ledger_seq_status): totals over the whole
 * sequence and one page of the gaps and repeats from `after` on.  Arrays
 * from malloc (ledger_seq_status_release). */
struct ledger_seq_gap {
	int64_t from, to;         /* missing seqs from..to, inclusive */
};
struct ledger_seq_status {
	int64_t records;          /* the provider's records (not gate usage) */
	int64_t with_seq;         /* of them, with a seq */
	int64_t min_seq, max_seq; /* when with_seq > 0 */
	int64_t gap_count, missing, repeat_count;
	struct ledger_seq_gap *gaps;
	size_t ngaps;
	int64_t *repeats;         /* each repeated seq once */
	size_t nrepeats;
	bool has_next;            /* false: the page is the last */
	int64_t next;             /* the `after` of the following page */
};
void ledger_seq_status_release(struct ledger_seq_status *s);

#endif
