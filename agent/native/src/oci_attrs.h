/* OCI process attributes the container's init applies for grove-runtime:
 * domainname, linux.personality, process.ioPriority and process.scheduler.
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
} grove_oci_attrs_t;

#define GROVE_OCI_ATTRS_ANY(a) ((a)->domainname_set || (a)->personality_set || (a)->ioprio_set || (a)->sched_set)

/* Applies what a sets, in this order: domainname, personality, I/O priority,
 * scheduler. -1 with errno and *what (the field and the system call, for the
 * init's error) when one fails. Only system calls: safe between clone and execve. */
int grove_oci_attrs_apply (const grove_oci_attrs_t *a, const char **what);

/* One shim key value per attribute set (the key is GROVE_KEY_PROC_ATTR). */
void grove_oci_attrs_put (FILE *out, const char *key, const grove_oci_attrs_t *a);

/* One value written by grove_oci_attrs_put, into a; -1 with err when malformed. */
int grove_oci_attrs_key (grove_oci_attrs_t *a, const char *val, grove_error_t *err);

#endif
