/* Opens one AF_ALG socket (the Copy Fail entry point) and one TCP socket and says how each
 * went, for the floor tests: `af_alg=ok|<errno name> tcp=ok|<errno name>` on one line, exit 0.
 * Small and static, so that it runs as it is in a scratch image. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

static const char *attempt(int domain, int type) {
    int fd = socket(domain, type, 0);
    if (fd < 0) {
        switch (errno) {
        case EPERM: return "EPERM";
        case EAFNOSUPPORT: return "EAFNOSUPPORT";
        case EACCES: return "EACCES";
        default: return strerror(errno);
        }
    }
    close(fd);
    return "ok";
}

int main(void) {
    const char *alg = attempt(AF_ALG, SOCK_SEQPACKET);
    const char *tcp = attempt(AF_INET, SOCK_STREAM);
    printf("af_alg=%s tcp=%s\n", alg, tcp);
    return 0;
}
