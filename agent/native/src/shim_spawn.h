/* Starting a grove-shim: spawn it, hand it its config, wait for its report. */
#ifndef GROVE_SHIM_SPAWN_H
#define GROVE_SHIM_SPAWN_H

#include <stddef.h>

#include "error.h"
#include "shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* config: NUL-separated key/value pairs (see shim.c). Returns 0 once the
 * container runs (out->pid, out->shim_pid), -1 with the shim's error. */
int grove_shim_spawn (const char *shim_path, const char *id, const char *config, size_t config_len,
                      struct grove_shim_report *out, grove_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
