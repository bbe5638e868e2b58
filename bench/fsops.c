/**
 * @file fsops.c
 * Tight metadata/small-file loops for bench/run-passthrough and bench/run-riak.
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
 *   fsops lat    DIR N SIZE US      foreground latency (run-riak's drain rows): per file, one
 *                                   stat() and one open + read to EOF + close, each timed on
 *                                   its own; a file every US microseconds (paced on an absolute
 *                                   clock; 0 = back to back). Prints the percentiles of both in
 *                                   microseconds instead of a rate.
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of n sorted samples (nearest rank). */
static double quantile(const double *v, long n, double q)
{
	long i = (long)(q * (double)n + 0.999999) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void print_lat(const char *name, double *v, long n)
{
	double sum = 0;

	qsort(v, n, sizeof(*v), cmp_double);
	for (long i = 0; i < n; i++)
		sum += v[i];
	printf("\"%s\":{\"count\":%ld,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
	       "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}",
	       name, n, n ? sum / n : 0.0, quantile(v, n, 0.50), quantile(v, n, 0.90),
	       quantile(v, n, 0.99), quantile(v, n, 0.999), n ? v[n - 1] : 0.0);
}

static void do_lat(const char *dir, long n, long size, long interval_us)
{
	char path[PATH_MAX];
	static char buf[1 << 16];
	struct stat st;
	struct timespec next;
	double *stat_us = malloc(sizeof(double) * (n ? n : 1));
	double *read_us = malloc(sizeof(double) * (n ? n : 1));
	long late = 0;

	if (!stat_us || !read_us)
		die("malloc", "");
	clock_gettime(CLOCK_MONOTONIC, &next);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		long long got = 0;

		file_path(path, sizeof(path), dir, i);
		double a = now();
		if (stat(path, &st) < 0)
			die("stat", path);
		double b = now();
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
		double c = now();
		if (got != size || st.st_size != size) {
			fprintf(stderr, "fsops: %s: read %lld bytes (stat %lld), expected %ld\n", path,
				got, (long long)st.st_size, size);
			exit(1);
		}
		stat_us[i] = (b - a) * 1e6;
		read_us[i] = (c - b) * 1e6;
		if (interval_us > 0) {
			next.tv_nsec += interval_us * 1000;
			while (next.tv_nsec >= 1000000000) {
				next.tv_nsec -= 1000000000;
				next.tv_sec++;
			}
			struct timespec cur;
			clock_gettime(CLOCK_MONOTONIC, &cur);
			if (cur.tv_sec > next.tv_sec ||
			    (cur.tv_sec == next.tv_sec && cur.tv_nsec >= next.tv_nsec))
				late++; /* no sleep: the next file starts at once */
			else
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
	}
	double t = now() - t0;

	printf("{\"op\":\"lat\",\"count\":%ld,\"seconds\":%.9f,\"interval_us\":%ld,"
	       "\"late\":%ld,", n, t, interval_us, late);
	print_lat("stat", stat_us, n);
	printf(",");
	print_lat("read", read_us, n);
	printf("}\n");
	free(stat_us);
	free(read_us);
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
	else if (argc >= 6 && !strcmp(argv[1], "lat"))
		do_lat(argv[2], parse_count(argv[3], "N"), parse_count(argv[4], "SIZE"),
		       parse_count(argv[5], "US"));
	else {
		fprintf(stderr, "usage: fsops mktree DIR NDIRS NFILES | create DIR N SIZE |"
				" stat DIR N | read DIR N SIZE | lat DIR N SIZE US\n");
		return 2;
	}
	return 0;
}
