/* config.json's process attributes, extra linux.resources and the labels
 * this host cannot apply (see oci_resources.h). */
#include "oci_resources.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))
#define REFUSE(...) return grove_error_set (err, 0, __VA_ARGS__)

struct rd
{
  const char *s;
  const grove_jtok_t *t;
  grove_oci_xres_t *x;
  const char **first;
};

static int
get (const struct rd *r, int obj, const char *key)
{
  return obj < 0 ? -1 : grove_json_get (r->s, r->t, obj, key);
}

/* Set: present and not null, "", [] or {} (as the other refusals count it). */
static int
set (const struct rd *r, int v)
{
  if (v < 0)
    return 0;
  switch (r->t[v].type)
    {
    case GROVE_J_NULL:
      return 0;
    case GROVE_J_STR:
      return r->t[v].end > r->t[v].start;
    case GROVE_J_ARR:
    case GROVE_J_OBJ:
      return r->t[v].size > 0;
    default:
      return 1;
    }
}

static void
seen (const struct rd *r, const char *field)
{
  if (*r->first == NULL)
    *r->first = field;
}

static int
exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}

/* ---- process attributes and labels ------------------------------------------------ */

static int
read_personality (const struct rd *r, int linux_, grove_oci_attrs_t *a, grove_error_t *err)
{
  int p = get (r, linux_, "personality");
  cleanup_free char *domain = NULL;
  if (!set (r, p))
    return 0;
  domain = grove_json_str (r->s, r->t, get (r, p, "domain"));
  if (domain == NULL || (strcmp (domain, "LINUX") != 0 && strcmp (domain, "LINUX32") != 0))
    REFUSE ("config.json linux.personality.domain: must be LINUX or LINUX32");
  if (set (r, get (r, p, "flags")))
    REFUSE ("config.json linux.personality.flags: runtime-spec defines no flag");
  a->personality_set = 1;
  a->personality = strcmp (domain, "LINUX32") == 0 ? PER_LINUX32 : PER_LINUX;
  seen (r, "linux.personality");
  return 0;
}

static int
read_ioprio (const struct rd *r, int proc, grove_oci_attrs_t *a, grove_error_t *err)
{
  static const char *const classes[] = { "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE" };
  int v = get (r, proc, "ioPriority");
  cleanup_free char *cls = NULL;
  long long prio = 0;
  size_t c = 0;
  if (!set (r, v))
    return 0;
  cls = grove_json_str (r->s, r->t, get (r, v, "class"));
  while (cls != NULL && c < N_OF (classes) && strcmp (classes[c], cls) != 0)
    c++;
  if (cls == NULL || c == N_OF (classes))
    REFUSE ("config.json process.ioPriority.class: must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE");
  if (get (r, v, "priority") >= 0
      && (grove_json_num (r->s, r->t, get (r, v, "priority"), &prio) < 0 || prio < 0 || prio > 7))
    REFUSE ("config.json process.ioPriority.priority: must be an integer from 0 to 7");
  a->ioprio_set = 1;
  a->ioprio = (int) (((c + 1) << 13) | (size_t) prio); /* IOPRIO_PRIO_VALUE; RT is class 1 */
  seen (r, "process.ioPriority");
  return 0;
}

/* A uint64 member of obj (0 when absent); -1 when it is not a non-negative integer. */
static int
u64_of (const struct rd *r, int obj, const char *key, uint64_t *out)
{
  int v = get (r, obj, key);
  long long n;
  *out = 0;
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (grove_json_num (r->s, r->t, v, &n) < 0 || n < 0)
    return -1;
  *out = (uint64_t) n;
  return 0;
}

