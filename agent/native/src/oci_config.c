/* config.json -> a container configuration (see oci_config.h). Read in
 * steps: the top-level keys, process, root and mounts, linux (namespaces,
 * paths, devices) and linux.resources; each step refuses what Grove does not
 * honour, naming the field. */
#include "oci_config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "hooks.h"
#include "util.h"

#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))
/* A refusal: the message names the field; no errno. */
#define REFUSE(...) return grove_error_set (err, 0, __VA_ARGS__)

static const char *const cap_names[]
    = { "CHOWN",          "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",        "FSETID",     "KILL",
        "SETGID",         "SETUID",       "SETPCAP",         "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
        "NET_BROADCAST",  "NET_ADMIN",    "NET_RAW",         "IPC_LOCK",      "IPC_OWNER",  "SYS_MODULE",
        "SYS_RAWIO",      "SYS_CHROOT",   "SYS_PTRACE",      "SYS_PACCT",     "SYS_ADMIN",  "SYS_BOOT",
        "SYS_NICE",       "SYS_RESOURCE", "SYS_TIME",        "SYS_TTY_CONFIG", "MKNOD",     "LEASE",
        "AUDIT_WRITE",    "AUDIT_CONTROL", "SETFCAP",        "MAC_OVERRIDE",  "MAC_ADMIN",  "SYSLOG",
        "WAKE_ALARM",     "BLOCK_SUSPEND", "AUDIT_READ",     "PERFMON",       "BPF",        "CHECKPOINT_RESTORE" };
static const char *const rlimit_names[]
    = { "RLIMIT_CPU",     "RLIMIT_FSIZE", "RLIMIT_DATA",  "RLIMIT_STACK",      "RLIMIT_CORE",     "RLIMIT_RSS",
        "RLIMIT_NPROC",   "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",     "RLIMIT_LOCKS",    "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME" };
/* Grove's own /proc, /dev and /sys: made where the config lists them,
 * whatever the type it gives (Grove's are a procfs, a tmpfs with the
 * container's own device nodes and a read-only sysfs). The filesystems of
 * builtin_mounts come with /dev (pts, shm, mqueue): an entry of that type
 * there is skipped; another (a bind over /dev/shm) is mounted in its place in
 * the list. /sys/fs/cgroup without a type is skipped too; of type cgroup it
 * is mounted as runc mounts it (container.c: the container's hierarchies). */
static const char *const own_mounts[] = { "/proc", "/dev", "/sys" };
static const char *const builtin_mounts[][2] = {
  { "/dev/pts", "devpts" }, { "/dev/shm", "tmpfs" }, { "/dev/mqueue", "mqueue" }, { "/sys/fs/cgroup", "" }
};

/* What Grove's core always does (container.c): its masked and read-only
 * paths, the device nodes of its /dev. A bundle may ask for these (runc
 * spec's defaults are among them), not for others. */
static const char *const grove_masked[]
    = { "/proc/asound",        "/proc/acpi",       "/proc/interrupts",  "/proc/kcore",       "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware",       "/sys/devices/virtual/powercap" };
