/* test_http_server.c — the dispatcher of http/server.c, started on a free
 * loopback port and called with libcurl:
 *   - a handler's JSON is sent with its status;
 *   - a handler that returns an error without writing one answers with that
 *     error (status and JSON body), never an empty 200;
 *   - an error the handler wrote is kept as written;
 *   - an unknown path that is not UTF-8 still gets a JSON error body;
 *   - a wrong method on a known path is 405, an unknown path 404;
 *   - a body with a NUL byte is refused before the handler runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http/server.h"

static int handler_calls;

static allot_err h_ok(struct http_req *req, struct http_resp *resp)
{
	(void)req;
	handler_calls++;
	return http_json(resp, 201, json_pack("{s:s}", "hello", "world"));
}

static allot_err h_silent_fail(struct http_req *req, struct http_resp *resp)
{
	(void)req, (void)resp;
	handler_calls++;
	return ALLOT_E_STORE; /* wrote nothing */
}

static allot_err h_written_fail(struct http_req *req, struct http_resp *resp)
{
	(void)req;
	handler_calls++;
	return http_error(resp, ALLOT_E_CONFLICT, "already there");
}

static const struct http_route routes[] = {
	{"GET", "/ok", HTTP_ROUTE_PUBLIC, h_ok, NULL},
	{"POST", "/ok", HTTP_ROUTE_PUBLIC, h_ok, NULL},
	{"GET", "/silent", HTTP_ROUTE_PUBLIC, h_silent_fail, NULL},
	{"GET", "/written", HTTP_ROUTE_PUBLIC, h_written_fail, NULL},
};

static struct http_server *srv;
static char base[64];

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	strncat((char *)ud, p, sz * n < 4000 ? sz * n : 4000);
	return sz * n;
}

/* One request; OUT: status, body (at most 4 KiB). */
static long call(const char *method, const char *path, const char *body, size_t body_len,
		 char out[4096])
{
	CURL *c = curl_easy_init();
	assert_non_null(c);
	char url[256];
	snprintf(url, sizeof url, "%s%s", base, path);
	out[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	struct curl_slist *h = NULL;
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* The body is {"error":{"code":code,...}}. */
static void assert_error_body(const char *body, const char *code)
{
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	if (!j)
		fail_msg("error body is not JSON: [%s]", body);
	const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	if (!got || strcmp(got, code) != 0)
		fail_msg("error code [%s], expected [%s] in %s", got ? got : "(none)", code, body);
	json_decref(j);
}

static int setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .routes = routes,
					 .nroutes = sizeof routes / sizeof routes[0]};
	char msg[256];
	if (http_server_start(&cfg, &srv, msg, sizeof msg) != ALLOT_OK) {
		fprintf(stderr, "http_server_start: %s\n", msg);
		return -1;
	}
	snprintf(base, sizeof base, "http://127.0.0.1:%u", http_server_port(srv));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	http_server_stop(srv);
	curl_global_cleanup();
	return 0;
}

static void test_handler_json(void **state)
{
	(void)state;
	char body[4096];
	assert_int_equal(call("GET", "/ok", NULL, 0, body), 201);
	assert_non_null(strstr(body, "\"hello\":\"world\""));
}

static void test_silent_failure_is_an_error(void **state)
{
	(void)state;
	char body[4096];
	assert_int_equal(call("GET", "/silent", NULL, 0, body), 500);
	assert_error_body(body, "store_error");
}

static void test_written_error_kept(void **state)
{
	(void)state;
	char body[4096];
	assert_int_equal(call("GET", "/written", NULL, 0, body), 409);
	assert_error_body(body, "conflict");
	assert_non_null(strstr(body, "already there"));
}

static void test_not_utf8_path(void **state)
{
	(void)state;
	char body[4096];
	assert_int_equal(call("GET", "/no/%ff%fe%80", NULL, 0, body), 404);
	assert_error_body(body, "not_found");
	assert_int_equal(call("GET", "/no/\xff\xfe", NULL, 0, body), 404);
	assert_error_body(body, "not_found");
}

static void test_method_and_nul(void **state)
{
	(void)state;
	char body[4096];
	assert_int_equal(call("DELETE", "/ok", NULL, 0, body), 405);
	assert_error_body(body, "method_not_allowed");
	int before = handler_calls;
	assert_int_equal(call("POST", "/ok", "{\"a\":\"\0\"}", 9, body), 400);
	assert_error_body(body, "invalid_request");
	assert_int_equal(handler_calls, before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handler_json),
		cmocka_unit_test(test_silent_failure_is_an_error),
		cmocka_unit_test(test_written_error_kept),
		cmocka_unit_test(test_not_utf8_path),
		cmocka_unit_test(test_method_and_nul),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
