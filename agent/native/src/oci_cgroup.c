/* linux.cgroupsPath (oci_cgroup.h). */
#include "oci_cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* The v1 hierarchies the driver makes cgroups in (cgroup.c's v1_setup). */
static const char *const v1_controllers[] = { "memory", "cpu", "pids", "cpuacct", "devices", "freezer" };
#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))

/* This process's cgroup in the hierarchy of `controller` (NULL: the v2 one,
 * "0::"), from /proc/self/cgroup, into out without its leading "/". */
static int
own_cgroup (const char *controller, char *out, size_t cap, grove_error_t *err)
{
  cleanup_free char *text = NULL;
  char path[4096];
  if (grove_read_file ("/proc/self/cgroup", &text, err) < 0)
    return -1;
  if (grove_cgroup_of (text, controller, path, sizeof (path)) == 0)
    {
      snprintf (out, cap, "%s", path + (path[0] == '/'));
      return 0;
    }
  return grove_error_set (err, ENOENT, "linux.cgroupsPath: this process has no %s cgroup in /proc/self/cgroup",
                          controller != NULL ? controller : "v2");
}

int
grove_oci_cgroup_add_prefix (grove_oci_cgroup_t *oc, const char *line, grove_error_t *err)
{
  const char *colon = strchr (line, ':');
  size_t k = oc->nprefix;
  if (colon == NULL || colon == line || (size_t) (colon - line) >= sizeof (oc->controller[0]))
    return grove_error_set (err, EINVAL, "cgroup prefix `%s`: not CONTROLLER:/PATH", line);
  if (k == GROVE_OCI_CG_NHIER)
    return grove_error_set (err, E2BIG, "cgroup prefix `%s`: more than %d hierarchies", line, GROVE_OCI_CG_NHIER);
  snprintf (oc->controller[k], sizeof (oc->controller[k]), "%.*s", (int) (colon - line), line);
  snprintf (oc->own[k], sizeof (oc->own[k]), "%s", colon + 1 + (colon[1] == '/'));
  oc->prefix[k] = (grove_cgroup_prefix_t){ oc->controller[k], oc->own[k] };
  oc->nprefix++;
  return 0;
}

void
grove_oci_cgroup_point (const grove_oci_cgroup_t *oc, grove_cgroup_t *cg)
{
  cg->parent = oc->parent;
  cg->id = oc->name;
  cg->v1_prefix = oc->nprefix > 0 ? oc->prefix : NULL;
  cg->nv1_prefix = oc->nprefix;
}

/* The hierarchies a container joins on v1, the driver's and the extra ones:
 * k-th name (NULL past the last). */
static const char *
v1_hierarchy (size_t k)
{
  if (k < N_OF (v1_controllers))
    return v1_controllers[k];
  k -= N_OF (v1_controllers);
  return k < GROVE_CGROUP_V1_NEXTRA ? grove_cgroup_v1_extra[k] : NULL;
}

/* Where a relative path starts: on v2 the parent of our own cgroup (into
 * base); on v1 our own cgroup in every hierarchy mounted (into out's
 * prefixes), as runc 1.1.5 joins each hierarchy's own with the path. */
static int
relative_base (const char *root, grove_cgroup_mode_t mode, char *base, size_t cap, grove_oci_cgroup_t *out,
               grove_error_t *err)
{
  base[0] = '\0';
  if (mode == GROVE_CGROUP_V2)
    {
      char *slash;
      if (own_cgroup (NULL, base, cap, err) < 0)
        return -1;
      /* runc: our own cgroup most likely has processes (us), so its parent. */
      slash = strrchr (base, '/');
      if (slash != NULL)
        *slash = '\0';
      else
        base[0] = '\0';
      return 0;
    }
  out->nprefix = 0;
  for (size_t k = 0; v1_hierarchy (k) != NULL; k++)
    {
      const char *h = v1_hierarchy (k);
      char own[PATH_MAX], dir[PATH_MAX + 64], line[PATH_MAX + 64];
      struct stat st;
      snprintf (dir, sizeof (dir), "%s/%s", root, h);
      /* name=systemd's directory is "systemd"; a hybrid host's unified (v2)
       * hierarchy is the "0::" line. A hierarchy we are not in (none on a
       * sane host) starts at its root. */
      if (stat (dir, &st) < 0
          || own_cgroup (strcmp (h, "systemd") == 0 ? "name=systemd" : strcmp (h, "unified") == 0 ? NULL : h, own,
                         sizeof (own), err)
                 < 0)
        continue;
      snprintf (line, sizeof (line), "%s:/%s", h, own);
      if (grove_oci_cgroup_add_prefix (out, line, err) < 0)
        return -1;
    }
  return 0;
}

