/* token_cmd.c — allot token mint|revoke|inspect, allot keys rotate. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "crypto/token_claims.h"

static int post_json(struct cli *c, const char *path, json_t *body, json_t **out)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct cli_resp r;
	int rc = cli_http(c, "POST", path, "application/json", text, strlen(text), &r);
	free(text);
	rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, out);
	cli_resp_release(&r);
	return rc;
}

static int token_mint_cmd(struct cli *c, int argc, char **argv)
{
	const char *usage = "token mint --institution ID --project ID --member ID [--ttl SECONDS] "
			    "[--models a,b] [--max-credits X]";
	const char *inst = NULL, *proj = NULL, *member = NULL, *ttl = NULL, *models = NULL,
		   *maxc = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--institution", &inst) ||
		    cli_opt(argc, argv, &i, "--project", &proj) ||
		    cli_opt(argc, argv, &i, "--member", &member) ||
		    cli_opt(argc, argv, &i, "--ttl", &ttl) ||
		    cli_opt(argc, argv, &i, "--models", &models) ||
		    cli_opt(argc, argv, &i, "--max-credits", &maxc))
			continue;
		return cli_usage(c, usage);
	}
	if (!proj || !member)
		return cli_usage(c, usage);
	json_t *body = json_pack("{s:s,s:s}", "project", proj, "member", member);
	if (inst)
		json_object_set_new(body, "institution", json_string(inst));
	if (ttl) {
		char *end;
		long long v = strtoll(ttl, &end, 10);
		if (*end || v <= 0) {
			json_decref(body);
			return cli_usage(c, usage);
		}
		json_object_set_new(body, "ttl", json_integer(v));
	}
	if (maxc)
		json_object_set_new(body, "max_credits", json_string(maxc));
	if (models) {
		json_t *arr = json_array();
		char buf[1024];
		snprintf(buf, sizeof buf, "%s", models);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(arr, json_string(t));
		json_object_set_new(body, "models", arr);
	}
	json_t *j = NULL;
	int rc = post_json(c, "/v1/tokens", body, &j);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("%s\n", json_string_value(json_object_get(j, "token")));
	fprintf(stderr, "token %s for %s expires %s\n", json_string_value(json_object_get(j, "jti")),
		json_string_value(json_object_get(j, "member")),
		json_string_value(json_object_get(j, "expires_at")));
	json_decref(j);
	return CLI_OK;
}

static int token_revoke_cmd(struct cli *c, int argc, char **argv)
{
	const char *usage = "token revoke --jti ID | --member ID [--institution ID]";
	const char *jti = NULL, *member = NULL, *inst = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--jti", &jti) || cli_opt(argc, argv, &i, "--member", &member) ||
		    cli_opt(argc, argv, &i, "--institution", &inst))
			continue;
		return cli_usage(c, usage);
	}
	if (!jti == !member)
		return cli_usage(c, usage);
	json_t *body = jti ? json_pack("{s:s}", "jti", jti) : json_pack("{s:s}", "member", member);
	if (inst)
		json_object_set_new(body, "institution", json_string(inst));
	json_t *j = NULL;
	int rc = post_json(c, "/v1/tokens/revoke", body, &j);
	if (rc == CLI_FAIL && member && !inst)
		fprintf(stderr, "%s: token revoke --member: an admin or auditor key must name the "
			"member's institution: add --institution ID\n", c->prog);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("revoked %s\n", jti ? jti : member);
	json_decref(j);
	return CLI_OK;
}

struct fetched_keys {
	json_t *keys;
};

static allot_err lookup_fetched(void *ctx, const char *kid, uint8_t pub[ED25519_PUB_LEN])
{
	struct fetched_keys *fk = ctx;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(fk->keys, "keys"), i, k) {
		if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0) {
			const char *p = json_string_value(json_object_get(k, "public"));
			return ed25519_pub_parse(p, strlen(p), pub, NULL, 0);
		}
	}
	return ALLOT_E_UNAUTHORIZED;
}

static int token_inspect_cmd(struct cli *c, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage(c, "token inspect TOKEN   (verified against the server's public keys)");
	struct cli_resp r;
	json_t *keys = NULL;
	int rc = cli_http(c, "GET", "/v1/keys/public", NULL, NULL, 0, &r);
	rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &keys);
	cli_resp_release(&r);
	if (rc)
		return rc;
	struct fetched_keys fk = {keys};
	struct token_verify_opts o = {
		.deployment = json_string_value(json_object_get(keys, "deployment")),
		.lookup = lookup_fetched, .lookup_ctx = &fk, .now_us = time_now_us()};
	struct token_claims cl;
	char kid[PASETO_KID_MAX + 1], msg[256] = "";
	allot_err e = token_verify(argv[0], strlen(argv[0]), &o, &cl, kid, msg, sizeof msg);
	json_decref(keys);
	if (e) {
		fprintf(stderr, "%s: token is not valid here: %s\n", c->prog, msg);
		cli_fail_json(c, msg, 0, NULL);
		return CLI_FAIL;
	}
	char *claims = NULL;
	size_t len;
	token_claims_to_json(&cl, &claims, &len, msg, sizeof msg);
	if (c->json) {
		json_t *cj = claims ? json_loads(claims, 0, NULL) : NULL;
		json_t *j = json_pack("{s:b,s:s,s:o}", "valid", 1, "kid", kid, "claims",
				      cj ? cj : json_null());
		cli_print_json(j);
		json_decref(j);
	} else
		printf("valid (key %s)\n%s\n", kid, claims ? claims : "");
	free(claims);
	return CLI_OK;
}

int cli_cmd_token(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "mint") == 0)
		return token_mint_cmd(c, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "revoke") == 0)
		return token_revoke_cmd(c, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "inspect") == 0)
		return token_inspect_cmd(c, argc - 1, argv + 1);
	return cli_usage(c, "token mint ... | token revoke ... | token inspect TOKEN");
}

int cli_keys_rotate(struct cli *c)
{
	json_t *j = NULL;
	int rc = post_json(c, "/v1/keys/rotate", json_object(), &j);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("new signing key %s; older keys keep verifying their tokens\n",
		       json_string_value(json_object_get(j, "kid")));
	json_decref(j);
	return CLI_OK;
}
