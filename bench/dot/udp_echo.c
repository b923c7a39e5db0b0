#define _GNU_SOURCE
/* Floor for the UDP side of a stub: answers each DNS query on 127.0.0.1:PORT
 * at once with the question echoed back as a response (QR=1, RCODE=0, no
 * answers), one blocking recvfrom + sendto per query, no upstream, no TLS.
 * scripts/bench.sh --baseline runs it under the same dnsperf load as the
 * stubs: its CPU per query is what the kernel's loopback UDP path and the
 * wake-ups cost on this machine, which no stub can go below.
 *
 * Ready-check queries (names under bench.) get an A 192.0.2.100 answer so
 * the script's dig polling works; load queries are answered without one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bind");
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: recvfrom returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    unsigned char buf[4096];
    while (!stop) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf - 16, 0, (struct sockaddr *)&peer, &plen);
        if (n < 12)
            continue;
        buf[2] = (unsigned char)((buf[2] | 0x80) & ~0x06); /* QR=1, AA=0, TC=0 */
        buf[3] = 0x80;                                      /* RA=1, RCODE=0 */
        buf[10] = buf[11] = 0;                              /* ARCOUNT=0 */
        /* find the end of the question */
        ssize_t off = 12;
        while (off < n && buf[off] != 0)
            off += buf[off] + 1;
        off += 5; /* root label + QTYPE + QCLASS */
        if (off > n)
            continue;
        int is_ready = memmem(buf + 12, (size_t)(off - 12), "ready", 5) != NULL;
        if (is_ready) {
            static const unsigned char rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 100};
            memcpy(buf + off, rr, sizeof rr);
            off += sizeof rr;
            buf[6] = 0;
            buf[7] = 1; /* ANCOUNT=1 */
        }
        sendto(fd, buf, (size_t)off, 0, (struct sockaddr *)&peer, plen);
    }
    return 0;
}
