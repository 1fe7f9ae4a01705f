/* cgroup drivers: one table of functions for v1 (and hybrid hosts, which use
 * the v1 controllers), one for the unified v2 hierarchy. A container's cgroup
 * is <root>/<parent>/<id> (v2) or <root>/<controller>/<parent>/<id> (v1; with
 * grove-runtime's per-hierarchy prefix, <root>/<controller>/<prefix>/<parent>/<id>). */
#ifndef GROVE_CGROUP_H
#define GROVE_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum
{
  GROVE_CGROUP_V1 = 1,
  GROVE_CGROUP_V2 = 2,
} grove_cgroup_mode_t;

/* grove-runtime, a relative linux.cgroupsPath on v1 (as runc): each hierarchy
 * has a cgroup of its own to start from, the runtime's own there. */
typedef struct grove_cgroup_prefix_s
{
  const char *controller; /* the hierarchy's directory under root: "memory", "systemd" */
  const char *prefix;     /* "process_api/x" (no leading "/"); "" for the hierarchy's root */
} grove_cgroup_prefix_t;

typedef struct grove_cgroup_s
{
  grove_cgroup_mode_t mode;
  const char *root;   /* "/sys/fs/cgroup", or a fake tree in tests */
  const char *parent; /* "grove" */
  const char *id;     /* container id; NULL means the parent cgroup itself */
  /* v1: GROVE_CGROUP_V1_* bits, hierarchies the container also joins (its
   * cgroups there made by grove-runtime, oci_resources.c); remove always
   * tries them. */
  unsigned v1_join;
  /* v1: the container's cgroup in a listed hierarchy is
   * <root>/<controller>/<prefix>/<parent>/<id>; NULL (the agent's native path,
   * absolute cgroupsPaths): no prefix anywhere. */
  const grove_cgroup_prefix_t *v1_prefix;
  size_t nv1_prefix;
} grove_cgroup_t;

/* The prefix of v1 hierarchy `controller` ("" when none). */
const char *grove_cgroup_v1_prefix (const grove_cgroup_t *cg, const char *controller);
/* The container's cgroup directory in `controller` (v1; ignored on v2), malloc'd. */
int grove_cgroup_dir (const grove_cgroup_t *cg, const char *controller, char **out, grove_error_t *err);

/* The v1 hierarchies beyond the driver's own that an OCI bundle's
 * linux.resources may need, or that grove-runtime joins as runc joins every
 * hierarchy; bit k names grove_cgroup_v1_extra[k]. */
#define GROVE_CGROUP_V1_NEXTRA 9
extern const char *const grove_cgroup_v1_extra[GROVE_CGROUP_V1_NEXTRA];

/* The GROVE_CGROUP_V1_* bits of the extra hierarchies mounted under root. */
unsigned grove_cgroup_v1_extras_mounted (const char *root);

/* From `text`, a /proc/<pid>/cgroup, the process's cgroup in the hierarchy of
 * `controller` ("memory", "name=systemd"; NULL: the v2 one, "0::") into out,
 * as written there (with its leading "/"). 0, or -1 when there is none. */
int grove_cgroup_of (const char *text, const char *controller, char *out, size_t cap);

/* A device rule in the v1 devices.allow syntax, "c 1:3 rwm" (type a, c or b;
 * "*" for any major or minor; access of r, w, m), allowing or denying. */
typedef struct grove_device_rule_s
{
  int allow;
  const char *rule;
} grove_device_rule_t;

typedef struct grove_resources_s
{
  int64_t cpu_millis;   /* <= 0: no CPU limit */
  int64_t memory_bytes; /* <= 0: no memory limit */
  int64_t pids;         /* <= 0: no pids limit */
  /* Device rules applied after deny-all and before the container allow list
   * (which always holds, as with runc); the last matching rule decides
   * (OCI linux.resources.devices). */
  const grove_device_rule_t *devices;
  size_t ndevices;
  /* > 0: the CFS quota and period as given (OCI linux.resources.cpu) instead
   * of cpu_millis over a 100 ms period; cpu_millis must still be > 0. */
  int64_t cpu_quota_us, cpu_period_us;
  /* With a memory limit: 0, no swap (v1 memsw = the limit, v2 memory.swap.max
   * 0); > 0, memory + swap as OCI linux.resources.memory.swap gives it (v1
   * memsw, v2 swap.max = this - the limit, as runc); -1, unlimited swap. */
  int64_t memory_swap_bytes;
} grove_resources_t;

struct grove_cgroup_ops
{
  /* Creates parent and container cgroups and writes the limits. */
  int (*setup) (const grove_cgroup_t *cg, const grove_resources_t *res, grove_error_t *err);
  /* Moves pid into the container cgroups. */
  int (*enter) (const grove_cgroup_t *cg, pid_t pid, grove_error_t *err);
  /* Signals every process of the cgroup; with SIGKILL repeats until it is empty.
   * *signalled counts the processes signalled. A missing cgroup counts 0. */
  int (*kill) (const grove_cgroup_t *cg, int sig, int *signalled, grove_error_t *err);
  /* Removes the cgroup (cg->id NULL: the parent); a missing one is not an error. */
  int (*remove) (const grove_cgroup_t *cg, grove_error_t *err);
  /* Names of the child cgroups of the parent (malloc'd array of malloc'd strings). */
  int (*list) (const grove_cgroup_t *cg, char ***ids, size_t *count, grove_error_t *err);
  /* The kernel OOM killer's kill count for the cgroup. */
  int (*oom_kills) (const grove_cgroup_t *cg, int64_t *count, grove_error_t *err);
};

extern const struct grove_cgroup_ops grove_cgroup_v1_ops;
extern const struct grove_cgroup_ops grove_cgroup_v2_ops;

const struct grove_cgroup_ops *grove_cgroup_ops_for (grove_cgroup_mode_t mode);

/* statfs(root): cgroup2 magic means v2, anything else (tmpfs of a v1/hybrid host) v1. */
int grove_cgroup_detect (const char *root, grove_cgroup_mode_t *mode, grove_error_t *err);

void grove_string_list_free (char **list, size_t count);

/* cgroup v2 devices: builds the BPF_PROG_TYPE_CGROUP_DEVICE program of the
 * container allow list (the v1 devices.allow lines: default deny), loads it
 * and attaches it (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) to the cgroup2
 * directory dir, unless a device program is attached there already. The
 * cgroup keeps it until it is removed. */
int grove_cgroup_attach_device_program (const char *dir, const grove_device_rule_t *extra, size_t nextra,
                                        grove_error_t *err);
struct bpf_insn;
/* The program itself (malloc'd): extra rules (as in grove_resources_t.devices)
 * then the container allow list, the last matching rule deciding. */
int grove_device_program (const grove_device_rule_t *extra, size_t nextra, struct bpf_insn **insns, size_t *count,
                          grove_error_t *err);
/* Checks a rule's syntax ("c 1:3 rwm"); the message names it. */
int grove_device_rule_check (const char *rule, grove_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