static int
read_sched_flags (const struct rd *r, int v, grove_oci_attrs_t *a, grove_error_t *err)
{
  static const char *const names[]
      = { "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",        "SCHED_FLAG_DL_OVERRUN",
          "SCHED_FLAG_KEEP_POLICY",   "SCHED_FLAG_KEEP_PARAMS",    "SCHED_FLAG_UTIL_CLAMP_MIN",
          "SCHED_FLAG_UTIL_CLAMP_MAX" };
  int f = get (r, v, "flags");
  for (int k = 0; f >= 0 && r->t[f].type == GROVE_J_ARR && k < r->t[f].size; k++)
    {
      cleanup_free char *name = grove_json_str (r->s, r->t, grove_json_at (r->t, f, k));
      size_t i = 0;
      while (name != NULL && i < N_OF (names) && strcmp (names[i], name) != 0)
        i++;
      if (name == NULL || i == N_OF (names))
        REFUSE ("config.json process.scheduler.flags[%d]: unknown flag %s", k, name != NULL ? name : "?");
      a->sched_flags |= 1ULL << i;
    }
  return 0;
}

static int
read_scheduler (const struct rd *r, int proc, grove_oci_attrs_t *a, grove_error_t *err)
{
  /* The kernel's numbers (SCHED_ISO, 4, is reserved: the kernel refuses it). */
  static const char *const policies[] = { "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",      "SCHED_BATCH",
                                          "SCHED_ISO",   "SCHED_IDLE", "SCHED_DEADLINE" };
  int v = get (r, proc, "scheduler");
  cleanup_free char *policy = NULL;
  long long nice = 0;
  uint64_t prio;
  size_t p = 0;
  if (!set (r, v))
    return 0;
  policy = grove_json_str (r->s, r->t, get (r, v, "policy"));
  while (policy != NULL && p < N_OF (policies) && strcmp (policies[p], policy) != 0)
    p++;
  if (policy == NULL || p == N_OF (policies))
    REFUSE ("config.json process.scheduler.policy: must be one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, "
            "SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE");
  if (get (r, v, "nice") >= 0
      && (grove_json_num (r->s, r->t, get (r, v, "nice"), &nice) < 0 || nice < -20 || nice > 19))
    REFUSE ("config.json process.scheduler.nice: must be an integer from -20 to 19");
  if (u64_of (r, v, "priority", &prio) < 0 || prio > 99)
    REFUSE ("config.json process.scheduler.priority: must be an integer from 0 to 99");
  if (u64_of (r, v, "runtime", &a->sched_runtime) < 0 || u64_of (r, v, "deadline", &a->sched_deadline) < 0
      || u64_of (r, v, "period", &a->sched_period) < 0)
    REFUSE ("config.json process.scheduler: runtime, deadline and period must be non-negative integers (ns)");
  if (read_sched_flags (r, v, a, err) < 0)
    return -1;
  a->sched_set = 1;
  a->sched_policy = (uint32_t) p;
  a->sched_nice = (int32_t) nice;
  a->sched_priority = (uint32_t) prio;
  seen (r, "process.scheduler");
  return 0;
}

/* Labels and Intel RDT: refused naming what this host lacks (runc refuses
 * or fails on them here too); on a host that has it, not applied: refused. */
static int
read_labels (const struct rd *r, int proc, int linux_, grove_error_t *err)
{
  static const struct
  {
    const char *field, *probe, *lacks;
  } labels[] = {
    { "process.apparmorProfile", "/sys/module/apparmor/parameters/enabled", "AppArmor" },
    { "process.selinuxLabel", "/sys/fs/selinux", "SELinux" },
    { "linux.mountLabel", "/sys/fs/selinux", "SELinux" },
    { "linux.intelRdt", "/sys/fs/resctrl", "Intel RDT (no resctrl filesystem)" },
  };
  for (size_t i = 0; i < N_OF (labels); i++)
    {
      const char *key = strchr (labels[i].field, '.') + 1;
      if (!set (r, get (r, labels[i].field[0] == 'p' ? proc : linux_, key)))
        continue;
      if (!exists (labels[i].probe))
        REFUSE ("config.json %s: this host has no %s", labels[i].field, labels[i].lacks);
      REFUSE ("config.json %s: is not supported by grove-runtime", labels[i].field);
    }
  return 0;
}

