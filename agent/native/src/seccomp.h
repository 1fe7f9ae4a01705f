/* The default seccomp filter: a classic BPF program compiled at build time
 * from seccomp/default.json (seccomp/compile.c, into the build's
 * seccomp_profile.c), whose capability gates are set per container here. */
#ifndef GROVE_SECCOMP_H
#define GROVE_SECCOMP_H

#include <linux/filter.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A BPF_JA at insn that starts a rule conditional on capability cap: the rule
 * applies when (the container has cap) == want; otherwise the jump skips its
 * skip instructions (the rule). */
struct grove_seccomp_gate
{
  int insn, cap, want, skip;
};

/* The generated program (seccomp_profile.c). */
extern const struct sock_filter grove_seccomp_insns[];
extern const unsigned grove_seccomp_ninsns;
extern const struct grove_seccomp_gate grove_seccomp_gates[];
extern const unsigned grove_seccomp_ngates;

/* The default filter for a container whose capability (bounding) set is caps
 * (bit n = capability n): a malloc'd copy of the program with its gates set
 * (free prog->filter). Returns 0, or -1 with errno: ENOMEM, or ENOSYS when the
 * build's architecture has no filter (not x86_64 or aarch64). */
int grove_seccomp_default (uint64_t caps, struct sock_fprog *prog);

#ifdef __cplusplus
}
#endif

#endif
