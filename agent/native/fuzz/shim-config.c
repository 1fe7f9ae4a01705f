/* grove-shim's configuration reader (shim.c's parse_config) on its own. */
#include "fuzz.h"

#define main grove_fuzz_shim_main
#include "../src/shim.c"
#undef main

int
grove_fuzz_shim_config (char *buf, size_t len, grove_error_t *err)
{
  return parse_config (buf, len, err);
}
