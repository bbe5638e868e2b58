/**
 * @file fsops.c
 * Tight metadata/small-file loops for bench/run-passthrough.
 *
 * Each sub-command does one kind of syscall loop over a directory and prints a single JSON line
 * {"op":..., "count":..., "seconds":..., "bytes":...} on stdout. Only the loop itself is timed
 * (CLOCK_MONOTONIC), so process start-up and path formatting outside the loop do not count.
 * Any failed syscall aborts the run with a message on stderr and exit status 1: a benchmark
 * that silently skips files would report a rate for work it did not do.
 *
 *   fsops mktree DIR NDIRS NFILES   DIR/dNNNNN/fNNNNNNN, NFILES empty files in each of NDIRS dirs
 *   fsops create DIR N SIZE         open(O_CREAT|O_EXCL) + write SIZE bytes + close, N files
 *   fsops stat   DIR N              stat() of the N files made by create
 *   fsops read   DIR N SIZE         open + read to EOF + close; each file must hold SIZE bytes
 *
 * Built by the harness with: gcc -O2 -Wall -Wextra -std=c11 -o fsops fsops.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fsops: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static long parse_count(const char *s, const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "fsops: bad %s '%s'\n", name, s);
		exit(2);
	}
	return v;
}

static void report(const char *op, long count, double seconds, long long bytes)
{
	printf("{\"op\":\"%s\",\"count\":%ld,\"seconds\":%.9f,\"bytes\":%lld}\n", op, count, seconds,
	       bytes);
}

static void file_path(char *buf, size_t len, const char *dir, long i)
{
	snprintf(buf, len, "%s/f%07ld", dir, i);
}

static void do_mktree(const char *dir, long ndirs, long nfiles)
{
	char path[PATH_MAX];
	double t0 = now();

	for (long d = 0; d < ndirs; d++) {
		snprintf(path, sizeof(path), "%s/d%05ld", dir, d);
		if (mkdir(path, 0755) < 0)
			die("mkdir", path);
		size_t base = strlen(path);
		for (long f = 0; f < nfiles; f++) {
			snprintf(path + base, sizeof(path) - base, "/f%07ld", f);
			int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0)
				die("create", path);
			close(fd);
		}
		path[base] = '\0';
	}
	report("mktree", ndirs * nfiles + ndirs, now() - t0, 0);
}

static void do_create(const char *dir, long n, long size)
{
	char path[PATH_MAX];
	char *buf = malloc(size ? size : 1);

	if (!buf)
		die("malloc", "");
	/* A non-zero pattern, so no layer can store the data as a hole. */
	for (long i = 0; i < size; i++)
		buf[i] = (char)('a' + i % 26);

	double t0 = now();
	for (long i = 0; i < n; i++) {
		file_path(path, sizeof(path), dir, i);
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", path);
		for (long off = 0; off < size;) {
			ssize_t w = write(fd, buf + off, size - off);
			if (w < 0)
				die("write", path);
			off += w;
		}
		if (close(fd) < 0)
			die("close", path);
	}
	double t = now() - t0;

	free(buf);
	report("create", n, t, (long long)n * size);
}

static void do_stat(const char *dir, long n)
{
	char path[PATH_MAX];
	struct stat st;
	double t0 = now();

	for (long i = 0; i < n; i++) {
		file_path(path, sizeof(path), dir, i);
		if (stat(path, &st) < 0)
			die("stat", path);
	}
	report("stat", n, now() - t0, 0);
}

static void do_read(const char *dir, long n, long size)
{
	char path[PATH_MAX];
	static char buf[1 << 16];
	long long total = 0;
	double t0 = now();

	for (long i = 0; i < n; i++) {
		long long got = 0;

		file_path(path, sizeof(path), dir, i);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", path);
		for (;;) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0)
				die("read", path);
			if (r == 0)
				break;
			got += r;
		}
		if (close(fd) < 0)
			die("close", path);
		if (got != size) {
			fprintf(stderr, "fsops: %s: read %lld bytes, expected %ld\n", path, got, size);
			exit(1);
		}
		total += got;
	}
	report("read", n, now() - t0, total);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "mktree"))
		do_mktree(argv[2], parse_count(argv[3], "NDIRS"), parse_count(argv[4], "NFILES"));
	else if (argc >= 5 && !strcmp(argv[1], "create"))
		do_create(argv[2], parse_count(argv[3], "N"), parse_count(argv[4], "SIZE"));
	else if (argc >= 4 && !strcmp(argv[1], "stat"))
		do_stat(argv[2], parse_count(argv[3], "N"));
	else if (argc >= 5 && !strcmp(argv[1], "read"))
		do_read(argv[2], parse_count(argv[3], "N"), parse_count(argv[4], "SIZE"));
	else {
		fprintf(stderr, "usage: fsops mktree DIR NDIRS NFILES | create DIR N SIZE |"
				" stat DIR N | read DIR N SIZE\n");
		return 2;
	}
	return 0;
}
