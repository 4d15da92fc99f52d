/*
 * faultlock measurement harness: page faults that wait for I/O on the running Linux kernel.
 *
 * Built at run time by faultlock.measure.build with the system C compiler:
 *     cc -O2 -pthread -o faultlock-harness harness.c
 *
 * Subcommands (every result is one JSON object per line on stdout):
 *
 *   mkfile --path P --pages N [--seed S]
 *       Create a data file of N 4 KiB pages of pseudo-random bytes on a disk-backed file system
 *       (refuses tmpfs and ramfs), fsync it. The caller removes it.
 *
 *   device --file P --depths 1,4,16 [--seconds 0.5] [--max-reads N]
 *       Read latency of the device: 4 KiB O_DIRECT preads at random aligned offsets of the file,
 *       at each queue depth (one thread per read in flight).
 *
 *   wakeup [--rounds N] [--gap-us U]
 *       Wake-up latency: one thread sleeps on a futex, another wakes it after a random gap; the
 *       time from just before FUTEX_WAKE to the sleeper running again, N times.
 *
 *   rounds --dir D --threads T --file-pages N [--filled 0|1] [--evict 0|1] [--seconds S]
 *          [--warmup S] [--warmup-rounds R] [--cgroup-procs F] [--stat-files F1,F2]
 *          [--noise-threads K --noise-spin-ns X --noise-sleep-ns Y] [--pin 0|1]
 *       The memcg refault loop: T threads, each with a file of its own of N pages (sparse, made
 *       with ftruncate and never written, or written with --filled), each looping mmap(PROT_READ,
 *       MAP_SHARED) / touch every page in order / munmap. The process joins the cgroup whose
 *       cgroup.procs is F after making the files; after a warm-up (every thread R rounds and S
 *       seconds) two snapshots S seconds apart give getrusage, each thread's pages and rounds and
 *       the cgroup files F1,F2 (memory.stat, memory.events). --evict: posix_fadvise(DONTNEED)
 *       after every round (the cold reference without a limit; its CPU is reported apart).
 *       Noise: K threads that spin X ns and sleep Y ns, nice -10 with a 10 us slice request;
 *       --pin puts thread i and noise thread i on CPU i mod ncpus.
 *
 *   faults --file P --threads T --group G --pages N [options]
 *       Evict the file (posix_fadvise DONTNEED, checked with mincore), map it shared and
 *       read-only with MADV_RANDOM, and let T reader threads in groups of G walk it: every member
 *       of group g touches the same N pages (region g of the file) in the same order. Each first
 *       touch is timed and its per-thread getrusage(RUSAGE_THREAD) deltas (major and minor
 *       faults, voluntary and involuntary context switches) recorded. Optional writers take
 *       mmap_lock for write at a set rate: threads of this process (--writer-where thread), or
 *       of a separate process with its own mm (--writer-where process: the CPU-load control).
 *
 * Bounds: --max-seconds stops the walk (default 20 s); the file is never larger than the caller
 * made it; nothing is written but the data file, which mkfile creates and the caller removes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_VERSION 4
#define PAGE 4096UL
#define TMPFS_MAGIC_ 0x01021994L
#define RAMFS_MAGIC_ 0x858458f6L
#define WSAMP 16384          /* reservoir of writer operation times kept per writer */
#define DSAMP 20000          /* reservoir of device read times kept per depth */
#define MAX_THREADS 1024
#define MAX_WRITERS 64
/* log-binned latency histograms: LBINS_PER_DECADE bins per decade from 1 us to 1 s (the same
   edges as faultlock/measure/tails.py LATENCY_BIN_EDGES); below 1 us counts in bin 0, 1 s and
   above in the last bin */
#define LBINS_PER_DECADE 100
#define LDECADES 6
#define LBINS (LBINS_PER_DECADE * LDECADES)

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("{\"type\":\"error\",\"message\":\"");
    for (const char *p = msg; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        putchar(*p == '\n' ? ' ' : *p);
    }
    printf("\"}\n");
    fflush(stdout);
    exit(2);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t seed_of(uint64_t a, uint64_t b) {
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ (a * 0xBF58476D1CE4E5B9ULL) ^ (b * 0x94D049BB133111EBULL);
    for (int i = 0; i < 4; i++) xorshift(&s);
    return s ? s : 1;
}

static const char *arg(int argc, char **argv, const char *name, const char *dflt) {
    for (int i = 2; i < argc - 1; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return dflt;
}

static long arg_long(int argc, char **argv, const char *name, long dflt, long lo, long hi) {
    const char *v = arg(argc, argv, name, NULL);
    if (!v) return dflt;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) fail("%s=%s is not allowed: an integer in [%ld, %ld]", name, v, lo, hi);
    return x;
}

static double arg_double(int argc, char **argv, const char *name, double dflt, double lo, double hi) {
    const char *v = arg(argc, argv, name, NULL);
    if (!v) return dflt;
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= lo && x <= hi)) fail("%s=%s is not allowed: a number in [%g, %g]", name, v, lo, hi);
    return x;
}

static void print_u32_array(const char *key, const uint32_t *a, long n) {
    printf(",\"%s\":[", key);
    for (long i = 0; i < n; i++) printf(i ? ",%u" : "%u", a[i]);
    putchar(']');
}

static void print_u8_array(const char *key, const uint8_t *a, long n) {
    printf(",\"%s\":[", key);
    for (long i = 0; i < n; i++) printf(i ? ",%u" : "%u", a[i]);
    putchar(']');
}

/* lower edges (ns) of the log-spaced latency bins: 10^(3 + d) x 10^(j / 100), each decade's first
   edge exact so that a time of exactly 10^k ns falls in the same bin as in Python */
static double lat_edges_ns[LBINS];

static void init_lat_edges(void) {
    const double step = 1.0232929922807541;          /* 10^(1/100) */
    double base = 1000.0;
    for (int d = 0; d < LDECADES; d++, base *= 10.0) {
        double e = base;
        for (int j = 0; j < LBINS_PER_DECADE; j++, e *= step) lat_edges_ns[d * LBINS_PER_DECADE + j] = e;
        lat_edges_ns[d * LBINS_PER_DECADE] = base;
    }
}

