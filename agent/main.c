/* main.c - dispatch-agent: options, identity of the objects' user, then agent_main(). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "node.h"
#include "proc.h"

static const char usage[] =
    "usage: dispatch-agent --dispatcher URL (--join-token T | --join-token-file F) --work-dir DIR\n"
    "                      [--name NAME] [--isa ISA] [--cache-max BYTES] [--heartbeat S] [--ca FILE]\n"
    "                      [--run-as USER] [--launcher PATH] [--json] [--insecure-http] [--verbose] [--help]\n"
    "\n"
    "Joins the dispatcher as a node, then runs the objects it is sent, sandboxed.\n"
    "\n"
    "  --dispatcher URL       dispatchd's base URL, e.g. https://dispatch.example:7070\n"
    "  --join-token T         the cluster's join token (visible to ps: prefer the file)\n"
    "  --join-token-file F    read the join token from F\n"
    "  --work-dir DIR         node identity (node.json), cache and instance directories\n"
    "  --name NAME            the node's name (default: the host name)\n"
    "  --isa ISA              claim another ISA (testing; only its baseline level)\n"
    "  --cache-max BYTES      artifacts and states kept, e.g. 512M (default 1G)\n"
    "  --heartbeat S          seconds between heartbeats (default: as the dispatcher says)\n"
    "  --ca FILE              CA certificates for https\n"
    "  --run-as USER          the objects' user when running as root (default nobody)\n"
    "  --launcher PATH        the sandbox launcher (default: dispatch-run beside this program)\n"
    "  --json                 report joins, starts and exits as JSON lines on stdout\n"
    "  --insecure-http        allow an http:// dispatcher that is not on loopback (tests only)\n"
    "\n"
    "The join token is needed for the first join only: the node token is kept in DIR/node.json.\n"
    "SIGTERM stops the agent and leaves the objects running: the next agent on DIR takes\n"
    "them over. SIGUSR2 drains: the objects checkpoint, their states are reported, then it exits.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "dispatch-agent: ");
	fprintf(stderr, "%s%s%s\n", fmt, arg ? " " : "", arg ? arg : "");
	fprintf(stderr, "try 'dispatch-agent --help'\n");
	return 2;
}

/* "1073741824", "512M", "1G", "64KiB" ... (binary units) */
static int parse_size(uint64_t *out, const char *s)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0},	{"K", 10},   {"KiB", 10}, {"M", 20},  {"MiB", 20},
		     {"G", 30}, {"GiB", 30}, {"T", 40},	  {"TiB", 40}};
	uintmax_t v;
	char *end;

	errno = 0;
	v = strtoumax(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].suffix)) {
			if (v > (UINT64_MAX >> units[i].shift))
				return -1;
			*out = (uint64_t)v << units[i].shift;
			return 0;
		}
	return -1;
}