static const char *const grove_readonly[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
static const char *const grove_devices[]
    = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty" };

/* Any key not in runtime-spec is ignored, as it requires ("runtimes MUST
 * ignore unknown properties"); so are other platforms' objects (windows,
 * solaris, vm, zos) and Windows-only fields (process.commandLine,
 * user.username). (domainname, personality, ioPriority, scheduler,
 * memoryPolicy, execCPUAffinity, the labels and the other linux.resources:
 * oci_resources.c.) */

/* One reading: the text, its tokens, the bundle's directory and the result. */
struct reader
{
  const char *s;
  grove_jtok_t *t;
  const char *bundle;
  grove_oci_bundle_t *b;
};

static int
in_list (const char *const *list, size_t n, const char *v)
{
  for (size_t i = 0; v != NULL && i < n; i++)
    if (strcmp (list[i], v) == 0)
      return 1;
  return 0;
}

/* Grove also masks /sys/devices/system/cpu/cpu<N>/thermal_throttle for every N. */
static int
is_thermal_throttle (const char *p)
{
  static const char prefix[] = "/sys/devices/system/cpu/cpu";
  size_t n = sizeof (prefix) - 1, d = 0;
  if (p == NULL || strncmp (p, prefix, n) != 0)
    return 0;
  while (p[n + d] >= '0' && p[n + d] <= '9')
    d++;
  return d > 0 && strcmp (p + n + d, "/thermal_throttle") == 0;
}

/* The value of key in obj (-1 when absent). */
static int
get (const struct reader *r, int obj, const char *key)
{
  return grove_json_get (r->s, r->t, obj, key);
}

/* ---- process ---------------------------------------------------------------- */

/* A capability list as a bit mask in *mask; *mask = -1 when the list is absent. */
static int
cap_mask (const struct reader *r, int caps, const char *set, long long *mask, grove_error_t *err)
{
  int list = get (r, caps, set);
  uint64_t m = 0;
  *mask = -1;
  if (list < 0)
    return 0;
  if (r->t[list].type != GROVE_J_ARR)
    REFUSE ("config.json process.capabilities.%s: must be an array", set);
  for (int k = 0; k < r->t[list].size; k++)
    {
      cleanup_free char *name = grove_json_str (r->s, r->t, grove_json_at (r->t, list, k));
      const char *n = name != NULL && strncmp (name, "CAP_", 4) == 0 ? name + 4 : name;
      size_t c = 0;
      while (n != NULL && c < N_OF (cap_names) && strcmp (cap_names[c], n) != 0)
        c++;
      if (n == NULL || c == N_OF (cap_names))
        REFUSE ("config.json process.capabilities.%s[%d]: unknown capability %s", set, k, name ? name : "?");
      m |= 1ULL << c;
    }
  *mask = (long long) m;
  return 0;
}

/* All five sets, applied as given (the core keeps them across the change of
 * user; execve then transforms them as the kernel does, as under runc). A
 * set the config leaves out is empty; without bounding, effective stands in. */
static int
read_capabilities (const struct reader *r, int proc, grove_error_t *err)
{
  grove_container_config_t *cc = &r->b->cc;
  long long bnd, eff, prm, inh, amb;
  int v = get (r, proc, "capabilities");
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (cap_mask (r, v, "bounding", &bnd, err) < 0 || cap_mask (r, v, "effective", &eff, err) < 0
      || cap_mask (r, v, "permitted", &prm, err) < 0 || cap_mask (r, v, "inheritable", &inh, err) < 0
      || cap_mask (r, v, "ambient", &amb, err) < 0)
    return -1;
  r->b->cap_given[0] = eff;
  r->b->cap_given[1] = prm;
  r->b->cap_given[2] = inh;
  if (bnd < 0)
    bnd = eff;
  cc->caps_set = 1;
  cc->caps_sets = 1;
  cc->caps = bnd >= 0 ? (uint64_t) bnd : 0;
  cc->caps_effective = eff >= 0 ? (uint64_t) eff : 0;
  cc->caps_permitted = prm >= 0 ? (uint64_t) prm : 0;
  cc->caps_inheritable = inh >= 0 ? (uint64_t) inh : 0;
  cc->caps_ambient = amb >= 0 ? (uint64_t) amb : 0;
  return 0;
}

static int
read_rlimits (const struct reader *r, int proc, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v = get (r, proc, "rlimits"), has_nofile = 0;
  for (int k = 0; v >= 0 && k < r->t[v].size; k++)
    {
      int e = grove_json_at (r->t, v, k);
      cleanup_free char *type = grove_json_str (r->s, r->t, get (r, e, "type"));
      long long soft, hard;
      size_t c = 0;
      while (type != NULL && c < N_OF (rlimit_names) && strcmp (rlimit_names[c], type) != 0)
        c++;
      if (type == NULL || c == N_OF (rlimit_names))
        REFUSE ("config.json process.rlimits[%d].type: unknown rlimit %s", k, type ? type : "?");
      if (grove_json_num (r->s, r->t, get (r, e, "soft"), &soft) < 0
          || grove_json_num (r->s, r->t, get (r, e, "hard"), &hard) < 0 || soft < 0 || soft > hard)
        REFUSE ("config.json process.rlimits[%d]: soft and hard must be integers, soft <= hard", k);
      if (b->nrlimits == N_OF (b->rlimits))
        REFUSE ("config.json process.rlimits: at most %zu", N_OF (b->rlimits));
      b->rlimits[b->nrlimits++] = (grove_rlimit_t){ (int) c, (uint64_t) soft, (uint64_t) hard };
      has_nofile |= c == RLIMIT_NOFILE;
    }
  if (!has_nofile)
    {
      /* As for an agent's container (defaultNofile, security.ts): Docker's
       * soft 1024, hard 524288, or our own hard limit when lower (a user
       * namespace cannot raise it). Not inherited from whoever ran us. */
      struct rlimit own;
      uint64_t hard = 524288;
      if (getrlimit (RLIMIT_NOFILE, &own) == 0 && own.rlim_max < hard)
        hard = own.rlim_max;
      if (b->nrlimits == N_OF (b->rlimits))
        REFUSE ("config.json process.rlimits: at most %zu with RLIMIT_NOFILE", N_OF (b->rlimits) - 1);
      b->rlimits[b->nrlimits++] = (grove_rlimit_t){ RLIMIT_NOFILE, hard < 1024 ? hard : 1024, hard };
    }
  return 0;
}

static int
read_user (const struct reader *r, int proc, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  long long num;
  int v = get (r, proc, "user"), g;
  if (v < 0)
    return 0;
  if (grove_json_num (r->s, r->t, get (r, v, "uid"), &num) == 0)
    b->cc.uid = (uid_t) num;
  if (grove_json_num (r->s, r->t, get (r, v, "gid"), &num) == 0)
    b->cc.gid = (gid_t) num;
  g = get (r, v, "additionalGids");
  for (int k = 0; g >= 0 && k < r->t[g].size; k++)
    if (grove_json_num (r->s, r->t, grove_json_at (r->t, g, k), &num) == 0)
      {
        if (b->ngroups == N_OF (b->groups))
          REFUSE ("config.json process.user.additionalGids: at most %zu", N_OF (b->groups));
        b->groups[b->ngroups++] = (gid_t) num;
      }
  return 0;
}

static void
static_only (grove_oci_bundle_t *b, const char *field)
{
  for (size_t i = 0; i < b->nstatic_only; i++)
    if (strcmp (b->static_only[i], field) == 0)
      return;
  if (b->nstatic_only < N_OF (b->static_only))
    b->static_only[b->nstatic_only++] = field;
}

/* The propagation names of mounts[].options and linux.rootfsPropagation
 * (runc's): mount(2) flags, 0 when name is none of them. */
static unsigned long
propagation_of (const char *name)
{
  static const struct
  {
    const char *name;
    unsigned long flags;
  } names[] = { { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
                { "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
                { "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
                { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC } };
  for (size_t i = 0; name != NULL && i < N_OF (names); i++)
    if (strcmp (names[i].name, name) == 0)
      return names[i].flags;
  return 0;
}

/* Option o of mounts[k] appended to m's propagation changes when it is one
 * (1); 0 when it is another option. A change other than to private is for
 * the static grove-runtime only (the TypeScript command line makes every
 * mount private). */
static int
add_propagation (grove_oci_bundle_t *b, grove_mount_t *m, int k, int o, const char *opt, grove_error_t *err)
{
  unsigned long f = propagation_of (opt);
  if (f == 0)
    return 0;
  if (m->npropagation == GROVE_MAX_PROPAGATION)
    REFUSE ("config.json mounts[%d].options[%d]: at most %d propagation options", k, o, GROVE_MAX_PROPAGATION);
  m->propagation[m->npropagation++] = f;
  if ((f & ~MS_REC) != MS_PRIVATE)
    static_only (b, "mounts");
  return 1;
}

/* oomScoreAdj, user.umask, noNewPrivileges. */
static int
read_process_extras (const struct reader *r, int proc, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v = get (r, proc, "oomScoreAdj");
  long long n;
  if (v >= 0 && r->t[v].type != GROVE_J_NULL)
    {
      if (grove_json_num (r->s, r->t, v, &n) < 0 || n < -1000 || n > 1000)
        REFUSE ("config.json process.oomScoreAdj: must be an integer from -1000 to 1000");
      b->cc.oom_score_adj_set = 1;
      b->cc.oom_score_adj = (int) n;
      static_only (b, "process.oomScoreAdj");
    }
  v = get (r, get (r, proc, "user"), "umask");
  if (v >= 0 && r->t[v].type != GROVE_J_NULL)
    {
      if (grove_json_num (r->s, r->t, v, &n) < 0 || n < 0 || n > 0777)
        REFUSE ("config.json process.user.umask: must be an integer from 0 to 0777 (511)");
      b->cc.umask_set = 1;
      b->cc.umask = (mode_t) n;
      static_only (b, "process.user.umask");
    }
  /* runtime-spec: absent is false. */
  b->cc.no_new_privs_off = !grove_json_true (r->s, r->t, get (r, proc, "noNewPrivileges"));
  if (b->cc.no_new_privs_off)
    static_only (b, "process.noNewPrivileges");
  return 0;
}

/* process.terminal and consoleSize (height, width): the caller connects
 * the console socket (grove-runtime's --console-socket, or run's own). */
static int
read_terminal (const struct reader *r, int proc, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int size = get (r, proc, "consoleSize");
  b->terminal = grove_json_true (r->s, r->t, get (r, proc, "terminal"));
  if (b->terminal)
    static_only (b, "process.terminal");
  if (size >= 0)
    {
      static const char *const dims[2] = { "height", "width" };
      long long n[2] = { 0, 0 };
      if (r->t[size].type != GROVE_J_OBJ)
        REFUSE ("config.json process.consoleSize: must be an object");
      for (int k = 0; k < 2; k++)
        {
          int v = get (r, size, dims[k]);
          if (v >= 0 && (grove_json_num (r->s, r->t, v, &n[k]) < 0 || n[k] < 0 || n[k] > 65535))
            REFUSE ("config.json process.consoleSize.%s: must be an integer from 0 to 65535", dims[k]);
        }
      b->cc.console_rows = (unsigned short) n[0];
      b->cc.console_cols = (unsigned short) n[1];
    }
  return 0;
}

/* args, env, cwd, user, capabilities, rlimits. */
static int
read_process (const struct reader *r, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int proc = get (r, 0, "process"), v;
  if (proc < 0)
    REFUSE ("config.json process: is required");
  if (read_terminal (r, proc, err) < 0)
    return -1;
  v = get (r, proc, "args");
  if (v < 0 || r->t[v].type != GROVE_J_ARR || r->t[v].size == 0 || r->t[v].size > GROVE_OCI_MAX_LIST)
    REFUSE ("config.json process.args: must be a non-empty array");
  for (int k = 0; k < r->t[v].size; k++)
    if ((b->argv[k] = grove_json_str (r->s, r->t, grove_json_at (r->t, v, k))) == NULL)
      REFUSE ("config.json process.args[%d]: must be a string", k);
  v = get (r, proc, "env");
  /* One slot is kept for HOME. */
  if (v >= 0 && r->t[v].size > GROVE_OCI_MAX_LIST - 1)
    REFUSE ("config.json process.env: at most %d variables", GROVE_OCI_MAX_LIST - 1);
  for (int k = 0; v >= 0 && k < r->t[v].size; k++)
    if ((b->envp[k] = grove_json_str (r->s, r->t, grove_json_at (r->t, v, k))) == NULL
        || strchr (b->envp[k], '=') == NULL)
      REFUSE ("config.json process.env[%d]: is not KEY=value", k);
  b->cwd = grove_json_str (r->s, r->t, get (r, proc, "cwd"));
  if (read_user (r, proc, err) < 0 || read_capabilities (r, proc, err) < 0 || read_rlimits (r, proc, err) < 0
      || read_process_extras (r, proc, err) < 0)
    return -1;
  return 0;
}

/* ---- root and mounts ------------------------------------------------------------ */

/* path as it is when absolute, else below the bundle (malloc'd; NULL when out of memory). */
static char *
in_bundle (const struct reader *r, const char *path)
{
  char *abs;
  if (path[0] == '/')
    return strdup (path);
  return asprintf (&abs, "%s/%s", r->bundle, path) < 0 ? NULL : abs;
}

static int
read_root (const struct reader *r, const char *id, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int root = get (r, 0, "root");
  cleanup_free char *rp = grove_json_str (r->s, r->t, get (r, root, "path"));
  if (rp == NULL || rp[0] == '\0')
    REFUSE ("config.json root.path: is required");
  if ((b->rootfs = in_bundle (r, rp)) == NULL)
    return grove_error_set (err, ENOMEM, "config.json root.path");
  b->cc.readonly_rootfs = grove_json_true (r->s, r->t, get (r, root, "readonly"));
  b->hostname = grove_json_str (r->s, r->t, get (r, 0, "hostname"));
  if (b->hostname == NULL || b->hostname[0] == '\0')
    {
      free (b->hostname);
      b->hostname = strndup (id, 63);
    }
  return 0;
}

/* m appended to the container's mounts (which own its strings, also when
 * this refuses), named in errors as mounts[k]. */
static int
add_mount (grove_oci_bundle_t *b, const grove_mount_t *m, int k, grove_error_t *err)
{
  char *field = NULL;
  if (b->cc.nmounts == GROVE_MAX_MOUNTS)
    {
      free ((char *) m->source);
      free ((char *) m->destination);
      free ((char *) m->data);
      free ((char *) m->fstype);
      REFUSE ("config.json mounts: at most %d mounts (with Grove's own /proc, /dev and /sys)", GROVE_MAX_MOUNTS);
    }
  b->mounts[b->cc.nmounts] = *m;
  if (asprintf (&field, "config.json mounts[%d]", k) < 0)
    field = NULL;
  b->mounts[b->cc.nmounts++].field = field;
  return field != NULL ? 0 : grove_error_set (err, ENOMEM, "config.json mounts[%d]", k);
}

/* /proc, /dev or /sys: Grove's own filesystem, made at this point of the
 * list (the first time it is listed). The TypeScript command line makes them
 * before the bundle's mounts, so a list that puts one after another mount
 * is for the static grove-runtime only. */
static int
read_own_mount (const struct reader *r, int k, int opts, const char *dst, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  grove_mount_t m = { .own = 1 };
  for (size_t i = 0; i < b->cc.nmounts; i++)
    if (b->mounts[i].own && strcmp (b->mounts[i].destination, dst) == 0)
      return 0;
  /* Its other options are Grove's own; propagation ones apply. */
  for (int o = 0; opts >= 0 && o < r->t[opts].size; o++)
    {
      cleanup_free char *opt = grove_json_str (r->s, r->t, grove_json_at (r->t, opts, o));
      if (add_propagation (b, &m, k, o, opt, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < b->cc.nmounts; i++)
    if (!b->mounts[i].own)
      static_only (b, "mounts");
  m.source = strdup (dst);
  m.destination = strdup (dst);
  if (add_mount (b, &m, k, err) < 0)
    return -1;
  if (m.source == NULL || m.destination == NULL)
    return grove_error_set (err, ENOMEM, "config.json mounts[%d]", k);
  return 0;
}

/* The mount(2) flags of mounts[].options, runc's names: set or cleared
 * in the listed order. */
static const struct
{
  const char *name;
  unsigned long set, clear;
} mount_flags[] = { { "ro", MS_RDONLY, 0 },          { "rw", 0, MS_RDONLY },
                    { "nosuid", MS_NOSUID, 0 },      { "suid", 0, MS_NOSUID },
                    { "nodev", MS_NODEV, 0 },        { "dev", 0, MS_NODEV },
                    { "noexec", MS_NOEXEC, 0 },      { "exec", 0, MS_NOEXEC },
                    { "sync", MS_SYNCHRONOUS, 0 },   { "async", 0, MS_SYNCHRONOUS },
                    { "dirsync", MS_DIRSYNC, 0 },    { "remount", MS_REMOUNT, 0 },
                    { "noatime", MS_NOATIME, 0 },    { "atime", 0, MS_NOATIME },
                    { "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
                    { "relatime", MS_RELATIME, 0 },  { "norelatime", 0, MS_RELATIME },
                    { "strictatime", MS_STRICTATIME, 0 }, { "nostrictatime", 0, MS_STRICTATIME },
                    { "mand", MS_MANDLOCK, 0 },      { "nomand", 0, MS_MANDLOCK },
                    { "iversion", MS_I_VERSION, 0 }, { "noiversion", 0, MS_I_VERSION },
                    { "lazytime", MS_LAZYTIME, 0 },  { "nolazytime", 0, MS_LAZYTIME },
                    { "acl", MS_POSIXACL, 0 },       { "noacl", 0, MS_POSIXACL },
                    { "silent", MS_SILENT, 0 },      { "loud", 0, MS_SILENT },
                    { "defaults", 0, 0 } };

/* runc's recursive bind options: mount_setattr(AT_RECURSIVE) attributes
 * set or cleared once the bind is made. */
static const struct
{
  const char *name;
  unsigned long long set, clear;
} rec_attrs[] = { { "rro", MOUNT_ATTR_RDONLY, 0 },           { "rrw", 0, MOUNT_ATTR_RDONLY },
                  { "rnosuid", MOUNT_ATTR_NOSUID, 0 },       { "rsuid", 0, MOUNT_ATTR_NOSUID },
                  { "rnodev", MOUNT_ATTR_NODEV, 0 },         { "rdev", 0, MOUNT_ATTR_NODEV },
                  { "rnoexec", MOUNT_ATTR_NOEXEC, 0 },       { "rexec", 0, MOUNT_ATTR_NOEXEC },
                  { "rnodiratime", MOUNT_ATTR_NODIRATIME, 0 }, { "rdiratime", 0, MOUNT_ATTR_NODIRATIME },
                  { "rrelatime", MOUNT_ATTR_RELATIME, 0 },   { "rnorelatime", 0, MOUNT_ATTR_RELATIME },
                  { "rnoatime", MOUNT_ATTR_NOATIME, 0 },     { "ratime", 0, MOUNT_ATTR_NOATIME },
                  { "rstrictatime", MOUNT_ATTR_STRICTATIME, 0 }, { "rnostrictatime", 0, MOUNT_ATTR_STRICTATIME },
                  { "rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0 }, { "rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW } };

/* opt into *set and *clr when it is one of rec_attrs (1), else 0. Setting
 * an access-time mode clears the others (mount_setattr(2) wants
 * MOUNT_ATTR__ATIME in attr_clr for it), as runc. */
static int
add_rec_attr (const char *opt, unsigned long long *set, unsigned long long *clr)
{
  for (size_t f = 0; opt != NULL && f < N_OF (rec_attrs); f++)
    if (strcmp (rec_attrs[f].name, opt) == 0)
      {
        *set |= rec_attrs[f].set;
        *clr |= rec_attrs[f].clear;
        if (rec_attrs[f].clear == 0 && (rec_attrs[f].set & MOUNT_ATTR__ATIME) == rec_attrs[f].set)
          *clr |= MOUNT_ATTR__ATIME;
        return 1;
      }
  return 0;
}

/* The index of opt in mount_flags, N_OF (mount_flags) when it is none. */
static size_t
mount_flag_of (const char *opt)
{
  size_t f = 0;
  while (opt != NULL && f < N_OF (mount_flags) && strcmp (mount_flags[f].name, opt) != 0)
    f++;
  return f;
}

/* A new filesystem (tmpfs, mqueue, devpts, sysfs, proc, ... any type the
 * kernel has): its options as mount(2) flags and the filesystem's data
 * (size=, mode=, newinstance, ...; the kernel judges those); the source is
 * the config's, else the type. */
static int
read_fs_mount (const struct reader *r, int k, int opts, const char *type, const char *src, char **dst,
               grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  grove_mount_t m = { .fstype = NULL };
  FILE *data;
  char *text = NULL;
  size_t len = 0;
  if ((data = open_memstream (&text, &len)) == NULL)
    return grove_error_set (err, errno, "config.json mounts[%d]", k);
  for (int o = 0; opts >= 0 && o < r->t[opts].size; o++)
    {
      cleanup_free char *opt = grove_json_str (r->s, r->t, grove_json_at (r->t, opts, o));
      size_t f = mount_flag_of (opt);
      if (opt == NULL || strchr (opt, ',') != NULL)
        {
          fclose (data);
          free (text);
          REFUSE ("config.json mounts[%d].options[%d]: must be a string without a comma", k, o);
        }
      switch (add_propagation (b, &m, k, o, opt, err))
        {
        case -1:
          fclose (data);
          free (text);
          return -1;
        case 1:
          continue; /* made after the mount, in the listed order */
        default:
          break;
        }
      if (f < N_OF (mount_flags))
        m.flags = (m.flags & ~mount_flags[f].clear) | mount_flags[f].set;
      else
        fprintf (data, "%s%s", ftell (data) > 0 ? "," : "", opt);
    }
  fclose (data);
  m.fstype = strdup (type);
  m.source = strdup (src != NULL && src[0] != '\0' ? src : type);
  m.destination = *dst;
  m.data = text;
  m.readonly = (m.flags & MS_RDONLY) != 0;
  *dst = NULL; /* the mount owns it */
  if (add_mount (b, &m, k, err) < 0)
    return -1;
  if (m.source == NULL || m.data == NULL || m.fstype == NULL)
    return grove_error_set (err, ENOMEM, "config.json mounts[%d]", k);
  /* The TypeScript command line leaves out a cgroup mount (runc spec's
   * /sys/fs/cgroup), as before it was mounted; other types it refuses. */
  if (strcmp (type, "cgroup") != 0)
    static_only (b, "mounts");
  return 0;
}

/* An absolute mount destination cleaned in place as runc's CleanPath
 * (Go's filepath.Clean of it): repeated slashes, "." components and a
 * trailing slash dropped, ".." taking off the component before it and
 * staying at "/" (lexically: it cannot climb out of the rootfs; symlinks are
 * still followed only inside it, by the init). So "/dev/", "/./dev" and
 * "//proc" are Grove's own /dev and /proc, and "/../x" is "/x", as with
 * runc. */
static void
clean_destination (char *p)
{
  size_t out = 0, in = 0;
  while (p[in] != '\0')
    {
      size_t len;
      while (p[in] == '/')
        in++;
      for (len = 0; p[in + len] != '\0' && p[in + len] != '/'; len++)
        ;
      if (len == 0 || (len == 1 && p[in] == '.'))
        ;
      else if (len == 2 && p[in] == '.' && p[in + 1] == '.')
        while (out > 0 && p[--out] != '/')
          ;
      else
        {
          p[out++] = '/';
          memmove (p + out, p + in, len);
          out += len;
        }
      in += len;
    }
  if (out == 0)
    p[out++] = '/';
  p[out] = '\0';
}

/* One entry of mounts: a bind mount, a new filesystem, Grove's own /proc,
 * /dev or /sys (made at this point), one that comes with them (skipped), or
 * refused. */
static int
read_mount (const struct reader *r, int k, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int m = grove_json_at (r->t, get (r, 0, "mounts"), k), opts = get (r, m, "options");
  cleanup_free char *dst = grove_json_str (r->s, r->t, get (r, m, "destination"));
  cleanup_free char *type = grove_json_str (r->s, r->t, get (r, m, "type"));
  cleanup_free char *src = grove_json_str (r->s, r->t, get (r, m, "source"));
  int bind = type != NULL && strcmp (type, "bind") == 0;
  grove_mount_t bm = { .fstype = NULL };
  unsigned long long rec_set = 0, rec_clr = 0;
  if (dst != NULL && dst[0] == '/')
    clean_destination (dst);
  if (in_list (own_mounts, N_OF (own_mounts), dst))
    return read_own_mount (r, k, opts, dst, err);
  for (int o = 0; opts >= 0 && o < r->t[opts].size; o++)
    {
      cleanup_free char *opt = grove_json_str (r->s, r->t, grove_json_at (r->t, opts, o));
      if (opt != NULL && (strcmp (opt, "bind") == 0 || strcmp (opt, "rbind") == 0))
        bind = 1;
      /* rbind: the source's submounts come along (MS_REC), as runc; bind
       * alone binds the source's own mount only. */
      if (opt != NULL && strcmp (opt, "rbind") == 0)
        bm.flags = MS_REC;
    }
  for (size_t i = 0; dst != NULL && !bind && i < N_OF (builtin_mounts); i++)
    if (strcmp (dst, builtin_mounts[i][0]) == 0
        && (type == NULL || type[0] == '\0' || strcmp (type, "none") == 0 || strcmp (type, builtin_mounts[i][1]) == 0))
      return 0; /* Grove sets it up itself */
  if (dst == NULL || dst[0] != '/')
    REFUSE ("config.json mounts[%d].destination: must be an absolute path", k);
  if (!bind && type != NULL && type[0] != '\0' && strcmp (type, "none") != 0)
    return read_fs_mount (r, k, opts, type, src, &dst, err);
  if (!bind)
    REFUSE ("config.json mounts[%d]: %s has no type and no bind option", k, dst);
  for (int o = 0; opts >= 0 && o < r->t[opts].size; o++)
    {
      cleanup_free char *opt = grove_json_str (r->s, r->t, grove_json_at (r->t, opts, o));
      int pr = add_propagation (b, &bm, k, o, opt, err);
      size_t f;
      if (pr < 0)
        return -1;
      if (pr > 0 || (opt != NULL && (strcmp (opt, "bind") == 0 || strcmp (opt, "rbind") == 0))
          || add_rec_attr (opt, &rec_set, &rec_clr))
        continue;
      /* Flags as runc applies them: the bind, then a remount with them. An
       * option runc would pass as data (which a bind ignores) is refused: a
       * misspelt nosuid must not vanish. */
      f = mount_flag_of (opt);
      if (f == N_OF (mount_flags))
        REFUSE ("config.json mounts[%d].options[%d]: %s is not an option of a bind mount (bind, rbind, mount flags "
                "such as ro, nosuid, nodev, noexec, relatime, and propagation)",
                k, o, opt != NULL ? opt : "?");
      bm.flags = (bm.flags & ~mount_flags[f].clear) | mount_flags[f].set;
    }
  /* MS_BIND: runc's way (container.h); the TypeScript command line knows
   * rbind and ro only. */
  bm.flags |= MS_BIND;
  if ((bm.flags & ~(MS_BIND | MS_REC | MS_RDONLY)) != 0 || rec_set != 0 || rec_clr != 0)
    static_only (b, "mounts");
  /* A bind's data: its recursive attributes, "SET:CLEAR" (container.h). */
  if ((rec_set != 0 || rec_clr != 0) && asprintf ((char **) &bm.data, "%llu:%llu", rec_set, rec_clr) < 0)
    return grove_error_set (err, ENOMEM, "config.json mounts[%d]", k);
  if (src == NULL || src[0] == '\0')
    REFUSE ("config.json mounts[%d].source: is required for a bind mount", k);
  bm.source = in_bundle (r, src);
  bm.destination = dst;
  bm.readonly = (bm.flags & MS_RDONLY) != 0;
  dst = NULL; /* the mount owns it */
  if (add_mount (b, &bm, k, err) < 0)
    return -1;
  if (bm.source == NULL)
    return grove_error_set (err, ENOMEM, "config.json mounts[%d]", k);
  return 0;
}

/* ---- linux ---------------------------------------------------------------------- */

/* linux.uidMappings / gidMappings: [{containerID, hostID, size}]. */
static int
read_id_maps (const struct reader *r, int linux_, const char *field, grove_id_map_t *maps, size_t *n,
              grove_error_t *err)
{
  int list = get (r, linux_, field);
  *n = 0;
  for (int k = 0; list >= 0 && k < r->t[list].size; k++)
    {
      int m = grove_json_at (r->t, list, k);
      long long c, h, z;
      if (*n == GROVE_MAX_ID_MAPS)
        REFUSE ("config.json linux.%s: at most %d mappings", field, GROVE_MAX_ID_MAPS);
      if (grove_json_num (r->s, r->t, get (r, m, "containerID"), &c) < 0
          || grove_json_num (r->s, r->t, get (r, m, "hostID"), &h) < 0
          || grove_json_num (r->s, r->t, get (r, m, "size"), &z) < 0 || c < 0 || h < 0 || z <= 0 || z > 0xffffffffLL
          || c > 0xffffffffLL - z || h > 0xffffffffLL - z)
        REFUSE ("config.json linux.%s[%d]: containerID, hostID and size must be integers, size > 0", field, k);
      maps[(*n)++] = (grove_id_map_t){ (uint32_t) c, (uint32_t) h, (uint32_t) z };
    }
  return 0;
}

/* linux.sysctl: those of the container's own namespaces only (as runc):
 * ipc (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*), uts
 * (kernel.hostname, kernel.domainname) and network (net.*); the rest are the
 * host's, refused. */
static int
read_sysctls (const struct reader *r, int linux_, grove_error_t *err)
{
  static const char *const prefixes[] = { "kernel.shm", "kernel.msg", "fs.mqueue.", "net." };
  static const char *const names[] = { "kernel.sem", "kernel.hostname", "kernel.domainname" };
  grove_oci_bundle_t *b = r->b;
  int v = get (r, linux_, "sysctl"), j;
  if (v < 0 || r->t[v].type != GROVE_J_OBJ)
    return 0;
  if (r->t[v].size > GROVE_MAX_SYSCTLS)
    REFUSE ("config.json linux.sysctl: at most %d", GROVE_MAX_SYSCTLS);
  j = v + 1;
  for (int k = 0; k < r->t[v].size; k++, j = r->t[j + 1].next)
    {
      cleanup_free char *name = grove_json_str (r->s, r->t, j);
      cleanup_free char *value = grove_json_str (r->s, r->t, j + 1);
      int ok = name != NULL && in_list (names, N_OF (names), name);
      for (size_t p = 0; name != NULL && p < N_OF (prefixes); p++)
        ok |= strncmp (name, prefixes[p], strlen (prefixes[p])) == 0;
      if (!ok || strpbrk (name, "/=") != NULL || strstr (name, "..") != NULL)
        REFUSE ("config.json linux.sysctl.%s: is not a sysctl of the container's namespaces (ipc: kernel.shm*, "
                "kernel.msg*, kernel.sem, fs.mqueue.*; uts: kernel.hostname, kernel.domainname; network: net.*)",
                name != NULL ? name : "?");
      if (value == NULL)
        REFUSE ("config.json linux.sysctl.%s: must be a string", name);
      if (asprintf (&b->sysctl_text[k], "%s=%s", name, value) < 0)
        return grove_error_set (err, ENOMEM, "config.json linux.sysctl");
      b->cc.nsysctls = (size_t) k + 1;
    }
  b->cc.sysctls = (const char *const *) b->sysctl_text;
  static_only (b, "linux.sysctl");
  return 0;
}

/* linux.devices: [{path, type (c, b, u, p), major, minor, fileMode, uid, gid}],
 * made by the init (child_make_devices); the ones Grove's /dev has anyway
 * are left to it. */
static int
read_devices (const struct reader *r, int linux_, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v = get (r, linux_, "devices");
  for (int k = 0; v >= 0 && k < r->t[v].size; k++)
    {
      int d = grove_json_at (r->t, v, k);
      cleanup_free char *p = grove_json_str (r->s, r->t, get (r, d, "path"));
      cleanup_free char *type = grove_json_str (r->s, r->t, get (r, d, "type"));
      long long major = 0, minor = 0, mode = 0666, uid = 0, gid = 0;
      grove_device_t *dev = &b->devices[b->cc.ndevices];
      if (p == NULL || p[0] != '/' || strstr (p, "/../") != NULL)
        REFUSE ("config.json linux.devices[%d].path: must be an absolute path without ..", k);
      if (in_list (grove_devices, N_OF (grove_devices), p))
        continue;
      if (type == NULL || strlen (type) != 1 || strchr ("cbup", type[0]) == NULL)
        REFUSE ("config.json linux.devices[%d].type: must be c, b, u or p", k);
      if (type[0] != 'p'
          && (grove_json_num (r->s, r->t, get (r, d, "major"), &major) < 0
              || grove_json_num (r->s, r->t, get (r, d, "minor"), &minor) < 0 || major < 0 || minor < 0
              || major > 0xfff || minor > 0xfffff))
        REFUSE ("config.json linux.devices[%d]: major and minor numbers are required (c, b, u)", k);
      if ((get (r, d, "fileMode") >= 0 && r->t[get (r, d, "fileMode")].type != GROVE_J_NULL
           && (grove_json_num (r->s, r->t, get (r, d, "fileMode"), &mode) < 0 || mode < 0 || mode > 07777))
          || (get (r, d, "uid") >= 0 && (grove_json_num (r->s, r->t, get (r, d, "uid"), &uid) < 0 || uid < 0))
          || (get (r, d, "gid") >= 0 && (grove_json_num (r->s, r->t, get (r, d, "gid"), &gid) < 0 || gid < 0)))
        REFUSE ("config.json linux.devices[%d]: fileMode (0 to 07777), uid and gid must be numbers", k);
      if (b->cc.ndevices == GROVE_MAX_DEVICES)
        REFUSE ("config.json linux.devices: at most %d", GROVE_MAX_DEVICES);
      *dev = (grove_device_t){ .path = p,
                               .mode = (mode_t) mode | (type[0] == 'b' ? S_IFBLK : type[0] == 'p' ? S_IFIFO : S_IFCHR),
                               .major = (unsigned) major,
                               .minor = (unsigned) minor,
                               .uid = (uid_t) uid,
                               .gid = (gid_t) gid };
      p = NULL; /* the device owns it */
      b->cc.ndevices++;
    }
  if (b->cc.ndevices > 0)
    static_only (b, "linux.devices");
  b->cc.devices = b->devices;
  return 0;
}

/* linux.cgroupsPath: kept as given (grove-runtime resolves it against the
 * cgroup root or its own cgroup); "" and null are absent. No ".." part, no
 * empty part but a leading "/". */
static int
read_cgroups_path (const struct reader *r, int linux_, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  char *p = grove_json_str (r->s, r->t, get (r, linux_, "cgroupsPath"));
  if (p == NULL || p[0] == '\0')
    {
      free (p);
      return 0;
    }
  b->cgroups_path = p;
  for (const char *c = p[0] == '/' ? p + 1 : p; *c != '\0';)
    {
      size_t n = strcspn (c, "/");
      if (n == 0 || (n == 2 && strncmp (c, "..", 2) == 0) || (n == 1 && c[0] == '.'))
        REFUSE ("config.json linux.cgroupsPath: %s has an empty, . or .. part", p);
      c += n;
      if (*c == '/')
        c++;
    }
  if (strlen (p) < 2 && p[0] == '/')
    REFUSE ("config.json linux.cgroupsPath: / is the root cgroup, not a container's");
  return 0;
}

/* seccomp (compiled by the static grove-runtime, oci_seccomp.c); maskedPaths,
 * readonlyPaths (Grove's and the bundle's). */
static int
read_fixed_lists (const struct reader *r, int linux_, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v;
  if (read_sysctls (r, linux_, err) < 0)
    return -1;
  v = get (r, linux_, "seccomp");
  if (v >= 0 && r->t[v].type != GROVE_J_NULL)
    {
      if (r->t[v].type != GROVE_J_OBJ)
        REFUSE ("config.json linux.seccomp: must be an object");
      r->b->seccomp_tok = v;
      static_only (r->b, "linux.seccomp");
    }
  for (int pass = 0; pass < 2; pass++)
    {
      const char *field = pass == 0 ? "maskedPaths" : "readonlyPaths";
      v = get (r, linux_, field);
      for (int k = 0; v >= 0 && k < r->t[v].size; k++)
        {
          char *p = grove_json_str (r->s, r->t, grove_json_at (r->t, v, k));
          size_t *n = pass == 0 ? &b->cc.nmasked_paths : &b->cc.nreadonly_paths;
          if (p == NULL || p[0] != '/')
            {
              free (p);
              REFUSE ("config.json linux.%s[%d]: must be an absolute path", field, k);
            }
          /* Grove's own lists always apply; the rest are the bundle's. */
          if (pass == 0 ? in_list (grove_masked, N_OF (grove_masked), p) || is_thermal_throttle (p)
                        : in_list (grove_readonly, N_OF (grove_readonly), p))
            {
              free (p);
              continue;
            }
          if (*n == GROVE_MAX_EXTRA_PATHS)
            {
              free (p);
              REFUSE ("config.json linux.%s: at most %d besides Grove's own", field, GROVE_MAX_EXTRA_PATHS);
            }
          (pass == 0 ? b->masked : b->readonly)[(*n)++] = p;
          static_only (b, pass == 0 ? "linux.maskedPaths" : "linux.readonlyPaths");
        }
    }
  return 0;
}

/* uts and ipc: joined by path, or, when the bundle lists none, the
 * runtime's own (runtime-spec); a hostname needs a uts namespace of the
 * container's own (as runc). */
static int
read_shared_namespaces (const struct reader *r, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  cleanup_free char *hostname = grove_json_str (r->s, r->t, get (r, 0, "hostname"));
  if (!b->uts_listed && (b->uts_ns = strdup ("/proc/self/ns/uts")) == NULL)
    return grove_error_set (err, ENOMEM, "config.json linux.namespaces");
  if (!b->ipc_listed && (b->ipc_ns = strdup ("/proc/self/ns/ipc")) == NULL)
    return grove_error_set (err, ENOMEM, "config.json linux.namespaces");
  if (b->uts_ns != NULL)
    {
      if (hostname != NULL && hostname[0] != '\0')
        REFUSE ("config.json hostname: needs a uts namespace of the container's own (linux.namespaces)");
      b->hostname[0] = '\0'; /* leave the joined namespace's name alone */
    }
  b->cc.uts_ns_path = b->uts_ns;
  b->cc.ipc_ns_path = b->ipc_ns;
  if (b->uts_ns != NULL || b->ipc_ns != NULL)
    static_only (b, "linux.namespaces");
  return 0;
}

/* linux.rootfsPropagation: one of the propagation names (runc takes the r
 * forms too); absent, "" or null: runc's default, rslave (the TypeScript
 * command line keeps every mount private: it is not static-only). */
static int
read_rootfs_propagation (const struct reader *r, int linux_, grove_error_t *err)
{
  int v = get (r, linux_, "rootfsPropagation");
  cleanup_free char *name = NULL;
  unsigned long f;
  r->b->cc.rootfs_propagation = MS_SLAVE | MS_REC;
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  name = grove_json_str (r->s, r->t, v);
  if (name != NULL && name[0] == '\0')
    return 0;
  if ((f = propagation_of (name)) == 0)
    REFUSE ("config.json linux.rootfsPropagation: must be shared, slave, private or unbindable (or rshared, rslave, "
            "rprivate, runbindable)");
  r->b->cc.rootfs_propagation = f;
  if (f != (MS_PRIVATE | MS_REC))
    static_only (r->b, "linux.rootfsPropagation");
  return 0;
}

/* linux.timeOffsets: {"monotonic" | "boottime": {secs, nanosecs}}, for a
 * new time namespace only (the kernel takes offsets before a process enters
 * it); written as lines of /proc/self/timens_offsets. */
static int
read_time_offsets (const struct reader *r, int linux_, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v = get (r, linux_, "timeOffsets"), key;
  if (v < 0 || r->t[v].type == GROVE_J_NULL || (r->t[v].type == GROVE_J_OBJ && r->t[v].size == 0))
    return 0;
  if (r->t[v].type != GROVE_J_OBJ)
    REFUSE ("config.json linux.timeOffsets: must be an object");
  if (!b->cc.time_ns_new)
    REFUSE ("config.json linux.timeOffsets: needs a new time namespace (type time without a path) in "
            "linux.namespaces");
  key = v + 1;
  for (int k = 0; k < r->t[v].size; k++, key = r->t[key + 1].next)
    {
      int val = key + 1;
      cleanup_free char *clock = grove_json_str (r->s, r->t, key);
      long long secs = 0, nsecs = 0;
      if (clock == NULL || (strcmp (clock, "monotonic") != 0 && strcmp (clock, "boottime") != 0))
        REFUSE ("config.json linux.timeOffsets.%s: only monotonic and boottime have offsets", clock ? clock : "?");
      if (r->t[val].type != GROVE_J_OBJ
          || (get (r, val, "secs") >= 0 && grove_json_num (r->s, r->t, get (r, val, "secs"), &secs) < 0)
          || (get (r, val, "nanosecs") >= 0 && grove_json_num (r->s, r->t, get (r, val, "nanosecs"), &nsecs) < 0)
          || nsecs < 0 || nsecs > 999999999 || secs < -(1LL << 40) || secs > (1LL << 40))
        REFUSE ("config.json linux.timeOffsets.%s: secs and nanosecs (0 to 999999999) must be numbers", clock);
      snprintf (b->time_offsets[b->cc.ntime_offsets], sizeof (b->time_offsets[0]), "%s %lld %lld", clock, secs,
                nsecs);
      b->time_offset_ptrs[b->cc.ntime_offsets] = b->time_offsets[b->cc.ntime_offsets];
      if (++b->cc.ntime_offsets == 2)
        break; /* there are two clocks */
    }
  b->cc.time_offsets = b->time_offset_ptrs;
  static_only (b, "linux.timeOffsets");
  return 0;
}

/* The namespaces linux.namespaces leaves out are the runtime's
 * (runtime-spec), as runc: pid and network joined by path (/proc/self/ns/X,
 * the caller's own), uts and ipc in read_shared_namespaces. Not the mount
 * namespace: runc 1.1.5 then makes the container's mounts in the host's
 * namespace and leaves them there after the container exits. */
static int
host_namespaces (const struct reader *r, int ns, grove_error_t *err)
{
  static const char *const types[] = { "mount", "pid", "network" };
  grove_oci_bundle_t *b = r->b;
  for (size_t q = 0; q < N_OF (types); q++)
    {
      int found = 0;
      for (int k = 0; ns >= 0 && k < r->t[ns].size; k++)
        {
          cleanup_free char *type = grove_json_str (r->s, r->t, get (r, grove_json_at (r->t, ns, k), "type"));
          found |= type != NULL && strcmp (type, types[q]) == 0;
        }
      if (found)
        continue;
      if (q == 0)
        REFUSE ("config.json linux.namespaces: has no mount namespace; grove-runtime does not make a container's "
                "mounts in the host's mount namespace (they would stay there after it exits)");
      if (q == 1)
        {
          if ((b->pid_ns = strdup ("/proc/self/ns/pid")) == NULL)
            return grove_error_set (err, ENOMEM, "config.json linux.namespaces");
          static_only (b, "linux.namespaces");
        }
      else if ((b->netns = strdup ("/proc/self/ns/net")) == NULL)
        return grove_error_set (err, ENOMEM, "config.json linux.namespaces");
      else
        b->host_net = 1;
    }
  return 0;
}

/* Each sysctl in a namespace of the container's own (as runc): not the
 * host's network, ipc or uts namespace (the bundle does not list it). */
static int
check_sysctl_namespaces (const grove_oci_bundle_t *b, grove_error_t *err)
{
  static const char *const ipc[] = { "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue." };
  for (size_t k = 0; k < b->cc.nsysctls; k++)
    {
      const char *name = b->sysctl_text[k];
      int in_ipc = 0;
      for (size_t p = 0; p < N_OF (ipc); p++)
        in_ipc |= strncmp (name, ipc[p], strlen (ipc[p])) == 0;
      if (b->host_net && strncmp (name, "net.", 4) == 0)
        REFUSE ("config.json linux.sysctl.%.*s: is not allowed in the host's network namespace (linux.namespaces has "
                "no network)",
                (int) strcspn (name, "="), name);
      if ((in_ipc && !b->ipc_listed) || (strncmp (name, "kernel.", 7) == 0 && !in_ipc && !b->uts_listed))
        REFUSE ("config.json linux.sysctl.%.*s: is not allowed in the host's %s namespace (linux.namespaces has "
                "none)",
                (int) strcspn (name, "="), name, in_ipc ? "ipc" : "uts");
    }
  return 0;
}

/* linux.namespaces: the five Grove always makes, user, cgroup and time on
 * request, each but uts and ipc new or joined by path (uts and ipc: the
 * runtime's when not listed); then the user namespace's mappings. */
static int
read_namespaces (const struct reader *r, int linux_, grove_error_t *err)
{
  static const char *const supported[] = { "pid", "mount", "uts", "ipc", "network", "user", "cgroup", "time" };
  grove_oci_bundle_t *b = r->b;
  int ns = get (r, linux_, "namespaces"), cgroupns = 0;
  if (host_namespaces (r, ns, err) < 0)
    return -1;
  for (int k = 0; ns >= 0 && k < r->t[ns].size; k++)
    {
      int e = grove_json_at (r->t, ns, k);
      cleanup_free char *type = grove_json_str (r->s, r->t, get (r, e, "type"));
      cleanup_free char *path = grove_json_str (r->s, r->t, get (r, e, "path"));
      if (!in_list (supported, N_OF (supported), type))
        REFUSE ("config.json linux.namespaces[%d].type: %s namespaces are not supported", k, type ? type : "?");
      b->userns |= strcmp (type, "user") == 0;
      cgroupns |= strcmp (type, "cgroup") == 0;
      b->timens |= strcmp (type, "time") == 0;
      if (strcmp (type, "uts") == 0 || strcmp (type, "ipc") == 0)
        {
          char **slot = type[0] == 'u' ? &b->uts_ns : &b->ipc_ns;
          (type[0] == 'u' ? &b->uts_listed : &b->ipc_listed)[0] = 1;
          if (path != NULL && path[0] != '\0')
            {
              free (*slot);
              *slot = path; /* joined; without a path a new one */
              path = NULL;
            }
          continue;
        }
      if (path == NULL || path[0] == '\0')
        continue;
      if (strcmp (type, "network") != 0)
        {
          /* pid, mount, cgroup, user or time: joined as runc joins them
           * (container.h; the user namespace first). */
          char **slot = type[0] == 'p'   ? &b->pid_ns
                        : type[0] == 'm' ? &b->mnt_ns
                        : type[0] == 'c' ? &b->cgroup_ns
                        : type[0] == 'u' ? &b->user_ns
                                         : &b->time_ns;
          free (*slot);
          *slot = path;
          path = NULL;
          static_only (b, "linux.namespaces");
          continue;
        }
      free (b->netns);
      b->netns = path;
      path = NULL;
    }
  b->cc.pid_ns_path = b->pid_ns;
  b->cc.mnt_ns_path = b->mnt_ns;
  b->cc.cgroup_ns_path = b->cgroup_ns;
  b->cc.user_ns_path = b->user_ns;
  b->cc.time_ns_path = b->time_ns;
  b->cc.time_ns_new = b->timens && b->time_ns == NULL;
  if (b->cc.time_ns_new)
    static_only (b, "linux.namespaces");
  if (read_shared_namespaces (r, err) < 0 || read_time_offsets (r, linux_, err) < 0
      || check_sysctl_namespaces (b, err) < 0)
    return -1;
  /* runtime-spec: a namespace the bundle does not list is the runtime's. */
  b->cc.host_cgroupns = !cgroupns;
  if (!b->userns)
    {
      if (get (r, linux_, "uidMappings") >= 0 || get (r, linux_, "gidMappings") >= 0)
        REFUSE ("config.json linux.uidMappings: needs a user namespace in linux.namespaces");
      return 0;
    }
  /* A joined user namespace has its maps: any given (runc wants them) are
   * checked as given but not written. */
  if (b->user_ns != NULL)
    {
      if (read_id_maps (r, linux_, "uidMappings", b->uid_maps, &b->cc.nuid_maps, err) < 0
          || read_id_maps (r, linux_, "gidMappings", b->gid_maps, &b->cc.ngid_maps, err) < 0)
        return -1;
      b->cc.nuid_maps = b->cc.ngid_maps = 0;
      return 0;
    }
  /* The bundle's owner prepared the rootfs for the mapping (runtime-spec):
   * it is used as it is, no idmapped mount. */
  b->cc.uid_maps = b->uid_maps;
  b->cc.gid_maps = b->gid_maps;
  if (read_id_maps (r, linux_, "uidMappings", b->uid_maps, &b->cc.nuid_maps, err) < 0
      || read_id_maps (r, linux_, "gidMappings", b->gid_maps, &b->cc.ngid_maps, err) < 0)
    return -1;
  if (b->cc.nuid_maps == 0 || b->cc.ngid_maps == 0)
    REFUSE ("config.json linux.uidMappings and gidMappings: required with a user namespace");
  return 0;
}

/* ---- linux.resources ------------------------------------------------------------ */

static int
read_cpu (const struct reader *r, int res, grove_error_t *err)
{
  grove_resources_t *out = &r->b->res;
  int cpu = get (r, res, "cpu");
  long long quota = 0, period = 100000, shares = 0;
  grove_json_num (r->s, r->t, get (r, cpu, "quota"), &quota);
  grove_json_num (r->s, r->t, get (r, cpu, "period"), &period);
  grove_json_num (r->s, r->t, get (r, cpu, "shares"), &shares);
  if (quota > 0 && period <= 0)
    REFUSE ("config.json linux.resources.cpu.period: must be > 0");
  /* Far above any quota the kernel takes; keeps quota * 1000 below LLONG_MAX. */
  if (quota > 1000000000000LL)
    REFUSE ("config.json linux.resources.cpu.quota: at most 1000000000000 microseconds");
  out->cpu_millis = quota > 0 ? (quota * 1000 + period / 2) / period : 0;
  if (out->cpu_millis == 0 && quota > 0)
    out->cpu_millis = 1;
  if (quota > 0)
    {
      out->cpu_quota_us = quota;
      out->cpu_period_us = period;
    }
  r->b->cpu_shares = shares > 0 ? shares : 0;
  return 0;
}

/* linux.resources.devices: [{allow, type?, major?, minor?, access?}], before
 * the container allow list (v1 devices cgroup, v2 device program). */
static int
read_device_rules (const struct reader *r, int res, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int v = get (r, res, "devices");
  for (int k = 0; v >= 0 && k < r->t[v].size; k++)
    {
      int d = grove_json_at (r->t, v, k);
      cleanup_free char *type = grove_json_str (r->s, r->t, get (r, d, "type"));
      cleanup_free char *access = grove_json_str (r->s, r->t, get (r, d, "access"));
      long long major = -1, minor = -1;
      char maj[24] = "*", min[24] = "*";
      grove_error_t bad;
      if ((size_t) k >= N_OF (b->dev_rules))
        REFUSE ("config.json linux.resources.devices: at most %zu rules", N_OF (b->dev_rules));
      if (get (r, d, "major") >= 0 && (grove_json_num (r->s, r->t, get (r, d, "major"), &major) < 0 || major < 0))
        REFUSE ("config.json linux.resources.devices[%d].major: must be a non-negative integer", k);
      if (get (r, d, "minor") >= 0 && (grove_json_num (r->s, r->t, get (r, d, "minor"), &minor) < 0 || minor < 0))
        REFUSE ("config.json linux.resources.devices[%d].minor: must be a non-negative integer", k);
      if (major >= 0)
        snprintf (maj, sizeof (maj), "%lld", major);
      if (minor >= 0)
        snprintf (min, sizeof (min), "%lld", minor);
      snprintf (b->dev_text[k], sizeof (b->dev_text[k]), "%s %s:%s %s", type != NULL && type[0] != '\0' ? type : "a",
                maj, min, access != NULL && access[0] != '\0' ? access : "rwm");
      if (grove_device_rule_check (b->dev_text[k], &bad) < 0)
        REFUSE ("config.json linux.resources.devices[%d]: %s", k, bad.msg);
      b->dev_rules[k].allow = grove_json_true (r->s, r->t, get (r, d, "allow"));
      b->dev_rules[k].rule = b->dev_text[k];
      b->res.ndevices = (size_t) k + 1;
    }
  b->res.devices = b->dev_rules;
  return 0;
}

/* linux.resources.memory.swap: memory + swap (runc's meaning), -1 for
 * unlimited; it needs a memory limit and may not be below it (as runc). */
static int
read_swap (const struct reader *r, int memory, grove_error_t *err)
{
  int v = get (r, memory, "swap");
  long long num;
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (grove_json_num (r->s, r->t, v, &num) < 0)
    REFUSE ("config.json linux.resources.memory.swap: must be an integer");
  if (num == 0)
    return 0; /* runc: unset */
  if (num != -1 && r->b->res.memory_bytes <= 0)
    REFUSE ("config.json linux.resources.memory.swap: needs linux.resources.memory.limit");
  if (num < -1 || (num > 0 && num < r->b->res.memory_bytes))
    REFUSE ("config.json linux.resources.memory.swap: %lld is below memory.limit %lld (swap is memory + swap)", num,
            (long long) r->b->res.memory_bytes);
  r->b->res.memory_swap_bytes = num;
  static_only (r->b, "linux.resources.memory.swap");
  return 0;
}

static int
read_resources (const struct reader *r, int linux_, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int res = get (r, linux_, "resources");
  long long num;
  const char *extra = NULL;
  if (grove_oci_extras_read (r->s, r->t, &b->attrs, &b->xres, &extra, err) < 0)
    return -1;
  if (extra != NULL)
    static_only (b, extra);
  if (b->attrs.domainname_set && b->uts_ns != NULL) /* never the runtime's own (the host's) name */
    REFUSE ("config.json domainname: needs a uts namespace of the container's own (linux.namespaces)");
  if (GROVE_OCI_ATTRS_ANY (&b->attrs))
    b->cc.attrs = &b->attrs;
  b->res.memory_bytes = grove_json_num (r->s, r->t, get (r, get (r, res, "memory"), "limit"), &num) == 0 ? num : 0;
  if (read_swap (r, get (r, res, "memory"), err) < 0)
    return -1;
  b->res.pids = grove_json_num (r->s, r->t, get (r, get (r, res, "pids"), "limit"), &num) == 0 ? num : 0;
  if (read_cpu (r, res, err) < 0 || read_device_rules (r, res, err) < 0)
    return -1;
  return 0;
}

/* A whole file with its length (it may hold NUL bytes: the JSON reader sees
 * them); NULL with errno set. */
static char *
read_text (const char *file, size_t *len)
{
  FILE *f = fopen (file, "re");
  char *buf;
  long n;
  if (f == NULL)
    return NULL;
  if (fseek (f, 0, SEEK_END) < 0 || (n = ftell (f)) < 0 || fseek (f, 0, SEEK_SET) < 0)
    {
      fclose (f);
      return NULL;
    }
  buf = malloc ((size_t) n + 1);
  if (buf == NULL || fread (buf, 1, (size_t) n, f) != (size_t) n)
    {
      int saved = buf == NULL ? ENOMEM : EIO;
      fclose (f);
      free (buf);
      errno = saved;
      return NULL;
    }
  fclose (f);
  buf[n] = '\0';
  *len = (size_t) n;
  return buf;
}

/* ---- the whole config ----------------------------------------------------------- */

/* HOME from the rootfs's /etc/passwd for uid, "/" when it has none (as runc); NULL when out of memory. */
static char *
home_of (const char *rootfs, uid_t uid)
{
  char file[PATH_MAX], line[1024];
  FILE *f;
  snprintf (file, sizeof (file), "%s/etc/passwd", rootfs);
  f = fopen (file, "re");
  while (f != NULL && fgets (line, sizeof (line), f) != NULL)
    {
      char *field[7] = { NULL };
      char *p = line;
      int n = 0;
      while (n < 7 && p != NULL)
        {
          field[n++] = p;
          p = strchr (p, ':');
          if (p != NULL)
            *p++ = '\0';
        }
      if (n >= 6 && field[2][0] != '\0' && strtoul (field[2], NULL, 10) == uid)
        {
          char *home;
          fclose (f);
          return asprintf (&home, "HOME=%s", field[5]) < 0 ? NULL : home;
        }
    }
  if (f != NULL)
    fclose (f);
  return strdup ("HOME=/");
}

/* The annotations (org.grove.seccomp picks Grove's filter), HOME, and the
 * container configuration's pointers into b. */
static int
finish (const struct reader *r, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int ann = get (r, 0, "annotations"), has_home = 0;
  size_t nenv = 0;
  cleanup_free char *sc = grove_json_str (r->s, r->t, get (r, ann, "org.grove.seccomp"));
  b->cc.seccomp_unconfined = sc == NULL || strcmp (sc, "default") != 0;
  if (ann >= 0 && r->t[ann].type == GROVE_J_OBJ)
    b->annotations = strndup (r->s + r->t[ann].start, (size_t) (r->t[ann].end - r->t[ann].start));
  else
    b->annotations = strdup ("{}");
  for (; b->envp[nenv] != NULL; nenv++)
    has_home |= strncmp (b->envp[nenv], "HOME=", 5) == 0;
  if (!has_home && (b->envp[nenv] = home_of (b->rootfs, b->cc.uid)) == NULL)
    return grove_error_set (err, ENOMEM, "HOME");
  if (b->annotations == NULL)
    return grove_error_set (err, ENOMEM, "config.json annotations");
  b->cc.rootfs = b->rootfs;
  b->cc.argv = b->argv;
  b->cc.envp = b->envp;
  b->cc.cwd = b->cwd != NULL ? b->cwd : "/";
  b->cc.hostname = b->hostname;
  b->cc.netns_path = b->netns;
  b->cc.mounts = b->mounts;
  b->cc.groups = b->groups;
  b->cc.ngroups = b->ngroups;
  b->cc.rlimits = b->rlimits;
  b->cc.nrlimits = b->nrlimits;
  b->cc.stdio_fd = -1;
  b->cc.masked_paths = (const char *const *) b->masked;
  b->cc.readonly_paths = (const char *const *) b->readonly;
  return 0;
}

/* ---- hooks ------------------------------------------------------------------ */

static void
blob_put (FILE *f, const char *key, const char *val)
{
  fwrite (key, 1, strlen (key) + 1, f);
  fwrite (val, 1, strlen (val) + 1, f);
}

/* A list of strings (hooks.KIND[i].args or env) into the blob under key. */
static int
read_hook_strings (const struct reader *r, int hook, const char *name, const char *key, FILE *f, const char *field,
                   grove_error_t *err)
{
  int v = get (r, hook, name);
  if (v < 0 || r->t[v].type == GROVE_J_NULL)
    return 0;
  if (r->t[v].type != GROVE_J_ARR)
    REFUSE ("config.json %s.%s: must be an array of strings", field, name);
  for (int k = 0; k < r->t[v].size; k++)
    {
      cleanup_free char *s = grove_json_str (r->s, r->t, grove_json_at (r->t, v, k));
      if (s == NULL)
        REFUSE ("config.json %s.%s: must be an array of strings", field, name);
      blob_put (f, key, s);
    }
  return 0;
}

/* One hook: path (absolute), args, env, timeout (> 0). */
static int
read_hook (const struct reader *r, int hook, const char *kind, int k, FILE *f, grove_error_t *err)
{
  char field[64], num[32];
  long long timeout;
  int v = get (r, hook, "timeout");
  cleanup_free char *path = grove_json_str (r->s, r->t, get (r, hook, "path"));
  snprintf (field, sizeof (field), "hooks.%s[%d]", kind, k);
  if (r->t[hook].type != GROVE_J_OBJ || path == NULL || path[0] != '/')
    REFUSE ("config.json %s.path: must be an absolute path", field);
  blob_put (f, GROVE_HOOKS_KEY_HOOK, kind);
  blob_put (f, GROVE_HOOKS_KEY_PATH, path);
  if (read_hook_strings (r, hook, "args", GROVE_HOOKS_KEY_ARG, f, field, err) < 0
      || read_hook_strings (r, hook, "env", GROVE_HOOKS_KEY_ENV, f, field, err) < 0)
    return -1;
  if (v >= 0 && r->t[v].type != GROVE_J_NULL)
    {
      if (grove_json_num (r->s, r->t, v, &timeout) < 0 || timeout <= 0 || timeout > 86400)
        REFUSE ("config.json %s.timeout: must be a number of seconds greater than zero", field);
      snprintf (num, sizeof (num), "%lld", timeout);
      blob_put (f, GROVE_HOOKS_KEY_TIMEOUT, num);
    }
  return 0;
}

/* hooks: the blob grove-runtime runs them from (hooks.h), with the id, the
 * bundle and the annotations their state needs; none: no blob. */
static int
read_hooks (const struct reader *r, const char *id, grove_error_t *err)
{
  grove_oci_bundle_t *b = r->b;
  int hooks = get (r, 0, "hooks"), any = 0, rc = 0;
  FILE *f;
  if (hooks < 0 || r->t[hooks].type == GROVE_J_NULL)
    return 0;
  if (r->t[hooks].type != GROVE_J_OBJ)
    REFUSE ("config.json hooks: must be an object");
  f = open_memstream (&b->hooks_blob, &b->hooks_len);
  if (f == NULL)
    return grove_error_set (err, errno, "config.json hooks");
  blob_put (f, GROVE_HOOKS_KEY_ID, id);
  blob_put (f, GROVE_HOOKS_KEY_BUNDLE, r->bundle);
  blob_put (f, GROVE_HOOKS_KEY_ANNOTATIONS, b->annotations);
  /* Unknown kinds are properties the spec does not define: ignored. */
  for (int kind = 0; rc == 0 && kind < GROVE_HOOK_KINDS; kind++)
    {
      const char *name = grove_hook_kind_names[kind];
      int list = get (r, hooks, name);
      if (list < 0 || r->t[list].type == GROVE_J_NULL)
        continue;
      if (r->t[list].type != GROVE_J_ARR)
        {
          rc = grove_error_set (err, 0, "config.json hooks.%s: must be an array", name);
          break;
        }
      for (int k = 0; rc == 0 && k < r->t[list].size; k++, any = 1)
        rc = read_hook (r, grove_json_at (r->t, list, k), name, k, f, err);
    }
  fclose (f);
  if (rc == 0 && any)
    static_only (b, "hooks");
  if (rc < 0 || !any)
    {
      free (b->hooks_blob);
      b->hooks_blob = NULL;
      b->hooks_len = 0;
    }
  return rc;
}

int
grove_oci_bundle_load (grove_oci_bundle_t *b, const char *bundle, const char *id, grove_error_t *err)
{
  char file[PATH_MAX];
  struct reader r = { NULL, b->toks, bundle, b };
  int linux_, mounts;
  size_t len = 0;
  memset (b, 0, sizeof (*b));
  b->cap_given[0] = b->cap_given[1] = b->cap_given[2] = -1;
  snprintf (file, sizeof (file), "%s/config.json", bundle);
  b->text = read_text (file, &len);
  if (b->text == NULL)
    return grove_error_set (err, errno, "%s", file);
  r.s = b->text;
  if (grove_json_parse (r.s, len, b->toks, GROVE_OCI_MAX_TOKENS) < 0 || b->toks[0].type != GROVE_J_OBJ)
    REFUSE ("%s: invalid JSON", file);
  if (read_process (&r, err) < 0 || read_root (&r, id, err) < 0)
    return -1;
  mounts = get (&r, 0, "mounts");
  for (int k = 0; mounts >= 0 && k < b->toks[mounts].size; k++)
    if (read_mount (&r, k, err) < 0)
      return -1;
  linux_ = get (&r, 0, "linux");
  if (read_fixed_lists (&r, linux_, err) < 0 || read_rootfs_propagation (&r, linux_, err) < 0
      || read_namespaces (&r, linux_, err) < 0
      || read_devices (&r, linux_, err) < 0 || read_cgroups_path (&r, linux_, err) < 0
      || read_resources (&r, linux_, err) < 0)
    return -1;
  return finish (&r, err) < 0 ? -1 : read_hooks (&r, id, err);
}

void
grove_oci_bundle_free (grove_oci_bundle_t *b)
{
  free (b->text);
  free (b->rootfs);
  free (b->cwd);
  free (b->hostname);
  free (b->netns);
  free (b->annotations);
  free (b->hooks_blob);
  free (b->cgroups_path);
  free (b->uts_ns);
  free (b->ipc_ns);
  free (b->pid_ns);
  free (b->mnt_ns);
  free (b->cgroup_ns);
  free (b->user_ns);
  free (b->time_ns);
  free ((char *) b->cc.seccomp_bpf); /* set by oci_seccomp.c (grove-runtime) */
  for (size_t i = 0; i < b->cc.nmasked_paths; i++)
    free (b->masked[i]);
  for (size_t i = 0; i < b->cc.nreadonly_paths; i++)
    free (b->readonly[i]);
  for (size_t i = 0; i < b->cc.ndevices; i++)
    free ((char *) b->devices[i].path);
  for (size_t i = 0; i < N_OF (b->sysctl_text); i++)
    free (b->sysctl_text[i]);
  for (size_t i = 0; i < N_OF (b->argv); i++)
    free (b->argv[i]);
  for (size_t i = 0; i < N_OF (b->envp); i++)
    free (b->envp[i]);
  for (size_t i = 0; i < b->cc.nmounts; i++)
    {
      free ((char *) b->mounts[i].source);
      free ((char *) b->mounts[i].destination);
      free ((char *) b->mounts[i].data);
      free ((char *) b->mounts[i].fstype);
      free ((char *) b->mounts[i].field);
    }
  memset (b, 0, sizeof (*b));
}
