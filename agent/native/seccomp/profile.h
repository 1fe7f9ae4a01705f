/* Grove's seccomp profile compiler (profile.c): a profile in Docker's format
 * or an OCI bundle's linux.seccomp into a classic BPF program for this build's
 * architecture. Used by the build (compile.c: default.json into the generated
 * seccomp_profile.c) and by grove-runtime (oci_seccomp.c: a bundle's profile
 * when a container is created). Not thread-safe: one compilation at a time. */
#ifndef GROVE_SECCOMP_PROFILE_H
#define GROVE_SECCOMP_PROFILE_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/json.h"

#define GROVE_PROFILE_MAX_INSNS 4096

typedef enum
{
  GROVE_PROFILE_DOCKER, /* archMap, includes/excludes (capability gates), defaultErrnoRet for every ERRNO */
  GROVE_PROFILE_OCI,    /* runtime-spec linux.seccomp: architectures, flags, errnoRet defaulting to EPERM */
} grove_profile_format_t;

/* A capability gate: see seccomp.h (struct grove_seccomp_gate). */
typedef struct
{
  int insn, cap, want, skip;
} grove_profile_gate_t;

/* The result; the arrays are the compiler's own (valid until the next call). */
typedef struct
{
  const struct sock_filter *insns;
  int ninsns;
  const char *const *notes; /* a comment per instruction */
  const grove_profile_gate_t *gates;
  int ngates;
  int nrules, max_nr, nranges;
  /* The sections of the native architecture's other ABIs (an OCI profile's
   * architectures): the highest syscall number named for x86 (arm on
   * aarch64) and for x32 (without its bit); -1 when none, -2 when the ABI is
   * not listed (its calls are killed; x32's get EPERM in Docker's format). */
  int compat_max_nr, x32_max_nr;
  /* OCI: the flags' SECCOMP_FILTER_FLAG_*; whether an action is
   * SCMP_ACT_NOTIFY, then the tokens of listenerPath (a string) and
   * listenerMetadata (-1: none). */
  unsigned flags;
  int notify, listener_tok, listener_metadata_tok;
} grove_profile_program_t;

/* Compiles the profile object at token root of s/t. prefix starts every
 * message ("default.json: ", "config.json linux.seccomp."); warn (or NULL)
 * gets the names libseccomp does not know, which are skipped. -1 with the
 * refusal in errbuf, naming the field. */
int grove_profile_compile (const char *s, grove_jtok_t *t, int root, grove_profile_format_t format,
                           const char *prefix, void (*warn) (const char *msg), grove_profile_program_t *out,
                           char *errbuf, size_t errcap);

/* The name of capability n ("CAP_SYS_ADMIN"), or NULL. */
const char *grove_profile_cap_name (int n);

#endif
