/* Errors of the runtime core: an errno plus a message naming what failed
 * ("mkdir /sys/fs/cgroup/memory/grove/web-1: Permission denied"). */
#ifndef GROVE_ERROR_H
#define GROVE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grove_error_s
{
  int errnum;     /* 0 when the failure has no errno */
  char msg[1024]; /* already includes ": strerror(errnum)" when errnum != 0 */
} grove_error_t;

/* Fills *err and returns -1, so callers can `return grove_error_set (...)`. */
int grove_error_set (grove_error_t *err, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
