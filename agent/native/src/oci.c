/* grove-runtime: the OCI runtime command line, in C over the runtime core
 * (no Node start-up per command). Same state layout as the TypeScript
 * NativeRuntime and bin/grove-runtime.js: <root>/<id>/{spec.json, state,
 * exit, output.log, shim.sock}; cgroups <parent>/<id>.
 *
 *   grove-runtime [--root DIR] [--cgroup-parent NAME] COMMAND
 *     create [--bundle DIR] [--pid-file FILE] ID | start ID | state ID
 *     kill ID [SIGNAL] | delete [--force] ID | run [--bundle DIR] [--pid-file FILE] ID
 *
 * run starts the container directly (this process is the parent, its
 * stdout/stderr are the container's); create goes through grove-shim (found
 * next to this executable), which holds the init before execve until start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "json.h"
#include "shim_spawn.h"
#include "util.h"

#define MAX_TOKENS 8192
#define MAX_LIST 1024

static const char *root_dir = "/run/grove-runtime";
static const char *cgroup_parent = "grove-runtime";

__attribute__ ((noreturn, format (printf, 2, 3))) static void
die (int code, const char *fmt, ...)
{
  va_list ap;
  fputs ("grove-runtime: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (code);
}

static const char *const cap_names[] = { "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
                                         "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
                                         "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
                                         "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
                                         "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
                                         "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
                                         "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE" };
static const char *const rlimit_names[] = { "RLIMIT_CPU",    "RLIMIT_FSIZE",  "RLIMIT_DATA",       "RLIMIT_STACK",
                                            "RLIMIT_CORE",   "RLIMIT_RSS",    "RLIMIT_NPROC",      "RLIMIT_NOFILE",
                                            "RLIMIT_MEMLOCK", "RLIMIT_AS",    "RLIMIT_LOCKS",      "RLIMIT_SIGPENDING",
                                            "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO",     "RLIMIT_RTTIME" };
static const char *const builtin_mounts[]
    = { "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup" };
#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))

/* Everything a container needs, read from the bundle. */
struct bundle
{
  char *text;
  grove_jtok_t toks[MAX_TOKENS];
  char *rootfs, *cwd, *hostname, *netns;
  char *argv[MAX_LIST + 1];
  char *envp[MAX_LIST + 1];
  gid_t groups[64];
  size_t ngroups;
  grove_rlimit_t rlimits[16];
  size_t nrlimits;
  grove_resources_t res;
  grove_id_map_t uid_maps[GROVE_MAX_ID_MAPS], gid_maps[GROVE_MAX_ID_MAPS];
  int userns;
  grove_device_rule_t dev_rules[64];
  char dev_text[64][64];
  grove_mount_t mounts[GROVE_MAX_MOUNTS];
  char *annotations; /* the config's annotations object as JSON text ("{}" when none) */
  grove_container_config_t cc;
};

/* linux.uidMappings / gidMappings: [{containerID, hostID, size}]. */
static size_t
read_id_maps (const char *s, grove_jtok_t *t, int list, const char *field, grove_id_map_t *maps)
{
  size_t n = 0;
  for (int k = 0; list >= 0 && k < t[list].size; k++)
    {
      int m = grove_json_at (t, list, k);
      long long c, h, z;
      if (n == GROVE_MAX_ID_MAPS)
        die (1, "config.json linux.%s: at most %d mappings", field, GROVE_MAX_ID_MAPS);
      if (grove_json_num (s, t, grove_json_get (s, t, m, "containerID"), &c) < 0
          || grove_json_num (s, t, grove_json_get (s, t, m, "hostID"), &h) < 0
          || grove_json_num (s, t, grove_json_get (s, t, m, "size"), &z) < 0 || c < 0 || h < 0 || z <= 0
          || c + z > 0xffffffffLL || h + z > 0xffffffffLL)
        die (1, "config.json linux.%s[%d]: containerID, hostID and size must be integers, size > 0", field, k);
      maps[n++] = (grove_id_map_t){ (uint32_t) c, (uint32_t) h, (uint32_t) z };
    }
  return n;
}

static int
valid_id (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n > 64 || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return 0;
  for (const char *c = id; *c; c++)
    if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') && !strchr ("_.-", *c))
      return 0;
  return 1;
}

static char *
read_text (const char *file, size_t *len)
{
  FILE *f = fopen (file, "re");
  char *buf;
  long n;
  if (f == NULL)
    return NULL;
  fseek (f, 0, SEEK_END);
  n = ftell (f);
  fseek (f, 0, SEEK_SET);
  buf = malloc ((size_t) n + 1);
  if (buf == NULL || fread (buf, 1, (size_t) n, f) != (size_t) n)
    {
      fclose (f);
      free (buf);
      return NULL;
    }
  fclose (f);
  buf[n] = '\0';
  *len = (size_t) n;
  return buf;
}

/* What Grove's core always does (container.c): its masked and read-only
 * paths, the device nodes of its /dev. A bundle may ask for these (runc
 * spec's defaults are among them), not for others. */
static const char *const grove_masked[]
    = { "/proc/asound",      "/proc/acpi",        "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware",     "/sys/devices/virtual/powercap" };
