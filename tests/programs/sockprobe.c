/* Opens an AF_ALG socket (the Copy Fail entry point), the same with a high bit set in the
 * family's register (the kernel takes an int's low 32 bits, a filter sees all 64) and a TCP
 * socket, and says how each went, for the floor tests:
 * `af_alg=ok|<errno> af_alg_high=ok|<errno> tcp=ok|<errno>` on one line, exit 0. Small and
 * static, so that it runs as it is in any image. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

static const char *outcome(long fd) {
    if (fd < 0) {
        switch (errno) {
        case EPERM: return "EPERM";
        case EAFNOSUPPORT: return "EAFNOSUPPORT";
        case EACCES: return "EACCES";
        default: return strerror(errno);
        }
    }
    close((int)fd);
    return "ok";
}

static const char *attempt(long domain, long type) {
    return outcome(syscall(SYS_socket, domain, type, 0L));
}

int main(void) {
    const char *alg = attempt(AF_ALG, SOCK_SEQPACKET);
    const char *high = attempt((long)((1UL << 32) | AF_ALG), SOCK_SEQPACKET);
    const char *tcp = attempt(AF_INET, SOCK_STREAM);
    printf("af_alg=%s af_alg_high=%s tcp=%s\n", alg, high, tcp);
    return 0;
}