/* linux.memoryPolicy (runtime-spec 1.3): set_mempolicy's mode, flags and node mask. */
static int
read_mempolicy (const struct rd *r, int linux_, grove_oci_attrs_t *a, grove_error_t *err)
{
  /* The kernel's numbers, in its order. */
  static const char *const modes[] = { "MPOL_DEFAULT",    "MPOL_PREFERRED",      "MPOL_BIND",
                                       "MPOL_INTERLEAVE", "MPOL_LOCAL",          "MPOL_PREFERRED_MANY",
                                       "MPOL_WEIGHTED_INTERLEAVE" };
  static const char *const flags[] = { "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES" };
  int v = get (r, linux_, "memoryPolicy"), f, n = get (r, v, "nodes");
  cleanup_free char *mode = NULL;
  cleanup_free char *nodes = NULL;
  size_t m = 0;
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (r->t[v].type != GROVE_J_OBJ)
    REFUSE ("config.json linux.memoryPolicy: must be an object (mode, nodes, flags)");
  mode = grove_json_str (r->s, r->t, get (r, v, "mode"));
  while (mode != NULL && m < N_OF (modes) && strcmp (modes[m], mode) != 0)
    m++;
  if (mode == NULL || m == N_OF (modes))
    REFUSE ("config.json linux.memoryPolicy.mode: must be one of MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, "
            "MPOL_INTERLEAVE, MPOL_LOCAL, MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE");
  nodes = n >= 0 && r->t[n].type != GROVE_J_NULL ? grove_json_str (r->s, r->t, n) : strdup ("");
  if (nodes == NULL || strlen (nodes) >= sizeof (a->mempolicy_nodes)
      || grove_oci_list_parse (nodes, a->mempolicy_mask, GROVE_OCI_MAX_NUMA_NODES) < 0)
    REFUSE ("config.json linux.memoryPolicy.nodes: must be a list of NUMA nodes below %d such as 0-3,7",
            GROVE_OCI_MAX_NUMA_NODES);
  /* set_mempolicy(2): MPOL_DEFAULT and MPOL_LOCAL take no nodes; MPOL_PREFERRED without nodes is local. */
  if ((m == 0 || m == 4) != (nodes[0] == '\0') && m != 1)
    REFUSE ("config.json linux.memoryPolicy.nodes: %s %s", mode, m == 0 || m == 4 ? "takes no nodes" : "needs nodes");
  a->mempolicy_mode = (int) m;
  f = get (r, v, "flags");
  if (f >= 0 && r->t[f].type != GROVE_J_NULL && r->t[f].type != GROVE_J_ARR)
    REFUSE ("config.json linux.memoryPolicy.flags: must be an array of flag names");
  for (int k = 0; f >= 0 && r->t[f].type == GROVE_J_ARR && k < r->t[f].size; k++)
    {
      cleanup_free char *name = grove_json_str (r->s, r->t, grove_json_at (r->t, f, k));
      size_t i = 0;
      while (name != NULL && i < N_OF (flags) && strcmp (flags[i], name) != 0)
        i++;
      if (name == NULL || i == N_OF (flags))
        REFUSE ("config.json linux.memoryPolicy.flags[%d]: unknown flag %s", k, name != NULL ? name : "?");
      a->mempolicy_mode |= 1 << (13 + i); /* MPOL_F_NUMA_BALANCING 1 << 13, RELATIVE 14, STATIC 15 */
    }
  if ((a->mempolicy_mode & (3 << 14)) == (3 << 14))
    REFUSE ("config.json linux.memoryPolicy.flags: MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES exclude each other");
  strcpy (a->mempolicy_nodes, nodes);
  a->mempolicy_set = 1;
  seen (r, "linux.memoryPolicy");
  return 0;
}

/* process.execCPUAffinity (runtime-spec 1.2) is for exec, which grove-runtime
 * does not have ("not applicable to the container's init process"): its
 * shape checked, then ignored, as runc 1.1.5 ignores it. */
static int
read_exec_affinity (const struct rd *r, int proc, grove_error_t *err)
{
  static const char *const keys[] = { "initial", "final" };
  int v = get (r, proc, "execCPUAffinity");
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (r->t[v].type != GROVE_J_OBJ)
    REFUSE ("config.json process.execCPUAffinity: must be an object (initial, final)");
  for (size_t k = 0; k < N_OF (keys); k++)
    {
      int l = get (r, v, keys[k]);
      cleanup_free char *list = grove_json_str (r->s, r->t, l);
      if (l >= 0 && r->t[l].type != GROVE_J_NULL && (list == NULL || grove_oci_list_parse (list, NULL, 8192) < 0))
        REFUSE ("config.json process.execCPUAffinity.%s: must be a list of CPUs such as 0-3,7", keys[k]);
    }
  return 0;
}