static int lat_bin_of(uint64_t ns) {                 /* last edge <= ns; clamped to [0, LBINS) */
    double x = (double)ns;
    if (x < lat_edges_ns[1]) return 0;
    int lo = 0, hi = LBINS;                          /* lat_edges_ns[lo] <= x < edge[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (lat_edges_ns[mid] <= x) lo = mid; else hi = mid;
    }
    return lo;
}

static void print_fs(int fd) {
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) fail("fstatfs: %s", strerror(errno));
    printf(",\"fs_magic\":\"0x%lx\"", (unsigned long)sf.f_type);
}

static void check_disk_backed(int fd, const char *path) {
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) fail("fstatfs %s: %s", path, strerror(errno));
    if ((long)sf.f_type == TMPFS_MAGIC_ || (long)sf.f_type == RAMFS_MAGIC_)
        fail("%s is on tmpfs/ramfs (f_type 0x%lx): page faults there never read from a device; "
             "use a directory on a disk-backed file system (--dir)", path, (unsigned long)sf.f_type);
}

static long count_resident(void *map, size_t len) {
    size_t pages = (len + PAGE - 1) / PAGE;
    unsigned char *vec = malloc(pages);
    if (!vec) fail("out of memory");
    if (mincore(map, len, vec) != 0) fail("mincore: %s", strerror(errno));
    long n = 0;
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    free(vec);
    return n;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------------------------ */
/* mkfile                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static int cmd_mkfile(int argc, char **argv) {
    const char *path = arg(argc, argv, "--path", NULL);
    if (!path) fail("mkfile needs --path");
    long pages = arg_long(argc, argv, "--pages", 0, 1, 1L << 20);   /* at most 4 GiB */
    uint64_t s = seed_of(arg_long(argc, argv, "--seed", 1, 0, 1L << 40), 7);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("create %s: %s", path, strerror(errno));
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0 || (long)sf.f_type == TMPFS_MAGIC_ || (long)sf.f_type == RAMFS_MAGIC_) {
        unlink(path);
        check_disk_backed(fd, path);
    }
    if ((uint64_t)sf.f_bavail * sf.f_bsize < (uint64_t)pages * PAGE * 2) {
        unlink(path);
        fail("%s: not enough free space for %ld pages", path, pages);
    }
    const long chunk = 256;          /* 1 MiB writes */
    uint64_t *buf = malloc(chunk * PAGE);
    if (!buf) fail("out of memory");
    uint64_t t0 = now_ns();
    for (long done = 0; done < pages; done += chunk) {
        long n = pages - done < chunk ? pages - done : chunk;
        for (size_t i = 0; i < n * PAGE / 8; i++) buf[i] = xorshift(&s) | 1;  /* never a zero page */
        size_t len = n * PAGE;
        char *p = (char *)buf;
        while (len) {
            ssize_t w = write(fd, p, len);
            if (w < 0) { int e = errno; unlink(path); fail("write %s: %s", path, strerror(e)); }
            p += w;
            len -= w;
        }
    }
    if (fsync(fd) != 0) { int e = errno; unlink(path); fail("fsync %s: %s", path, strerror(e)); }
    printf("{\"type\":\"file\",\"path\":\"%s\",\"pages\":%ld,\"write_ns\":%" PRIu64, path, pages, now_ns() - t0);
    print_fs(fd);
    printf("}\n");
    close(fd);
    free(buf);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* device: O_DIRECT read latency by queue depth                                               */
/* ------------------------------------------------------------------------------------------ */

struct dev_arg {
    int fd;
    long pages;
    uint64_t deadline, seed;
    long max_reads;
    atomic_long *reads_left;
    uint32_t *samples;     /* reservoir shared by the depth's threads (slot = own stripe) */
    long stripe, kept, seen;
    uint64_t sum_ns;
    int error;
    pthread_barrier_t *barrier;
};

static void *dev_thread(void *p) {
    struct dev_arg *a = p;
    void *buf;
    if (posix_memalign(&buf, PAGE, PAGE)) { a->error = ENOMEM; return NULL; }
    uint64_t s = a->seed;
    pthread_barrier_wait(a->barrier);
    while (now_ns() < a->deadline && atomic_fetch_sub(a->reads_left, 1) > 0) {
        off_t off = (off_t)(xorshift(&s) % a->pages) * PAGE;
        uint64_t t0 = now_ns();
        ssize_t r = pread(a->fd, buf, PAGE, off);
        uint64_t dt = now_ns() - t0;
        if (r != (ssize_t)PAGE) { a->error = r < 0 ? errno : EIO; break; }
        a->sum_ns += dt;
        a->seen++;
        if (a->kept < a->stripe) a->samples[a->kept++] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
        else {
            uint64_t j = xorshift(&s) % (uint64_t)a->seen;
            if ((long)j < a->stripe) a->samples[j] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
        }
    }
    free(buf);
    return NULL;
}

static int cmd_device(int argc, char **argv) {
    const char *path = arg(argc, argv, "--file", NULL);
    if (!path) fail("device needs --file");
    const char *depths = arg(argc, argv, "--depths", "1");
    double seconds = arg_double(argc, argv, "--seconds", 0.5, 0.01, 30);
    long max_reads = arg_long(argc, argv, "--max-reads", 200000, 1, 100000000);
    uint64_t seed = arg_long(argc, argv, "--seed", 1, 0, 1L << 40);
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) fail("open %s with O_DIRECT: %s", path, strerror(errno));
    check_disk_backed(fd, path);
    struct stat st;
    fstat(fd, &st);
    long pages = st.st_size / PAGE;
    if (pages < 1) fail("%s is empty", path);
    char list[256];
    snprintf(list, sizeof list, "%s", depths);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        long depth = strtol(tok, NULL, 10);
        if (depth < 1 || depth > 256) fail("--depths: %s is not a depth in [1, 256]", tok);
        struct dev_arg *args = calloc(depth, sizeof *args);
        pthread_t *tids = calloc(depth, sizeof *tids);
        uint32_t *samples = calloc(DSAMP, sizeof *samples);
        atomic_long left = max_reads;
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, depth + 1);
        uint64_t start = now_ns();
        long stripe = DSAMP / depth;
        for (long i = 0; i < depth; i++) {
            args[i] = (struct dev_arg){.fd = fd, .pages = pages, .seed = seed_of(seed * 1000 + depth, i),
                                       .reads_left = &left, .samples = samples + i * stripe,
                                       .stripe = stripe, .barrier = &barrier,
                                       .deadline = start + (uint64_t)(seconds * 1e9) + 1000000000ULL};
            pthread_create(&tids[i], NULL, dev_thread, &args[i]);
        }
        start = now_ns();
        for (long i = 0; i < depth; i++) args[i].deadline = start + (uint64_t)(seconds * 1e9);
        pthread_barrier_wait(&barrier);
        for (long i = 0; i < depth; i++) pthread_join(tids[i], NULL);
        uint64_t wall = now_ns() - start;
        long reads = 0, kept = 0;
        uint64_t sum = 0;
        for (long i = 0; i < depth; i++) {
            if (args[i].error) fail("O_DIRECT pread on %s: %s", path, strerror(args[i].error));
            reads += args[i].seen;
            sum += args[i].sum_ns;
        }
        /* compact the stripes */
        uint32_t *flat = malloc(DSAMP * sizeof *flat);
        for (long i = 0; i < depth; i++)
            for (long j = 0; j < args[i].kept; j++) flat[kept++] = args[i].samples[j];
        printf("{\"type\":\"device\",\"depth\":%ld,\"reads\":%ld,\"wall_ns\":%" PRIu64 ",\"sum_ns\":%" PRIu64,
               depth, reads, wall, sum);
        print_u32_array("lat_ns", flat, kept);
        printf("}\n");
        fflush(stdout);
        pthread_barrier_destroy(&barrier);
        free(flat); free(samples); free(tids); free(args);
    }
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* faults                                                                                      */
/* ------------------------------------------------------------------------------------------ */