static int parse_uint(unsigned *out, const char *s, unsigned max)
{
	uintmax_t v;
	char *end;

	errno = 0;
	v = strtoumax(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v == 0 || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* dispatch-run beside this executable, else on PATH. New string or NULL. */
static char *find_launcher(void)
{
	char self[PATH_MAX], *slash, *p;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			if ((p = fs_join(self, "dispatch-run")) && access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return proc_which("dispatch-run", NULL);
}

static int url_is_loopback(const char *url)
{
	const char *host = strstr(url, "://");

	host = host ? host + 3 : url;
	return !strncmp(host, "127.", 4) || !strncmp(host, "localhost", 9) || !strncmp(host, "[::1]", 5);
}

int main(int argc, char **argv)
{
	enum {
		O_URL = 256,
		O_TOKEN,
		O_TOKEN_FILE,
		O_WORK,
		O_NAME,
		O_ISA,
		O_CACHE,
		O_HB,
		O_CA,
		O_RUNAS,
		O_LAUNCHER,
		O_JSON,
		O_INSECURE,
		O_VERBOSE
	};
	static const struct option longopts[] = {
	    {"dispatcher", required_argument, NULL, O_URL},
	    {"join-token", required_argument, NULL, O_TOKEN},
	    {"join-token-file", required_argument, NULL, O_TOKEN_FILE},
	    {"work-dir", required_argument, NULL, O_WORK},
	    {"name", required_argument, NULL, O_NAME},
	    {"isa", required_argument, NULL, O_ISA},
	    {"cache-max", required_argument, NULL, O_CACHE},
	    {"heartbeat", required_argument, NULL, O_HB},
	    {"ca", required_argument, NULL, O_CA},
	    {"run-as", required_argument, NULL, O_RUNAS},
	    {"launcher", required_argument, NULL, O_LAUNCHER},
	    {"json", no_argument, NULL, O_JSON},
	    {"insecure-http", no_argument, NULL, O_INSECURE},
	    {"verbose", no_argument, NULL, O_VERBOSE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct agent_config cfg = {.cache_max = UINT64_C(1) << 30, .wait_s = 25, .stop_grace_s = 30};
	char host[256] = "node", *token = NULL, *launcher = NULL;
	const char *token_file = NULL, *run_as = NULL;
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	int c, r = 1, insecure = 0;

	log_init("dispatch-agent", LOG_INFO);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL:
			cfg.url = optarg;
			break;
		case O_TOKEN:
			free(token);
			if (!(token = strdup(optarg)))
				return 1;
			memset(optarg, '*', strlen(optarg)); /* out of ps */
			break;
		case O_TOKEN_FILE:
			token_file = optarg;
			break;
		case O_WORK:
			cfg.work_dir = optarg;
			break;
		case O_NAME:
			cfg.name = optarg;
			break;
		case O_ISA:
			cfg.isa = optarg;
			break;
		case O_CACHE:
			if (parse_size(&cfg.cache_max, optarg) < 0)
				return usage_error("bad size for --cache-max:", optarg);
			break;
		case O_HB:
			if (parse_uint(&cfg.heartbeat_s, optarg, 3600) < 0)
				return usage_error("bad seconds for --heartbeat:", optarg);
			break;
		case O_CA:
			cfg.ca_file = optarg;
			break;
		case O_RUNAS:
			run_as = optarg;
			break;
		case O_LAUNCHER:
			cfg.launcher = optarg;
			break;
		case O_JSON:
			cfg.json = 1;
			break;
		case O_INSECURE:
			insecure = 1;
			break;
		case O_VERBOSE:
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (!cfg.url || !cfg.work_dir)
		return usage_error("--dispatcher and --work-dir are required", NULL);
	if (strncmp(cfg.url, "http://", 7) && strncmp(cfg.url, "https://", 8))
		return usage_error("--dispatcher wants an http:// or https:// URL, not", cfg.url);
	if (token && token_file)
		return usage_error("--join-token and --join-token-file exclude each other", NULL);
	if (token_file && node_read_token(&token, token_file) < 0) {
		log_error("%s", err_msg());
		goto out;
	}
	if (token && !node_token_is_valid(token))
		return usage_error("the join token has characters a token cannot have", NULL);
	if (!strncmp(cfg.url, "http://", 7) && !url_is_loopback(cfg.url)) {
		if (!insecure)
			return usage_error("refusing plain HTTP to a dispatcher that is not on loopback (tokens and "
					   "artifacts would cross the network in the clear): use https, or "
					   "--insecure-http to accept that for",
					   cfg.url);
		log_warn("'%s' is not TLS: tokens and artifacts cross the network in the clear", cfg.url);
	}
	cfg.join_token = token;
	if (!cfg.name) {
		if (gethostname(host, sizeof(host) - 1) < 0)
			snprintf(host, sizeof(host), "node");
		cfg.name = host;
	}
	if (!cfg.launcher && !(cfg.launcher = launcher = find_launcher())) {
		log_error("cannot find dispatch-run (use --launcher)");
		goto out;
	}
	if (access(cfg.launcher, X_OK) < 0) {
		log_error("cannot use the launcher '%s': %s", cfg.launcher, strerror(errno));
		goto out;
	}
	if (geteuid() == 0) {
		run_as = run_as ? run_as : "nobody";
		if (getpwnam_r(run_as, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || !pwp) {
			log_error("unknown user '%s' for --run-as", run_as);
			goto out;
		}
		cfg.drop = pw.pw_uid != 0;
		cfg.uid = pw.pw_uid;
		cfg.gid = pw.pw_gid;
		if (!cfg.drop)
			log_warn("objects run as root: --run-as names uid 0");
	} else if (run_as) {
		log_error("--run-as needs the agent to run as root");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialize libcurl");
		goto out;
	}
	r = agent_main(&cfg) < 0 ? 1 : 0;
	if (r)
		log_error("%s", err_msg());
	curl_global_cleanup();
out:
	free(token);
	free(launcher);
	return r;
}