static const char *const grove_readonly[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
static const char *const grove_devices[]
    = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty" };

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

/* Refuses every key of object obj (at field) that is not in allowed. */
static void
only_keys (const char *s, const grove_jtok_t *t, int obj, const char *field, const char *const *allowed, size_t n)
{
  int j;
  if (obj < 0 || t[obj].type != GROVE_J_OBJ)
    return;
  j = obj + 1;
  for (int k = 0; k < t[obj].size; k++)
    {
      cleanup_free char *key = grove_json_str (s, t, j);
      if (!in_list (allowed, n, key))
        die (1, "config.json %s%s: is not supported by grove-runtime", field, key != NULL ? key : "?");
      j = t[j + 1].next;
    }
}

/* A capability list as a bit mask; -1 when the list is absent. */
static long long
cap_mask (const char *s, const grove_jtok_t *t, int caps, const char *set)
{
  int list = grove_json_get (s, t, caps, set);
  uint64_t mask = 0;
  if (list < 0)
    return -1;
  if (t[list].type != GROVE_J_ARR)
    die (1, "config.json process.capabilities.%s: must be an array", set);
  for (int k = 0; k < t[list].size; k++)
    {
      cleanup_free char *name = grove_json_str (s, t, grove_json_at (t, list, k));
      const char *n = name != NULL && strncmp (name, "CAP_", 4) == 0 ? name + 4 : name;
      size_t c = 0;
      while (n != NULL && c < N_OF (cap_names) && strcmp (cap_names[c], n) != 0)
        c++;
      if (n == NULL || c == N_OF (cap_names))
        die (1, "config.json process.capabilities.%s[%d]: unknown capability %s", set, k, name ? name : "?");
      mask |= 1ULL << c;
    }
  return (long long) mask;
}

/* HOME from the rootfs's /etc/passwd for uid, "/" when it has none (as runc). */
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
          if (asprintf (&home, "HOME=%s", field[5]) < 0)
            die (1, "out of memory");
          return home;
        }
    }
  if (f != NULL)
    fclose (f);
  return strdup ("HOME=/");
}

