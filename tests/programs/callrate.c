/*
 * callrate RATE SECONDS: a CPU-bound job that also makes RATE getppid(2) calls per second for
 * SECONDS, as the audit bench's workload (crates/e2e/benches/audit.rs).
 *
 * Between calls it runs fixed units of arithmetic; how many units it finished is the job's
 * throughput, so running the same job under an Audit profile (each call then costs an audit
 * record) and unconfined tells how much the records slow a real workload down, not only the
 * calls themselves. The calls are paced against the clock: when they fall behind (each call
 * waits, e.g. on a full audit backlog) the job makes them up before any more work, so a slower
 * call shows as fewer units, never as fewer calls.
 *
 * Prints one JSON object: the rate and seconds asked for, calls made, work units done, the
 * nanoseconds spent inside the calls in total and at most for one call.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Iterations of one work unit: a few microseconds, so that the job checks the clock often
 * enough to keep 100,000 calls per second evenly spread. */
#define UNIT_ITERATIONS 1000

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v == 0)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t rate, seconds;
	if (argc != 3 || parse(argv[1], &rate) || parse(argv[2], &seconds)) {
		fprintf(stderr, "usage: callrate RATE SECONDS (both positive integers)\n");
		return 2;
	}
	uint64_t calls = 0, units = 0, call_ns = 0, max_call_ns = 0;
	uint64_t state = 1;
	const uint64_t start = now_ns();
	const uint64_t end = start + seconds * 1000000000u;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		/* Calls due by now; (t - start) < 2^36 ns for any sane run, times a rate < 2^27. */
		uint64_t due = (t - start) * rate / 1000000000u;
		while (calls < due) {
			uint64_t before = now_ns();
			/* Straight to the kernel: libc may not call it at all. */
			syscall(SYS_getppid);
			uint64_t took = now_ns() - before;
			call_ns += took;
			if (took > max_call_ns)
				max_call_ns = took;
			calls++;
		}
		for (int i = 0; i < UNIT_ITERATIONS; i++)
			state = state * 6364136223846793005u + 1442695040888963407u;
		units++;
	}
	printf("{\"rate\":%" PRIu64 ",\"seconds\":%" PRIu64 ",\"calls\":%" PRIu64
	       ",\"work_units\":%" PRIu64 ",\"call_ns\":%" PRIu64 ",\"max_call_ns\":%" PRIu64
	       ",\"state\":%" PRIu64 "}\n",
	       rate, seconds, calls, units, call_ns, max_call_ns, state);
	return 0;
}
