/* store.c - SQLite access for the dispatcher. */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "error.h"

#define STMT_CACHE 96 /* the dispatcher has fewer distinct statements than this */

/* A prepared statement kept for its SQL text, which callers pass as string literals. */
struct cached {
	const char *sql;
	sqlite3_stmt *st;
};

struct store {
	sqlite3 *db;
	struct cached cache[STMT_CACHE];
	size_t ncache;
	int depth;	  /* open transaction levels: 0 none, 1 BEGIN, more: savepoints */
	uint64_t commits; /* transactions written to the WAL */
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, name TEXT NOT NULL, dir TEXT NOT NULL,"
	"  state TEXT NOT NULL, created REAL NOT NULL, balance INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE IF NOT EXISTS objects(job INTEGER NOT NULL, name TEXT NOT NULL, entry TEXT NOT NULL,"
	"  args TEXT NOT NULL, PRIMARY KEY(job, name));"
	"CREATE TABLE IF NOT EXISTS builds(job INTEGER NOT NULL, object TEXT NOT NULL, target TEXT NOT NULL,"
	"  isa TEXT NOT NULL, level TEXT NOT NULL, status TEXT NOT NULL, digest TEXT, cached INTEGER,"
	"  error TEXT, PRIMARY KEY(job, object, target));"
	"CREATE TABLE IF NOT EXISTS instances(id INTEGER PRIMARY KEY, job INTEGER NOT NULL,"
	"  object TEXT NOT NULL, idx INTEGER NOT NULL, fork_index INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL, node INTEGER, isa TEXT, level TEXT, generation INTEGER NOT NULL DEFAULT 0,"
	"  progress REAL NOT NULL DEFAULT 0, exit_code INTEGER, error TEXT, state_digest TEXT,"
	"  result_digest TEXT, hold INTEGER NOT NULL DEFAULT 0, want_node INTEGER, want_isa TEXT,"

	"  created REAL NOT NULL, started REAL, finished REAL);"
	"CREATE INDEX IF NOT EXISTS instances_state ON instances(state);"
	"CREATE INDEX IF NOT EXISTS instances_job ON instances(job, state);"
	"CREATE TABLE IF NOT EXISTS history(id INTEGER PRIMARY KEY, instance INTEGER NOT NULL,"
	"  time REAL NOT NULL, event TEXT NOT NULL, node INTEGER, isa TEXT, detail TEXT);"
	"CREATE INDEX IF NOT EXISTS history_instance ON history(instance);"
	"CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	"  token_hash TEXT NOT NULL UNIQUE, isa TEXT NOT NULL, levels TEXT NOT NULL, cores INTEGER NOT NULL,"
	"  memory INTEGER NOT NULL, load REAL NOT NULL DEFAULT 0, state TEXT NOT NULL,"
	"  last_seen REAL NOT NULL, joined REAL NOT NULL);"
	"CREATE TABLE IF NOT EXISTS messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, node INTEGER NOT NULL,"
	"  body TEXT NOT NULL, created REAL NOT NULL);"
	"CREATE INDEX IF NOT EXISTS messages_node ON messages(node, seq);"
	"CREATE TABLE IF NOT EXISTS speeds(node INTEGER NOT NULL, job INTEGER NOT NULL, object TEXT NOT NULL,"
	"  rate REAL NOT NULL, samples INTEGER NOT NULL, PRIMARY KEY(node, job, object));";

/* Columns added after the first release: added to older stores when they open. */
static const char *const migrations[] = {
	"ALTER TABLE instances ADD COLUMN stop_requested REAL",
	"ALTER TABLE instances ADD COLUMN rate REAL",
	"ALTER TABLE instances ADD COLUMN last_progress REAL",
	"ALTER TABLE instances ADD COLUMN last_progress_time REAL",
	"ALTER TABLE instances ADD COLUMN moves INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE instances ADD COLUMN checkpoint_s INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE objects ADD COLUMN checkpoint_s INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE instances ADD COLUMN placed_at REAL",
};

#define CHECKPOINT_PAGES 1000 /* SQLite's default for wal_autocheckpoint */

/*
 * Called after every transaction that wrote to the WAL. Installing it
 * replaces SQLite's auto-checkpoint hook, so it checkpoints as that one does.
 */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
	store *s = ud;

