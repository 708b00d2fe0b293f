/* detach.c - a test object that leaves a process behind: the child leaves the session (setsid) and
 * the object's working directory, prints nothing and waits forever; the object prints "stray PID"
 * and waits forever too. Whatever ends the run must end both (common/cgroup.h). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	pid_t p = fork();

	if (p == 0) {
		setsid();
		if (chdir("/") != 0)
			return 1;
		for (;;)
			pause();
	}
	printf("stray %d\n", (int)p);
	fflush(stdout);
	for (;;)
		pause();
}