static void
load_bundle (struct bundle *b, const char *bundle, const char *id)
{
  char file[PATH_MAX];
  size_t len = 0;
  const char *s;
  grove_jtok_t *t = b->toks;
  int proc, root, linux_, v, res;
  long long num;
  uint64_t caps = 0;
  int caps_given = 0, has_home = 0, cgroupns = 0;
  size_t nenv = 0;
  static const char *const top_keys[] = { "ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux" };
  static const char *const proc_keys[]
      = { "terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges" };
  static const char *const linux_keys[] = { "namespaces",  "uidMappings", "gidMappings", "resources", "cgroupsPath",
                                            "maskedPaths", "readonlyPaths", "devices",   "sysctl",    "seccomp" };
  static const char *const res_keys[] = { "memory", "cpu", "pids", "devices" };
  static const char *const cpu_keys[] = { "quota", "period", "shares" };
  static const char *const limit_keys[] = { "limit" };
  static const char *const user_keys[] = { "uid", "gid", "additionalGids" };

  snprintf (file, sizeof (file), "%s/config.json", bundle);
  b->text = read_text (file, &len);
  if (b->text == NULL)
    die (1, "%s: %s", file, strerror (errno));
  s = b->text;
  if (grove_json_parse (s, len, t, MAX_TOKENS) < 0 || t[0].type != GROVE_J_OBJ)
    die (1, "%s: invalid JSON", file);

  /* Every field grove-runtime does not honour is refused, naming it (hooks,
   * process.apparmorProfile, oomScoreAdj, linux.rootfsPropagation, ...). */
  only_keys (s, t, 0, "", top_keys, N_OF (top_keys));
  proc = grove_json_get (s, t, 0, "process");
  if (proc < 0)
    die (1, "config.json process: is required");
  only_keys (s, t, proc, "process.", proc_keys, N_OF (proc_keys));
  only_keys (s, t, grove_json_get (s, t, proc, "user"), "process.user.", user_keys, N_OF (user_keys));
  if (grove_json_true (s, t, grove_json_get (s, t, proc, "terminal")))
    die (1, "config.json process.terminal: a terminal is not supported; set it to false");
  v = grove_json_get (s, t, proc, "args");
  if (v < 0 || t[v].type != GROVE_J_ARR || t[v].size == 0 || t[v].size > MAX_LIST)
    die (1, "config.json process.args: must be a non-empty array");
  for (int k = 0; k < t[v].size; k++)
    if ((b->argv[k] = grove_json_str (s, t, grove_json_at (t, v, k))) == NULL)
      die (1, "config.json process.args[%d]: must be a string", k);
  v = grove_json_get (s, t, proc, "env");
  for (int k = 0; v >= 0 && k < t[v].size && k < MAX_LIST - 1; k++)
    {
      if ((b->envp[k] = grove_json_str (s, t, grove_json_at (t, v, k))) == NULL || strchr (b->envp[k], '=') == NULL)
        die (1, "config.json process.env[%d]: is not KEY=value", k);
      if (strncmp (b->envp[k], "HOME=", 5) == 0)
        has_home = 1;
      nenv = (size_t) k + 1;
    }
  b->cwd = grove_json_str (s, t, grove_json_get (s, t, proc, "cwd"));
  v = grove_json_get (s, t, proc, "user");
  if (v >= 0)
    {
      if (grove_json_num (s, t, grove_json_get (s, t, v, "uid"), &num) == 0)
        b->cc.uid = (uid_t) num;
      if (grove_json_num (s, t, grove_json_get (s, t, v, "gid"), &num) == 0)
        b->cc.gid = (gid_t) num;
      int g = grove_json_get (s, t, v, "additionalGids");
      for (int k = 0; g >= 0 && k < t[g].size && b->ngroups < N_OF (b->groups); k++)
        if (grove_json_num (s, t, grove_json_at (t, g, k), &num) == 0)
          b->groups[b->ngroups++] = (gid_t) num;
    }
  v = grove_json_get (s, t, proc, "capabilities");
  if (v >= 0)
    {
      /* The core gives one set as bounding, permitted and effective, and
       * leaves inheritable (hence ambient) empty: a config asking for other
       * sets is refused rather than run with different capabilities. */
      long long bnd = cap_mask (s, t, v, "bounding"), eff = cap_mask (s, t, v, "effective"),
                prm = cap_mask (s, t, v, "permitted"), inh = cap_mask (s, t, v, "inheritable");
      (void) cap_mask (s, t, v, "ambient"); /* raised only from inheritable: empty, as with runc */
      if (bnd < 0)
        bnd = eff;
      if (eff >= 0 && eff != bnd)
        die (1, "config.json process.capabilities.effective: must equal bounding (grove-runtime gives one set)");
      if (prm >= 0 && prm != bnd)
        die (1, "config.json process.capabilities.permitted: must equal bounding (grove-runtime gives one set)");
      if (inh > 0)
        die (1, "config.json process.capabilities.inheritable: must be empty (grove-runtime gives no inheritable "
                "capabilities)");
      caps_given = bnd >= 0;
      caps = bnd >= 0 ? (uint64_t) bnd : 0;
    }
  v = grove_json_get (s, t, proc, "rlimits");
  for (int k = 0; v >= 0 && k < t[v].size && b->nrlimits < N_OF (b->rlimits); k++)
    {
      int r = grove_json_at (t, v, k);
      cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, r, "type"));
      long long soft, hard;
      size_t c = 0;
      while (type != NULL && c < N_OF (rlimit_names) && strcmp (rlimit_names[c], type) != 0)
        c++;
      if (type == NULL || c == N_OF (rlimit_names))
        die (1, "config.json process.rlimits[%d].type: unknown rlimit %s", k, type ? type : "?");
      if (grove_json_num (s, t, grove_json_get (s, t, r, "soft"), &soft) < 0
          || grove_json_num (s, t, grove_json_get (s, t, r, "hard"), &hard) < 0 || soft < 0 || soft > hard)
        die (1, "config.json process.rlimits[%d]: soft and hard must be integers, soft <= hard", k);
      b->rlimits[b->nrlimits++] = (grove_rlimit_t){ (int) c, (uint64_t) soft, (uint64_t) hard };
    }

  root = grove_json_get (s, t, 0, "root");
  {
    cleanup_free char *rp = grove_json_str (s, t, grove_json_get (s, t, root, "path"));
    if (rp == NULL || rp[0] == '\0')
      die (1, "config.json root.path: is required");
    if (rp[0] == '/')
      b->rootfs = strdup (rp);
    else if (asprintf (&b->rootfs, "%s/%s", bundle, rp) < 0)
      die (1, "out of memory");
    b->cc.readonly_rootfs = grove_json_true (s, t, grove_json_get (s, t, root, "readonly"));
  }
  b->hostname = grove_json_str (s, t, grove_json_get (s, t, 0, "hostname"));
  if (b->hostname == NULL || b->hostname[0] == '\0')
    b->hostname = strndup (id, 63);

  v = grove_json_get (s, t, 0, "mounts");
  for (int k = 0; v >= 0 && k < t[v].size; k++)
    {
      int m = grove_json_at (t, v, k), opts = grove_json_get (s, t, m, "options");
      char *dst = grove_json_str (s, t, grove_json_get (s, t, m, "destination"));
      cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, m, "type"));
      cleanup_free char *src = grove_json_str (s, t, grove_json_get (s, t, m, "source"));
      int bind = type != NULL && strcmp (type, "bind") == 0, ro = 0;
      size_t c = 0;
      while (dst != NULL && c < N_OF (builtin_mounts) && strcmp (builtin_mounts[c], dst) != 0)
        c++;
      if (dst != NULL && c < N_OF (builtin_mounts))
        {
          free (dst);
          continue; /* Grove sets it up itself */
        }
      for (int o = 0; opts >= 0 && o < t[opts].size; o++)
        {
          cleanup_free char *opt = grove_json_str (s, t, grove_json_at (t, opts, o));
          if (opt != NULL && (strcmp (opt, "bind") == 0 || strcmp (opt, "rbind") == 0))
            bind = 1;
        }
      if (dst == NULL || dst[0] != '/')
        die (1, "config.json mounts[%d].destination: must be an absolute path", k);
      if (!bind)
        die (1, "config.json mounts[%d]: mounting %s (type %s) is not supported: grove-runtime makes bind mounts and "
                "its own /proc, /dev, /sys",
             k, dst, type != NULL ? type : "none");
      for (int o = 0; opts >= 0 && o < t[opts].size; o++)
        {
          cleanup_free char *opt = grove_json_str (s, t, grove_json_at (t, opts, o));
          static const char *const ok[] = { "bind", "rbind", "ro", "rw", "private", "rprivate" };
          if (!in_list (ok, N_OF (ok), opt))
            die (1, "config.json mounts[%d].options[%d]: %s is not supported on a bind mount (bind, rbind, ro, rw)", k,
                 o, opt != NULL ? opt : "?");
          if (strcmp (opt, "ro") == 0)
            ro = 1;
          else if (strcmp (opt, "rw") == 0)
            ro = 0;
        }
      if (src == NULL || src[0] == '\0')
        die (1, "config.json mounts[%d].source: is required for a bind mount", k);
      if (b->cc.nmounts == GROVE_MAX_MOUNTS)
        die (1, "config.json mounts: at most %d bind mounts", GROVE_MAX_MOUNTS);
      {
        char *abs;
        if (src[0] == '/')
          abs = strdup (src);
        else if (asprintf (&abs, "%s/%s", bundle, src) < 0)
          abs = NULL;
        if (abs == NULL)
          die (1, "out of memory");
        b->mounts[b->cc.nmounts++] = (grove_mount_t){ abs, dst, ro };
      }
    }
  b->cc.mounts = b->mounts;

  linux_ = grove_json_get (s, t, 0, "linux");
  only_keys (s, t, linux_, "linux.", linux_keys, N_OF (linux_keys));
  v = grove_json_get (s, t, linux_, "sysctl");
  if (v >= 0 && t[v].size > 0)
    die (1, "config.json linux.sysctl: setting sysctls is not supported by grove-runtime");
  if (grove_json_get (s, t, linux_, "seccomp") >= 0)
    die (1, "config.json linux.seccomp: a bundle's own seccomp profile is not supported; without linux.seccomp "
            "grove-runtime applies Grove's default filter when the annotation org.grove.seccomp is \"default\", none "
            "otherwise");
  for (int pass = 0; pass < 2; pass++)
    {
      const char *field = pass == 0 ? "maskedPaths" : "readonlyPaths";
      v = grove_json_get (s, t, linux_, field);
      for (int k = 0; v >= 0 && k < t[v].size; k++)
        {
          cleanup_free char *p = grove_json_str (s, t, grove_json_at (t, v, k));
          if (pass == 0 ? !in_list (grove_masked, N_OF (grove_masked), p) && !is_thermal_throttle (p)
                        : !in_list (grove_readonly, N_OF (grove_readonly), p))
            die (1, "config.json linux.%s[%d]: %s is not one of the paths Grove %s (it always %s its fixed list)", field,
                 k, p != NULL ? p : "?", pass == 0 ? "masks" : "makes read-only", pass == 0 ? "masks" : "protects");
        }
    }
  v = grove_json_get (s, t, linux_, "devices");
  for (int k = 0; v >= 0 && k < t[v].size; k++)
    {
      cleanup_free char *p = grove_json_str (s, t, grove_json_get (s, t, grove_json_at (t, v, k), "path"));
      if (!in_list (grove_devices, N_OF (grove_devices), p))
        die (1, "config.json linux.devices[%d]: creating %s is not supported (Grove's /dev has null, zero, full, "
                "random, urandom, tty, ptmx, pts, shm, mqueue)",
             k, p != NULL ? p : "?");
    }
  {
    static const char *const required[] = { "pid", "network", "ipc", "uts", "mount" };
    int ns = grove_json_get (s, t, linux_, "namespaces");
    for (size_t r = 0; r < N_OF (required); r++)
      {
        int found = 0;
        for (int k = 0; ns >= 0 && k < t[ns].size; k++)
          {
            cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, grove_json_at (t, ns, k), "type"));
            found |= type != NULL && strcmp (type, required[r]) == 0;
          }
        if (!found)
          die (1, "config.json linux.namespaces: has no %s namespace; grove-runtime always gives a container its own "
                  "pid, ipc, uts and mount namespaces and a new or joined network namespace",
               required[r]);
      }
  }
  v = grove_json_get (s, t, linux_, "namespaces");
  for (int k = 0; v >= 0 && k < t[v].size; k++)
    {
      int ns = grove_json_at (t, v, k);
      cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, ns, "type"));
      char *path = grove_json_str (s, t, grove_json_get (s, t, ns, "path"));
      if (type == NULL
          || !(strcmp (type, "pid") == 0 || strcmp (type, "mount") == 0 || strcmp (type, "uts") == 0
               || strcmp (type, "ipc") == 0 || strcmp (type, "network") == 0 || strcmp (type, "user") == 0
               || strcmp (type, "cgroup") == 0))
        die (1, "config.json linux.namespaces[%d].type: %s namespaces are not supported", k, type ? type : "?");
      if (strcmp (type, "user") == 0)
        b->userns = 1;
      if (strcmp (type, "cgroup") == 0)
        cgroupns = 1;
      if (path != NULL && path[0] != '\0')
        {
          if (strcmp (type, "network") != 0)
            die (1, "config.json linux.namespaces[%d].path: joining a %s namespace is not supported", k, type);
          b->netns = path;
        }
      else
        free (path);
    }
  /* runtime-spec: a namespace the bundle does not list is the runtime's. */
  b->cc.host_cgroupns = !cgroupns;
  if (b->userns)
    {
      /* The bundle's owner prepared the rootfs for the mapping (runtime-spec):
       * it is used as it is, no idmapped mount. */
      b->cc.uid_maps = b->uid_maps;
      b->cc.nuid_maps = read_id_maps (s, t, grove_json_get (s, t, linux_, "uidMappings"), "uidMappings", b->uid_maps);
      b->cc.gid_maps = b->gid_maps;
      b->cc.ngid_maps = read_id_maps (s, t, grove_json_get (s, t, linux_, "gidMappings"), "gidMappings", b->gid_maps);
      if (b->cc.nuid_maps == 0 || b->cc.ngid_maps == 0)
        die (1, "config.json linux.uidMappings and gidMappings: required with a user namespace");
    }
  else if (grove_json_get (s, t, linux_, "uidMappings") >= 0 || grove_json_get (s, t, linux_, "gidMappings") >= 0)
    die (1, "config.json linux.uidMappings: needs a user namespace in linux.namespaces");
  res = grove_json_get (s, t, linux_, "resources");
  only_keys (s, t, res, "linux.resources.", res_keys, N_OF (res_keys));
  only_keys (s, t, grove_json_get (s, t, res, "memory"), "linux.resources.memory.", limit_keys, N_OF (limit_keys));
  only_keys (s, t, grove_json_get (s, t, res, "pids"), "linux.resources.pids.", limit_keys, N_OF (limit_keys));
  only_keys (s, t, grove_json_get (s, t, res, "cpu"), "linux.resources.cpu.", cpu_keys, N_OF (cpu_keys));
  b->res.memory_bytes = grove_json_num (s, t, grove_json_get (s, t, grove_json_get (s, t, res, "memory"), "limit"), &num) == 0 ? num : 0;
  {
    int cpu = grove_json_get (s, t, res, "cpu");
    long long quota = 0, period = 100000, shares = 0;
    grove_json_num (s, t, grove_json_get (s, t, cpu, "quota"), &quota);
    grove_json_num (s, t, grove_json_get (s, t, cpu, "period"), &period);
    grove_json_num (s, t, grove_json_get (s, t, cpu, "shares"), &shares);
    if (quota > 0 && period <= 0)
      die (1, "config.json linux.resources.cpu.period: must be > 0");
    b->res.cpu_millis = quota > 0 ? (quota * 1000 + period / 2) / period : 0;
    if (b->res.cpu_millis == 0 && quota > 0)
      b->res.cpu_millis = 1;
    if (quota > 0)
      {
        b->res.cpu_quota_us = quota;
        b->res.cpu_period_us = period;
      }
  }
  b->res.pids = grove_json_num (s, t, grove_json_get (s, t, grove_json_get (s, t, res, "pids"), "limit"), &num) == 0 ? num : 0;
  /* linux.resources.devices: [{allow, type?, major?, minor?, access?}], before
   * the container allow list (v1 devices cgroup, v2 device program). */
  v = grove_json_get (s, t, res, "devices");
  for (int k = 0; v >= 0 && k < t[v].size; k++)
    {
      int d = grove_json_at (t, v, k);
      cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, d, "type"));
      cleanup_free char *access = grove_json_str (s, t, grove_json_get (s, t, d, "access"));
      long long major = -1, minor = -1;
      char maj[24], min[24];
      grove_error_t err;
      if ((size_t) k >= N_OF (b->dev_rules))
        die (1, "config.json linux.resources.devices: at most %zu rules", N_OF (b->dev_rules));
      if (grove_json_get (s, t, d, "major") >= 0
          && (grove_json_num (s, t, grove_json_get (s, t, d, "major"), &major) < 0 || major < 0))
        die (1, "config.json linux.resources.devices[%d].major: must be a non-negative integer", k);
      if (grove_json_get (s, t, d, "minor") >= 0
          && (grove_json_num (s, t, grove_json_get (s, t, d, "minor"), &minor) < 0 || minor < 0))
        die (1, "config.json linux.resources.devices[%d].minor: must be a non-negative integer", k);
      if (major < 0)
        snprintf (maj, sizeof (maj), "*");
      else
        snprintf (maj, sizeof (maj), "%lld", major);
      if (minor < 0)
        snprintf (min, sizeof (min), "*");
      else
        snprintf (min, sizeof (min), "%lld", minor);
      snprintf (b->dev_text[k], sizeof (b->dev_text[k]), "%s %s:%s %s", type != NULL && type[0] != '\0' ? type : "a", maj,
                min, access != NULL && access[0] != '\0' ? access : "rwm");
      if (grove_device_rule_check (b->dev_text[k], &err) < 0)
        die (1, "config.json linux.resources.devices[%d]: %s", k, err.msg);
      b->dev_rules[k].allow = grove_json_true (s, t, grove_json_get (s, t, d, "allow"));
      b->dev_rules[k].rule = b->dev_text[k];
      b->res.ndevices = (size_t) k + 1;
    }
  b->res.devices = b->dev_rules;

  b->cc.rootfs = b->rootfs;
  b->cc.argv = b->argv;
  b->cc.envp = b->envp;
  b->cc.cwd = b->cwd != NULL ? b->cwd : "/";
  b->cc.hostname = b->hostname;
  b->cc.netns_path = b->netns;
  b->cc.caps_set = caps_given;
  b->cc.caps = caps;
  {
    int ann = grove_json_get (s, t, 0, "annotations");
    cleanup_free char *sc = grove_json_str (s, t, grove_json_get (s, t, ann, "org.grove.seccomp"));
    b->cc.seccomp_unconfined = sc == NULL || strcmp (sc, "default") != 0;
    if (ann >= 0 && t[ann].type == GROVE_J_OBJ)
      b->annotations = strndup (s + t[ann].start, (size_t) (t[ann].end - t[ann].start));
    else
      b->annotations = strdup ("{}");
  }
  if (!has_home)
    b->envp[nenv] = home_of (b->rootfs, b->cc.uid);
  b->cc.groups = b->groups;
  b->cc.ngroups = b->ngroups;
  b->cc.rlimits = b->rlimits;
  b->cc.nrlimits = b->nrlimits;
  b->cc.stdio_fd = -1;
}