enum { W_MMAP = 0, W_MPROTECT = 1 };

struct wstats {                    /* lives in MAP_SHARED memory: written by a child process too */
    uint64_t ops, calls, sum_ns, max_ns, first_ns, last_ns, cpu_ns, failed;
    uint64_t seen;
    uint32_t samples[WSAMP];
    uint32_t hist[LBINS];         /* every operation's time, log-binned (lat_bin_of) */
};

struct shared {
    atomic_int go, stop, child_ready;
    struct wstats w[MAX_WRITERS];
};

struct writer_arg {
    int id, op, calls;
    long pages;
    double rate;                  /* operations per second; 0 = flat out */
    uint64_t deadline_ns;         /* hard stop, in case the parent dies */
    char *region;                 /* populated anon region (mprotect) */
    struct shared *sh;
    pthread_barrier_t *barrier;   /* NULL in the child: wait on sh->go */
};

static void *writer_thread(void *p) {
    struct writer_arg *a = p;
    struct wstats *w = &a->sh->w[a->id];
    uint64_t s = seed_of(99, a->id);
    size_t len = a->pages * PAGE;
    int prot_flip = 0;
    if (a->barrier) pthread_barrier_wait(a->barrier);
    else while (!atomic_load(&a->sh->go)) usleep(50);
    uint64_t period = a->rate > 0 ? (uint64_t)(1e9 / a->rate) : 0;
    uint64_t next = now_ns();
    w->first_ns = next;
    while (!atomic_load_explicit(&a->sh->stop, memory_order_relaxed)) {
        if (a->deadline_ns && now_ns() > a->deadline_ns) break;
        if (period) {
            next += period;
            uint64_t t = now_ns();
            if (next + period < t) next = t;          /* fell behind: no burst to catch up */
            struct timespec ts = {.tv_sec = next / 1000000000ULL, .tv_nsec = next % 1000000000ULL};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
            if (atomic_load_explicit(&a->sh->stop, memory_order_relaxed)) break;
        }
        uint64_t t0 = now_ns();
        for (int c = 0; c < a->calls; c++) {
            if (a->op == W_MMAP) {
                void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m == MAP_FAILED) { w->failed++; continue; }
                if (munmap(m, len) != 0) w->failed++;
            } else {
                prot_flip ^= 1;
                if (mprotect(a->region, len, prot_flip ? PROT_READ : PROT_READ | PROT_WRITE) != 0)
                    w->failed++;
            }
        }
        uint64_t dt = now_ns() - t0;
        w->ops++;
        w->calls += a->calls;
        w->sum_ns += dt;
        if (dt > w->max_ns) w->max_ns = dt;
        w->seen++;
        w->hist[lat_bin_of(dt)]++;
        uint32_t d32 = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
        if (w->seen <= WSAMP) w->samples[w->seen - 1] = d32;
        else {
            uint64_t j = xorshift(&s) % w->seen;
            if (j < WSAMP) w->samples[j] = d32;
        }
    }
    w->last_ns = now_ns();
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    w->cpu_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
                (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
    return NULL;
}

static char *writer_region(int op, long pages) {
    if (op != W_MPROTECT) return NULL;
    size_t len = pages * PAGE;
    /* guard pages on both sides keep the region its own VMA */
    char *g = mmap(NULL, len + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g == MAP_FAILED) fail("mmap writer region: %s", strerror(errno));
    char *r = mmap(g + PAGE, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (r == MAP_FAILED) fail("mmap writer region: %s", strerror(errno));
    madvise(r, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < len; i += PAGE) r[i] = 1;        /* populate: mprotect walks real PTEs */
    return r;
}

struct reader_arg {
    int id, group;
    long npages;
    const uint32_t *order;        /* page indices (in the file) in walk order */
    const char *map;
    long think_ns;
    uint64_t deadline_ns, start_ns;
    pthread_barrier_t *barrier;
    /* results */
    long done;
    uint32_t *lat_ns, *t_us;
    uint8_t *dmaj, *dmin, *dvcsw, *divcsw;
    uint32_t *rqd_ns;
    uint64_t walk_ns, cpu_ns;
    volatile long sink;
};

static inline void spin_ns(long ns) {
    if (ns <= 0) return;
    uint64_t end = now_ns() + ns;
    while (now_ns() < end) {}
}

static inline uint8_t clip8(long x) { return x < 0 ? 0 : x > 255 ? 255 : (uint8_t)x; }

/* This thread's run delay: the second field of /proc/thread-self/schedstat, the time it spent
   runnable but not running, summed by sched_info_arrive() (kernel/sched/stats.h) at each switch-in
   (CONFIG_SCHED_INFO, no schedstats sysctl needed). -1 where the file cannot be read. */
static long long run_delay_ns(int fd) {
    char buf[96];
    if (fd < 0) return -1;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long long exec_ns, delay_ns;
    if (sscanf(buf, "%llu %llu", &exec_ns, &delay_ns) != 2) return -1;
    return (long long)delay_ns;
}

static void *reader_thread(void *p) {
    struct reader_arg *a = p;
    struct rusage r0, r1;
    long sink = 0;
    int sched_fd = a->rqd_ns ? open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC) : -1;
    pthread_barrier_wait(a->barrier);
    uint64_t begin = now_ns();
    for (long i = 0; i < a->npages; i++) {
        spin_ns(a->think_ns);
        long long d0 = run_delay_ns(sched_fd);
        getrusage(RUSAGE_THREAD, &r0);
        uint64_t t0 = now_ns();
        if (t0 > a->deadline_ns) break;
        sink += *(volatile const char *)(a->map + (size_t)a->order[i] * PAGE);
        uint64_t t1 = now_ns();
        getrusage(RUSAGE_THREAD, &r1);
        if (a->rqd_ns) {
            /* the touch's wait for a CPU (two getrusage calls fall inside it, as in majflt) */
            long long d1 = run_delay_ns(sched_fd);
            long long d = d0 >= 0 && d1 >= d0 ? d1 - d0 : -1;
            a->rqd_ns[i] = d < 0 ? UINT32_MAX : d > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)d;
        }
        uint64_t dt = t1 - t0;
        a->lat_ns[i] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
        a->t_us[i] = (uint32_t)((t0 - a->start_ns) / 1000);
        a->dmaj[i] = clip8(r1.ru_majflt - r0.ru_majflt);
        a->dmin[i] = clip8(r1.ru_minflt - r0.ru_minflt);
        a->dvcsw[i] = clip8(r1.ru_nvcsw - r0.ru_nvcsw);
        a->divcsw[i] = clip8(r1.ru_nivcsw - r0.ru_nivcsw);
        a->done = i + 1;
    }
    a->walk_ns = now_ns() - begin;
    getrusage(RUSAGE_THREAD, &r1);
    a->cpu_ns = (r1.ru_utime.tv_sec + r1.ru_stime.tv_sec) * 1000000000ULL +
                (r1.ru_utime.tv_usec + r1.ru_stime.tv_usec) * 1000ULL;
    a->sink = sink;
    if (sched_fd >= 0) close(sched_fd);
    return NULL;
}

