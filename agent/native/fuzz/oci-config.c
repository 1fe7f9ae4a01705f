/* grove-runtime's config.json reader (oci_config.c, Grove's one OCI front
 * end, also reached from the addon) on one bundle directory: the refusal's
 * exit code (1, as grove-runtime's) and message. Nothing else runs (no
 * cgroup, no container, no shim). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/oci_config.h"
#include "fuzz.h"

static grove_oci_bundle_t grove_fuzz_bundle;

int
grove_fuzz_oci_config (const char *dir, char *msg, size_t cap)
{
  grove_error_t err;
  int code = grove_oci_bundle_load (&grove_fuzz_bundle, dir, "fuzz", &err) < 0 ? 1 : 0;
  snprintf (msg, cap, "%s", code != 0 ? err.msg : "");
  grove_oci_bundle_free (&grove_fuzz_bundle);
  return code;
}
