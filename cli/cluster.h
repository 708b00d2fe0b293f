/* cluster.h - a local cluster for trying dispatch: dispatchd and agents, native and emulated. */
#ifndef DISPATCH_CLI_CLUSTER_H
#define DISPATCH_CLI_CLUSTER_H

/*
 * `dispatch up` starts, on loopback: dispatchd, one native agent, and one
 * agent per emulated ISA — the agent binary cross-built for that ISA
 * (scripts/foreign) run under qemu-user through binfmt_misc, with
 * QEMU_LD_PREFIX pointing at its private sysroot. Everything lives in one
 * directory: the dispatcher's state, each agent's work directory, logs,
 * the process ids, and a CLI config file that later commands find.
 */
struct cluster_opts {
	const char *dir;        /* default: cluster_default_dir() */
	const char *emulate;    /* comma-separated ISAs, or NULL */
	int port;               /* 0: any free port */
	double timeout_s;       /* how long to wait for every node to join */
};

/* $DISPATCH_CLUSTER_DIR, $XDG_STATE_HOME/dispatch/cluster or ~/.local/state/dispatch/cluster. */
const char *cluster_default_dir(void);

/* The config file a running local cluster leaves for the CLI (new string), or NULL. */
char *cluster_config_path(void);

int cluster_up(const struct cluster_opts *o);

/*
 * Stops the cluster in dir (NULL: the default): its processes, what runs in
 * its agents' control groups, processes working in dir. How many of its
 * processes it knew (0: none ran), or ERR_INVALID when dir is not the
 * caller's own directory that only the caller can write.
 */
int cluster_down(const char *dir);

#endif
