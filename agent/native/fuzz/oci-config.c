/* grove-runtime's config.json reader (oci_config.c, Grove's one OCI front
 * end, also reached from the addon) on one bundle directory, then its
 * seccomp step (oci_seccomp.c: the bundle's linux.seccomp compiled), as
 * oci.c's load_bundle: the refusal's exit code (1, as grove-runtime's) and
 * message. Nothing else runs (no cgroup, no container, no shim). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/oci_config.h"
#include "../src/oci_seccomp.h"
#include "fuzz.h"

static grove_oci_bundle_t grove_fuzz_bundle;

int
grove_fuzz_oci_config (const char *dir, char *msg, size_t cap, int *ninsns)
{
  grove_error_t err;
  grove_oci_bundle_t *b = &grove_fuzz_bundle;
  int code = grove_oci_bundle_load (b, dir, "fuzz", &err) < 0 || grove_oci_seccomp (b, dir, "fuzz", &err) < 0 ? 1 : 0;
  snprintf (msg, cap, "%s", code != 0 ? err.msg : "");
  *ninsns = b->cc.seccomp_bpf != NULL ? (int) (strlen (b->cc.seccomp_bpf) / 16) : 0;
  grove_oci_bundle_free (b);
  return code;
}