static void emit_writers(struct shared *sh, int n, const char *where, int op, int calls, long pages,
                         double rate) {
    for (int i = 0; i < n; i++) {
        struct wstats *w = &sh->w[i];
        long kept = w->seen < WSAMP ? (long)w->seen : WSAMP;
        qsort(w->samples, kept, sizeof w->samples[0], cmp_u32);
        printf("{\"type\":\"writer\",\"id\":%d,\"where\":\"%s\",\"op\":\"%s\",\"calls_per_op\":%d,"
               "\"write_locks_per_op\":%d,\"pages\":%ld,\"rate\":%g,\"ops\":%" PRIu64 ",\"failed\":%" PRIu64
               ",\"active_ns\":%" PRIu64 ",\"sum_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64 ",\"cpu_ns\":%" PRIu64,
               i, where, op == W_MMAP ? "mmap" : "mprotect", calls, op == W_MMAP ? 2 * calls : calls,
               pages, rate, w->ops, w->failed, w->last_ns > w->first_ns ? w->last_ns - w->first_ns : 0,
               w->sum_ns, w->max_ns, w->cpu_ns);
        print_u32_array("op_ns_sorted_sample", w->samples, kept);
        print_u32_array("op_ns_hist", w->hist, LBINS);
        printf("}\n");
    }
}

