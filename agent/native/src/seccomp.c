/* The default seccomp filter: Docker's default profile semantics (an
 * allow-list, default EPERM), compiled at build time from
 * agent/native/seccomp/default.json by agent/native/seccomp/compile.c. Only
 * the capability gates are set here, per container: no profile is parsed or
 * compiled when a container starts. */
#include "seccomp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
grove_seccomp_default (uint64_t caps, struct sock_fprog *prog)
{
  struct sock_filter *f;

  prog->len = 0;
  prog->filter = NULL;
  if (grove_seccomp_ninsns == 0)
    {
      errno = ENOSYS; /* not built for this architecture */
      return -1;
    }
  f = malloc (sizeof (*f) * grove_seccomp_ninsns);
  if (f == NULL)
    return -1;
  memcpy (f, grove_seccomp_insns, sizeof (*f) * grove_seccomp_ninsns);
  for (unsigned i = 0; i < grove_seccomp_ngates; i++)
    {
      const struct grove_seccomp_gate *g = &grove_seccomp_gates[i];
      int has = g->cap < 64 && (caps & (1ULL << g->cap)) != 0;
      f[g->insn].k = has == g->want ? 0 : (unsigned) g->skip;
    }
  prog->len = (unsigned short) grove_seccomp_ninsns;
  prog->filter = f;
  return 0;
}
