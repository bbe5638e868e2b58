/* http_ref: the reference server for bench/devnode/run-wrk.
 *
 *   http_ref BODY_SIZE        prints "http_ref listening on 127.0.0.1:PORT", serves until killed
 *
 * It answers every GET or HEAD with a 200 and a fixed body of BODY_SIZE bytes, and every other
 * request with a 204 once its body has been read. It parses only what HTTP/1.1 framing needs
 * (the end of the headers and Content-Length), stores nothing, and keeps connections alive, so
 * what wrk measures against it is the ceiling of wrk, the loopback and the kernel on this
 * machine: how fast any server could answer the same requests. One blocking thread per
 * connection keeps it short and has no event loop of its own to be slow; wrk's few connections
 * make that cheap.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char *get_response; /* headers + body, built once */
static size_t get_response_len;
static size_t head_len; /* the header part alone, for HEAD */
static const char put_response[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Content-Length of the header block [start, end), 0 when absent. */
static size_t content_length(const char *start, const char *end) {
    static const char name[] = "\r\ncontent-length:";
    for (const char *p = start; p + sizeof name - 1 < end; ++p) {
        if (strncasecmp(p, name, sizeof name - 1) == 0)
            return strtoull(p + sizeof name - 1, NULL, 10);
    }
    return 0;
}

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    enum { cap = 65536 };
    char *buf = malloc(cap);
    size_t len = 0;
    size_t discard = 0; /* body bytes still to skip */
    for (;;) {
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            break;
        }
        len += (size_t)r;
        for (;;) {
            if (discard > 0) {
                size_t d = discard < len ? discard : len;
                memmove(buf, buf + d, len - d);
                len -= d;
                discard -= d;
                if (discard > 0) break;
                if (send_all(fd, put_response, sizeof put_response - 1) < 0) goto out;
                continue;
            }
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            if (end == NULL) {
                if (len == cap) goto out; /* headers over 64 KiB: not a benchmark request */
                break;
            }
            size_t hdr = (size_t)(end - buf) + 4;
            int is_get = len >= 4 && memcmp(buf, "GET ", 4) == 0;
            int is_head = len >= 5 && memcmp(buf, "HEAD ", 5) == 0;
            size_t body = content_length(buf, end + 2);
            memmove(buf, buf + hdr, len - hdr);
            len -= hdr;
            if (is_get || is_head) {
                if (send_all(fd, get_response, is_head ? head_len : get_response_len) < 0)
                    goto out;
            } else if (body == 0) {
                if (send_all(fd, put_response, sizeof put_response - 1) < 0) goto out;
            } else {
                discard = body;
            }
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: http_ref BODY_SIZE\n");
        return 2;
    }
    size_t size = strtoull(argv[1], NULL, 10);
    char head[256];
    head_len = (size_t)snprintf(head, sizeof head,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                "Content-Length: %zu\r\n\r\n",
                                size);
    get_response_len = head_len + size;
    get_response = malloc(get_response_len);
    memcpy(get_response, head, head_len);
    memset(get_response + head_len, 'x', size);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1024) != 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) != 0) {
        perror("http_ref");
        return 1;
    }
    printf("http_ref listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("http_ref: accept");
            return 1;
        }
        /* Like devnode: no Nagle delay on small responses. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, serve, (void *)(long)fd) != 0) close(fd);
        pthread_attr_destroy(&attr);
    }
}
