/* keys_cmd.c — allot keys create|revoke|list, allot keygen. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "crypto/ed25519.h"

/* `keys list` as a table: times RFC 3339, the scope as institution or
 * provider, revoked keys marked. */
static void keys_table(const json_t *j)
{
	struct cli_table t;
	cli_table_init(&t, 6);
	const char *head[] = {"ID", "ROLE", "SCOPE", "CREATED", "REVOKED", "LABEL"};
	cli_table_add(&t, head);
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(j, "keys"), i, k) {
		char created[CLI_TIME_MAX], revoked[CLI_TIME_MAX], scope[160] = "-";
		const char *inst = json_string_value(json_object_get(k, "institution"));
		const char *prov = json_string_value(json_object_get(k, "provider"));
		if (inst)
			snprintf(scope, sizeof scope, "institution %s", inst);
		else if (prov)
			snprintf(scope, sizeof scope, "provider %s", prov);
		const char *row[] = {json_string_value(json_object_get(k, "id")),
				     json_string_value(json_object_get(k, "role")), scope,
				     cli_time(json_object_get(k, "created_at"), created),
				     cli_time(json_object_get(k, "revoked_at"), revoked),
				     json_string_value(json_object_get(k, "label"))};
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
}

int cli_cmd_keys(struct cli *c, int argc, char **argv)
{
	const char *usage = "keys create --role admin|auditor|institution|provider "
			    "[--institution ID] [--provider ID] [--label TEXT] | keys revoke ID | keys list | keys rotate";
	if (argc < 1)
		return cli_usage(c, usage);
	struct cli_resp r;
	json_t *j = NULL;
	int rc;
	if (strcmp(argv[0], "create") == 0) {
		const char *role = NULL, *inst = NULL, *prov = NULL, *label = NULL;
		for (int i = 1; i < argc; i++) {
			if (cli_opt(argc, argv, &i, "--role", &role) ||
			    cli_opt(argc, argv, &i, "--institution", &inst) ||
			    cli_opt(argc, argv, &i, "--provider", &prov) ||
			    cli_opt(argc, argv, &i, "--label", &label))
				continue;
			return cli_usage(c, usage);
		}
		if (!role)
			return cli_usage(c, usage);
		json_t *body = json_pack("{s:s,s:s?,s:s?,s:s?}", "role", role, "institution", inst,
					 "provider", prov, "label", label);
		char *text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		rc = cli_http(c, "POST", "/v1/keys", "application/json", text, strlen(text), &r);
		free(text);
		rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
		cli_resp_release(&r);
		if (rc)
			return rc;
		if (c->json)
			cli_print_json(j);
		else
			printf("%s\n", json_string_value(json_object_get(j, "secret")));
		fprintf(stderr, "key %s created (role %s); the secret above is shown only once\n",
			json_string_value(json_object_get(j, "id")), role);
		json_decref(j);
		return CLI_OK;
	}
	if (strcmp(argv[0], "revoke") == 0) {
		if (argc != 2 || strchr(argv[1], '/'))
			return cli_usage(c, "keys revoke ID");
		char path[128];
		snprintf(path, sizeof path, "/v1/keys/%s", argv[1]);
		rc = cli_http(c, "DELETE", path, NULL, NULL, 0, &r);
		rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
		cli_resp_release(&r);
		if (rc)
			return rc;
		if (c->json)
			cli_print_json(j);
		else
			printf("key %s revoked\n", argv[1]);
		json_decref(j);
		return CLI_OK;
	}
	if (strcmp(argv[0], "rotate") == 0) {
		if (argc != 1)
			return cli_usage(c, "keys rotate");
		return cli_keys_rotate(c);
	}
	if (strcmp(argv[0], "list") == 0) {
		rc = cli_http(c, "GET", "/v1/keys", NULL, NULL, 0, &r);
		rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
		cli_resp_release(&r);
		if (rc)
			return rc;
		if (c->json)
			cli_print_json(j);
		else
			keys_table(j);
		json_decref(j);
		return CLI_OK;
	}
	return cli_usage(c, usage);
}

int cli_cmd_keygen(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--out", &out))
			continue;
		return cli_usage(c, "keygen --out FILE");
	}
	if (!out)
		return cli_usage(c, "keygen --out FILE");
	struct ed25519_keypair kp;
	char msg[256] = "", pub[ED25519_PUB_TEXT_MAX];
	if (ed25519_keygen(&kp)) {
		fprintf(stderr, "%s: key generation failed\n", c->prog);
		cli_fail_json(c, "key generation failed", 0, NULL);
		return CLI_FAIL;
	}
	allot_err e = ed25519_private_write(out, &kp, 0, msg, sizeof msg);
	ed25519_pub_format(kp.pub, pub);
	ed25519_keypair_wipe(&kp);
	if (e) {
		fprintf(stderr, "%s: %s\n", c->prog, msg[0] ? msg : "cannot write the key");
		cli_fail_json(c, msg[0] ? msg : "cannot write the key", 0, NULL);
		return CLI_FAIL;
	}
	if (c->json) {
		json_t *j = json_pack("{s:s,s:s}", "public_key", pub, "private_key_file", out);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("%s\n", pub);
	}
	return CLI_OK;
}
