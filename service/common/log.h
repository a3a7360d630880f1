/* log.h — logging to stderr, one line per message.
 *
 * log_warn appends strerror(errno); log_warnx does not.  fatal/fatalx exit(1)
 * and are for start-up only.  Secrets are never passed to these functions.
 */
#ifndef ALLOT_COMMON_LOG_H
#define ALLOT_COMMON_LOG_H

#include <stdbool.h>

void log_set_verbose(bool verbose);
void log_set_quiet(bool quiet);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
