/* Power-cut write log: an LD_PRELOAD shim for tests (tests/support/powercut).
 *
 * Every call that changes a file under $POWERCUT_DIR (one flat directory) is appended to
 * $POWERCUT_LOG before it runs (writes with their data), and every successful fsync/fdatasync
 * after it returns. The files themselves are written normally (that is the page cache); the
 * log lets the harness rebuild what a disk would hold after a power cut: for each file the
 * state at its last fsync, for the directory the entries at its last fsync.
 *
 * Record: u32 type, i32 fd, i64 a, i64 b, u32 len1, u32 len2, then len1 + len2 bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { T_OPEN = 1, T_CLOSE, T_WRITE, T_TRUNC, T_SYNC, T_RENAME, T_UNLINK, T_TRUNCPATH, T_DUP, T_RESULT };
#define MAXFD 65536

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int logfd = -1;
static char dir[PATH_MAX];
static size_t dirlen;
static unsigned char tracked[MAXFD];

#define REAL(name, ret, ...) \
    static ret (*real_##name)(__VA_ARGS__); \
    if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static ssize_t raw_write(int fd, const void *buf, size_t n) {
    static ssize_t (*w)(int, const void *, size_t);
    if (!w) w = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *p = buf;
    while (n) {
        ssize_t k = w(fd, p, n);
        if (k < 0) { if (errno == EINTR) continue; abort(); }
        p += k; n -= (size_t)k;
    }
    return 0;
}

__attribute__((constructor)) static void init(void) {
    const char *d = getenv("POWERCUT_DIR"), *l = getenv("POWERCUT_LOG");
    if (!d || !l) return;
    snprintf(dir, sizeof dir, "%s", d);
    dirlen = strlen(dir);
    while (dirlen > 1 && dir[dirlen - 1] == '/') dir[--dirlen] = 0;
    int (*o)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
    logfd = o(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) abort();
    if (logfd < MAXFD) tracked[logfd] = 0;
}

static void emit(uint32_t type, int fd, int64_t a, int64_t b, const void *p1, uint32_t n1, const void *p2, uint32_t n2) {
    unsigned char hdr[32];
    memcpy(hdr, &type, 4); memcpy(hdr + 4, &fd, 4); memcpy(hdr + 8, &a, 8); memcpy(hdr + 16, &b, 8);
    memcpy(hdr + 24, &n1, 4); memcpy(hdr + 28, &n2, 4);
    /* one buffer so a record is one write(): a kill cannot interleave it with another */
    size_t total = 32 + (size_t)n1 + n2;
    unsigned char *buf = malloc(total);
    if (!buf) abort();
    memcpy(buf, hdr, 32);
    if (n1) memcpy(buf + 32, p1, n1);
    if (n2) memcpy(buf + 32 + n1, p2, n2);
    raw_write(logfd, buf, total);
    free(buf);
}

/* Absolute path of `path` (relative to dirfd) if it is the directory or directly in it. */
static int resolve(int dirfd, const char *path, char *out) {
    if (logfd < 0 || !path) return 0;
    if (path[0] == '/') snprintf(out, PATH_MAX, "%s", path);
    else {
        char base[PATH_MAX / 2];
        if (dirfd == AT_FDCWD) { if (!getcwd(base, sizeof base)) return 0; }
        else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t k = readlink(link, base, sizeof base - 1);
            if (k < 0) return 0;
            base[k] = 0;
        }
        snprintf(out, PATH_MAX, "%s/%s", base, path);
    }
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = 0;
    if (strcmp(out, dir) == 0) return 1;
    return strncmp(out, dir, dirlen) == 0 && out[dirlen] == '/' && !strchr(out + dirlen + 1, '/');
}

static int is_tracked(int fd) { return logfd >= 0 && fd >= 0 && fd < MAXFD && tracked[fd]; }

