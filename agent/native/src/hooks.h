/* OCI lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks"):
 * prestart and createRuntime run in the runtime's namespaces once the
 * container's exist, createContainer inside them before pivot_root,
 * startContainer inside the container just before the process runs,
 * poststart after start and poststop after delete. Each hook gets the
 * container's state JSON on stdin; a hook that exits non-zero or outlives
 * its timeout fails the step (prestart..startContainer) or is a warning
 * (poststart, poststop), as the spec says.
 *
 * The hooks travel as one blob of NUL-terminated "key" "value" pairs (the
 * shim protocol's form): grove-runtime writes it from config.json
 * (oci_config.c), keeps it in the container's state directory for start and
 * delete, and hands its path to grove-shim (key "hooks"). */
#ifndef GROVE_HOOKS_H
#define GROVE_HOOKS_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum
{
  GROVE_HOOK_PRESTART,
  GROVE_HOOK_CREATE_RUNTIME,
  GROVE_HOOK_CREATE_CONTAINER,
  GROVE_HOOK_START_CONTAINER,
  GROVE_HOOK_POSTSTART,
  GROVE_HOOK_POSTSTOP,
  GROVE_HOOK_KINDS
} grove_hook_kind_t;

/* The config.json names, indexed by kind ("prestart", "createRuntime", ...). */
extern const char *const grove_hook_kind_names[GROVE_HOOK_KINDS];

typedef struct grove_hook_s
{
  grove_hook_kind_t kind;
  const char *path;  /* absolute */
  char *const *argv; /* NULL-terminated; {path} when the config has no args */
  char *const *envp; /* NULL-terminated; empty when the config has no env */
  int timeout_s;     /* 0: none */
} grove_hook_t;

#define GROVE_MAX_HOOKS 64
#define GROVE_MAX_HOOK_STRINGS 1024

/* Blob keys. */
#define GROVE_HOOKS_KEY_ID "id"
#define GROVE_HOOKS_KEY_BUNDLE "bundle"
#define GROVE_HOOKS_KEY_ANNOTATIONS "annotations" /* the config's annotations object, JSON */
#define GROVE_HOOKS_KEY_HOOK "hook"               /* starts a hook: its kind's name; path, arg, env, timeout follow */
#define GROVE_HOOKS_KEY_PATH "path"
#define GROVE_HOOKS_KEY_ARG "arg"
#define GROVE_HOOKS_KEY_ENV "env"
#define GROVE_HOOKS_KEY_TIMEOUT "timeout" /* seconds, > 0 */
/* linux.seccomp with SCMP_ACT_NOTIFY: where the notify fd goes (oci_seccomp.c
 * adds them, with id, bundle and annotations for the state it is sent with). */
#define GROVE_HOOKS_KEY_LISTENER "seccomp_listener"
#define GROVE_HOOKS_KEY_LISTENER_METADATA "seccomp_listener_metadata"

typedef struct grove_hooks_s
{
  char *blob; /* owned; every string below points into it */
  size_t len;
  const char *id, *bundle, *annotations;
  const char *listener, *listener_metadata; /* NULL: no seccomp listener */
  grove_hook_t hooks[GROVE_MAX_HOOKS]; /* in config order within each kind */
  size_t n;
  char *strings[GROVE_MAX_HOOK_STRINGS]; /* the argv and envp arrays */
  size_t nstrings;
} grove_hooks_t;

/* How a hook failed: errnum (ETIMEDOUT: past its timeout; else why it could
 * not run), or its wait status when it ran and did not exit 0. */
typedef struct grove_hook_failure_s
{
  const grove_hook_t *hook;
  size_t index; /* among the hooks of its kind */
  int errnum;
  int status;
} grove_hook_failure_t;

/* Reads a blob (taking it: freed by grove_hooks_free, also on failure). */
int grove_hooks_parse (grove_hooks_t *h, char *blob, size_t len, grove_error_t *err);
/* Reads the blob in file. */
int grove_hooks_load (grove_hooks_t *h, const char *file, grove_error_t *err);
void grove_hooks_free (grove_hooks_t *h);
int grove_hooks_has (const grove_hooks_t *h, grove_hook_kind_t kind);

/* The state JSON (runtime-spec runtime.md "State") with status and pid (0:
 * left out, as for a stopped container) into buf; its length, or -1 when it
 * does not fit. */
int grove_hooks_state (const grove_hooks_t *h, const char *status, pid_t pid, char *buf, size_t cap);

/* Runs the hooks of kind in order with state on stdin (their stdout and
 * stderr: this process's stderr), each waited for up to its timeout (then
 * SIGKILLed). 0, or -1 at the first that fails, described in *f.
 * Async-signal-safe (system calls only): the container's init runs
 * createContainer and startContainer hooks with it. */
int grove_hooks_run_raw (const grove_hooks_t *h, grove_hook_kind_t kind, const char *state, grove_hook_failure_t *f);

/* "hook createRuntime[1] /usr/bin/x: exit status 3" (or "timed out after 2 s",
 * "killed by signal 9", the errno text); async-signal-safe. */
void grove_hook_failure_text (const grove_hook_failure_t *f, char *buf, size_t cap);

/* linux.seccomp.listenerPath: connects to h->listener and sends the
 * container process state (runtime-spec config-linux.md "The Container
 * Process State": ociVersion, fds ["seccompFd"], pid, metadata, and the
 * state, status "creating") with the notify fd as SCM_RIGHTS, in one message. */
int grove_hooks_send_listener (const grove_hooks_t *h, pid_t pid, int notify_fd, grove_error_t *err);

/* Builds the state, runs the hooks of kind, and says which one failed in err. */
int grove_hooks_run (const grove_hooks_t *h, grove_hook_kind_t kind, const char *status, pid_t pid, grove_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
