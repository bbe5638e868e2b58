/**
 * @file httpreq.c
 * The raw-HTTP reference client of bench/run-riak: sends a list of requests to one HTTP/1.1
 * server over C keep-alive connections, each request once, and times them.
 *
 *   httpreq HOST PORT CONNS LIST [-H 'Name: value']...
 *
 * LIST has one request a line: `METHOD PATH` or `METHOD PATH BODYFILE OFFSET LENGTH` (the body
 * is LENGTH bytes of BODYFILE at OFFSET, sent with Content-Type: application/octet-stream). A
 * line starting with `+` (`+PUT /x ...`) belongs to the group of the line before it: a group's
 * requests go in order on one connection. Every body is read into memory before the clock
 * starts. CONNS threads each hold one connection (TCP_NODELAY, opened before the clock starts)
 * and take the next group of the list until none is left, so with CONNS = 1 the requests go in
 * list order, one at a time, each waiting for the previous answer (no pipelining). Each -H
 * header goes on every request.
 *
 * Responses must carry Content-Length (or have no body: HEAD, 204, 304); the body is read and
 * dropped. Any status outside 2xx (but a 404 to a HEAD: "absent" is an answer), or a closed
 * connection, counts as an error, and the run goes on. Prints one JSON line: {"requests":N,"errors":E,"seconds":S,"bytes_in":B,"bytes_out":B,
 * "first_error":"..."}; exit status 1 if any request failed.
 *
 * Built by the harness with: gcc -O2 -Wall -Wextra -std=c11 -pthread -o httpreq httpreq.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct req {
	char *head; /* request line and headers, up to the blank line */
	size_t head_len;
	char *body;
	size_t body_len;
	int is_head;
};

static struct req *reqs;
static size_t nreqs;
static size_t *groups; /* index of each group's first request; groups[ngroups] == nreqs */
static size_t ngroups;
static atomic_size_t next_group;
static atomic_ulong errors, bytes_in, bytes_out;
static char first_error[256];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sockaddr_in addr;

struct worker {
	pthread_t tid;
	int fd;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(const char *fmt, const char *arg, long n)
{
	atomic_fetch_add(&errors, 1);
	pthread_mutex_lock(&err_lock);
	if (!first_error[0])
		snprintf(first_error, sizeof(first_error), fmt, arg, n);
	pthread_mutex_unlock(&err_lock);
}

static int connect_one(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const struct req *r)
{
	struct iovec iov[2] = {{r->head, r->head_len}, {r->body, r->body_len}};
	int n = r->body_len ? 2 : 1;
	size_t left = r->head_len + r->body_len;

	while (left) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		left -= (size_t)w;
		for (int i = 0; i < n && w > 0; i++) {
			size_t take = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;

			iov[i].iov_base = (char *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			w -= (ssize_t)take;
		}
	}
	return 0;
}

/* Reads one response; returns its status, or -1 when the connection failed. `buf` holds bytes
 * already received past the previous response (*have of them). */
static int read_response(int fd, char *buf, size_t cap, size_t *have, int is_head)
{
	char *end;
	size_t head_len, body_len = 0, got;
	int status;
	char *cl;

	for (;;) {
		buf[*have] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (*have + 1 >= cap)
			return -1;
		ssize_t n = read(fd, buf + *have, cap - 1 - *have);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		*have += (size_t)n;
	}
	head_len = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	*end = 0;
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl)
		body_len = strtoull(cl + 17, NULL, 10);
	else if (strcasestr(buf, "\r\ntransfer-encoding:"))
		return -1; /* not needed by devnode's object routes */
	if (is_head || status == 204 || status == 304)
		body_len = 0;
	atomic_fetch_add(&bytes_in, body_len);
	/* Drop the body: what is buffered first, then straight from the socket. */
	got = *have - head_len;
	if (got >= body_len) {
		memmove(buf, buf + head_len + body_len, got - body_len);
		*have = got - body_len;
		return status;
	}
	body_len -= got;
	*have = 0;
	while (body_len) {
		size_t want = body_len < cap - 1 ? body_len : cap - 1;
		ssize_t n = read(fd, buf, want);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		body_len -= (size_t)n;
	}
	return status;
}