int
grove_oci_cgroup_resolve (const char *root, grove_cgroup_mode_t mode, const char *path, grove_oci_cgroup_t *out,
                          grove_error_t *err)
{
  char full[PATH_MAX], base[PATH_MAX];
  char *slash;
  out->nprefix = 0;
  if (path[0] == '/')
    snprintf (full, sizeof (full), "%s", path + 1);
  else
    {
      if (relative_base (root, mode, base, sizeof (base), out, err) < 0)
        return -1;
      if (snprintf (full, sizeof (full), "%s%s%s", base, base[0] != '\0' ? "/" : "", path) >= (int) sizeof (full))
        return grove_error_set (err, ENAMETOOLONG, "config.json linux.cgroupsPath");
    }
  while (full[0] != '\0' && full[strlen (full) - 1] == '/')
    full[strlen (full) - 1] = '\0';
  slash = strrchr (full, '/');
  if (strlen (slash != NULL ? slash + 1 : full) >= sizeof (out->name))
    return grove_error_set (err, ENAMETOOLONG, "config.json linux.cgroupsPath: %s", path);
  snprintf (out->name, sizeof (out->name), "%s", slash != NULL ? slash + 1 : full);
  if (slash != NULL)
    *slash = '\0';
  snprintf (out->parent, sizeof (out->parent), "%s", slash != NULL ? full : "");
  return 0;
}

/* mkdir -p base/parent's ancestors; on v2 each with the controllers for its children. */
static int
make_under (const char *base, const char *parent, int v2, grove_error_t *err)
{
  char dir[PATH_MAX * 2];
  size_t n = (size_t) snprintf (dir, sizeof (dir), "%s/", base);
  for (const char *c = parent; *c != '\0'; c++)
    {
      const char *end = strchr (c, '/');
      if (end == NULL)
        break; /* the parent itself: the driver's setup makes it */
      snprintf (dir + n, sizeof (dir) - n, "%.*s", (int) (end - parent), parent);
      if (grove_mkdir (dir, 0755, err) < 0)
        return -1;
      if (v2)
        {
          char file[sizeof (dir) + 32];
          snprintf (file, sizeof (file), "%s/cgroup.subtree_control", dir);
          if (grove_write_file (file, "+memory +cpu +pids", err) < 0)
            return -1;
        }
      c = end;
    }
  return 0;
}

int
grove_oci_cgroup_make_ancestors (const char *root, grove_cgroup_mode_t mode, const grove_oci_cgroup_t *cg,
                                 grove_error_t *err)
{
  if (mode == GROVE_CGROUP_V2)
    return make_under (root, cg->parent, 1, err);
  for (size_t i = 0; i < N_OF (v1_controllers); i++)
    {
      char base[PATH_MAX * 2];
      const grove_cgroup_t view = { .mode = mode, .v1_prefix = cg->prefix, .nv1_prefix = cg->nprefix };
      const char *pre = grove_cgroup_v1_prefix (&view, v1_controllers[i]);
      struct stat st;
      snprintf (base, sizeof (base), "%s/%s%s%s", root, v1_controllers[i], *pre != '\0' ? "/" : "", pre);
      if (stat (base, &st) == 0 && make_under (base, cg->parent, 0, err) < 0)
        return -1;
    }
  return 0;
}
