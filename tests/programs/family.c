/* A process family for `seccompd record` and `seccompd run` tests: a thread, a child, a
 * short-lived grandchild that execs this program again. Each makes one marker call that no
 * other part (and no libc start-up) makes, and reports when it fails:
 *   thread:               getpriority
 *   grandchild, pre-exec: sched_get_priority_max
 *   grandchild, exec'd:   sched_get_priority_min
 * `family` says "family: done" and exits 7 when all went well; `family mkdir DIR` first also
 * creates DIR (exit 3 when that fails). Any other failure: exit 1-5, with the reason on
 * stderr. `family raw N` only makes system call number N (no such call for a large N). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread_main(void *arg) {
    (void)arg;
    errno = 0;
    if (syscall(SYS_getpriority, PRIO_PROCESS, 0) == -1 && errno != 0) {
        fprintf(stderr, "getpriority: %s\n", strerror(errno));
        return (void *)1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        if (syscall(SYS_sched_get_priority_min, SCHED_FIFO) == -1) {
            fprintf(stderr, "sched_get_priority_min: %s\n", strerror(errno));
            return 1;
        }
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "raw") == 0) {
        syscall(atol(argv[2]));
        return 0;
    }
    pthread_t thread;
    void *thread_result = NULL;
    if (pthread_create(&thread, NULL, thread_main, NULL) != 0 ||
        pthread_join(thread, &thread_result) != 0 || thread_result != NULL) {
        fprintf(stderr, "the thread failed\n");
        return 4;
    }
    pid_t child = fork();
    if (child == -1) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            if (syscall(SYS_sched_get_priority_max, SCHED_FIFO) == -1) {
                fprintf(stderr, "sched_get_priority_max: %s\n", strerror(errno));
                _exit(1);
            }
            execl("/proc/self/exe", "family", "exec", (char *)NULL);
            perror("execl");
            _exit(1);
        }
        int status = 0;
        if (grandchild == -1 || waitpid(grandchild, &status, 0) != grandchild) {
            _exit(1);
        }
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the child or grandchild failed\n");
        return 5;
    }
    if (argc > 2 && strcmp(argv[1], "mkdir") == 0 && mkdir(argv[2], 0700) != 0) {
        fprintf(stderr, "mkdir: %s: %s\n", argv[2], strerror(errno));
        return 3;
    }
    printf("family: done\n");
    return 7;
}
