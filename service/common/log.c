/* log.c — stderr logging with UTC timestamps. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool log_verbose;
static bool log_quiet;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_verbose(bool verbose) { log_verbose = verbose; }
void log_set_quiet(bool quiet) { log_quiet = quiet; }

static void log_emit(const char *level, const char *fmt, va_list ap, int errnum)
{
	char ts[32];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ %s ", ts, now.tv_nsec / 1000000, level);
	vfprintf(stderr, fmt, ap);
	if (errnum)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	if (log_quiet)
		return;
	va_start(ap, fmt);
	log_emit("info", fmt, ap, 0);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;
	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_emit("debug", fmt, ap, 0);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit("warn", fmt, ap, e);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit("warn", fmt, ap, 0);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit("fatal", fmt, ap, e);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