static void
cgroup_of (grove_cgroup_t *cg, const char *id)
{
  grove_error_t err;
  grove_cgroup_mode_t mode;
  if (grove_cgroup_detect ("/sys/fs/cgroup", &mode, &err) < 0)
    die (1, "%s", err.msg);
  *cg = (grove_cgroup_t){ mode, "/sys/fs/cgroup", cgroup_parent, id };
}

/* One request line to the container's shim; the answer line in buf. -1: no live shim. */
static int
shim_ask (const char *id, const char *req, char *buf, size_t cap)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t got = 0;
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  snprintf (addr.sun_path, sizeof (addr.sun_path), "%s/%s/shim.sock", root_dir, id);
  if (connect (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0 || write (fd, req, strlen (req)) < 0
      || write (fd, "\n", 1) < 0)
    {
      close (fd);
      return -1;
    }
  while (got + 1 < cap)
    {
      ssize_t n = read (fd, buf + got, cap - 1 - got);
      if (n <= 0)
        break;
      got += (size_t) n;
      if (memchr (buf, '\n', got) != NULL)
        break;
    }
  close (fd);
  buf[got] = '\0';
  return got > 0 ? 0 : -1;
}

/* "status":"running" -> running */
static void
json_field (const char *json, const char *key, char *out, size_t cap)
{
  char pat[64];
  const char *p;
  size_t n = 0;
  snprintf (pat, sizeof (pat), "\"%s\":", key);
  out[0] = '\0';
  p = strstr (json, pat);
  if (p == NULL)
    return;
  p += strlen (pat);
  if (*p == '"')
    p++;
  while (*p && *p != '"' && *p != ',' && *p != '}' && n + 1 < cap)
    out[n++] = *p++;
  out[n] = '\0';
}

