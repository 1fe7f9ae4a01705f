/* The parser entry points the fuzz harness (parsers.c) drives. shim-config.c
 * and exec-config.c each compile one of the runtime's programs into its own
 * translation unit (their parse functions are static); oci-config.c calls
 * the OCI front end (oci_config.c) and grove-runtime's seccomp step
 * (oci_seccomp.c); seccomp-profile.c the profile compiler
 * (seccomp/profile.c). Each exports one function that parses without side
 * effects. */
#ifndef GROVE_FUZZ_H
#define GROVE_FUZZ_H

#include <stddef.h>

#include "../src/error.h"

/* A broken invariant: a message on stderr and abort (the test sees a crash). */
__attribute__ ((noreturn, format (printf, 1, 2))) void grove_fuzz_broken (const char *fmt, ...);

/* grove_oci_bundle_load on dir/config.json, then grove-runtime's
 * grove_oci_seccomp (a bundle's linux.seccomp): 0 when accepted, else 1 (the
 * exit code grove-runtime dies with); msg gets the refusal, *ninsns the
 * length of the bundle's own seccomp program (0: none). */
int grove_fuzz_oci_config (const char *dir, char *msg, size_t cap, int *ninsns);
/* grove-shim's and the exec helper's parse_config on a key/value blob. */
int grove_fuzz_shim_config (char *buf, size_t len, grove_error_t *err);
int grove_fuzz_exec_config (char *buf, size_t len, grove_error_t *err);

/* What grove_profile_compile answered for one profile. */
typedef struct
{
  int ninsns, nrules, max_nr, ngates, warnings;
  int is_default; /* the program the build compiled from default.json, gates and all */
  char msg[1024]; /* the refusal */
} grove_fuzz_seccomp_t;

/* The profile JSON text s compiled as grove-runtime does a bundle's
 * linux.seccomp (docker 0) or as the build does default.json (docker 1); the
 * program is checked and run (seccomp-profile.c). 0, or -1 with out->msg. */
int grove_fuzz_seccomp_profile (const char *s, size_t len, int docker, grove_fuzz_seccomp_t *out);

#endif
