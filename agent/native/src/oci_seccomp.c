/* grove-runtime: an OCI bundle's linux.seccomp compiled into the container's
 * filter when the container is created. The same compiler as Grove's default
 * profile (seccomp/profile.c, which the build runs on default.json), so the
 * program has the same shape and edges: only the native architecture gets
 * through (x32: EPERM), arguments are compared on their low 32 bits, and a
 * syscall past every one the profile names gets ENOSYS when the default
 * action refuses. The OCI reader (oci_config.c) only finds the object: it is
 * shared with the addon, which runs no profile (the TypeScript command line
 * refuses linux.seccomp as static-only). */
#include "oci_seccomp.h"

#include <errno.h>

#include "../seccomp/profile.h"
#include "seccomp.h"

int
grove_oci_seccomp (grove_oci_bundle_t *b, grove_error_t *err)
{
  static grove_profile_program_t prog;
  char msg[1024];
  char *hex;
  if (b->seccomp_tok <= 0)
    return 0;
  if (grove_profile_compile (b->text, b->toks, b->seccomp_tok, GROVE_PROFILE_OCI, "config.json linux.seccomp.", NULL,
                             &prog, msg, sizeof (msg))
      < 0)
    return grove_error_set (err, 0, "%s", msg);
  hex = grove_seccomp_to_hex (prog.insns, (unsigned) prog.ninsns);
  if (hex == NULL)
    return grove_error_set (err, ENOMEM, "config.json linux.seccomp");
  /* The bundle's: grove_oci_bundle_free frees it. */
  b->cc.seccomp_bpf = hex;
  return 0;
}