static int do_open(int dirfd, const char *path, int flags, mode_t mode, int use_at) {
    REAL(openat64, int, int, const char *, int, ...);
    char abs[PATH_MAX];
    if (!resolve(dirfd, path, abs)) return real_openat64(use_at ? dirfd : AT_FDCWD, path, flags, mode);
    pthread_mutex_lock(&mu);
    int fd = real_openat64(use_at ? dirfd : AT_FDCWD, path, flags, mode);
    if (fd >= 0 && fd < MAXFD) {
        tracked[fd] = 1;
        emit(T_OPEN, fd, flags, 0, abs, (uint32_t)strlen(abs), NULL, 0);
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

#define MODE_ARG(flags) mode_t mode = 0; \
    if ((flags) & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

int open(const char *path, int flags, ...) { MODE_ARG(flags); return do_open(AT_FDCWD, path, flags, mode, 0); }
int open64(const char *path, int flags, ...) { MODE_ARG(flags); return do_open(AT_FDCWD, path, flags, mode, 0); }
int openat(int d, const char *path, int flags, ...) { MODE_ARG(flags); return do_open(d, path, flags, mode, 1); }
int openat64(int d, const char *path, int flags, ...) { MODE_ARG(flags); return do_open(d, path, flags, mode, 1); }
int creat(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0); }
int creat64(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0); }

int close(int fd) {
    REAL(close, int, int);
    if (!is_tracked(fd)) return real_close(fd);
    pthread_mutex_lock(&mu);
    tracked[fd] = 0;
    emit(T_CLOSE, fd, 0, 0, NULL, 0, NULL, 0);
    int r = real_close(fd);
    pthread_mutex_unlock(&mu);
    return r;
}

static int do_dup(int old, int newfd) {
    if (newfd >= 0 && newfd < MAXFD && is_tracked(old)) {
        tracked[newfd] = 1;
        emit(T_DUP, old, newfd, 0, NULL, 0, NULL, 0);
    } else if (newfd >= 0 && newfd < MAXFD && tracked[newfd]) {
        tracked[newfd] = 0;
        emit(T_CLOSE, newfd, 0, 0, NULL, 0, NULL, 0);
    }
    return newfd;
}
int dup(int old) { REAL(dup, int, int); pthread_mutex_lock(&mu); int r = do_dup(old, real_dup(old)); pthread_mutex_unlock(&mu); return r; }
int dup2(int old, int n) { REAL(dup2, int, int, int); pthread_mutex_lock(&mu); int r = do_dup(old, real_dup2(old, n)); pthread_mutex_unlock(&mu); return r; }
int dup3(int old, int n, int f) { REAL(dup3, int, int, int, int); pthread_mutex_lock(&mu); int r = do_dup(old, real_dup3(old, n, f)); pthread_mutex_unlock(&mu); return r; }

/* The written bytes are logged before the write runs (a kill between the two leaves a
 * logged intent that never happened: the harness tolerates exactly that); a short or failed
 * write is corrected by a RESULT record. */
static void result(int fd, ssize_t want, ssize_t got) {
    if (got != want) emit(T_RESULT, fd, got, 0, NULL, 0, NULL, 0);
}

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, ssize_t, int, const void *, size_t);
    if (!is_tracked(fd)) return real_write(fd, buf, n);
    pthread_mutex_lock(&mu);
    off_t pos = (fcntl(fd, F_GETFL) & O_APPEND) ? lseek(fd, 0, SEEK_END) : lseek(fd, 0, SEEK_CUR);
    emit(T_WRITE, fd, pos, 0, buf, (uint32_t)n, NULL, 0);
    ssize_t r = real_write(fd, buf, n);
    result(fd, (ssize_t)n, r);
    pthread_mutex_unlock(&mu);
    return r;
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    if (!is_tracked(fd)) return real_pwrite64(fd, buf, n, off);
    pthread_mutex_lock(&mu);
    emit(T_WRITE, fd, off, 0, buf, (uint32_t)n, NULL, 0);
    ssize_t r = real_pwrite64(fd, buf, n, off);
    result(fd, (ssize_t)n, r);
    pthread_mutex_unlock(&mu);
    return r;
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return do_pwrite(fd, buf, n, off); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return do_pwrite(fd, buf, n, off); }

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev, ssize_t, int, const struct iovec *, int);
    if (!is_tracked(fd)) return real_writev(fd, iov, cnt);
    pthread_mutex_lock(&mu);
    size_t total = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    unsigned char *flat = malloc(total ? total : 1);
    size_t at = 0;
    for (int i = 0; i < cnt; i++) { memcpy(flat + at, iov[i].iov_base, iov[i].iov_len); at += iov[i].iov_len; }
    off_t pos = (fcntl(fd, F_GETFL) & O_APPEND) ? lseek(fd, 0, SEEK_END) : lseek(fd, 0, SEEK_CUR);
    emit(T_WRITE, fd, pos, 0, flat, (uint32_t)total, NULL, 0);
    free(flat);
    ssize_t r = real_writev(fd, iov, cnt);
    result(fd, (ssize_t)total, r);
    pthread_mutex_unlock(&mu);
    return r;
}

