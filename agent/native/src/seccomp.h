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

/* A program carried as text (an OCI bundle's own profile, compiled by
 * grove-runtime): 16 hex digits per instruction, code (4) jt (2) jf (2) k (8).
 * grove_seccomp_hex_check: 0 when hex is such a program of 1 to 4096
 * instructions. grove_seccomp_from_hex: a malloc'd copy (free prog->filter);
 * -1 with errno EINVAL or ENOMEM. grove_seccomp_to_hex: the text of a program
 * (malloc'd, NULL on ENOMEM). */
int grove_seccomp_hex_check (const char *hex);
int grove_seccomp_from_hex (const char *hex, struct sock_fprog *prog);
char *grove_seccomp_to_hex (const struct sock_filter *insns, unsigned n);

#ifdef __cplusplus
}
#endif

#endif
