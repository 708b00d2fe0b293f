/* protocol.h - the agent's side of docs/api.md: validated messages in, event documents out. */
#ifndef DISPATCH_AGENT_PROTOCOL_H
#define DISPATCH_AGENT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "digest.h"

/*
 * Everything in a message comes from the network, so protocol_parse()
 * checks every field before the agent acts on it: instance ids become
 * directory names, the entry a file name below bin/, digests blob names.
 */

#define PROTO_ID_MAX 64		      /* instance ids: [A-Za-z0-9._-], not starting with '.' */
#define PROTO_ENTRY_MAX 255	      /* a file name below bin/ */
#define PROTO_ARGS_MAX 4096	      /* argument count */
#define PROTO_ARGS_BYTES (256u << 10) /* total argument bytes */
#define PROTO_INLINE_MAX (64u << 10)  /* a state bundle carried in a message or event (dispatchd's limit) */

enum proto_type { PROTO_START = 1, PROTO_STOP };
enum proto_stop_mode { PROTO_STOP_CHECKPOINT = 1, PROTO_STOP_KILL };

struct proto_limits {
	uint64_t cpu_s;	 /* 0: unlimited */
	uint64_t memory; /* bytes, 0: unlimited */
	uint64_t wall_s; /* 0: unlimited */
};

struct proto_msg {
	enum proto_type type;
	uint64_t seq;
	char instance[PROTO_ID_MAX + 1];
	uint64_t generation;
	/* start */
	char artifact[DIGEST_HEX_LEN + 1];
	char state[DIGEST_HEX_LEN + 1]; /* "" when the instance starts fresh */
	struct buf state_bundle;	/* its bytes when the message carries them ("state_bundle", base64) */
	char entry[PROTO_ENTRY_MAX + 1];
	char **args; /* NULL-terminated, owned */
	size_t nargs;
	int64_t fork_index;
	uint64_t checkpoint_s; /* periodic checkpoint interval the object is told, 0: none */
	struct proto_limits limits;
	/* stop */
	enum proto_stop_mode mode;
};

/*
 * Parses one message (borrowed). ERR_INVALID with a message naming the
 * message and the field ("message 7: 'artifact': expected a sha256
 * digest"); ERR_UNSUPPORTED for a well-formed message of an unknown type,
 * which the agent ignores. Release *out with proto_msg_release().
 */
int proto_parse(struct proto_msg *out, json_t *msg);
void proto_msg_release(struct proto_msg *m);

/* Whether s may name an instance (and so a directory). */
int proto_id_is_valid(const char *s);

/* Events (new references; NULL only when out of memory). */
json_t *proto_event_running(void);
json_t *proto_event_progress(double value);
json_t *proto_event_log(const char *text, size_t len); /* text is made valid UTF-8 */
json_t *proto_event_checkpoint(const char *state_digest);
/* code: the exit status, or -1 when the object never ran; state and error may be NULL. */
json_t *proto_event_exit(int code, int signo, const char *state_digest, const char *error);

/*
 * Rewrites s[0..len) in place as valid UTF-8 without NUL: invalid bytes and
 * NUL become '?'. An incomplete sequence at the very end is left out of the
 * count when more may follow (partial = 1), so that a chunked stream is not
 * broken in the middle of a character. Returns the number of bytes to use.
 */
size_t proto_utf8_clean(char *s, size_t len, int partial);

#endif
