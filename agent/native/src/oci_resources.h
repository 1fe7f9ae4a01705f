/* config.json fields beyond the runtime core's container configuration, for
 * grove-runtime: the process attributes of oci_attrs.h (domainname,
 * linux.personality, process.ioPriority, process.scheduler,
 * linux.memoryPolicy), the fields for exec and update, which grove-runtime
 * does not have (process.execCPUAffinity, memory.checkBeforeUpdate: their
 * shape checked, then ignored), the linux.resources the cgroup driver does
 * not write (memory.reservation, swappiness, disableOOMKiller, kernel,
 * kernelTCP, useHierarchy; cpu.cpus, mems,
 * realtimeRuntime, realtimePeriod, burst, idle; blockIO; hugepageLimits;
 * network; rdma; unified), and the security labels this host cannot apply
 * (process.apparmorProfile, selinuxLabel, linux.mountLabel, linux.intelRdt),
 * refused naming the field and what the host lacks.
 *
 * The resources become cgroup file writes (grove_oci_xres_t), made by
 * grove_oci_xres_apply after the driver's setup, in the config's order, as
 * runc 1.1.5 makes them on a cgroup v1 host: the container also joins the
 * v1 hierarchies they need (cpuset, blkio, ...: grove_cgroup_t.v1_join), a
 * new cpuset cgroup taking its parent's cpus and mems first. A hierarchy or
 * file the host does not have is refused naming the field. */
#ifndef GROVE_OCI_RESOURCES_H
#define GROVE_OCI_RESOURCES_H

#include "cgroup.h"
#include "error.h"
#include "json.h"
#include "oci_attrs.h"

#define GROVE_OCI_MAX_CG_WRITES 64

typedef struct grove_oci_cg_write_s
{
  const char *controller; /* a v1 hierarchy ("memory", "cpuset", ...), or "unified" (linux.resources.unified) */
  char file[64];          /* "memory.soft_limit_in_bytes" */
  char value[128];
  char field[96]; /* what an error names: "linux.resources.memory.reservation" */
  int verify;     /* read it back: a kernel that keeps another value does not honour it */
  const char *einval; /* what the kernel's EINVAL means (a host limit); NULL: its message */
} grove_oci_cg_write_t;

typedef struct grove_oci_xres_s
{
  grove_oci_cg_write_t w[GROVE_OCI_MAX_CG_WRITES];
  size_t n;
  unsigned v1_join; /* GROVE_CGROUP_V1_* bits of the hierarchies the writes need */
} grove_oci_xres_t;

/* Reads the fields above from the parsed config.json (token 0 its object)
 * into a and x; *first: the first field set (NULL: none), for the
 * TypeScript command line's refusal. -1 with err naming the field. */
int grove_oci_extras_read (const char *s, const grove_jtok_t *t, grove_oci_attrs_t *a, grove_oci_xres_t *x,
                           const char **first, grove_error_t *err);

/* Makes the writes of x in cg (made by the driver's setup): the extra v1
 * hierarchies' cgroups, then each file in order. -1 with err naming the field. */
int grove_oci_xres_apply (const grove_cgroup_t *cg, const grove_oci_xres_t *x, grove_error_t *err);

#endif
