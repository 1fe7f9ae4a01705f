/* OCI process attributes: applied by the container's init, carried to
 * grove-shim as keys (see oci_attrs.h). */
#include "oci_attrs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS 1

/* The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER0); glibc has no wrapper. */
struct grove_sched_attr
{
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

int
grove_oci_list_parse (const char *list, unsigned long *mask, size_t nbits)
{
  const size_t word = 8 * sizeof (unsigned long);
  const char *p = list;
  if (mask != NULL)
    memset (mask, 0, (nbits + word - 1) / word * sizeof (unsigned long));
  while (*p != '\0')
    {
      unsigned long long lo = 0, hi;
      if (*p < '0' || *p > '9')
        return -1;
      for (; *p >= '0' && *p <= '9' && lo < nbits; p++)
        lo = lo * 10 + (unsigned) (*p - '0');
      hi = lo;
      if (*p == '-' && p[1] >= '0' && p[1] <= '9')
        for (hi = 0, p++; *p >= '0' && *p <= '9' && hi < nbits; p++)
          hi = hi * 10 + (unsigned) (*p - '0');
      if (hi >= nbits || lo > hi || (*p != ',' && *p != '\0') || (*p == ',' && p[1] == '\0'))
        return -1;
      for (unsigned long long n = lo; mask != NULL && n <= hi; n++)
        mask[n / word] |= 1UL << (n % word);
      if (*p == ',')
        p++;
    }
  return 0;
}

int
grove_oci_attrs_apply (const grove_oci_attrs_t *a, const char **what)
{
  if (a->domainname_set && setdomainname (a->domainname, strlen (a->domainname)) < 0)
    {
      *what = "config.json domainname: setdomainname";
      return -1;
    }
  if (a->personality_set && personality (a->personality) < 0)
    {
      *what = "config.json linux.personality: personality";
      return -1;
    }
  if (a->ioprio_set && syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, a->ioprio) < 0)
    {
      *what = "config.json process.ioPriority: ioprio_set";
      return -1;
    }
  if (a->sched_set)
    {
      struct grove_sched_attr attr = { sizeof (attr), a->sched_policy,   a->sched_flags,    a->sched_nice,
                                       a->sched_priority, a->sched_runtime, a->sched_deadline, a->sched_period };
      if (syscall (SYS_sched_setattr, 0, &attr, 0) < 0)
        {
          *what = "config.json process.scheduler: sched_setattr";
          return -1;
        }
    }
  /* The policy is the task's, kept across execve; an empty mask: none
   * (MPOL_DEFAULT, MPOL_LOCAL, MPOL_PREFERRED for local allocation). */
  if (a->mempolicy_set
      && syscall (SYS_set_mempolicy, a->mempolicy_mode, a->mempolicy_nodes[0] != '\0' ? a->mempolicy_mask : NULL,
                  a->mempolicy_nodes[0] != '\0' ? GROVE_OCI_MAX_NUMA_NODES + 1 : 0)
             < 0)
    {
      *what = "config.json linux.memoryPolicy: set_mempolicy";
      return -1;
    }
  return 0;
}

void
grove_oci_attrs_put (FILE *out, const char *key, const grove_oci_attrs_t *a)
{
  char *v = NULL;
  size_t n = 0;
  FILE *m;
  for (int k = 0; k < 5; k++)
    {
      if ((k == 0 && !a->domainname_set) || (k == 1 && !a->personality_set) || (k == 2 && !a->ioprio_set)
          || (k == 3 && !a->sched_set) || (k == 4 && !a->mempolicy_set) || (m = open_memstream (&v, &n)) == NULL)
        continue;
      if (k == 0)
        fprintf (m, "domainname:%s", a->domainname);
      else if (k == 1)
        fprintf (m, "personality:%lu", a->personality);
      else if (k == 2)
        fprintf (m, "ioprio:%d", a->ioprio);
      else if (k == 4)
        fprintf (m, "mempolicy:%d:%s", a->mempolicy_mode, a->mempolicy_nodes);
      else
        fprintf (m, "sched:%" PRIu32 ":%" PRIu64 ":%" PRId32 ":%" PRIu32 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64,
                 a->sched_policy, a->sched_flags, a->sched_nice, a->sched_priority, a->sched_runtime,
                 a->sched_deadline, a->sched_period);
      fclose (m);
      fwrite (key, 1, strlen (key) + 1, out);
      fwrite (v, 1, strlen (v) + 1, out);
      free (v);
      v = NULL;
    }
}

int
grove_oci_attrs_key (grove_oci_attrs_t *a, const char *val, grove_error_t *err)
{
  int used = 0;
  if (strncmp (val, "domainname:", 11) == 0 && strlen (val + 11) < sizeof (a->domainname))
    {
      strcpy (a->domainname, val + 11);
      return a->domainname_set = 1, 0;
    }
  if (sscanf (val, "personality:%lu%n", &a->personality, &used) == 1 && val[used] == '\0')
    return a->personality_set = 1, 0;
  if (sscanf (val, "ioprio:%d%n", &a->ioprio, &used) == 1 && val[used] == '\0')
    return a->ioprio_set = 1, 0;
  if (sscanf (val, "sched:%" SCNu32 ":%" SCNu64 ":%" SCNd32 ":%" SCNu32 ":%" SCNu64 ":%" SCNu64 ":%" SCNu64 "%n",
              &a->sched_policy, &a->sched_flags, &a->sched_nice, &a->sched_priority, &a->sched_runtime,
              &a->sched_deadline, &a->sched_period, &used)
          == 7
      && val[used] == '\0')
    return a->sched_set = 1, 0;
  used = 0;
  if (sscanf (val, "mempolicy:%d:%n", &a->mempolicy_mode, &used) == 1 && used > 0
      && strlen (val + used) < sizeof (a->mempolicy_nodes)
      && grove_oci_list_parse (val + used, a->mempolicy_mask, GROVE_OCI_MAX_NUMA_NODES) == 0)
    {
      strcpy (a->mempolicy_nodes, val + used);
      return a->mempolicy_set = 1, 0;
    }
  return grove_error_set (err, EINVAL, "shim config: proc_attr %s is malformed", val);
}
