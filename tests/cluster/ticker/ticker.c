/* ticker.c - a test object that writes its log over time: "tick N" every 20 ms, argv[1] of them (default
 * 150), then exits 0. The agent relays a log every two seconds, so a follower reads it in several pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	const struct timespec pause = {0, 20 * 1000 * 1000};
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 150;

	for (long i = 1; i <= n; i++) {
		printf("tick %ld\n", i);
		fflush(stdout);
		nanosleep(&pause, NULL);
	}
	return 0;
}