static int
read_attrs (const struct rd *r, grove_oci_attrs_t *a, grove_error_t *err)
{
  int proc = get (r, 0, "process"), linux_ = get (r, 0, "linux"), dn = get (r, 0, "domainname");
  if (set (r, dn))
    {
      cleanup_free char *name = grove_json_str (r->s, r->t, dn);
      if (name == NULL || strlen (name) >= sizeof (a->domainname))
        REFUSE ("config.json domainname: must be a string of at most %zu bytes", sizeof (a->domainname) - 1);
      strcpy (a->domainname, name);
      a->domainname_set = 1;
      seen (r, "domainname");
    }
  if (read_personality (r, linux_, a, err) < 0 || read_ioprio (r, proc, a, err) < 0
      || read_scheduler (r, proc, a, err) < 0 || read_mempolicy (r, linux_, a, err) < 0
      || read_exec_affinity (r, proc, err) < 0 || read_labels (r, proc, linux_, err) < 0)
    return -1;
  return 0;
}

/* ---- linux.resources ------------------------------------------------------------ */

static int
add (const struct rd *r, const char *controller, const char *file, const char *field, grove_error_t *err,
     const char *fmt, ...) __attribute__ ((format (printf, 6, 7)));

/* One cgroup file write, named field in errors. */
static int
add (const struct rd *r, const char *controller, const char *file, const char *field, grove_error_t *err,
     const char *fmt, ...)
{
  grove_oci_cg_write_t *w;
  va_list ap;
  if (r->x->n == GROVE_OCI_MAX_CG_WRITES)
    REFUSE ("config.json %s: at most %d cgroup values in linux.resources", field, GROVE_OCI_MAX_CG_WRITES);
  w = &r->x->w[r->x->n++];
  w->controller = controller;
  snprintf (w->file, sizeof (w->file), "%s", file);
  snprintf (w->field, sizeof (w->field), "%s", field);
  va_start (ap, fmt);
  vsnprintf (w->value, sizeof (w->value), fmt, ap);
  va_end (ap);
  for (size_t i = 0; i < GROVE_CGROUP_V1_NEXTRA; i++)
    if (strcmp (grove_cgroup_v1_extra[i], controller) == 0)
      r->x->v1_join |= 1u << i;
  seen (r, w->field); /* it lives as long as the bundle */
  return 0;
}

/* An integer member written to controller/file as it is (absent or null: nothing). */
static int
add_num (const struct rd *r, int obj, const char *key, const char *prefix, const char *controller, const char *file,
         long long min, long long max, grove_error_t *err)
{
  int v = get (r, obj, key);
  long long n;
  char field[96];
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  snprintf (field, sizeof (field), "%s%s", prefix, key);
  if (grove_json_num (r->s, r->t, v, &n) < 0 || n < min || n > max)
    REFUSE ("config.json %s: must be an integer from %lld to %lld", field, min, max);
  return add (r, controller, file, field, err, "%lld", n);
}

/* A member that must be a boolean when set: 1 true, 0 false, -1 absent or null. */
static int
bool_of (const struct rd *r, int obj, const char *key, const char *field, grove_error_t *err)
{
  int v = get (r, obj, key);
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return -1;
  if (r->t[v].type != GROVE_J_BOOL)
    return grove_error_set (err, 0, "config.json %s%s: must be a boolean", field, key), -2;
  return grove_json_true (r->s, r->t, v);
}