static void
remove_dir (const char *id)
{
  char dir[PATH_MAX], f[PATH_MAX];
  DIR *d;
  struct dirent *e;
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  d = opendir (dir);
  if (d != NULL)
    {
      while ((e = readdir (d)) != NULL)
        if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
          {
            snprintf (f, sizeof (f), "%s/%s", dir, e->d_name);
            unlink (f);
          }
      closedir (d);
    }
  rmdir (dir);
  rmdir (root_dir);
}

/* s as a JSON string, quotes included. */
static void
put_json_string (FILE *f, const char *s)
{
  fputc ('"', f);
  for (; *s; s++)
    if (*s == '"' || *s == '\\')
      fprintf (f, "\\%c", *s);
    else if ((unsigned char) *s < 0x20)
      fprintf (f, "\\u%04x", (unsigned char) *s);
    else
      fputc (*s, f);
  fputc ('"', f);
}

static int
cmd_run (const char *bundle, const char *pid_file, const char *id)
{
  static struct bundle b;
  grove_cgroup_t cg;
  grove_error_t err;
  grove_container_t c;
  grove_exit_t ex;
  const struct grove_cgroup_ops *ops;

  load_bundle (&b, bundle, id);
  cgroup_of (&cg, id);
  ops = grove_cgroup_ops_for (cg.mode);
  b.cc.cgroup = &cg;
  b.cc.log_path = "/dev/null";
  b.cc.inherit_stdio = 1; /* the container's stdin, stdout and stderr are ours (as runc run) */
  if (ops->setup (&cg, &b.res, &err) < 0)
    die (1, "%s", err.msg);
  if (grove_container_start (&b.cc, &c, &err) < 0)
    {
      grove_error_t ignored;
      ops->remove (&cg, &ignored);
      die (1, "%s", err.msg);
    }
  if (pid_file != NULL)
    {
      FILE *f = fopen (pid_file, "we");
      if (f != NULL)
        {
          fprintf (f, "%d", (int) c.pid);
          fclose (f);
        }
    }
  if (grove_container_wait (c.pid, &cg, &ex, &err) < 0)
    die (1, "%s", err.msg);
  close (c.pidfd);
  if (ops->remove (&cg, &err) < 0)
    die (1, "%s", err.msg);
  {
    grove_cgroup_t parent = cg;
    grove_error_t ignored;
    parent.id = NULL;
    ops->remove (&parent, &ignored); /* fails while other containers use it: fine */
  }
  return ex.exit_code;
}

