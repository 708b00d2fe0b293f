/* error.h - shared error codes and the thread-local "last error" message. */
#ifndef DISPATCH_ERROR_H
#define DISPATCH_ERROR_H

#include <stddef.h>

/*
 * Every fallible function returns 0 on success or one of these negative
 * codes. The function that detects the failure records a message with
 * err_set(); callers print err_msg() once, at the top.
 */
enum {
	ERR_OK = 0,
	ERR_NOMEM = -1,     /* allocation failed */
	ERR_IO = -2,        /* a system call failed; the message names the file */
	ERR_INVALID = -3,   /* bad input: manifest, request, archive, state */
	ERR_NOTFOUND = -4,  /* the named thing does not exist */
	ERR_LIMIT = -5,     /* a size, count or time limit was reached */
	ERR_CORRUPT = -6,   /* stored data failed verification */
	ERR_EXISTS = -7,    /* the thing already exists */
	ERR_UNSUPPORTED = -8, /* not possible on this machine */
	ERR_CHILD = -9,     /* a child process failed */
	ERR_NET = -10,      /* a network transfer failed */
	ERR_AUTH = -11,     /* missing or wrong credentials */
	ERR_CONFLICT = -12, /* the request conflicts with the current state */
};

/* Records the message for the current thread and returns code. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_set(), appending ": strerror(errnum)". Returns code. */
int err_errno(int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the current message with "prefix: ". Returns code. */
int err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread (borrowed; never NULL). */
const char *err_msg(void);

/* A short name for a code ("invalid input", ...). */
const char *err_name(int code);

void err_clear(void);

#endif
