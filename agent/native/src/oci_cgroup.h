/* linux.cgroupsPath for grove-runtime: where a bundle's cgroup goes. An
 * absolute path is under the cgroup root; a relative one as runc puts it:
 * under the parent of the runtime's own cgroup on v2; on v1 under the
 * runtime's own cgroup in each hierarchy (its prefix there, cgroup.h: they
 * may differ per hierarchy). The path becomes the runtime core's parent and
 * name; the cgroups above the parent are made here (on v2 with memory, cpu
 * and pids enabled for their children), the parent and the container's own
 * by the driver's setup. */
#ifndef GROVE_OCI_CGROUP_H
#define GROVE_OCI_CGROUP_H

#include <limits.h>

#include "cgroup.h"
#include "error.h"

#define GROVE_OCI_CG_NHIER 16

typedef struct grove_oci_cgroup_s
{
  char parent[PATH_MAX]; /* "a/b" of /a/b/c; "" for a cgroup right under the root (or the prefix) */
  char name[256];        /* "c" */
  /* v1, a relative path: where it starts in each hierarchy (prefix[k] points
   * into controller[k] and own[k]). */
  size_t nprefix;
  grove_cgroup_prefix_t prefix[GROVE_OCI_CG_NHIER];
  char controller[GROVE_OCI_CG_NHIER][32];
  char own[GROVE_OCI_CG_NHIER][PATH_MAX];
} grove_oci_cgroup_t;

/* One hierarchy's prefix: "memory:/process_api/x" (the state directory's
 * `cgroup` file and the shim key cgroup_prefix carry them so). */
int grove_oci_cgroup_add_prefix (grove_oci_cgroup_t *oc, const char *line, grove_error_t *err);

/* cg's parent, id and prefixes from oc. */
void grove_oci_cgroup_point (const grove_oci_cgroup_t *oc, grove_cgroup_t *cg);

int grove_oci_cgroup_resolve (const char *root, grove_cgroup_mode_t mode, const char *path, grove_oci_cgroup_t *out,
                              grove_error_t *err);

/* mkdir -p of every cgroup above out->parent (not the parent itself). */
int grove_oci_cgroup_make_ancestors (const char *root, grove_cgroup_mode_t mode, const grove_oci_cgroup_t *cg,
                                     grove_error_t *err);

#endif