static int
read_memory (const struct rd *r, int mem, grove_error_t *err)
{
  const char *p = "linux.resources.memory.";
  int v = get (r, mem, "disableOOMKiller");
  /* checkBeforeUpdate is for update, which grove-runtime does not have: checked, ignored. */
  int hier = bool_of (r, mem, "useHierarchy", p, err), check = bool_of (r, mem, "checkBeforeUpdate", p, err);
  if (hier == -2 || check == -2)
    return -1;
  /* Written as asked; a kernel that keeps every memory cgroup hierarchical refuses 0 (EINVAL). */
  if (hier >= 0
      && add (r, "memory", "memory.use_hierarchy", "linux.resources.memory.useHierarchy", err, "%d", hier) < 0)
    return -1;
  if (hier >= 0)
    r->x->w[r->x->n - 1].einval = "this kernel's memory cgroups are always hierarchical (memory.use_hierarchy "
                                  "refuses 0; runc 1.1.5 ignores the field)";
  if (add_num (r, mem, "reservation", p, "memory", "memory.soft_limit_in_bytes", -1, INT64_MAX, err) < 0
      || add_num (r, mem, "swappiness", p, "memory", "memory.swappiness", 0, 100, err) < 0
      || add_num (r, mem, "kernelTCP", p, "memory", "memory.kmem.tcp.limit_in_bytes", -1, INT64_MAX, err) < 0
      || add_num (r, mem, "kernel", p, "memory", "memory.kmem.limit_in_bytes", -1, INT64_MAX, err) < 0)
    return -1;
  /* This kernel keeps memory.kmem.limit_in_bytes as it is whatever is written. */
  if (r->x->n > 0 && strcmp (r->x->w[r->x->n - 1].file, "memory.kmem.limit_in_bytes") == 0)
    r->x->w[r->x->n - 1].verify = 1;
  if (v >= 0 && r->t[v].type == GROVE_J_BOOL && grove_json_true (r->s, r->t, v))
    return add (r, "memory", "memory.oom_control", "linux.resources.memory.disableOOMKiller", err, "1");
  return 0;
}

static int
read_cpu (const struct rd *r, int cpu, grove_error_t *err)
{
  const char *p = "linux.resources.cpu.";
  static const char *const sets[] = { "cpus", "mems" };
  for (size_t i = 0; i < N_OF (sets); i++)
    {
      int v = get (r, cpu, sets[i]);
      cleanup_free char *list = set (r, v) ? grove_json_str (r->s, r->t, v) : NULL;
      char field[64], file[32];
      snprintf (field, sizeof (field), "%s%s", p, sets[i]);
      snprintf (file, sizeof (file), "cpuset.%s", sets[i]);
      if (set (r, v) && (list == NULL || strlen (list) > 100 || strspn (list, "0123456789,-") != strlen (list)))
        REFUSE ("config.json %s: must be a list such as 0-2,4", field);
      if (list != NULL && add (r, "cpuset", file, field, err, "%s", list) < 0)
        return -1;
    }
  /* runc's order: the period before the runtime. */
  if (add_num (r, cpu, "realtimePeriod", p, "cpu", "cpu.rt_period_us", 1, INT64_MAX, err) < 0
      || add_num (r, cpu, "realtimeRuntime", p, "cpu", "cpu.rt_runtime_us", -1, INT64_MAX, err) < 0
      || add_num (r, cpu, "burst", p, "cpu", "cpu.cfs_burst_us", 0, INT64_MAX, err) < 0
      || add_num (r, cpu, "idle", p, "cpu", "cpu.idle", 0, 1, err) < 0)
    return -1;
  return 0;
}

/* blockIO's device lists: "MAJOR:MINOR VALUE" lines into file. */
static int
read_blkio_devices (const struct rd *r, int bio, const char *key, const char *value_key, const char *file,
                    grove_error_t *err)
{
  int list = get (r, bio, key);
  for (int k = 0; list >= 0 && r->t[list].type == GROVE_J_ARR && k < r->t[list].size; k++)
    {
      int d = grove_json_at (r->t, list, k);
      long long major, minor, value;
      char field[96];
      snprintf (field, sizeof (field), "linux.resources.blockIO.%s[%d]", key, k);
      if (grove_json_num (r->s, r->t, get (r, d, "major"), &major) < 0 || major < 0
          || grove_json_num (r->s, r->t, get (r, d, "minor"), &minor) < 0 || minor < 0
          || grove_json_num (r->s, r->t, get (r, d, value_key), &value) < 0 || value < 0)
        REFUSE ("config.json %s: major, minor and %s must be non-negative integers", field, value_key);
      if (add (r, "blkio", file, field, err, "%lld:%lld %lld", major, minor, value) < 0)
        return -1;
    }
  return 0;
}