/* Sends one request on the worker's connection (opening it again after a failure). */
static void send_one(struct worker *w, struct req *r, char *buf, size_t cap, size_t *have)
{
	int status = -1;

	if (w->fd < 0 && (w->fd = connect_one()) < 0) {
		note_error("connect%s: errno %ld", "", errno);
		return;
	}
	if (send_all(w->fd, r) == 0)
		status = read_response(w->fd, buf, cap, have, r->is_head);
	if (status < 0) {
		note_error("request %s: connection failed (%ld)", r->head, -1);
		close(w->fd);
		w->fd = -1;
		*have = 0;
	} else if ((status < 200 || status > 299) && !(status == 404 && r->is_head)) {
		*strchr(r->head, '\r') = 0;
		note_error("%s: status %ld", r->head, status);
	} else {
		atomic_fetch_add(&bytes_out, r->body_len);
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap);

	for (;;) {
		size_t g = atomic_fetch_add(&next_group, 1);

		if (g >= ngroups)
			break;
		for (size_t i = groups[g]; i < groups[g + 1]; i++)
			send_one(w, &reqs[i], buf, cap, &have);
	}
	free(buf);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: httpreq HOST PORT CONNS LIST [-H 'Name: value']...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char extra[8192] = "";
	size_t extra_len = 0, cap = 1024;
	char line[8192], host_hdr[300];
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	FILE *list;
	int conns;

	if (argc < 5)
		usage();
	for (int i = 5; i < argc; i++) {
		if (strcmp(argv[i], "-H") || i + 1 >= argc)
			usage();
		extra_len += (size_t)snprintf(extra + extra_len, sizeof(extra) - extra_len, "%s\r\n",
					      argv[++i]);
		if (extra_len >= sizeof(extra))
			usage();
	}
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
		fprintf(stderr, "httpreq: cannot resolve %s:%s\n", argv[1], argv[2]);
		return 2;
	}
	memcpy(&addr, ai->ai_addr, sizeof(addr));
	freeaddrinfo(ai);
	snprintf(host_hdr, sizeof(host_hdr), "%s:%s", argv[1], argv[2]);
	conns = atoi(argv[3]);
	if (conns < 1)
		usage();
	list = fopen(argv[4], "r");
	if (!list) {
		perror(argv[4]);
		return 2;
	}
	reqs = malloc(cap * sizeof(*reqs));
	groups = malloc((cap + 1) * sizeof(*groups));
	while (fgets(line, sizeof(line), list)) {
		char method[16], path[4096], file[4096];
		unsigned long long off = 0, len = 0;
		int cont = line[0] == '+';
		int n = sscanf(line + cont, "%15s %4095s %4095s %llu %llu", method, path, file, &off,
			       &len);
		struct req *r;

		if (n < 2)
			continue;
		if (nreqs == cap) {
			reqs = realloc(reqs, (cap *= 2) * sizeof(*reqs));
			groups = realloc(groups, (cap + 1) * sizeof(*groups));
		}
		if (!cont || nreqs == 0)
			groups[ngroups++] = nreqs;
		r = &reqs[nreqs++];
		memset(r, 0, sizeof(*r));
		r->is_head = strcmp(method, "HEAD") == 0;
		if (n == 5) {
			int fd = open(file, O_RDONLY | O_CLOEXEC);

			r->body = malloc(len ? len : 1);
			r->body_len = len;
			if (fd < 0 || pread(fd, r->body, len, (off_t)off) != (ssize_t)len) {
				fprintf(stderr, "httpreq: cannot read %llu bytes of %s at %llu\n", len,
					file, off);
				return 2;
			}
			close(fd);
		}
		r->head = malloc(strlen(path) + extra_len + 512);
		if (r->body_len)
			r->head_len = (size_t)sprintf(
				r->head,
				"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream"
				"\r\nContent-Length: %zu\r\n%s\r\n",
				method, path, host_hdr, r->body_len, extra);
		else
			r->head_len = (size_t)sprintf(r->head, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
						      method, path, host_hdr, extra);
	}
	fclose(list);
	groups[ngroups] = nreqs;

	struct worker *ws = calloc((size_t)conns, sizeof(*ws));

	for (int i = 0; i < conns; i++) {
		ws[i].fd = connect_one();
		if (ws[i].fd < 0) {
			fprintf(stderr, "httpreq: cannot connect to %s: %s\n", host_hdr,
				strerror(errno));
			return 2;
		}
	}
	double t0 = now();

	for (int i = 0; i < conns; i++)
		pthread_create(&ws[i].tid, NULL, work, &ws[i]);
	for (int i = 0; i < conns; i++)
		pthread_join(ws[i].tid, NULL);
	double secs = now() - t0;

	for (char *p = first_error; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 32)
			*p = ' ';
	printf("{\"requests\":%zu,\"errors\":%lu,\"seconds\":%.6f,\"bytes_in\":%lu,"
	       "\"bytes_out\":%lu,\"first_error\":\"%s\"}\n",
	       nreqs, atomic_load(&errors), secs, atomic_load(&bytes_in), atomic_load(&bytes_out),
	       first_error);
	return atomic_load(&errors) ? 1 : 0;
}
