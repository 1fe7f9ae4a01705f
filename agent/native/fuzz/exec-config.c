/* The exec helper's configuration reader (exec.c's parse_config) on its own;
 * this unit also provides grove_exec_main, which shim.c calls. */
#include "fuzz.h"

#include "../src/exec.c"

int
grove_fuzz_exec_config (char *buf, size_t len, grove_error_t *err)
{
  return parse_config (buf, len, err);
}