/* runc's files: BFQ's weight where the kernel has it, else CFQ's. */
static int
read_blkio (const struct rd *r, int bio, grove_error_t *err)
{
  const char *p = "linux.resources.blockIO.";
  if (add_num (r, bio, "weight", p, "blkio", "blkio.bfq.weight|blkio.weight", 10, 1000, err) < 0
      || add_num (r, bio, "leafWeight", p, "blkio", "blkio.leaf_weight", 10, 1000, err) < 0
      || read_blkio_devices (r, bio, "weightDevice", "weight", "blkio.bfq.weight_device|blkio.weight_device", err) < 0
      || read_blkio_devices (r, bio, "leafWeightDevice", "leafWeight", "blkio.leaf_weight_device", err) < 0
      || read_blkio_devices (r, bio, "throttleReadBpsDevice", "rate", "blkio.throttle.read_bps_device", err) < 0
      || read_blkio_devices (r, bio, "throttleWriteBpsDevice", "rate", "blkio.throttle.write_bps_device", err) < 0
      || read_blkio_devices (r, bio, "throttleReadIOPSDevice", "rate", "blkio.throttle.read_iops_device", err) < 0
      || read_blkio_devices (r, bio, "throttleWriteIOPSDevice", "rate", "blkio.throttle.write_iops_device", err) < 0)
    return -1;
  return 0;
}

/* hugepageLimits, network, rdma, unified. */
static int
read_other (const struct rd *r, int res, grove_error_t *err)
{
  int v = get (r, res, "hugepageLimits"), net = get (r, res, "network");
  for (int k = 0; v >= 0 && r->t[v].type == GROVE_J_ARR && k < r->t[v].size; k++)
    {
      int h = grove_json_at (r->t, v, k);
      cleanup_free char *size = grove_json_str (r->s, r->t, get (r, h, "pageSize"));
      long long limit;
      char field[64], file[64];
      snprintf (field, sizeof (field), "linux.resources.hugepageLimits[%d]", k);
      if (size == NULL || strlen (size) > 16 || strspn (size, "0123456789KMGB") != strlen (size)
          || grove_json_num (r->s, r->t, get (r, h, "limit"), &limit) < 0 || limit < 0)
        REFUSE ("config.json %s: needs pageSize (such as 2MB) and limit (bytes)", field);
      snprintf (file, sizeof (file), "hugetlb.%s.limit_in_bytes", size);
      if (add (r, "hugetlb", file, field, err, "%lld", limit) < 0)
        return -1;
    }
  if (add_num (r, net, "classID", "linux.resources.network.", "net_cls", "net_cls.classid", 0, UINT32_MAX, err) < 0)
    return -1;
  v = get (r, net, "priorities");
  for (int k = 0; v >= 0 && r->t[v].type == GROVE_J_ARR && k < r->t[v].size; k++)
    {
      int e = grove_json_at (r->t, v, k);
      cleanup_free char *name = grove_json_str (r->s, r->t, get (r, e, "name"));
      long long prio;
      char field[64];
      snprintf (field, sizeof (field), "linux.resources.network.priorities[%d]", k);
      if (name == NULL || name[0] == '\0' || strlen (name) > 15 || strpbrk (name, " /\n") != NULL
          || grove_json_num (r->s, r->t, get (r, e, "priority"), &prio) < 0 || prio < 0 || prio > UINT32_MAX)
        REFUSE ("config.json %s: needs an interface name and a priority", field);
      if (add (r, "net_prio", "net_prio.ifpriomap", field, err, "%s %lld", name, prio) < 0)
        return -1;
    }
  v = get (r, res, "rdma");
  for (int k = 0, j = v + 1; set (r, v) && r->t[v].type == GROVE_J_OBJ && k < r->t[v].size; k++, j = r->t[j + 1].next)
    {
      cleanup_free char *dev = grove_json_str (r->s, r->t, j);
      long long handles = -1, objects = -1;
      char field[96], hs[24] = "max", os[24] = "max";
      snprintf (field, sizeof (field), "linux.resources.rdma.%s", dev != NULL ? dev : "?");
      if (dev == NULL || dev[0] == '\0' || strpbrk (dev, " \n") != NULL
          || (get (r, j + 1, "hcaHandles") >= 0 && grove_json_num (r->s, r->t, get (r, j + 1, "hcaHandles"), &handles) < 0)
          || (get (r, j + 1, "hcaObjects") >= 0 && grove_json_num (r->s, r->t, get (r, j + 1, "hcaObjects"), &objects) < 0))
        REFUSE ("config.json %s: hcaHandles and hcaObjects must be integers", field);
      if (handles >= 0)
        snprintf (hs, sizeof (hs), "%lld", handles);
      if (objects >= 0)
        snprintf (os, sizeof (os), "%lld", objects);
      if (add (r, "rdma", "rdma.max", field, err, "%s hca_handle=%s hca_object=%s", dev, hs, os) < 0)
        return -1;
    }
  v = get (r, res, "unified");
  for (int k = 0, j = v + 1; set (r, v) && r->t[v].type == GROVE_J_OBJ && k < r->t[v].size; k++, j = r->t[j + 1].next)
    {
      cleanup_free char *file = grove_json_str (r->s, r->t, j);
      cleanup_free char *value = grove_json_str (r->s, r->t, j + 1);
      char field[96];
      snprintf (field, sizeof (field), "linux.resources.unified.%s", file != NULL ? file : "?");
      if (file == NULL || value == NULL || strchr (file, '/') != NULL || strchr (file, '.') == NULL
          || strncmp (file, "cgroup.", 7) == 0)
        REFUSE ("config.json %s: must be a controller's file (memory.high) with a string value", field);
      if (add (r, "unified", file, field, err, "%s", value) < 0)
        return -1;
    }
  return 0;
}