static int do_ftruncate(int fd, off_t len) {
    REAL(ftruncate64, int, int, off_t);
    if (!is_tracked(fd)) return real_ftruncate64(fd, len);
    pthread_mutex_lock(&mu);
    emit(T_TRUNC, fd, len, 0, NULL, 0, NULL, 0);
    int r = real_ftruncate64(fd, len);
    result(fd, 0, r);
    pthread_mutex_unlock(&mu);
    return r;
}
int ftruncate(int fd, off_t len) { return do_ftruncate(fd, len); }
int ftruncate64(int fd, off_t len) { return do_ftruncate(fd, len); }

static int do_truncate(const char *path, off_t len) {
    REAL(truncate64, int, const char *, off_t);
    char abs[PATH_MAX];
    if (!resolve(AT_FDCWD, path, abs)) return real_truncate64(path, len);
    pthread_mutex_lock(&mu);
    emit(T_TRUNCPATH, -1, len, 0, abs, (uint32_t)strlen(abs), NULL, 0);
    int r = real_truncate64(path, len);
    result(-1, 0, r);
    pthread_mutex_unlock(&mu);
    return r;
}
int truncate(const char *path, off_t len) { return do_truncate(path, len); }
int truncate64(const char *path, off_t len) { return do_truncate(path, len); }

static int do_sync(int fd, int data_only) {
    REAL(fsync, int, int);
    REAL(fdatasync, int, int);
    if (!is_tracked(fd)) return data_only ? real_fdatasync(fd) : real_fsync(fd);
    /* held across the sync: every write logged before SYNC was issued before the sync began */
    pthread_mutex_lock(&mu);
    int r = data_only ? real_fdatasync(fd) : real_fsync(fd);
    if (r == 0) emit(T_SYNC, fd, data_only, 0, NULL, 0, NULL, 0);
    pthread_mutex_unlock(&mu);
    return r;
}
int fsync(int fd) { return do_sync(fd, 0); }
int fdatasync(int fd) { return do_sync(fd, 1); }

static int do_rename(int od, const char *old, int nd, const char *new, int use_at) {
    REAL(renameat, int, int, const char *, int, const char *);
    char a[PATH_MAX], b[PATH_MAX];
    int ta = resolve(od, old, a), tb = resolve(nd, new, b);
    if (!ta && !tb) return real_renameat(use_at ? od : AT_FDCWD, old, use_at ? nd : AT_FDCWD, new);
    pthread_mutex_lock(&mu);
    if (!ta) a[0] = 0;
    if (!tb) b[0] = 0;
    emit(T_RENAME, -1, 0, 0, a, (uint32_t)strlen(a), b, (uint32_t)strlen(b));
    int r = real_renameat(use_at ? od : AT_FDCWD, old, use_at ? nd : AT_FDCWD, new);
    result(-1, 0, r);
    pthread_mutex_unlock(&mu);
    return r;
}
int rename(const char *old, const char *new) { return do_rename(AT_FDCWD, old, AT_FDCWD, new, 0); }
int renameat(int od, const char *old, int nd, const char *new) { return do_rename(od, old, nd, new, 1); }

static int do_unlink(int d, const char *path, int flags, int use_at) {
    REAL(unlinkat, int, int, const char *, int);
    char a[PATH_MAX];
    if (!resolve(d, path, a)) return real_unlinkat(use_at ? d : AT_FDCWD, path, flags);
    pthread_mutex_lock(&mu);
    emit(T_UNLINK, -1, flags, 0, a, (uint32_t)strlen(a), NULL, 0);
    int r = real_unlinkat(use_at ? d : AT_FDCWD, path, flags);
    result(-1, 0, r);
    pthread_mutex_unlock(&mu);
    return r;
}
int unlink(const char *path) { return do_unlink(AT_FDCWD, path, 0, 0); }
int unlinkat(int d, const char *path, int flags) { return do_unlink(d, path, flags, 1); }