static int cmd_faults(int argc, char **argv) {
    const char *path = arg(argc, argv, "--file", NULL);
    if (!path) fail("faults needs --file");
    int T = arg_long(argc, argv, "--threads", 1, 1, MAX_THREADS);
    int G = arg_long(argc, argv, "--group", 1, 1, MAX_THREADS);
    long N = arg_long(argc, argv, "--pages", 1024, 1, 1L << 20);
    const char *order_kind = arg(argc, argv, "--order", "random");
    uint64_t seed = arg_long(argc, argv, "--seed", 1, 0, 1L << 40);
    long think_ns = arg_long(argc, argv, "--think-ns", 0, 0, 100000000);
    double max_seconds = arg_double(argc, argv, "--max-seconds", 20, 0.01, 600);
    int W = arg_long(argc, argv, "--writers", 0, 0, MAX_WRITERS);
    const char *where = arg(argc, argv, "--writer-where", "thread");
    const char *opname = arg(argc, argv, "--writer-op", "mmap");
    double wrate = arg_double(argc, argv, "--writer-rate", 0, 0, 1e7);
    long wpages = arg_long(argc, argv, "--writer-pages", 1, 1, 1L << 18);
    int wcalls = arg_long(argc, argv, "--writer-calls", 1, 1, 1000);
    int minor_pass = arg_long(argc, argv, "--minor-pass", 1, 0, 1);
    if (T % G) fail("--threads %d is not a multiple of --group %d", T, G);
    if (strcmp(order_kind, "random") && strcmp(order_kind, "sequential"))
        fail("--order %s is not allowed: random or sequential", order_kind);
    int in_process = strcmp(where, "thread") == 0;
    if (!in_process && strcmp(where, "process")) fail("--writer-where %s: thread or process", where);
    int op = strcmp(opname, "mmap") == 0 ? W_MMAP : strcmp(opname, "mprotect") == 0 ? W_MPROTECT : -1;
    if (op < 0) fail("--writer-op %s: mmap or mprotect", opname);
    int groups = T / G;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open %s: %s", path, strerror(errno));
    check_disk_backed(fd, path);
    struct stat st;
    fstat(fd, &st);
    long file_pages = st.st_size / PAGE;
    if ((long)groups * N > file_pages)
        fail("%d groups x %ld pages need %ld pages; the file has %ld", groups, N, groups * N, file_pages);
    size_t len = (size_t)groups * N * PAGE;

    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) fail("mmap shared: %s", strerror(errno));
    memset(sh, 0, sizeof *sh);

    /* The CPU-load control: the same writers in a process with its own mm (fork before threads). */
    pid_t child = -1;
    if (W && !in_process) {
        fflush(stdout);
        child = fork();
        if (child < 0) fail("fork: %s", strerror(errno));
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            /* a name of its own (inherited by its threads): a traced run filters this process's
               mmap_lock events out in the kernel (tracing.py CONTROL_WRITER_COMM), since a
               flat-out writer emits ~0.5 million a second that the measurement does not use */
            prctl(PR_SET_NAME, "fl-ctl-writer");
            close(fd);
            char *region = writer_region(op, wpages);
            pthread_t wt[MAX_WRITERS];
            struct writer_arg wa[MAX_WRITERS];
            for (int i = 0; i < W; i++) {
                wa[i] = (struct writer_arg){.id = i, .op = op, .calls = wcalls, .pages = wpages,
                                            .rate = wrate, .region = region, .sh = sh,
                                            .deadline_ns = now_ns() + (uint64_t)((max_seconds + 10) * 1e9)};
                pthread_create(&wt[i], NULL, writer_thread, &wa[i]);
            }
            atomic_store(&sh->child_ready, 1);
            for (int i = 0; i < W; i++) pthread_join(wt[i], NULL);
            _exit(0);
        }
        alarm((unsigned)max_seconds + 30);   /* a stuck parent must not leave the child running */
    }

    /* walk orders: one permutation per group, shared by its members */
    uint32_t *orders = malloc((size_t)groups * N * sizeof *orders);
    for (int g = 0; g < groups; g++) {
        uint32_t *o = orders + (size_t)g * N;
        for (long i = 0; i < N; i++) o[i] = (uint32_t)(g * N + i);
        if (order_kind[0] == 'r') {
            uint64_t s = seed_of(seed, g + 1);
            for (long i = N - 1; i > 0; i--) {
                long j = xorshift(&s) % (i + 1);
                uint32_t t = o[i]; o[i] = o[j]; o[j] = t;
            }
        }
    }

    /* evict, map, check */
    long resident = -1;
    int attempts = 0;
    char *map = NULL;
    for (attempts = 1; attempts <= 5; attempts++) {
        if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) fail("posix_fadvise: %s", strerror(errno));
        map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) fail("mmap %s: %s", path, strerror(errno));
        resident = count_resident(map, len);
        if (resident == 0) break;
        munmap(map, len);
        usleep(20000);
    }
    if (resident != 0) fail("%ld pages of %s stay resident after posix_fadvise(DONTNEED)", resident, path);
    if (madvise(map, len, MADV_RANDOM) != 0) fail("madvise(MADV_RANDOM): %s", strerror(errno));
    if (madvise(map, len, MADV_NOHUGEPAGE) != 0) { /* not fatal: file THP may be off */ }

    char *region = (W && in_process) ? writer_region(op, wpages) : NULL;
    if (child > 0) while (!atomic_load(&sh->child_ready)) usleep(100);

    pthread_barrier_t barrier;
    int parties = T + 1 + (in_process ? W : 0);
    pthread_barrier_init(&barrier, NULL, parties);
    struct reader_arg *ra = calloc(T, sizeof *ra);
    pthread_t *rt = calloc(T, sizeof *rt);
    uint64_t start = now_ns();
    for (int i = 0; i < T; i++) {
        struct reader_arg *a = &ra[i];
        a->id = i;
        a->group = i / G;
        a->npages = N;
        a->order = orders + (size_t)a->group * N;
        a->map = map;
        a->think_ns = think_ns;
        a->barrier = &barrier;
        a->lat_ns = calloc(N, 4); a->t_us = calloc(N, 4);
        a->dmaj = calloc(N, 1); a->dmin = calloc(N, 1); a->dvcsw = calloc(N, 1); a->divcsw = calloc(N, 1);
        a->rqd_ns = calloc(N, 4);
        if (pthread_create(&rt[i], NULL, reader_thread, a)) fail("pthread_create: %s", strerror(errno));
    }
    pthread_t wt[MAX_WRITERS];
    struct writer_arg wa[MAX_WRITERS];
    if (in_process)
        for (int i = 0; i < W; i++) {
            wa[i] = (struct writer_arg){.id = i, .op = op, .calls = wcalls, .pages = wpages, .rate = wrate,
                                        .region = region, .sh = sh, .barrier = &barrier};
            pthread_create(&wt[i], NULL, writer_thread, &wa[i]);
        }
    start = now_ns();
    for (int i = 0; i < T; i++) { ra[i].start_ns = start; ra[i].deadline_ns = start + (uint64_t)(max_seconds * 1e9); }
    atomic_store(&sh->go, 1);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < T; i++) pthread_join(rt[i], NULL);
    uint64_t wall = now_ns() - start;
    atomic_store(&sh->stop, 1);
    if (in_process) for (int i = 0; i < W; i++) pthread_join(wt[i], NULL);
    if (child > 0) {
        int status;
        waitpid(child, &status, 0);
        alarm(0);
    }
    long resident_after = count_resident(map, len);
    int timed_out = 0;
    for (int i = 0; i < T; i++) timed_out |= ra[i].done < N;

    struct utsname u;
    uname(&u);
    printf("{\"type\":\"run\",\"harness_version\":%d,\"kernel\":\"%s\",\"threads\":%d,\"group\":%d,"
           "\"groups\":%d,\"pages\":%ld,\"order\":\"%s\",\"seed\":%" PRIu64 ",\"think_ns\":%ld,"
           "\"writers\":%d,\"writer_where\":\"%s\",\"writer_op\":\"%s\",\"writer_rate\":%g,"
           "\"writer_pages\":%ld,\"writer_calls\":%d,\"wall_ns\":%" PRIu64 ",\"resident_before\":%ld,"
           "\"evict_attempts\":%d,\"resident_after\":%ld,\"timed_out\":%s,\"max_seconds\":%g,"
           "\"ncpus_online\":%ld,\"pid\":%d,\"start_mono_ns\":%" PRIu64 ",\"end_mono_ns\":%" PRIu64,
           HARNESS_VERSION, u.release, T, G, groups, N, order_kind, seed, think_ns, W, where, opname,
           wrate, wpages, wcalls, wall, resident, attempts, resident_after, timed_out ? "true" : "false",
           max_seconds, sysconf(_SC_NPROCESSORS_ONLN), (int)getpid(), start, start + wall);
    print_fs(fd);
    printf("}\n");
    for (int i = 0; i < T; i++) {
        struct reader_arg *a = &ra[i];
        printf("{\"type\":\"touches\",\"thread\":%d,\"group\":%d,\"done\":%ld,\"walk_ns\":%" PRIu64
               ",\"cpu_ns\":%" PRIu64, i, a->group, a->done, a->walk_ns, a->cpu_ns);
        print_u32_array("lat_ns", a->lat_ns, a->done);
        print_u32_array("t_us", a->t_us, a->done);
        print_u8_array("majflt", a->dmaj, a->done);
        print_u8_array("minflt", a->dmin, a->done);
        print_u8_array("nvcsw", a->dvcsw, a->done);
        print_u8_array("nivcsw", a->divcsw, a->done);
        if (a->rqd_ns) print_u32_array("rqd_ns", a->rqd_ns, a->done);
        printf("}\n");
    }
    if (W) emit_writers(sh, W, where, op, wcalls, wpages, wrate);

    /* Minor-fault pass: zap the PTEs of group 0's region (the folios stay in the page cache) and
       walk it again with one thread: every fault is minor and waits for nobody. */
    if (minor_pass) {
        char *r0 = map + (size_t)0 * N * PAGE;
        if (madvise(r0, N * PAGE, MADV_DONTNEED) != 0) fail("madvise(MADV_DONTNEED): %s", strerror(errno));
        long cached = count_resident(r0, N * PAGE);
        struct reader_arg m = {.id = 0, .group = 0, .npages = N, .order = orders, .map = map};
        pthread_barrier_t b1;
        pthread_barrier_init(&b1, NULL, 1);
        m.barrier = &b1;
        m.lat_ns = calloc(N, 4); m.t_us = calloc(N, 4);
        m.dmaj = calloc(N, 1); m.dmin = calloc(N, 1); m.dvcsw = calloc(N, 1); m.divcsw = calloc(N, 1);
        m.start_ns = now_ns();
        m.deadline_ns = m.start_ns + 5000000000ULL;
        reader_thread(&m);
        printf("{\"type\":\"minor_pass\",\"cached_before\":%ld,\"done\":%ld,\"walk_ns\":%" PRIu64, cached,
               m.done, m.walk_ns);
        print_u32_array("lat_ns", m.lat_ns, m.done);
        print_u8_array("majflt", m.dmaj, m.done);
        print_u8_array("minflt", m.dmin, m.done);
        print_u8_array("nvcsw", m.dvcsw, m.done);
        print_u8_array("nivcsw", m.divcsw, m.done);
        printf("}\n");
    }
    munmap(map, len);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* wakeup: futex wake-to-run latency                                                           */
