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
  int caps_given = 0;

  snprintf (file, sizeof (file), "%s/config.json", bundle);
  b->text = read_text (file, &len);
  if (b->text == NULL)
    die (1, "%s: %s", file, strerror (errno));
  s = b->text;
  if (grove_json_parse (s, len, t, MAX_TOKENS) < 0 || t[0].type != GROVE_J_OBJ)
    die (1, "%s: invalid JSON", file);

  proc = grove_json_get (s, t, 0, "process");
  if (proc < 0)
    die (1, "config.json process: is required");
  if (grove_json_true (s, t, grove_json_get (s, t, proc, "terminal")))
    die (1, "config.json process.terminal: a terminal is not supported; set it to false");
  v = grove_json_get (s, t, proc, "args");
  if (v < 0 || t[v].type != GROVE_J_ARR || t[v].size == 0 || t[v].size > MAX_LIST)
    die (1, "config.json process.args: must be a non-empty array");
  for (int k = 0; k < t[v].size; k++)
    if ((b->argv[k] = grove_json_str (s, t, grove_json_at (t, v, k))) == NULL)
      die (1, "config.json process.args[%d]: must be a string", k);
  v = grove_json_get (s, t, proc, "env");
  for (int k = 0; v >= 0 && k < t[v].size && k < MAX_LIST; k++)
    if ((b->envp[k] = grove_json_str (s, t, grove_json_at (t, v, k))) == NULL || strchr (b->envp[k], '=') == NULL)
      die (1, "config.json process.env[%d]: is not KEY=value", k);
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
      int list = grove_json_get (s, t, v, "bounding");
      if (list < 0)
        list = grove_json_get (s, t, v, "effective");
      for (int k = 0; list >= 0 && k < t[list].size; k++)
        {
          cleanup_free char *name = grove_json_str (s, t, grove_json_at (t, list, k));
          const char *n = name != NULL && strncmp (name, "CAP_", 4) == 0 ? name + 4 : name;
          size_t c = 0;
          while (n != NULL && c < N_OF (cap_names) && strcmp (cap_names[c], n) != 0)
            c++;
          if (n == NULL || c == N_OF (cap_names))
            die (1, "config.json process.capabilities.bounding[%d]: unknown capability %s", k, name ? name : "?");
          caps |= 1ULL << c;
        }
      caps_given = list >= 0;
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
      cleanup_free char *dst = grove_json_str (s, t, grove_json_get (s, t, grove_json_at (t, v, k), "destination"));
      size_t c = 0;
      while (dst != NULL && c < N_OF (builtin_mounts) && strcmp (builtin_mounts[c], dst) != 0)
        c++;
      if (dst == NULL || c == N_OF (builtin_mounts))
        die (1, "config.json mounts[%d]: mounting %s is not supported (Grove sets up /proc, /dev, /sys)", k,
             dst ? dst : "?");
    }

  linux_ = grove_json_get (s, t, 0, "linux");
  v = grove_json_get (s, t, linux_, "namespaces");
  for (int k = 0; v >= 0 && k < t[v].size; k++)
    {
      int ns = grove_json_at (t, v, k);
      cleanup_free char *type = grove_json_str (s, t, grove_json_get (s, t, ns, "type"));
      char *path = grove_json_str (s, t, grove_json_get (s, t, ns, "path"));
      if (type == NULL
          || !(strcmp (type, "pid") == 0 || strcmp (type, "mount") == 0 || strcmp (type, "uts") == 0
               || strcmp (type, "ipc") == 0 || strcmp (type, "network") == 0 || strcmp (type, "cgroup") == 0
               || strcmp (type, "user") == 0))
        die (1, "config.json linux.namespaces[%d].type: %s namespaces are not supported", k, type ? type : "?");
      if (strcmp (type, "user") == 0)
        b->userns = 1;
      if (path != NULL && path[0] != '\0')
        {
          if (strcmp (type, "network") != 0)
            die (1, "config.json linux.namespaces[%d].path: joining a %s namespace is not supported", k, type);
          b->netns = path;
        }
      else
        free (path);
    }
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
  b->res.memory_bytes = grove_json_num (s, t, grove_json_get (s, t, grove_json_get (s, t, res, "memory"), "limit"), &num) == 0 ? num : 0;
  {
    int cpu = grove_json_get (s, t, res, "cpu");
    long long quota = 0, period = 100000, shares = 0;
    grove_json_num (s, t, grove_json_get (s, t, cpu, "quota"), &quota);
    grove_json_num (s, t, grove_json_get (s, t, cpu, "period"), &period);
    grove_json_num (s, t, grove_json_get (s, t, cpu, "shares"), &shares);
    b->res.cpu_millis = quota > 0 && period > 0 ? (quota * 1000 + period / 2) / period : 0;
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
  b->cc.seccomp_unconfined = grove_json_get (s, t, linux_, "seccomp") < 0;
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
  b.cc.stdio_fd = 1; /* the container writes to our stdout and stderr */
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
  fprintf (f, "{\"spec\":{\"id\":\"%s\",\"annotations\":{\"grove.oci.bundle\":\"%s\"}},\"createdAtMs\":%lld}\n", id,
           bundle, (long long) time (NULL) * 1000);
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
  char dir[PATH_MAX], file[PATH_MAX + 16], ans[1024], status[32] = "stopped", pid[32] = "0", bundle[PATH_MAX] = "";
  size_t len;
  char *spec;
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  snprintf (file, sizeof (file), "%s/spec.json", dir);
  spec = read_text (file, &len);
  if (spec == NULL)
    die (1, "container %s does not exist", id);
  json_field (spec, "grove.oci.bundle", bundle, sizeof (bundle));
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
  printf ("{\n  \"ociVersion\": \"1.0.2\",\n  \"id\": \"%s\",\n  \"status\": \"%s\",\n  \"pid\": %s,\n  \"bundle\": \"%s\",\n"
          "  \"annotations\": {}\n}\n",
          id, status, pid, bundle);
  return 0;
}

static int
signal_number (const char *s)
{
  static const struct
  {
    const char *name;
    int n;
  } sigs[] = { { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
               { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "ALRM", SIGALRM } };
  if (strncmp (s, "SIG", 3) == 0)
    s += 3;
  if (*s >= '0' && *s <= '9')
    return atoi (s);
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
