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

/*
 * Transactions nest: the outermost store_begin() is BEGIN IMMEDIATE and
 * its store_commit() the COMMIT (one fsync of the WAL); inner ones are
 * savepoints, so that a function that groups its own writes can run alone
 * or inside its caller's transaction (an HTTP request, an event, a pass of
 * the timer) and the caller's whole work costs one fsync. store_rollback()
 * undoes the innermost level only. A failed store_begin() opens no level:
 * its caller must not commit or roll back.
 */
int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

/* Whether a transaction is open. */
int store_in_transaction(const store *s);

/* Open levels: 0 none, 1 the transaction, more: savepoints inside it. */
int store_depth(const store *s);

/*
 * Transactions that wrote to the WAL so far, autocommitted statements
 * included: each one is an fsync with synchronous=FULL. For tests.
 */
uint64_t store_commits(const store *s);

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