/* ------------------------------------------------------------------------------------------ */

#include <linux/futex.h>
#include <sys/syscall.h>

struct wake_shared {
    _Atomic uint32_t word;
    _Atomic uint64_t woke_at;
    long rounds;
    uint32_t *lat;
    int done;
};

static void *wake_sleeper(void *p) {
    struct wake_shared *w = p;
    for (long i = 0; i < w->rounds; i++) {
        uint32_t want = (uint32_t)i;
        while (atomic_load(&w->word) == want)
            syscall(SYS_futex, &w->word, FUTEX_WAIT_PRIVATE, want, NULL, NULL, 0);
        uint64_t t = now_ns() - atomic_load(&w->woke_at);
        w->lat[i] = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
    }
    return NULL;
}

static int cmd_wakeup(int argc, char **argv) {
    long rounds = arg_long(argc, argv, "--rounds", 2000, 1, 1000000);
    long gap_us = arg_long(argc, argv, "--gap-us", 100, 1, 100000);
    struct wake_shared w = {.rounds = rounds, .lat = calloc(rounds, sizeof(uint32_t))};
    pthread_t t;
    pthread_create(&t, NULL, wake_sleeper, &w);
    uint64_t s = seed_of(5, 5);
    for (long i = 0; i < rounds; i++) {
        /* let the sleeper fall asleep: a random gap of gap_us/2 .. 3*gap_us/2 */
        long gap = gap_us / 2 + (long)(xorshift(&s) % (uint64_t)gap_us);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = gap * 1000};
        nanosleep(&ts, NULL);
        atomic_store(&w.woke_at, now_ns());
        atomic_store(&w.word, (uint32_t)(i + 1));
        syscall(SYS_futex, &w.word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        while (1) {               /* wait until the sleeper took its sample */
            if (i + 1 >= rounds) break;
            if (w.lat[i]) break;
            sched_yield();
        }
    }
    pthread_join(t, NULL);
    printf("{\"type\":\"wakeup\",\"rounds\":%ld,\"gap_us\":%ld", rounds, gap_us);
    print_u32_array("lat_ns", w.lat, rounds);
    printf("}\n");
    free(w.lat);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* rounds: the memcg refault loop (threads that map, walk and unmap a file of their own)        */
/* ------------------------------------------------------------------------------------------ */

#define MAX_STAT_FILES 4

struct round_arg {
    /* counters the main thread samples while the thread runs: own cache lines, relaxed */
    _Alignas(64) _Atomic uint64_t pages;     /* pages touched, over every round */
    _Atomic uint64_t rounds;                 /* completed rounds (mmap, walk, munmap) */
    uint64_t evict_cpu_ns;                   /* thread CPU spent in posix_fadvise(DONTNEED) */
    uint64_t munmap_cpu_ns, mmap_cpu_ns;     /* thread CPU in munmap and mmap, every round */
    uint64_t unmapped_rounds;
    int id, fd, evict, cpu, error;
    long file_pages;
    pid_t tid;
    _Atomic int *stop;
    pthread_barrier_t *barrier;
};

struct noise_arg {
    _Alignas(64) _Atomic uint64_t loops;
    long spin_ns, sleep_ns;
    int id, cpu, nice_ok, started;
    pid_t tid;
    pthread_t self;
    _Atomic int *stop;
    pthread_barrier_t *barrier;
};

static inline uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void pin_to(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *round_thread(void *p) {
    struct round_arg *a = p;
    a->tid = (pid_t)syscall(SYS_gettid);
    pin_to(a->cpu);
    size_t len = (size_t)a->file_pages * PAGE;
    pthread_barrier_wait(a->barrier);
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        uint64_t c0 = thread_cpu_ns();
        const char *map = mmap(NULL, len, PROT_READ, MAP_SHARED, a->fd, 0);
        uint64_t c1 = thread_cpu_ns();
        if (map == MAP_FAILED) { a->error = errno; break; }
        a->mmap_cpu_ns += c1 - c0;
        long sink = 0, i;
        uint64_t done = atomic_load_explicit(&a->pages, memory_order_relaxed);
        for (i = 0; i < a->file_pages; i++) {
            sink += *(volatile const char *)(map + (size_t)i * PAGE);
            atomic_store_explicit(&a->pages, ++done, memory_order_relaxed);
            if ((i & 63) == 63 && atomic_load_explicit(a->stop, memory_order_relaxed)) { i++; break; }
        }
        (void)sink;
        c0 = thread_cpu_ns();
        munmap((void *)map, len);
        c1 = thread_cpu_ns();
        if (i < a->file_pages) break;            /* stopped inside the walk: not a round */
        a->munmap_cpu_ns += c1 - c0;
        a->unmapped_rounds++;
        if (a->evict) {                          /* the cold reference: drop the file's cache */
            c0 = thread_cpu_ns();
            posix_fadvise(a->fd, 0, 0, POSIX_FADV_DONTNEED);
            a->evict_cpu_ns += thread_cpu_ns() - c0;
        }
        atomic_fetch_add_explicit(&a->rounds, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *noise_thread(void *p) {
    struct noise_arg *a = p;
    a->tid = (pid_t)syscall(SYS_gettid);
    a->self = pthread_self();
    a->started = 1;
    pin_to(a->cpu);
    /* like the published noise variant: nice -10 and a 10 us slice request (sched_setattr) */
    struct { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio;
             uint64_t runtime, deadline, period; } attr = {.size = 48, .nice = -10, .runtime = 10000};
    a->nice_ok = syscall(SYS_sched_setattr, 0, &attr, 0) == 0 ? 2 :
                 setpriority(PRIO_PROCESS, a->tid, -10) == 0 ? 1 : 0;
    struct timespec nap = {.tv_sec = 0, .tv_nsec = a->sleep_ns};
    pthread_barrier_wait(a->barrier);
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        spin_ns(a->spin_ns);
        if (a->sleep_ns) nanosleep(&nap, NULL);
        atomic_fetch_add_explicit(&a->loops, 1, memory_order_relaxed);
    }
    return NULL;
}

static void print_stat_file(const char *path) {
    /* "key value" lines of a cgroup file (memory.stat, memory.events) as a JSON object */
    const char *base = strrchr(path, '/');
    printf(",\"%s\":{", base ? base + 1 : path);
    FILE *f = fopen(path, "r");
    if (!f) fail("read %s: %s", path, strerror(errno));
    char key[128];
    unsigned long long value;
    int n = 0;
    while (fscanf(f, "%127s %llu", key, &value) == 2) printf(n++ ? ",\"%s\":%llu" : "\"%s\":%llu", key, value);
    fclose(f);
    putchar('}');
}

static uint64_t tv_ns(struct timeval tv) { return tv.tv_sec * 1000000000ULL + tv.tv_usec * 1000ULL; }

static void snapshot(const char *name, struct round_arg *ra, int T, struct noise_arg *na, int K,
                     char stat_files[][512], int nstat, uint64_t t0) {
    struct rusage ru;
    uint64_t now = now_ns();
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"type\":\"snapshot\",\"name\":\"%s\",\"t_ns\":%" PRIu64 ",\"utime_ns\":%" PRIu64
           ",\"stime_ns\":%" PRIu64 ",\"majflt\":%ld,\"minflt\":%ld,\"nvcsw\":%ld,\"nivcsw\":%ld",
           name, now - t0, tv_ns(ru.ru_utime), tv_ns(ru.ru_stime), ru.ru_majflt, ru.ru_minflt,
           ru.ru_nvcsw, ru.ru_nivcsw);
    printf(",\"pages\":[");
    for (int i = 0; i < T; i++) printf(i ? ",%" PRIu64 : "%" PRIu64, atomic_load(&ra[i].pages));
    printf("],\"rounds\":[");
    for (int i = 0; i < T; i++) printf(i ? ",%" PRIu64 : "%" PRIu64, atomic_load(&ra[i].rounds));
    printf("],\"noise_loops\":[");
    for (int i = 0; i < K; i++) printf(i ? ",%" PRIu64 : "%" PRIu64, atomic_load(&na[i].loops));
    printf("],\"noise_cpu_ns\":[");
    for (int i = 0; i < K; i++) {              /* another thread's CPU clock, read from here */
        clockid_t cid;
        struct timespec ts = {0, 0};
        if (na[i].started && pthread_getcpuclockid(na[i].self, &cid) == 0) clock_gettime(cid, &ts);
        printf(i ? ",%" PRIu64 : "%" PRIu64, (uint64_t)(ts.tv_sec * 1000000000LL + ts.tv_nsec));
    }
    putchar(']');
    /* the machine's CPU time (USER_HZ ticks: user nice system idle iowait irq softirq steal):
       how much the other tenants used during the window */
    printf(",\"proc_stat_cpu\":[");
    FILE *ps = fopen("/proc/stat", "r");
    unsigned long long tick;
    int nt = 0;
    if (ps && fscanf(ps, "cpu ") == 0)
        while (nt < 8 && fscanf(ps, "%llu", &tick) == 1) printf(nt++ ? ",%llu" : "%llu", tick);
    if (ps) fclose(ps);
    putchar(']');
    for (int s = 0; s < nstat; s++) print_stat_file(stat_files[s]);
    printf("}\n");
    fflush(stdout);
}

static int cmd_rounds(int argc, char **argv) {
    const char *dir = arg(argc, argv, "--dir", NULL);
    if (!dir) fail("rounds needs --dir");
    int T = arg_long(argc, argv, "--threads", 2, 1, MAX_THREADS);
    long N = arg_long(argc, argv, "--file-pages", 4096, 1, 1L << 20);
    int filled = arg_long(argc, argv, "--filled", 0, 0, 1);
    int evict = arg_long(argc, argv, "--evict", 0, 0, 1);
    double seconds = arg_double(argc, argv, "--seconds", 2, 0.01, 600);
    double warmup = arg_double(argc, argv, "--warmup", 0.2, 0, 600);
    double warmup_max = arg_double(argc, argv, "--warmup-max", 30, 0, 600);
    long warmup_rounds = arg_long(argc, argv, "--warmup-rounds", 1, 0, 1000);
    int K = arg_long(argc, argv, "--noise-threads", 0, 0, MAX_THREADS);
    long spin = arg_long(argc, argv, "--noise-spin-ns", 5000, 0, 100000000);
    long nap = arg_long(argc, argv, "--noise-sleep-ns", 50000, 0, 999999999);
    int pin = arg_long(argc, argv, "--pin", K > 0, 0, 1);
    const char *procs = arg(argc, argv, "--cgroup-procs", NULL);
    const char *stats = arg(argc, argv, "--stat-files", "");
    uint64_t seed = arg_long(argc, argv, "--seed", 1, 0, 1L << 40);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char stat_files[MAX_STAT_FILES][512];
    int nstat = 0;
    char list[2048];
    snprintf(list, sizeof list, "%s", stats);
    for (char *tok = strtok(list, ","); tok && nstat < MAX_STAT_FILES; tok = strtok(NULL, ","))
        snprintf(stat_files[nstat++], 512, "%s", tok);

    /* the files: sparse (ftruncate, never written: every fault reads a hole) or written */
    int *fds = calloc(T, sizeof *fds);
    char path[4096];
    uint64_t s = seed_of(seed, 11);
    uint64_t *buf = filled ? malloc(256 * PAGE) : NULL;
    for (int t = 0; t < T; t++) {
        snprintf(path, sizeof path, "%s/rounds-%d", dir, t);
        fds[t] = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fds[t] < 0) fail("create %s: %s", path, strerror(errno));
        unlink(path);                         /* gone from the directory; freed when closed */
        check_disk_backed(fds[t], path);
        if (ftruncate(fds[t], (off_t)N * PAGE) != 0) fail("ftruncate %s: %s", path, strerror(errno));
        if (filled) {
            for (long done = 0; done < N; done += 256) {
                long n = N - done < 256 ? N - done : 256;
                for (size_t i = 0; i < n * PAGE / 8; i++) buf[i] = xorshift(&s) | 1;
                if (pwrite(fds[t], buf, n * PAGE, (off_t)done * PAGE) != (ssize_t)(n * PAGE))
                    fail("write %s: %s", path, strerror(errno));
            }
            if (fsync(fds[t]) != 0) fail("fsync %s: %s", path, strerror(errno));
        }
        posix_fadvise(fds[t], 0, 0, POSIX_FADV_DONTNEED);
    }
    free(buf);
    /* Join the memory cgroup only now: the files' own writes stay out of its counters. */
    if (procs) {
        FILE *f = fopen(procs, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
            fail("join cgroup (%s): %s", procs, strerror(errno));
    }
    long resident = 0;
    for (int t = 0; t < T; t++) {
        posix_fadvise(fds[t], 0, 0, POSIX_FADV_DONTNEED);
        void *m = mmap(NULL, N * PAGE, PROT_READ, MAP_SHARED, fds[t], 0);
        if (m == MAP_FAILED) fail("mmap: %s", strerror(errno));
        resident += count_resident(m, N * PAGE);
        munmap(m, N * PAGE);
    }

    _Atomic int stop = 0;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, T + K + 1);
    struct round_arg *ra = aligned_alloc(64, ((T * sizeof *ra + 63) / 64) * 64);
    struct noise_arg *na = aligned_alloc(64, (((K ? K : 1) * sizeof *na + 63) / 64) * 64);
    memset(ra, 0, T * sizeof *ra);
    memset(na, 0, (K ? K : 1) * sizeof *na);
    pthread_t *rt = calloc(T, sizeof *rt), *nt = calloc(K ? K : 1, sizeof *nt);
    for (int t = 0; t < T; t++) {
        ra[t].id = t; ra[t].fd = fds[t]; ra[t].evict = evict; ra[t].file_pages = N;
        ra[t].cpu = pin ? (int)(t % ncpu) : -1; ra[t].stop = &stop; ra[t].barrier = &barrier;
        if (pthread_create(&rt[t], NULL, round_thread, &ra[t])) fail("pthread_create: %s", strerror(errno));
    }
    for (int k = 0; k < K; k++) {
        na[k].id = k; na[k].spin_ns = spin; na[k].sleep_ns = nap;
        na[k].cpu = pin ? (int)(k % ncpu) : -1; na[k].stop = &stop; na[k].barrier = &barrier;
        if (pthread_create(&nt[k], NULL, noise_thread, &na[k])) fail("pthread_create: %s", strerror(errno));
    }
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&barrier);
    /* warm-up: every thread completes warmup_rounds rounds (the first is cold whatever the
       limit), and at least `warmup` seconds pass; bounded by warmup_max */
    for (;;) {
        uint64_t el = now_ns() - t0;
        int ready = el >= (uint64_t)(warmup * 1e9);
        for (int t = 0; t < T && ready; t++) ready = atomic_load(&ra[t].rounds) >= (uint64_t)warmup_rounds;
        if (ready || el >= (uint64_t)(warmup_max * 1e9)) break;
        int err = 0;
        for (int t = 0; t < T; t++) err |= ra[t].error;
        if (err) break;
        usleep(2000);
    }
    uint64_t w0 = now_ns();
    snapshot("start", ra, T, na, K, stat_files, nstat, t0);
    struct timespec ts = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (time_t)seconds) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {}
    snapshot("end", ra, T, na, K, stat_files, nstat, t0);
    uint64_t w1 = now_ns();
    atomic_store(&stop, 1);
    for (int t = 0; t < T; t++) pthread_join(rt[t], NULL);
    for (int k = 0; k < K; k++) pthread_join(nt[k], NULL);
    for (int t = 0; t < T; t++)
        if (ra[t].error) fail("mmap of a round file: %s", strerror(ra[t].error));
    uint64_t evict_cpu = 0, munmap_cpu = 0, mmap_cpu = 0, unmapped = 0;
    for (int t = 0; t < T; t++) {
        evict_cpu += ra[t].evict_cpu_ns; munmap_cpu += ra[t].munmap_cpu_ns;
        mmap_cpu += ra[t].mmap_cpu_ns; unmapped += ra[t].unmapped_rounds;
    }
    int nice_ok = K ? 2 : -1;
    for (int k = 0; k < K; k++) if (na[k].nice_ok < nice_ok) nice_ok = na[k].nice_ok;
    struct utsname u;
    uname(&u);
    printf("{\"type\":\"rounds\",\"harness_version\":%d,\"kernel\":\"%s\",\"threads\":%d,"
           "\"file_pages\":%ld,\"filled\":%d,\"evict\":%d,\"noise_threads\":%d,\"noise_spin_ns\":%ld,"
           "\"noise_sleep_ns\":%ld,\"noise_priority\":%d,\"pinned\":%d,\"resident_before\":%ld,"
           "\"warmup_ns\":%" PRIu64 ",\"window_ns\":%" PRIu64 ",\"evict_cpu_ns\":%" PRIu64
           ",\"munmap_cpu_ns\":%" PRIu64 ",\"mmap_cpu_ns\":%" PRIu64 ",\"unmapped_rounds\":%" PRIu64
           ",\"ncpus_online\":%ld,\"pid\":%d}\n",
           HARNESS_VERSION, u.release, T, N, filled, evict, K, spin, nap, nice_ok, pin, resident,
           w0 - t0, w1 - w0, evict_cpu, munmap_cpu, mmap_cpu, unmapped, ncpu, (int)getpid());
    for (int t = 0; t < T; t++) close(fds[t]);   /* the unlinked files' page cache is freed */
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    if (argc < 2) fail("usage: faultlock-harness {mkfile|device|faults|wakeup|rounds|version} [options]");
    if (sysconf(_SC_PAGESIZE) != (long)PAGE) fail("page size %ld: the harness assumes 4096", sysconf(_SC_PAGESIZE));
    init_lat_edges();
    if (strcmp(argv[1], "mkfile") == 0) return cmd_mkfile(argc, argv);
    if (strcmp(argv[1], "device") == 0) return cmd_device(argc, argv);
    if (strcmp(argv[1], "faults") == 0) return cmd_faults(argc, argv);
    if (strcmp(argv[1], "wakeup") == 0) return cmd_wakeup(argc, argv);
    if (strcmp(argv[1], "rounds") == 0) return cmd_rounds(argc, argv);
    if (strcmp(argv[1], "version") == 0) {
        printf("{\"type\":\"version\",\"harness_version\":%d}\n", HARNESS_VERSION);
        return 0;
    }
    fail("unknown subcommand %s: mkfile, device, faults, wakeup, rounds or version", argv[1]);
    return 2;
}
