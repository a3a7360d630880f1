/* allotd.c — the daemon: flags, start-up, signals, shutdown. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "common/log.h"
#include "daemon/app.h"
#include "daemon/confcheck.h"
#include "daemon/fsck.h"
#include "daemon/nodesync.h"
#include "gate/gate.h"
#include "gate/glease.h"
#include "infer/engine.h"

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static bool has_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0 || (strncmp(argv[i], name, strlen(name)) == 0 &&
						   argv[i][strlen(name)] == '='))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct app app = {0};
	char msg[1024] = "";

	/* One-shot engine modes: allotd --model FILE --prompt|--tokenize ... */
	if (has_flag(argc, argv, "--model") &&
	    (has_flag(argc, argv, "--prompt") || has_flag(argc, argv, "--tokenize")))
		return infer_cli(argc, argv);

	/* allotd --fsck [--db PATH] [--format json]: check, never serve. */
	if (has_flag(argc, argv, "--fsck")) {
		struct fsck_options fo;
		int frc = fsck_parse_args(argc, argv, &fo, stderr);
		return frc ? frc : fsck_run(&fo, stdout, stderr);
	}

	int rc = app_config_parse(&app.cfg, argc, argv);
	if (rc)
		return rc == 2 ? 0 : 1;
	log_set_verbose(app.cfg.verbose);
	if (app.cfg.check)
		return confcheck_run(&app.cfg, stdout, stderr);

	signal(SIGPIPE, SIG_IGN);
	/* The port first: a start on a busy port fails before the database,
	 * its lock file or the keys are created (docs/OPERATIONS.md). */
	int listen_fd = -1;
	int sync_ms;
	struct glease_cfg lease_cfg;
	if (nodesync_interval(&sync_ms, msg, sizeof msg) ||
	    glease_config(&lease_cfg, msg, sizeof msg)) {
		fprintf(stderr, "allotd: %s\n", msg);
		return 1;
	}
	if (http_listen(app.cfg.listen, &listen_fd, msg, sizeof msg)) {
		fprintf(stderr, "allotd: %s\n", msg);
		return 1;
	}
	if (app_open(&app, msg, sizeof msg) || app_gate_open(&app, &app.gate, msg, sizeof msg)) {
		fprintf(stderr, "allotd: %s\n", msg);
		close(listen_fd);
		gate_free(app.gate);
		app_close(&app);
		return 1;
	}

	struct http_server *srv = NULL;
	struct http_server_config hc = {
		.listen = app.cfg.listen,
		.routes = api_routes,
		.nroutes = api_nroutes,
		.app = &app,
		.authenticate = api_authenticate,
		.role_of = principal_role_of,
		.principal_free = api_principal_free,
		.cors_origins = app.cfg.cors_origins,
		.listen_fd = listen_fd,
		.listen_fd_set = true,
	};
	if (http_server_start(&hc, &srv, msg, sizeof msg)) {
		fprintf(stderr, "allotd: %s\n", msg);
		gate_free(app.gate);
		app_close(&app);
		return 1;
	}
	/* Several nodes on one database: what the others write (daemon/nodesync.h). */
	struct nodesync *sync = NULL;
	if (nodesync_start(&app, &sync, msg, sizeof msg)) {
		fprintf(stderr, "allotd: %s\n", msg);
		http_server_stop(srv);
		gate_free(app.gate);
		app_close(&app);
		return 1;
	}
	char dbname[1024];
	log_info("allotd listening on %s (port %u), database %s", app.cfg.listen,
		 http_server_port(srv), store_uri_printable(app.cfg.db, dbname, sizeof dbname));

	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (!got_stop) {
		pause();
		if (got_hup) {
			got_hup = 0;
			app_charter_reload(&app);
		}
	}
	log_info("allotd stopping");
	nodesync_stop(sync);
	http_server_stop(srv);
	gate_free(app.gate);
	app_close(&app);
	return 0;
}
