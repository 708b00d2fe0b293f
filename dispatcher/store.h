/* store.h - the dispatcher's SQLite store: schema, transactions, small query helpers. */
#ifndef DISPATCH_STORE_H
#define DISPATCH_STORE_H

#include <stdint.h>

#include <jansson.h>

/*
 * One SQLite file in the state directory, in WAL mode with
 * synchronous=FULL: a committed transition survives kill -9 and power loss.
 * Every state transition of a job, instance or node is one transaction.
 * Not thread-safe: the dispatcher serializes access with its core lock.
 */
typedef struct store store;

int store_open(store **out, const char *path);
void store_free(store *s);

int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

/*
 * Runs one statement. fmt has one character per '?' parameter:
 *   'i' int64_t, 'd' double, 's' const char * (NULL binds NULL).
 * *rowid (may be NULL) receives the last inserted row id.
 */
int store_run(store *s, int64_t *rowid, const char *sql, const char *fmt, ...);

/* Rows as a JSON array of objects keyed by column name (new reference). */
int store_rows(store *s, json_t **out, const char *sql, const char *fmt, ...);

/* The first row as an object (new), or ERR_NOTFOUND. */
int store_row(store *s, json_t **out, const char *sql, const char *fmt, ...);

/* The first column of the first row as an integer; dflt when there is no row. */
int64_t store_int(store *s, int64_t dflt, const char *sql, const char *fmt, ...);

#endif
