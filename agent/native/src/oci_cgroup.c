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
  if (grove_read_file ("/proc/self/cgroup", &text, err) < 0)
    return -1;
  for (char *line = strtok (text, "\n"); line != NULL; line = strtok (NULL, "\n"))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 != NULL ? strchr (c1 + 1, ':') : NULL;
      int match = 0;
      if (c2 == NULL)
        continue;
      *c2 = '\0';
      if (controller == NULL)
        match = strcmp (line, "0") == 0 && c1 + 1 == c2;
      else
        for (char *list = c1 + 1, *tok; !match && (tok = strsep (&list, ",")) != NULL;)
          match = strcmp (tok, controller) == 0;
      if (match)
        {
          snprintf (out, cap, "%s", c2 + 1 + (c2[1] == '/'));
          return 0;
        }
    }
  return grove_error_set (err, ENOENT, "linux.cgroupsPath: this process has no %s cgroup in /proc/self/cgroup",
                          controller != NULL ? controller : "v2");
}

/* Where a relative path starts: see oci_cgroup.h. */
static int
relative_base (const char *root, grove_cgroup_mode_t mode, char *base, size_t cap, grove_error_t *err)
{
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
  const char *first = NULL;
  base[0] = '\0';
  for (size_t i = 0; i < N_OF (v1_controllers); i++)
    {
      char own[PATH_MAX], dir[PATH_MAX + 64];
      struct stat st;
      snprintf (dir, sizeof (dir), "%s/%s", root, v1_controllers[i]);
      if (stat (dir, &st) < 0 || own_cgroup (v1_controllers[i], own, sizeof (own), err) < 0)
        continue;
      if (first != NULL && strcmp (own, base) != 0)
        return grove_error_set (err, 0,
                                "config.json linux.cgroupsPath: a relative path on this cgroup v1 host, where "
                                "grove-runtime's own cgroups differ per controller (%s /%s, %s /%s); give an "
                                "absolute one",
                                first, base, v1_controllers[i], own);
      first = v1_controllers[i];
      snprintf (base, cap, "%s", own);
    }
  return 0;
}

int
grove_oci_cgroup_resolve (const char *root, grove_cgroup_mode_t mode, const char *path, grove_oci_cgroup_t *out,
                          grove_error_t *err)
{
  char full[PATH_MAX], base[PATH_MAX];
  char *slash;
  if (path[0] == '/')
    snprintf (full, sizeof (full), "%s", path + 1);
  else
    {
      if (relative_base (root, mode, base, sizeof (base), err) < 0)
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
      char base[PATH_MAX];
      struct stat st;
      snprintf (base, sizeof (base), "%s/%s", root, v1_controllers[i]);
      if (stat (base, &st) == 0 && make_under (base, cg->parent, 0, err) < 0)
        return -1;
    }
  return 0;
}
