/* Runtime handlers in grove-shim: the container is started through an OCI
 * runtime's command line (runc, crun, grove-runtime, ...) instead of the
 * runtime core, and the shim stays the parent of its init (shim_runtime.c). */
#ifndef GROVE_SHIM_RUNTIME_H
#define GROVE_SHIM_RUNTIME_H

#include "container.h"
#include "error.h"
#include "shim_protocol.h" /* GROVE_KEY_RUNTIME, _BUNDLE, _RUNTIME_ROOT */


typedef struct grove_shim_runtime_s
{
  const char *path; /* NULL: the native path */
  const char *bundle;
  const char *root;
} grove_shim_runtime_t;

/* Takes key/val when key is a handler key: 1 when taken, 0 otherwise. */
int grove_shim_runtime_key (grove_shim_runtime_t *rt, const char *key, const char *val);

/* Makes this process a child subreaper, runs `RUNTIME create` (stdin
 * /dev/null, stdout and stderr on stdio_fd, which the runtime passes through
 * to the container) and `RUNTIME start`; fills c with the init's pid (from
 * --pid-file), which must now be this process's child, and a pidfd. -1 with
 * the runtime's error in err: the last line of its --log or, when it wrote
 * none, of its stderr (read from log_r, the non-blocking read end of stdio_fd). */
int grove_shim_runtime_start (const grove_shim_runtime_t *rt, const char *id, int stdio_fd, int log_r,
                              grove_container_t *c, grove_error_t *err);

/* `RUNTIME delete --force ID` once the init has been reaped (its state and cgroups). */
void grove_shim_runtime_delete (const grove_shim_runtime_t *rt, const char *id);

#endif
