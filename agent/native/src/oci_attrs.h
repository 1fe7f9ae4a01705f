/* OCI process attributes the container's init applies for grove-runtime:
 * domainname, linux.personality, process.ioPriority, process.scheduler and
 * linux.memoryPolicy (set_mempolicy).
 * grove-runtime reads them from config.json (oci_resources.c), hands them to
 * grove-shim as "proc_attr" keys (one per attribute: grove_oci_attrs_put,
 * grove_oci_attrs_key) or to the runtime core directly (run), and the init
 * applies them (grove_oci_attrs_apply) while still privileged, after its
 * namespaces and mounts are made and before its change of user, its seccomp
 * filter and execve. */
#ifndef GROVE_OCI_ATTRS_H
#define GROVE_OCI_ATTRS_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define GROVE_OCI_MAX_NUMA_NODES 1024 /* the kernel's MAX_NUMNODES at most (CONFIG_NODES_SHIFT 10) */
#define GROVE_OCI_LIST_MAX 256

typedef struct grove_oci_attrs_s
{
  int domainname_set;
  char domainname[65]; /* setdomainname in the container's uts namespace */
  int personality_set;
  unsigned long personality; /* PER_LINUX or PER_LINUX32 */
  int ioprio_set;
  int ioprio; /* IOPRIO_PRIO_VALUE (class, level) for ioprio_set(IOPRIO_WHO_PROCESS, 0) */
  int sched_set;
  uint32_t sched_policy; /* SCHED_* number */
  uint64_t sched_flags;  /* SCHED_FLAG_* */
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period; /* ns, SCHED_DEADLINE */
  int mempolicy_set;
  int mempolicy_mode; /* MPOL_* | MPOL_F_* for set_mempolicy */
  char mempolicy_nodes[GROVE_OCI_LIST_MAX]; /* the node list as given ("0-3,7"; "" none) */
  unsigned long mempolicy_mask[GROVE_OCI_MAX_NUMA_NODES / (8 * sizeof (unsigned long))];
} grove_oci_attrs_t;

#define GROVE_OCI_ATTRS_ANY(a)                                                                                         \
  ((a)->domainname_set || (a)->personality_set || (a)->ioprio_set || (a)->sched_set || (a)->mempolicy_set)

/* A list such as "0-3,7" (runtime-spec's CPU and NUMA node lists: numbers and
 * ranges a-b with a <= b, separated by commas; "" is the empty list), each
 * number below nbits, into mask (nbits bits; NULL: the syntax only). -1 when
 * it is not one. */
int grove_oci_list_parse (const char *list, unsigned long *mask, size_t nbits);

/* Applies what a sets, in this order: domainname, personality, I/O priority,
 * scheduler, memory policy. -1 with errno and *what (the field and the system
 * call, for the init's error) when one fails. Only system calls: safe between
 * clone and execve. */
int grove_oci_attrs_apply (const grove_oci_attrs_t *a, const char **what);

/* One shim key value per attribute set (the key is GROVE_KEY_PROC_ATTR). */
void grove_oci_attrs_put (FILE *out, const char *key, const grove_oci_attrs_t *a);

/* One value written by grove_oci_attrs_put, into a; -1 with err when malformed. */
int grove_oci_attrs_key (grove_oci_attrs_t *a, const char *val, grove_error_t *err);

#endif
