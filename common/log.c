/* log.c - stderr logging. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static const char *log_prog = "dispatch";
static enum log_level log_level_cur = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_level_cur = level;
}

void log_set_level(enum log_level level)
{
	log_level_cur = level;
}

enum log_level log_get_level(void)
{
	return log_level_cur;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error: ", "warning: ", "", "debug: " };
	va_list ap;

	if (level > log_level_cur)
		return;
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s", log_prog, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}
