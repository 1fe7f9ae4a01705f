/* Small helpers: scoped cleanup and whole-file reads and writes. */
#ifndef GROVE_UTIL_H
#define GROVE_UTIL_H

#include <dirent.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "error.h"

/* Syscall numbers (x86_64) older libc headers lack. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* The PATH a process gets when its environment names none. */
#define GROVE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifdef __cplusplus
extern "C" {
#endif

void grove_freep (void *p);
void grove_closep (int *fd);
void grove_closedirp (DIR **dir);

#define cleanup_free __attribute__ ((cleanup (grove_freep)))
#define cleanup_close __attribute__ ((cleanup (grove_closep)))
#define cleanup_dir __attribute__ ((cleanup (grove_closedirp)))

/* Writes data to an existing file (cgroup control files are never created). */
int grove_write_file (const char *path, const char *data, grove_error_t *err);
/* Like grove_write_file, but a missing file is not an error: returns 0 then, 1 when written. */
int grove_write_file_if_exists (const char *path, const char *data, grove_error_t *err);
/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
int grove_read_file (const char *path, char **out, grove_error_t *err);
/* mkdir that accepts an existing directory. */
int grove_mkdir (const char *path, int mode, grove_error_t *err);
/* rmdir that accepts a missing directory and retries EBUSY for about two seconds
 * (a cgroup stays busy while the kernel finishes tearing down its last tasks). */
int grove_rmdir (const char *path, grove_error_t *err);
/* asprintf that reports failure through err. */
int grove_asprintf (char **out, grove_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#ifdef __cplusplus
}
#endif

/* Reads fd to its end into a malloc'd buffer (not NUL-terminated); NULL with errno set on failure. */
char *grove_read_all (int fd, size_t *len);
/* The next "key\0value\0" pair of a config blob from *pos: 1 with key and val
 * set, 0 at the end, -1 (err names `what`) when a key has no terminated value. */
int grove_config_next (char *buf, size_t len, size_t *pos, char **key, char **val, const char *what,
                       grove_error_t *err);
/* The paths execve tries for cmd: cmd itself when it holds a '/', else cmd in
 * each entry of envp's PATH (GROVE_DEFAULT_PATH without one). A malloc'd,
 * NULL-terminated list of malloc'd strings; NULL when out of memory. */
char **grove_exec_candidates (const char *cmd, char *const *envp);

/* A SOCK_STREAM unix socket (O_CLOEXEC) connected to path (an OCI console
 * socket); -1 with err naming it. */
int grove_unix_connect (const char *path, grove_error_t *err);

/* Writes all of buf to fd, retrying on EINTR and short writes; -1 with errno set on failure. */
int grove_write_all (int fd, const char *buf, size_t len);

#endif
