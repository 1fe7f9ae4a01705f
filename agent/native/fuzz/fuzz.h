/* The parser entry points the fuzz harness (parsers.c) drives. shim-config.c
 * and exec-config.c each compile one of the runtime's programs into its own
 * translation unit (their parse functions are static); oci-config.c calls
 * the OCI front end (oci_config.c). Each exports one function that parses
 * without side effects. */
#ifndef GROVE_FUZZ_H
#define GROVE_FUZZ_H

#include <stddef.h>

#include "../src/error.h"

/* grove_oci_bundle_load on dir/config.json: 0 when accepted, else 1 (the
 * exit code grove-runtime dies with); msg gets the refusal. */
int grove_fuzz_oci_config (const char *dir, char *msg, size_t cap);
/* grove-shim's and the exec helper's parse_config on a key/value blob. */
int grove_fuzz_shim_config (char *buf, size_t len, grove_error_t *err);
int grove_fuzz_exec_config (char *buf, size_t len, grove_error_t *err);

#endif