int
grove_oci_extras_read (const char *s, const grove_jtok_t *t, grove_oci_attrs_t *a, grove_oci_xres_t *x,
                       const char **first, grove_error_t *err)
{
  struct rd r = { s, t, x, first };
  int res = get (&r, get (&r, 0, "linux"), "resources");
  *first = NULL;
  if (read_attrs (&r, a, err) < 0 || read_memory (&r, get (&r, res, "memory"), err) < 0
      || read_cpu (&r, get (&r, res, "cpu"), err) < 0 || read_blkio (&r, get (&r, res, "blockIO"), err) < 0
      || read_other (&r, res, err) < 0)
    return -1;
  return 0;
}

/* ---- applying them ---------------------------------------------------------------- */

/* <root>/<controller>[/<prefix>]/<parent>/<id>, each level made; a new cpuset cgroup
 * first takes its parent's cpus and mems (the kernel leaves them empty and
 * refuses tasks then), as runc fills them. */
static int
make_v1_dirs (const grove_cgroup_t *cg, const char *controller, grove_error_t *err)
{
  char path[4096], parent[4096];
  const char *rel[2] = { cg->parent, cg->id };
  const char *pre = grove_cgroup_v1_prefix (cg, controller);
  size_t len = (size_t) snprintf (path, sizeof (path), "%s/%s%s%s", cg->root, controller, *pre ? "/" : "", pre);
  for (int part = 0; part < 2; part++)
    for (const char *c = rel[part]; c != NULL && *c != '\0';)
      {
        size_t n = strcspn (c, "/");
        if (n > 0)
          {
            snprintf (parent, sizeof (parent), "%s", path);
            len += (size_t) snprintf (path + len, sizeof (path) - len, "/%.*s", (int) n, c);
            if (len >= sizeof (path) || grove_mkdir (path, 0755, err) < 0)
              return len >= sizeof (path) ? grove_error_set (err, ENAMETOOLONG, "%s", path) : -1;
            for (int f = 0; strcmp (controller, "cpuset") == 0 && f < 2; f++)
              {
                const char *file = f == 0 ? "cpuset.cpus" : "cpuset.mems";
                char mine[4200], theirs[4200];
                cleanup_free char *have = NULL;
                cleanup_free char *from = NULL;
                snprintf (mine, sizeof (mine), "%s/%s", path, file);
                snprintf (theirs, sizeof (theirs), "%s/%s", parent, file);
                if (grove_read_file (mine, &have, err) < 0)
                  return -1;
                if (have[strspn (have, " \n")] == '\0'
                    && (grove_read_file (theirs, &from, err) < 0 || grove_write_file (mine, from, err) < 0))
                  return -1;
              }
          }
        c += n;
        while (*c == '/')
          c++;
      }
  return 0;
}

