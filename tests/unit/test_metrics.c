/* test_metrics.c — the metrics registry (common/metrics.c): histogram
 * buckets are cumulative and bounded inclusively, seconds are observed in
 * microseconds and shown exactly, gauges go both ways, credits show as
 * exact decimals, and concurrent recording loses nothing. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/metrics.h"

/* The sample line starting with prefix (exactly: name and labels), its value. */
static const char *sample(const char *text, const char *prefix)
{
	static char val[64];
	size_t pl = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, pl) == 0 && p[pl] == ' ') {
			size_t n = strcspn(p + pl + 1, "\n");
			snprintf(val, sizeof val, "%.*s", (int)n, p + pl + 1);
			return val;
		}
	}
	return NULL;
}

static void test_histogram(void **state)
{
	(void)state;
	metrics_observe(MH_FSYNC_SECONDS, 100);     /* 0.0001: on the first bound */
	metrics_observe(MH_FSYNC_SECONDS, 101);     /* just above it */
	metrics_observe(MH_FSYNC_SECONDS, 3000000); /* past the last: +Inf only */
	metrics_observe(MH_GROUP_SIZE, 3);
	struct buf b = BUF_INIT;
	metrics_render(&b);
	const char *t = buf_str(&b);
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_bucket{le=\"0.0001\"}"), "1");
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_bucket{le=\"0.00025\"}"), "2");
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_bucket{le=\"1\"}"), "2");
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_bucket{le=\"+Inf\"}"), "3");
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_count"), "3");
	assert_string_equal(sample(t, "allot_store_fsync_duration_seconds_sum"), "3.000201");
	assert_string_equal(sample(t, "allot_ledger_group_commit_size_bucket{le=\"2\"}"), "0");
	assert_string_equal(sample(t, "allot_ledger_group_commit_size_bucket{le=\"4\"}"), "1");
	assert_string_equal(sample(t, "allot_ledger_group_commit_size_sum"), "3");
	assert_non_null(strstr(t, "# TYPE allot_store_fsync_duration_seconds histogram\n"));
	buf_release(&b);
}

static void test_counters_gauges(void **state)
{
	(void)state;
	metrics_admission(MADM_QUOTA, MLVL_PROJECT);
	metrics_admission(MADM_QUOTA, MLVL_PROJECT);
	metrics_admission(MADM_N, MLVL_NONE); /* out of range: ignored */
	metrics_add(MC_LEDGER_ACCEPTED, 5);
	metrics_gauge_add(MG_RESERVED_CREDITS, 1500000);
	metrics_gauge_add(MG_RESERVED_CREDITS, -3000001);
	struct buf b = BUF_INIT;
	metrics_render(&b);
	const char *t = buf_str(&b);
	assert_string_equal(sample(t, "allot_gate_admissions_total{outcome=\"quota\",level=\"project\"}"), "2");
	/* the admitted series is there from the start */
	assert_string_equal(sample(t, "allot_gate_admissions_total{outcome=\"admitted\",level=\"none\"}"), "0");
	assert_null(sample(t, "allot_gate_admissions_total{outcome=\"rate\",level=\"pool\"}"));
	assert_string_equal(sample(t, "allot_ledger_records_total{outcome=\"accepted\"}"), "5");
	assert_string_equal(sample(t, "allot_gate_reserved_credits"), "-1.500001");
	/* one HELP and TYPE per family, with the sample's full name */
	const char *ty = "# TYPE allot_ledger_records_total counter\n";
	assert_non_null(strstr(t, ty));
	assert_null(strstr(strstr(t, ty) + 1, ty));
	metrics_gauge_add(MG_RESERVED_CREDITS, 1500001);
	assert_int_equal(metrics_gauge_get(MG_RESERVED_CREDITS), 0);
	buf_release(&b);
}

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		metrics_add(MC_INFER_GENERATED_TOKENS, 1);
		metrics_observe(MH_INFER_BATCH, i % 600);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	uint64_t c0 = metrics_counter_get(MC_INFER_GENERATED_TOKENS);
	uint64_t h0 = metrics_hist_count(MH_INFER_BATCH);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(metrics_counter_get(MC_INFER_GENERATED_TOKENS) - c0, 400000);
	assert_int_equal(metrics_hist_count(MH_INFER_BATCH) - h0, 400000);
	struct buf b = BUF_INIT;
	metrics_render(&b);
	char want[32];
	snprintf(want, sizeof want, "%llu", (unsigned long long)(h0 + 400000));
	assert_string_equal(sample(buf_str(&b), "allot_infer_batch_tokens_bucket{le=\"+Inf\"}"), want);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_counters_gauges),
		cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