static int
cmd_create (const char *bundle, const char *pid_file, const char *id)
{
  static struct bundle b;
  static char self[PATH_MAX], shim[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16];
  grove_cgroup_t cg;
  grove_error_t err;
  struct grove_shim_report rep;
  const struct grove_cgroup_ops *ops;
  char *cfg = NULL;
  size_t cfg_len = 0;
  FILE *mem, *f;
  char num[64];
  ssize_t n;

  load_bundle (&b, bundle, id);
  cgroup_of (&cg, id);
  ops = grove_cgroup_ops_for (cg.mode);
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  if (access (dir, F_OK) == 0)
    die (1, "container %s already exists", id);
  n = readlink ("/proc/self/exe", self, sizeof (self) - 1);
  if (n < 0)
    die (1, "readlink /proc/self/exe: %s", strerror (errno));
  self[n] = '\0';
  snprintf (shim, sizeof (shim), "%s/grove-shim", dirname (self));

  mkdir (root_dir, 0700);
  if (mkdir (dir, 0700) < 0)
    die (1, "mkdir %s: %s", dir, strerror (errno));
  snprintf (file, sizeof (file), "%s/spec.json", dir);
  f = fopen (file, "we");
  if (f == NULL)
    die (1, "%s: %s", file, strerror (errno));
  /* The fields bin/grove-runtime.js and NativeRuntime.load() read back. */
  fprintf (f, "{\"spec\":{\"id\":\"%s\",\"annotations\":{\"grove.oci.bundle\":", id);
  put_json_string (f, bundle);
  fputs (",\"grove.oci.annotations\":", f);
  put_json_string (f, b.annotations);
  fprintf (f, "}},\"createdAtMs\":%lld}\n", (long long) time (NULL) * 1000);
  fclose (f);

  mem = open_memstream (&cfg, &cfg_len);
#define PAIR(k, v)                                                                                                     \
  do                                                                                                                   \
    {                                                                                                                  \
      fputs (k, mem);                                                                                                  \
      fputc (0, mem);                                                                                                  \
      fputs (v, mem);                                                                                                  \
      fputc (0, mem);                                                                                                  \
    }                                                                                                                  \
  while (0)
  PAIR ("id", id);
  PAIR ("rootfs", b.rootfs);
  PAIR ("cwd", b.cc.cwd);
  PAIR ("hostname", b.hostname);
  snprintf (file, sizeof (file), "%s/output.log", dir);
  PAIR ("log", file);
  PAIR ("dir", dir);
  PAIR ("cgroup_mode", cg.mode == GROVE_CGROUP_V2 ? "v2" : "v1");
  PAIR ("cgroup_root", cg.root);
  PAIR ("cgroup_parent", cg.parent);
  PAIR ("hold", "1");
  if (b.netns != NULL)
    PAIR ("netns", b.netns);
  if (b.cc.caps_set)
    {
      snprintf (num, sizeof (num), "%" PRIu64, b.cc.caps);
      PAIR ("caps", num);
    }
  PAIR ("seccomp", b.cc.seccomp_unconfined ? "unconfined" : "default");
  if (b.cc.readonly_rootfs)
    PAIR ("readonly_rootfs", "1");
  if (b.cc.host_cgroupns)
    PAIR ("cgroupns", "host");
  snprintf (num, sizeof (num), "%u", (unsigned) b.cc.uid);
  PAIR ("uid", num);
  snprintf (num, sizeof (num), "%u", (unsigned) b.cc.gid);
  PAIR ("gid", num);
  for (size_t k = 0; k < b.ngroups; k++)
    {
      snprintf (num, sizeof (num), "%u", (unsigned) b.groups[k]);
      PAIR ("group", num);
    }
  for (size_t k = 0; k < b.nrlimits; k++)
    {
      snprintf (num, sizeof (num), "%d:%" PRIu64 ":%" PRIu64, b.rlimits[k].resource, b.rlimits[k].soft,
                b.rlimits[k].hard);
      PAIR ("rlimit", num);
    }
  for (size_t k = 0; k < b.cc.nuid_maps; k++)
    {
      snprintf (num, sizeof (num), "%u:%u:%u", b.uid_maps[k].container_id, b.uid_maps[k].host_id, b.uid_maps[k].size);
      PAIR ("uid_map", num);
    }
  for (size_t k = 0; k < b.cc.ngid_maps; k++)
    {
      snprintf (num, sizeof (num), "%u:%u:%u", b.gid_maps[k].container_id, b.gid_maps[k].host_id, b.gid_maps[k].size);
      PAIR ("gid_map", num);
    }
  for (size_t k = 0; k < b.cc.nmounts; k++)
    {
      PAIR ("mount_src", b.mounts[k].source);
      PAIR ("mount_dst", b.mounts[k].destination);
      PAIR ("mount_ro", b.mounts[k].readonly ? "1" : "0");
    }
  for (char **a = b.argv; *a; a++)
    PAIR ("arg", *a);
  for (char **e = b.envp; *e; e++)
    PAIR ("env", *e);
  fclose (mem);

  if (ops->setup (&cg, &b.res, &err) < 0)
    {
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  if (grove_shim_spawn (shim, id, cfg, cfg_len, &rep, &err) < 0)
    {
      grove_error_t ignored;
      ops->remove (&cg, &ignored);
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  free (cfg);
  if (pid_file != NULL)
    {
      f = fopen (pid_file, "we");
      if (f != NULL)
        {
          fprintf (f, "%d", (int) rep.pid);
          fclose (f);
        }
    }
  return 0;
}

static int
cmd_state (const char *id)
{
  char dir[PATH_MAX], file[PATH_MAX + 16], ans[1024], status[32] = "stopped", pid[32] = "0";
  size_t len;
  char *spec, *bundle, *annotations;
  static grove_jtok_t toks[MAX_TOKENS];
  int a;
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  snprintf (file, sizeof (file), "%s/spec.json", dir);
  spec = read_text (file, &len);
  if (spec == NULL)
    die (1, "container %s does not exist", id);
  if (grove_json_parse (spec, len, toks, MAX_TOKENS) < 0)
    die (1, "%s: invalid JSON", file);
  a = grove_json_get (spec, toks, grove_json_get (spec, toks, 0, "spec"), "annotations");
  bundle = grove_json_str (spec, toks, grove_json_get (spec, toks, a, "grove.oci.bundle"));
  annotations = grove_json_str (spec, toks, grove_json_get (spec, toks, a, "grove.oci.annotations"));
  free (spec);
  if (shim_ask (id, "state", ans, sizeof (ans)) == 0)
    {
      json_field (ans, "status", status, sizeof (status));
      if (strcmp (status, "stopped") != 0)
        json_field (ans, "pid", pid, sizeof (pid));
    }
  else
    {
      snprintf (file, sizeof (file), "%s/exit", dir);
      if (access (file, F_OK) != 0)
        die (1, "container %s does not exist", id);
    }
  printf ("{\n  \"ociVersion\": \"1.0.2\",\n  \"id\": \"%s\",\n  \"status\": \"%s\",\n  \"pid\": %s,\n  \"bundle\": ", id,
          status, pid);
  put_json_string (stdout, bundle != NULL ? bundle : "");
  printf (",\n  \"annotations\": %s\n}\n", annotations != NULL && annotations[0] == '{' ? annotations : "{}");
  free (bundle);
  free (annotations);
  return 0;
}

static int
signal_number (const char *s)
{
  static const struct
  {
    const char *name;
    int n;
  } sigs[] = { { "HUP", SIGHUP },     { "INT", SIGINT },       { "QUIT", SIGQUIT },   { "ILL", SIGILL },
               { "TRAP", SIGTRAP },   { "ABRT", SIGABRT },     { "IOT", SIGIOT },     { "BUS", SIGBUS },
               { "FPE", SIGFPE },     { "KILL", SIGKILL },     { "USR1", SIGUSR1 },   { "SEGV", SIGSEGV },
               { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },   { "TERM", SIGTERM },
               { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT },   { "STOP", SIGSTOP },
               { "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },   { "URG", SIGURG },
               { "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
               { "WINCH", SIGWINCH }, { "IO", SIGIO },         { "POLL", SIGPOLL },   { "PWR", SIGPWR },
               { "SYS", SIGSYS } };
  if (strncmp (s, "SIG", 3) == 0)
    s += 3;
  if (*s >= '0' && *s <= '9')
    {
      char *end;
      long n = strtol (s, &end, 10);
      if (*end != '\0' || n < 1 || n > SIGRTMAX)
        die (1, "unknown signal %s", s);
      return (int) n;
    }
  if (strncmp (s, "RTMIN", 5) == 0 || strncmp (s, "RTMAX", 5) == 0)
    {
      char *end;
      long off = s[5] == '\0' ? 0 : strtol (s + 5, &end, 10);
      int n = s[3] == 'I' ? SIGRTMIN + (int) off : SIGRTMAX + (int) off;
      if ((s[5] != '\0' && *end != '\0') || n < SIGRTMIN || n > SIGRTMAX)
        die (1, "unknown signal %s", s);
      return n;
    }
  for (size_t i = 0; i < N_OF (sigs); i++)
    if (strcmp (sigs[i].name, s) == 0)
      return sigs[i].n;
  die (1, "unknown signal %s", s);
}

int
main (int argc, char **argv)
{
  const char *bundle = NULL, *pid_file = NULL, *cmd = NULL;
  const char *pos[3] = { NULL, NULL, NULL };
  int npos = 0, force = 0;
  char cwd[PATH_MAX], ans[1024];

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (die (2, "%s needs a value", a), (char *) NULL))
      if (strcmp (a, "--root") == 0)
        root_dir = VALUE ();
      else if (strcmp (a, "--cgroup-parent") == 0)
        cgroup_parent = VALUE ();
      else if (strcmp (a, "--bundle") == 0 || strcmp (a, "-b") == 0)
        bundle = VALUE ();
      else if (strcmp (a, "--pid-file") == 0)
        pid_file = VALUE ();
      else if (strcmp (a, "--log") == 0 || strcmp (a, "--log-format") == 0)
        (void) VALUE ();
      else if (strcmp (a, "--force") == 0 || strcmp (a, "-f") == 0)
        force = 1;
      else if (a[0] == '-')
        die (2, "unknown option %s", a);
      else if (cmd == NULL)
        cmd = a;
      else if (npos < 3)
        pos[npos++] = a;
      else
        die (2, "too many arguments");
    }
  if (cmd == NULL)
    die (2, "usage: grove-runtime [--root DIR] [--cgroup-parent NAME] create|start|state|kill|delete|run ...");
  if (pos[0] == NULL)
    die (2, "%s: container ID is required", cmd);
  if (!valid_id (pos[0]) || !valid_id (cgroup_parent))
    die (2, "container ID and cgroup parent must be 1..64 of [A-Za-z0-9_.-]");
  if (bundle == NULL)
    bundle = getcwd (cwd, sizeof (cwd));
  else if (bundle[0] != '/' && realpath (bundle, cwd) != NULL)
    bundle = cwd;

  if (strcmp (cmd, "run") == 0)
    return cmd_run (bundle, pid_file, pos[0]);
  if (strcmp (cmd, "create") == 0)
    return cmd_create (bundle, pid_file, pos[0]);
  if (strcmp (cmd, "state") == 0)
    return cmd_state (pos[0]);
  if (strcmp (cmd, "start") == 0)
    {
      if (shim_ask (pos[0], "start", ans, sizeof (ans)) < 0)
        die (1, "container %s does not exist or has stopped", pos[0]);
      if (strstr (ans, "\"started\":true") == NULL)
        die (1, "container %s is not in the created state", pos[0]);
      return 0;
    }
  if (strcmp (cmd, "kill") == 0)
    {
      char req[32];
      snprintf (req, sizeof (req), "signal %d", signal_number (pos[1] != NULL ? pos[1] : "TERM"));
      if (shim_ask (pos[0], req, ans, sizeof (ans)) < 0)
        die (1, "container %s is not running", pos[0]);
      return 0;
    }
  if (strcmp (cmd, "delete") == 0)
    {
      grove_cgroup_t cg;
      grove_error_t err;
      char status[32] = "";
      char file[PATH_MAX];
      int live = shim_ask (pos[0], "state", ans, sizeof (ans)) == 0;
      snprintf (file, sizeof (file), "%s/%s/spec.json", root_dir, pos[0]);
      if (!live && access (file, F_OK) != 0)
        {
          if (force)
            return 0;
          die (1, "container %s does not exist", pos[0]);
        }
      if (live)
        json_field (ans, "status", status, sizeof (status));
      cgroup_of (&cg, pos[0]);
      if (live && strcmp (status, "stopped") != 0)
        {
          int killed = 0;
          if (!force)
            die (1, "container %s is %s; stop it or use --force", pos[0], status);
          grove_cgroup_ops_for (cg.mode)->kill (&cg, SIGKILL, &killed, &err);
        }
      /* Wait (up to 5 s) for the shim to record the exit and go. */
      for (int k = 0; k < 500 && shim_ask (pos[0], "state", ans, sizeof (ans)) == 0; k++)
        {
          struct timespec ts = { 0, 10 * 1000 * 1000 };
          nanosleep (&ts, NULL);
        }
      if (grove_cgroup_ops_for (cg.mode)->remove (&cg, &err) < 0)
        die (1, "%s", err.msg);
      cg.id = NULL;
      grove_cgroup_ops_for (cg.mode)->remove (&cg, &err);
      remove_dir (pos[0]);
      return 0;
    }
  die (2, "unknown command %s", cmd);
}