/* a|b: the first of the two files the cgroup has; NULL: neither. */
static const char *
pick_file (const char *dir, const char *files, char *out, size_t cap)
{
  const char *bar = strchr (files, '|');
  char path[4096];
  snprintf (out, cap, "%.*s", bar != NULL ? (int) (bar - files) : (int) strlen (files), files);
  snprintf (path, sizeof (path), "%s/%s", dir, out);
  if (exists (path))
    return out;
  return bar != NULL ? pick_file (dir, bar + 1, out, cap) : NULL;
}

static int
apply_one (const grove_cgroup_t *cg, const grove_oci_cg_write_t *w, grove_error_t *err)
{
  char file[64], path[4200];
  cleanup_free char *dir = NULL;
  cleanup_free char *back = NULL;
  int v2 = cg->mode == GROVE_CGROUP_V2, unified = strcmp (w->controller, "unified") == 0;
  grove_error_t why;
  if (unified && !v2)
    REFUSE ("config.json %s: linux.resources.unified needs cgroup v2; this host's cgroups are v1 (runc: cannot use "
            "unified on cgroup v1)",
            w->field);
  if (v2 && !unified)
    REFUSE ("config.json %s: grove-runtime applies it on cgroup v1 hosts only", w->field);
  if (grove_cgroup_dir (cg, w->controller, &dir, err) < 0)
    return -1;
  if (pick_file (dir, w->file, file, sizeof (file)) == NULL)
    {
      const char *bar = strchr (w->file, '|');
      REFUSE ("config.json %s: this kernel's %s controller has no %.*s%s%s (runc fails on it too)", w->field,
              unified ? "cgroup v2" : w->controller, bar != NULL ? (int) (bar - w->file) : (int) strlen (w->file),
              w->file, bar != NULL ? " or " : "", bar != NULL ? bar + 1 : "");
    }
  snprintf (path, sizeof (path), "%s/%s", dir, file);
  if (grove_write_file (path, w->value, &why) < 0)
    REFUSE ("config.json %s: %s", w->field, w->einval != NULL && why.errnum == EINVAL ? w->einval : why.msg);
  if (w->verify && (grove_read_file (path, &back, &why) < 0 || strtoll (back, NULL, 10) != strtoll (w->value, NULL, 10)))
    REFUSE ("config.json %s: this kernel does not limit it (%s keeps %lld; runc 1.1.5 ignores the field with a warning)",
            w->field, file, back != NULL ? strtoll (back, NULL, 10) : -1LL);
  return 0;
}

int
grove_oci_xres_apply (const grove_cgroup_t *cg, const grove_oci_xres_t *x, grove_error_t *err)
{
  for (size_t i = 0; cg->mode == GROVE_CGROUP_V1 && i < GROVE_CGROUP_V1_NEXTRA; i++)
    {
      const char *name = grove_cgroup_v1_extra[i];
      char mounted[4096];
      if (!(x->v1_join & (1u << i)))
        continue;
      snprintf (mounted, sizeof (mounted), "%s/%s", cg->root, name);
      for (size_t k = 0; !exists (mounted) && k < x->n; k++)
        if (strcmp (x->w[k].controller, name) == 0)
          REFUSE ("config.json %s: this host has no cgroup v1 %s hierarchy (%s; runc fails on it too)", x->w[k].field,
                  name, mounted);
      if (make_v1_dirs (cg, name, err) < 0)
        return -1;
    }
  for (size_t k = 0; k < x->n; k++)
    if (apply_one (cg, &x->w[k], err) < 0)
      return -1;
  return 0;
}
