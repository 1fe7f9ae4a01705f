/* linux.cgroupsPath for grove-runtime: where a bundle's cgroup goes. An
 * absolute path is under the cgroup root; a relative one as runc puts it:
 * under the parent of the runtime's own cgroup on v2, under its own cgroup on
 * v1 (which must then be the same in the hierarchies Grove uses). The path
 * becomes the runtime core's parent and name; the cgroups above the parent
 * are made here (on v2 with memory, cpu and pids enabled for their children),
 * the parent and the container's own by the driver's setup. */
#ifndef GROVE_OCI_CGROUP_H
#define GROVE_OCI_CGROUP_H

#include <limits.h>

#include "cgroup.h"
#include "error.h"

typedef struct grove_oci_cgroup_s
{
  char parent[PATH_MAX]; /* "a/b" of /a/b/c; "" for a cgroup right under the root */
  char name[256];        /* "c" */
} grove_oci_cgroup_t;

int grove_oci_cgroup_resolve (const char *root, grove_cgroup_mode_t mode, const char *path, grove_oci_cgroup_t *out,
                              grove_error_t *err);

/* mkdir -p of every cgroup above out->parent (not the parent itself). */
int grove_oci_cgroup_make_ancestors (const char *root, grove_cgroup_mode_t mode, const grove_oci_cgroup_t *cg,
                                     grove_error_t *err);

#endif