	s->commits++;
	if (pages >= CHECKPOINT_PAGES)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

static int db_fail(store *s, const char *what)
{
	return err_set(ERR_IO, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

int store_open(store **out, const char *path)
{
	store *s = calloc(1, sizeof(*s));
	char *msg = NULL;
	int r = 0;

	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = err_set(ERR_IO, "cannot open database '%s': %s", path,
			    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
			 "PRAGMA temp_store=MEMORY;",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		r = err_set(ERR_IO, "cannot set up database '%s': %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		goto out;
	}
	sqlite3_wal_hook(s->db, wal_hook, s);
	/* A column that exists already makes ALTER fail: that is the expected case. */
	for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++)
		sqlite3_exec(s->db, migrations[i], NULL, NULL, NULL);
	*out = s;
	s = NULL;
out:
	store_free(s);
	return r;
}

void store_free(store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ncache; i++)
		sqlite3_finalize(s->cache[i].st);
	sqlite3_close(s->db);
	free(s);
}

/* Runs "VERB spN" for the savepoint of level n. */
static int savepoint(store *s, const char *verb, int n)
{
	char sql[48];

	snprintf(sql, sizeof(sql), "%s sp%d", verb, n);
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(s, verb);
}

int store_begin(store *s)
{
	int r;

	if (s->depth > 0)
		r = savepoint(s, "SAVEPOINT", s->depth);
	else
		r = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(s, "begin");
	if (r == 0)
		s->depth++;
	return r;
}

int store_commit(store *s)
{
	if (s->depth > 1) {
		int r = savepoint(s, "RELEASE", s->depth - 1);
		if (r == 0)
			s->depth--;
		return r;
	}
	if (s->depth == 0)
		return err_set(ERR_INVALID, "store: commit without a transaction");
	/* A failed COMMIT leaves the transaction open: the caller rolls it back. */
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, "commit");
	s->depth = 0;
	return 0;
}

void store_rollback(store *s)
{
	if (s->depth > 1) {
		/* ROLLBACK TO keeps the savepoint open: release it too. */
		savepoint(s, "ROLLBACK TO", s->depth - 1);
		savepoint(s, "RELEASE", s->depth - 1);
		s->depth--;
	} else if (s->depth == 1) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->depth = 0;
	}
}

int store_in_transaction(const store *s)
{
	return s->depth > 0;
}

int store_depth(const store *s)
{
	return s->depth;
}

uint64_t store_commits(const store *s)
{
	return s->commits;
}

/* A statement prepared earlier for the same text, reset; NULL when there is none. */
static sqlite3_stmt *cached(store *s, const char *sql)
{
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].sql == sql && !strcmp(sqlite3_sql(s->cache[i].st), sql)) {
			sqlite3_reset(s->cache[i].st);
			sqlite3_clear_bindings(s->cache[i].st);
			return s->cache[i].st;
		}
	return NULL;
}

/* Done with a statement from prepare(): kept (reset on next use) when cached, else finalized. */
static void release(store *s, sqlite3_stmt *st)
{
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].st == st) {
			sqlite3_reset(st);
			return;
		}
	sqlite3_finalize(st);
}

/*
 * Parsing and planning a statement costs more than running most of them:
 * each SQL text is prepared once and kept (statements run one at a time,
 * under the core lock, so one copy each is enough).
 */
static int prepare(store *s, sqlite3_stmt **st, const char *sql, const char *fmt, va_list ap)
{
	if (!(*st = cached(s, sql))) {
		if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
			return db_fail(s, "prepare");
		if (s->ncache < STMT_CACHE)
			s->cache[s->ncache++] = (struct cached){sql, *st};
	}
	for (int i = 0; fmt && fmt[i]; i++) {
		int rc = SQLITE_OK;
		switch (fmt[i]) {
		case 'i': rc = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t)); break;
		case 'd': rc = sqlite3_bind_double(*st, i + 1, va_arg(ap, double)); break;
		case 's': {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(*st, i + 1, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(*st, i + 1);
			break;
		}
		default: rc = SQLITE_MISUSE; break;
		}
		if (rc != SQLITE_OK) {
			int r = db_fail(s, "bind");
			release(s, *st);
			*st = NULL;
			return r;
		}
	}
	return 0;
}

int store_run(store *s, int64_t *rowid, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int r, rc;

	va_start(ap, fmt);
	r = prepare(s, &st, sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		r = db_fail(s, "step");
	else if (rowid)
		*rowid = sqlite3_last_insert_rowid(s->db);
	release(s, st);
	return r;
}

static json_t *column(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT: return json_stringn((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
	default: return json_null();
	}
}

static int rows_v(store *s, json_t **out, int limit, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *st = NULL;
	json_t *arr;
	int r, rc, n = 0;

	if ((r = prepare(s, &st, sql, fmt, ap)) < 0)
		return r;
	arr = json_array();
	while ((limit == 0 || n < limit) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json_object();
		for (int i = 0; i < sqlite3_column_count(st); i++)
			json_object_set_new(row, sqlite3_column_name(st, i), column(st, i));
		json_array_append_new(arr, row);
		n++;
	}
	if ((limit == 0 || n < limit) && rc != SQLITE_DONE) {
		json_decref(arr);
		release(s, st);
		return db_fail(s, "step");
	}
	release(s, st);
	*out = arr;
	return 0;
}

int store_rows(store *s, json_t **out, const char *sql, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = rows_v(s, out, 0, sql, fmt, ap);
	va_end(ap);
	return r;
}

int store_row(store *s, json_t **out, const char *sql, const char *fmt, ...)
{
	json_t *arr = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = rows_v(s, &arr, 1, sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return ERR_NOTFOUND;
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return 0;
}

int64_t store_int(store *s, int64_t dflt, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	int64_t v = dflt;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = prepare(s, &st, sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	release(s, st);
	return v;
}
