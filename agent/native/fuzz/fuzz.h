/* The parser entry points the fuzz harness (parsers.c) drives. Each of
 * oci-config.c, shim-config.c and exec-config.c compiles one of the runtime's
 * command-line programs into its own translation unit (their parse functions
 * are static) and exports one function that parses without side effects. */
#ifndef GROVE_FUZZ_H
#define GROVE_FUZZ_H

#include <stddef.h>

#include "../src/error.h"

/* grove-runtime's load_bundle on dir/config.json: 0 when accepted, else the
 * exit code it died with; msg gets what it printed. */
int grove_fuzz_oci_config (const char *dir, char *msg, size_t cap);
/* grove-shim's and the exec helper's parse_config on a key/value blob. */
int grove_fuzz_shim_config (char *buf, size_t len, grove_error_t *err);
int grove_fuzz_exec_config (char *buf, size_t len, grove_error_t *err);

#endif
