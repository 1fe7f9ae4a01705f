/* The default seccomp filter: a hand-built classic BPF program. */
#ifndef GROVE_SECCOMP_H
#define GROVE_SECCOMP_H

#include <linux/filter.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Builds the default filter into prog (malloc'd filter array; free prog->filter).
 * Returns 0, or -1 when this architecture has no filter (then prog->len is 0). */
int grove_seccomp_default (struct sock_fprog *prog);

#ifdef __cplusplus
}
#endif

#endif
