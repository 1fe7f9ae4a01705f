/* grove-shim: the per-container monitor.
 *
 * The agent spawns one per container. It reads its configuration from fd 3
 * (NUL-separated "key" "value" pairs until EOF), detaches (double fork,
 * setsid), starts the container through the runtime core (so it, not the
 * agent, is the parent of the container's init), reports "started, pid N" or
 * the error on fd 4, and then:
 *   - copies the container's stdout and stderr from a pipe to the log file,
 *     rotating it to <log>.1 when it passes log_max bytes;
 *   - reaps the init, records its exit status and OOM kill in <dir>/exit;
 *   - answers the agent on the unix socket <dir>/shim.sock, one request per
 *     line: "state", "signal N", "wait" (answered once the init exited),
 *     "stats"; each answer is one line of JSON.
 *   - on SIGUSR1 (the agent's runtime state was removed while the container
 *     ran), makes <dir>, the state record and the socket again and reopens
 *     its log, so a restarted agent can adopt the container.
 * It exits once the container has exited, its output is drained, the exit
 * record is written and every waiter is answered. The agent may come and go
 * meanwhile: everything it needs is on disk or behind the socket.
 *
 * Static, single-threaded, no allocation after start-up beyond the config. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "exec.h"
#include "hooks.h"
#include "oci_attrs.h"
#include "shim.h"
#include "shim_protocol.h"
#include "shim_runtime.h"
#include "util.h"

#define MAX_CLIENTS 32
#define CLIENT_BUF 256
#define DRAIN_TIMEOUT_MS 2000

struct config
{
  const char *id, *rootfs, *cwd, *hostname, *log, *dir, *cg_mode, *cg_root, *cg_parent, *netns;
  long long log_max;
  grove_process_config_t proc; /* caps, seccomp, uid, gid, group, rlimit, arg, env */
  int hold;
  int hold_stdio; /* the container gets the shim's fds 0-2 as they were given (stdio_fds) */
  int oom_score_adj_set, oom_score_adj, umask_set, no_new_privs_off;
  mode_t umask;
  const char *sysctls[GROVE_MAX_SYSCTLS];
  size_t nsysctls;
  int readonly_rootfs;
  int host_cgroupns;
  unsigned long rootfs_propagation;
  grove_mount_t mounts[GROVE_MAX_MOUNTS];
  size_t nmounts;
  grove_id_map_t uid_maps[GROVE_MAX_ID_MAPS], gid_maps[GROVE_MAX_ID_MAPS];
  size_t nuid_maps, ngid_maps;
  int userns_idmap;
  const char *console_socket; /* OCI terminal: true (grove-runtime create --console-socket) */
  unsigned short console_rows, console_cols;
};

/* "CONTAINER:HOST:SIZE" */
static int
parse_id_map (const char *key, const char *val, grove_id_map_t *maps, size_t *n, grove_error_t *err)
{
  char *end;
  grove_id_map_t m = { 0, 0, 0 };
  if (*n >= GROVE_MAX_ID_MAPS)
    return grove_error_set (err, EINVAL, "shim config: more than %d %s lines", GROVE_MAX_ID_MAPS, key);
  /* All three parts, each a number, and a size > 0: "0:100000" or "" is refused. */
  const char *p = val;
  m.container_id = (uint32_t) strtoul (p, &end, 10);
  if (end != p && *end == ':')
    {
      p = end + 1;
      m.host_id = (uint32_t) strtoul (p, &end, 10);
      if (end != p && *end == ':')
        {
          p = end + 1;
          m.size = (uint32_t) strtoul (p, &end, 10);
          if (end != p && *end == '\0' && m.size > 0)
            {
              maps[(*n)++] = m;
              return 0;
            }
        }
    }
  return grove_error_set (err, EINVAL, "shim config: %s %s is not CONTAINER:HOST:SIZE with SIZE > 0", key, val);
}

struct client
{
  int fd;
  int waiting;
  size_t len;
  char buf[CLIENT_BUF];
};

static struct config cfg;
/* OCI hooks (grove-runtime create): their blob's file, read before the start. */
static const char *hooks_path;
static grove_hooks_t hooks;
/* OCI linux.cgroupsPath (grove-runtime create): the container's cgroup's name when not its id. */
static const char *cgroup_name;
/* OCI process attributes and extra v1 hierarchies (grove-runtime create). */
static grove_oci_attrs_t proc_attrs;
static unsigned cgroup_v1_join;
/* grove_cgroup_t.v1_prefix (a relative cgroupsPath on v1); the strings are the blob's. */
static grove_cgroup_prefix_t cgroup_prefix[16];
static size_t ncgroup_prefix;
/* OCI linux.namespaces (grove-runtime create): uts and ipc namespaces to join. */
static const char *uts_ns_path, *ipc_ns_path, *pid_ns_path, *mnt_ns_path, *cgroup_ns_path, *user_ns_path, *time_ns;
static const char *time_offsets[2];
static size_t ntime_offsets;
/* OCI linux.devices (grove-runtime create): "MODE:MAJOR:MINOR:UID:GID:PATH". */
static grove_device_t devices[GROVE_MAX_DEVICES];
static size_t ndevices;
/* OCI linux.maskedPaths and readonlyPaths beyond Grove's lists. */
static const char *masked_paths[GROVE_MAX_EXTRA_PATHS], *readonly_paths[GROVE_MAX_EXTRA_PATHS];
static size_t nmasked_paths, nreadonly_paths;

static int
extra_path_key (const char *key, const char *val, grove_error_t *err)
{
  int masked = strcmp (key, GROVE_KEY_MASKED_PATH) == 0;
  size_t *n = masked ? &nmasked_paths : &nreadonly_paths;
  if (*n == GROVE_MAX_EXTRA_PATHS)
    return grove_error_set (err, EINVAL, "shim config: more than %d %s keys", GROVE_MAX_EXTRA_PATHS, key);
  (masked ? masked_paths : readonly_paths)[(*n)++] = val;
  return 0;
}

static int
device_key (char *val, grove_error_t *err)
{
  unsigned mode, major, minor, uid, gid;
  int n = 0;
  if (ndevices == GROVE_MAX_DEVICES)
    return grove_error_set (err, EINVAL, "shim config: more than %d devices", GROVE_MAX_DEVICES);
  if (sscanf (val, "%o:%u:%u:%u:%u:%n", &mode, &major, &minor, &uid, &gid, &n) != 5 || n == 0 || val[n] != '/')
    return grove_error_set (err, EINVAL, "shim config: device %s is not MODE:MAJOR:MINOR:UID:GID:PATH", val);
  devices[ndevices++] = (grove_device_t){ val + n, (mode_t) mode, major, minor, (uid_t) uid, (gid_t) gid };
  return 0;
}
static grove_shim_runtime_t handler; /* a runtime handler instance (shim_runtime.c); path NULL: native */
static struct client clients[MAX_CLIENTS];
static grove_cgroup_t cgroup;
static grove_container_t container;
static int log_fd = -1;
static long long log_size;
/* <log>.ts: when the log's bytes arrived (see log_stamp). */
static int ts_fd = -1;
static long long ts_size, ts_last_ms = -1;
static int exited;
static grove_exit_t exit_status;
static long long started_ms, finished_ms;
static int hold_w = -1; /* OCI create: write end the init waits on until "start" */
static int stdio_fds[3] = { -1, -1, -1 }; /* hold_stdio: the caller's stdio, kept aside by detach */
static char sock_path[sizeof (((struct sockaddr_un *) 0)->sun_path)];
static int listening; /* sock_path is ours: removed when the start fails */

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes <dir>/<name> atomically (tmp + rename): a reader (the agent, a
 * restarted agent) sees the old record or the whole new one, whatever process
 * dies when. Not fsynced: the records describe processes of this boot (the
 * state directory is under /run, a tmpfs on a normal host), and a machine that
 * loses power loses the container with them; an fsync here cost 0.5 to 3 ms
 * of every start (state) and every exit (exit) on an ext4 /run, on the path
 * the agent waits on. runc writes its state.json the same way. */
static int
write_record (const char *name, const char *text)
{
  char tmp[4096], final[4096];
  int fd;
  snprintf (tmp, sizeof (tmp), "%s/.%s.tmp", cfg.dir, name);
  snprintf (final, sizeof (final), "%s/%s", cfg.dir, name);
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  if (grove_write_all (fd, text, strlen (text)) < 0)
    {
      close (fd);
      unlink (tmp);
      return -1;
    }
  close (fd);
  return rename (tmp, final);
}


/* The keys only grove-runtime writes: oom_score_adj, umask, sysctl. */
static int
oci_key (const char *key, char *val, grove_error_t *err)
{
  char *end;
  long n;
  if (strcmp (key, GROVE_KEY_SYSCTL) == 0)
    {
      if (cfg.nsysctls >= GROVE_MAX_SYSCTLS)
        return grove_error_set (err, EINVAL, "shim config: more than %d sysctl keys", GROVE_MAX_SYSCTLS);
      cfg.sysctls[cfg.nsysctls++] = val;
      return 0;
    }
  errno = 0;
  n = strtol (val, &end, key[0] == 'u' ? 8 : 10);
  if (errno != 0 || end == val || *end != '\0' || (key[0] == 'u' ? n < 0 || n > 0777 : n < -1000 || n > 1000))
    return grove_error_set (err, EINVAL, "shim config: %s %s is out of range", key, val);
  if (key[0] == 'u')
    {
      cfg.umask_set = 1;
      cfg.umask = (mode_t) n;
    }
  else
    {
      cfg.oom_score_adj_set = 1;
      cfg.oom_score_adj = (int) n;
    }
  return 0;
}

/* The keys only the container's start has (the process keys are shared). */
static int
shim_key (const char *key, char *val, grove_error_t *err)
{
  static const struct
  {
    const char *key;
    const char **field;
  } text[] = { { GROVE_KEY_ID, &cfg.id },
               { GROVE_KEY_ROOTFS, &cfg.rootfs },
               { GROVE_KEY_CWD, &cfg.cwd },
               { GROVE_KEY_HOSTNAME, &cfg.hostname },
               { GROVE_KEY_LOG, &cfg.log },
               { GROVE_KEY_DIR, &cfg.dir },
               { GROVE_KEY_CGROUP_MODE, &cfg.cg_mode },
               { GROVE_KEY_CGROUP_ROOT, &cfg.cg_root },
               { GROVE_KEY_CGROUP_PARENT, &cfg.cg_parent },
               { GROVE_KEY_CGROUP_NAME, &cgroup_name },
               { GROVE_KEY_UTS_NS, &uts_ns_path },
               { GROVE_KEY_IPC_NS, &ipc_ns_path },
               { GROVE_KEY_PID_NS, &pid_ns_path },
               { GROVE_KEY_MNT_NS, &mnt_ns_path },
               { GROVE_KEY_CGROUP_NS, &cgroup_ns_path },
               { GROVE_KEY_USER_NS, &user_ns_path },
               { GROVE_KEY_TIME_NS, &time_ns },
               { GROVE_KEY_CONSOLE_SOCKET, &cfg.console_socket },
               { GROVE_KEY_NETNS, &cfg.netns } };
  if (grove_shim_runtime_key (&handler, key, val))
    return 0;
  for (size_t k = 0; k < sizeof (text) / sizeof (text[0]); k++)
    if (strcmp (key, text[k].key) == 0)
      {
        *text[k].field = val;
        return 0;
      }
  if (strcmp (key, GROVE_KEY_LOG_MAX) == 0)
    cfg.log_max = atoll (val);
  else if (strcmp (key, GROVE_KEY_HOLD) == 0)
    {
      /* "stdio": OCI create through grove-runtime, which passes its caller's
       * stdin, stdout and stderr to the container (the runtime does not own them). */
      cfg.hold = strcmp (val, "1") == 0 || strcmp (val, "stdio") == 0;
      cfg.hold_stdio = strcmp (val, "stdio") == 0;
    }
  else if (strcmp (key, GROVE_KEY_ROWS) == 0 || strcmp (key, GROVE_KEY_COLS) == 0)
    *(key[0] == 'r' ? &cfg.console_rows : &cfg.console_cols) = (unsigned short) strtoul (val, NULL, 10);
  else if (strcmp (key, GROVE_KEY_READONLY_ROOTFS) == 0)
    cfg.readonly_rootfs = strcmp (val, "1") == 0;
  else if (strcmp (key, GROVE_KEY_CGROUPNS) == 0)
    cfg.host_cgroupns = strcmp (val, "host") == 0;
  /* A mount: "mount_src" starts it, "mount_dst" and "mount_ro" follow. */
  else if (strcmp (key, GROVE_KEY_MOUNT_SRC) == 0)
    {
      if (cfg.nmounts >= GROVE_MAX_MOUNTS)
        return grove_error_set (err, EINVAL, "shim config: more than %d mounts", GROVE_MAX_MOUNTS);
      cfg.mounts[cfg.nmounts++].source = val;
    }
  else if (strcmp (key, GROVE_KEY_MOUNT_DST) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].destination = val;
  else if (strcmp (key, GROVE_KEY_MOUNT_RO) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].readonly = strcmp (val, "1") == 0;
  else if (strcmp (key, GROVE_KEY_MOUNT_TYPE) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].fstype = val;
  else if (strcmp (key, GROVE_KEY_MOUNT_FLAGS) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].flags = strtoul (val, NULL, 10);
  else if (strcmp (key, GROVE_KEY_MOUNT_DATA) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].data = val;
  else if (strcmp (key, GROVE_KEY_MOUNT_OWN) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].own = strcmp (val, "1") == 0;
  else if (strcmp (key, GROVE_KEY_MOUNT_FIELD) == 0 && cfg.nmounts > 0)
    cfg.mounts[cfg.nmounts - 1].field = val;
  else if (strcmp (key, GROVE_KEY_MOUNT_PROPAGATION) == 0 && cfg.nmounts > 0)
    {
      grove_mount_t *m = &cfg.mounts[cfg.nmounts - 1];
      if (m->npropagation == GROVE_MAX_PROPAGATION)
        return grove_error_set (err, EINVAL, "shim config: more than %d %s", GROVE_MAX_PROPAGATION, key);
      m->propagation[m->npropagation++] = strtoul (val, NULL, 10);
    }
  else if (strcmp (key, GROVE_KEY_ROOTFS_PROPAGATION) == 0)
    cfg.rootfs_propagation = strtoul (val, NULL, 10);
  else if (strcmp (key, GROVE_KEY_UID_MAP) == 0)
    return parse_id_map (key, val, cfg.uid_maps, &cfg.nuid_maps, err);
  else if (strcmp (key, GROVE_KEY_GID_MAP) == 0)
    return parse_id_map (key, val, cfg.gid_maps, &cfg.ngid_maps, err);
  else if (strcmp (key, GROVE_KEY_USERNS_IDMAP) == 0)
    cfg.userns_idmap = strcmp (val, "1") == 0;
  else if (strcmp (key, GROVE_KEY_NO_NEW_PRIVS) == 0)
    cfg.no_new_privs_off = strcmp (val, "0") == 0;
  else if (strcmp (key, GROVE_KEY_OOM_SCORE_ADJ) == 0 || strcmp (key, GROVE_KEY_UMASK) == 0
           || strcmp (key, GROVE_KEY_SYSCTL) == 0)
    return oci_key (key, val, err);
  else if (strcmp (key, GROVE_KEY_HOOKS) == 0)
    hooks_path = val;
  else if (strcmp (key, GROVE_KEY_DEVICE) == 0)
    return device_key (val, err);
  else if (strcmp (key, GROVE_KEY_TIME_OFFSET) == 0)
    {
      if (ntime_offsets == sizeof (time_offsets) / sizeof (time_offsets[0]))
        return grove_error_set (err, EINVAL, "shim config: at most 2 %s", key);
      time_offsets[ntime_offsets++] = val;
    }
  else if (strcmp (key, GROVE_KEY_MASKED_PATH) == 0 || strcmp (key, GROVE_KEY_READONLY_PATH) == 0)
    return extra_path_key (key, val, err);
  else if (strcmp (key, GROVE_KEY_PROC_ATTR) == 0)
    return grove_oci_attrs_key (&proc_attrs, val, err);
  else if (strcmp (key, GROVE_KEY_CGROUP_V1_JOIN) == 0)
    cgroup_v1_join = (unsigned) strtoul (val, NULL, 10);
  else if (strcmp (key, GROVE_KEY_CGROUP_PREFIX) == 0)
    {
      char *colon = strchr (val, ':');
      if (colon == NULL || ncgroup_prefix == sizeof (cgroup_prefix) / sizeof (cgroup_prefix[0]))
        return grove_error_set (err, EINVAL, "shim config: %s `%s`: not CONTROLLER:/PATH, or too many", key, val);
      *colon = '\0';
      cgroup_prefix[ncgroup_prefix++] = (grove_cgroup_prefix_t){ val, colon + 1 + (colon[1] == '/') };
    }
  else
    return grove_error_set (err, EINVAL, "shim config: unknown or repeated key %s", key);
  return 0;
}

static int
parse_config (char *buf, size_t len, grove_error_t *err)
{
  size_t i = 0;
  char *key, *val;
  int more, r;
  memset (&cfg, 0, sizeof (cfg));
  cfg.log_max = 10 * 1024 * 1024;
  while ((more = grove_config_next (buf, len, &i, &key, &val, "shim", err)) > 0)
    {
      r = grove_process_config_key (&cfg.proc, key, val, "shim", err);
      if (r < 0 || (r == 0 && shim_key (key, val, err) < 0))
        return -1;
    }
  if (more < 0)
    return -1;
  if (cfg.id == NULL || cfg.rootfs == NULL || cfg.hostname == NULL || cfg.log == NULL || cfg.dir == NULL
      || cfg.cg_mode == NULL || cfg.cg_root == NULL || cfg.cg_parent == NULL || cfg.proc.argc == 0)
    return grove_error_set (err, EINVAL,
                            "shim config (%zu bytes): id, rootfs, hostname, log, dir, cgroup_* and arg are required",
                            len);
  return grove_process_config_finish (&cfg.proc, "shim", err);
}

static void
report_start (int fd, int errnum, pid_t pid, const char *msg)
{
  struct grove_shim_report r;
  memset (&r, 0, sizeof (r));
  r.errnum = errnum;
  r.pid = pid;
  r.shim_pid = getpid ();
  snprintf (r.msg, sizeof (r.msg), "%s", msg != NULL ? msg : "");
  (void) grove_write_all (fd, (const char *) &r, sizeof (r));
  close (fd);
}

/* ---- logs ----------------------------------------------------------------- */

static void
log_open (void)
{
  struct stat st;
  char ts[4096];
  log_fd = open (cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
  log_size = (log_fd >= 0 && fstat (log_fd, &st) == 0) ? st.st_size : 0;
  if (ts_fd >= 0)
    close (ts_fd);
  snprintf (ts, sizeof (ts), "%s.ts", cfg.log);
  ts_fd = open (ts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
  ts_size = (ts_fd >= 0 && fstat (ts_fd, &st) == 0) ? st.st_size : 0;
  ts_last_ms = -1;
}

static void
log_rotate (void)
{
  char rotated[4096], ts[4096], ts_rotated[4096];
  snprintf (rotated, sizeof (rotated), "%s.1", cfg.log);
  snprintf (ts, sizeof (ts), "%s.ts", cfg.log);
  snprintf (ts_rotated, sizeof (ts_rotated), "%s.ts.1", cfg.log);
  if (log_fd >= 0)
    close (log_fd);
  rename (cfg.log, rotated);
  rename (ts, ts_rotated);
  log_open ();
}

/* Timestamps without changing the log's format (readers that do not know
 * them see the same bytes): <log>.ts gets a line "OFFSET MS" (wall clock,
 * milliseconds) when bytes at OFFSET of <log> arrive in a later millisecond
 * than the last record; the bytes up to the next record arrived then too.
 * It rotates with the log, and stops growing (coarser times) at a quarter of
 * log_max, so it never outgrows its log by much. */
static void
log_stamp (void)
{
  struct timespec now;
  char rec[64];
  long long ms;
  int n;
  if (ts_fd < 0 || clock_gettime (CLOCK_REALTIME, &now) != 0)
    return;
  ms = (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000;
  if (ms == ts_last_ms || (cfg.log_max > 0 && ts_size > cfg.log_max / 4))
    return;
  n = snprintf (rec, sizeof (rec), "%lld %lld\n", log_size, ms);
  if (n > 0 && grove_write_all (ts_fd, rec, (size_t) n) == 0)
    ts_size += n;
  ts_last_ms = ms;
}

/* Appends to the log; a file never grows past log_max: it is rotated to
 * <log>.1 first, at a line boundary when the chunk has one. */
static void
log_write (const char *buf, size_t len)
{
  while (len > 0)
    {
      size_t piece = len;
      if (cfg.log_max > 0)
        {
          long long room = cfg.log_max - log_size;
          if (room <= 0 || (log_size > 0 && (long long) len > room && memchr (buf, '\n', (size_t) room) == NULL))
            {
              log_rotate ();
              room = cfg.log_max;
            }
          if ((long long) piece > room)
            {
              const char *nl = memrchr (buf, '\n', (size_t) room);
              piece = nl != NULL ? (size_t) (nl - buf) + 1 : (size_t) room;
            }
        }
      if (log_fd >= 0)
        log_stamp ();
      if (log_fd < 0 || grove_write_all (log_fd, buf, piece) < 0)
        return;
      log_size += (long long) piece;
      buf += piece;
      len -= piece;
    }
}

/* Returns 0 at EOF (or error), 1 when it read something, 2 when it would block. */
static int
log_pump (int pipe_fd)
{
  char buf[16384];
  ssize_t n = read (pipe_fd, buf, sizeof (buf));
  if (n < 0)
    return errno == EINTR ? 1 : errno == EAGAIN ? 2 : 0;
  if (n == 0)
    return 0;
  log_write (buf, (size_t) n);
  return 1;
}

/* ---- answers -------------------------------------------------------------- */

static int64_t
read_int (const char *controller, const char *file)
{
  char path[4096];
  char *text = NULL;
  grove_error_t ignored;
  int64_t v = -1;
  char *dir = NULL;
  if (grove_cgroup_dir (&cgroup, controller, &dir, &ignored) < 0)
    return -1;
  snprintf (path, sizeof (path), "%s/%s", dir, file);
  free (dir);
  if (grove_read_file (path, &text, &ignored) == 0)
    {
      char *p = text;
      /* v2 cpu.stat: "usage_usec N" on its first line. */
      if (strncmp (p, "usage_usec ", 11) == 0)
        p += 11;
      v = strtoll (p, NULL, 10);
    }
  free (text);
  return v;
}

static void
exit_json (char *out, size_t cap)
{
  snprintf (out, cap, "{\"exitCode\":%d,\"signal\":%d,\"oomKilled\":%s,\"finishedAtMs\":%lld}", exit_status.exit_code,
            exit_status.signal, exit_status.oom_killed ? "true" : "false", finished_ms);
}

static void
answer (struct client *c, const char *line)
{
  char out[1024];
  if (strcmp (line, "state") == 0)
    snprintf (out, sizeof (out),
              "{\"id\":\"%s\",\"pid\":%d,\"shimPid\":%d,\"running\":%s,\"status\":\"%s\",\"startedAtMs\":%lld}\n",
              cfg.id, (int) container.pid, (int) getpid (), exited ? "false" : "true",
              exited ? "stopped" : hold_w >= 0 ? "created" : "running", started_ms);
  else if (strcmp (line, "start") == 0)
    {
      int ok = hold_w >= 0 && !exited && grove_write_all (hold_w, "g", 1) == 0;
      if (hold_w >= 0)
        close (hold_w);
      hold_w = -1;
      snprintf (out, sizeof (out), ok ? "{\"started\":true}\n" : "{\"error\":\"not in the created state\"}\n");
    }
  else if (strncmp (line, "signal ", 7) == 0)
    {
      grove_error_t err;
      int sig = atoi (line + 7);
      int r = exited ? 0 : grove_pidfd_signal (container.pidfd, sig, &err);
      if (r < 0)
        snprintf (out, sizeof (out), "{\"error\":\"signal %d failed\"}\n", sig);
      else
        snprintf (out, sizeof (out), "{\"sent\":%s}\n", r == 1 ? "true" : "false");
    }
  else if (strcmp (line, "stats") == 0)
    {
      int64_t ooms = 0;
      grove_error_t ignored;
      int v1 = cgroup.mode == GROVE_CGROUP_V1;
      grove_cgroup_ops_for (cgroup.mode)->oom_kills (&cgroup, &ooms, &ignored);
      snprintf (out, sizeof (out),
                "{\"cpuUsageNs\":%" PRId64 ",\"memoryBytes\":%" PRId64 ",\"memoryPeakBytes\":%" PRId64
                ",\"pids\":%" PRId64 ",\"oomKills\":%" PRId64 "}\n",
                v1 ? read_int ("cpuacct", "cpuacct.usage") : read_int ("", "cpu.stat") * 1000,
                read_int ("memory", v1 ? "memory.usage_in_bytes" : "memory.current"),
                read_int ("memory", v1 ? "memory.max_usage_in_bytes" : "memory.peak"),
                read_int ("pids", "pids.current"), ooms);
    }
  else if (strcmp (line, "wait") == 0)
    {
      c->waiting = 1;
      return;
    }
  else
    snprintf (out, sizeof (out), "{\"error\":\"unknown request\"}\n");
  (void) grove_write_all (c->fd, out, strlen (out));
}

static void
client_close (struct client *c)
{
  close (c->fd);
  c->fd = -1;
  c->waiting = 0;
  c->len = 0;
}

static void
client_read (struct client *c)
{
  ssize_t n = read (c->fd, c->buf + c->len, sizeof (c->buf) - 1 - c->len);
  char *nl;
  if (n <= 0)
    {
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
      client_close (c);
      return;
    }
  c->len += (size_t) n;
  c->buf[c->len] = '\0';
  while ((nl = strchr (c->buf, '\n')) != NULL)
    {
      size_t used = (size_t) (nl - c->buf) + 1;
      *nl = '\0';
      answer (c, c->buf);
      memmove (c->buf, c->buf + used, c->len - used + 1);
      c->len -= used;
    }
  if (c->len >= sizeof (c->buf) - 1)
    client_close (c); /* a line that long is not a request */
}

static void
accept_client (int listen_fd)
{
  int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd < 0)
      {
        clients[i].fd = fd;
        clients[i].len = 0;
        clients[i].waiting = 0;
        return;
      }
  close (fd);
}

static int
listen_socket (grove_error_t *err)
{
  struct sockaddr_un addr;
  int fd;
  memset (&addr, 0, sizeof (addr));
  addr.sun_family = AF_UNIX;
  if (snprintf (sock_path, sizeof (sock_path), "%s/shim.sock", cfg.dir) >= (int) sizeof (sock_path))
    return grove_error_set (err, ENAMETOOLONG, "shim socket path %s/shim.sock is too long", cfg.dir);
  memcpy (addr.sun_path, sock_path, sizeof (sock_path));
  unlink (sock_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return grove_error_set (err, errno, "shim socket");
  if (bind (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0 || listen (fd, 64) < 0)
    {
      int saved = errno;
      close (fd);
      return grove_error_set (err, saved, "listen on %s", sock_path);
    }
  return fd;
}

/* The state record: {"pid", "shimPid", "startedAtMs"} (StateRecord in shim-protocol.ts). */
static void
write_state_record (void)
{
  char record[512];
  snprintf (record, sizeof (record), "{\"pid\":%d,\"shimPid\":%d,\"startedAtMs\":%lld}\n", (int) container.pid,
            (int) getpid (), started_ms);
  write_record ("state", record);
}

/* SIGUSR1: the directory (and maybe the log) went away under us. Make the
 * directory, the state record and the socket again and reopen the log, so a
 * restarted agent finds the container as if nothing happened. The old
 * listening socket is replaced (its path is gone: nobody can reach it). */
static void
restore_records (int *listen_fd)
{
  grove_error_t ignored;
  struct stat st;
  int fd;
  if (mkdir (cfg.dir, 0700) < 0 && errno != EEXIST)
    return;
  write_state_record ();
  if (stat (sock_path, &st) < 0)
    {
      memset (&ignored, 0, sizeof (ignored));
      fd = listen_socket (&ignored);
      if (fd >= 0)
        {
          close (*listen_fd);
          *listen_fd = fd;
        }
    }
  if (stat (cfg.log, &st) < 0)
    {
      if (log_fd >= 0)
        close (log_fd);
      log_open ();
    }
}

/* ---- start ---------------------------------------------------------------- */

/* Reports the start's failure on fd 4, removes the socket; returns 1 (main's exit status). */
static int
start_failed (int errnum, const char *msg)
{
  report_start (4, errnum, 0, msg);
  if (listening)
    unlink (sock_path);
  return 1;
}

/* The agent reaps the first process; the shim lives on reparented, in a
 * session of its own, with /dev/null as stdio. */
static int
detach (void)
{
  int null_fd;
  pid_t child = fork ();
  if (child < 0)
    return -1;
  if (child > 0)
    _exit (0);
  setsid ();
  if (chdir ("/") < 0)
    {
      /* "/" always exists */
    }
  for (int k = 0; cfg.hold_stdio && k < 3; k++)
    if ((stdio_fds[k] = fcntl (k, F_DUPFD_CLOEXEC, 5)) < 0)
      return -1;
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0)
    {
      dup2 (null_fd, 0);
      dup2 (null_fd, 1);
      dup2 (null_fd, 2);
      if (null_fd > 2)
        close (null_fd);
    }
  signal (SIGPIPE, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGINT, SIG_IGN);
  return 0;
}

/* SIGCHLD and SIGUSR1 through a signalfd. */
static int
signal_fd (void)
{
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGUSR1);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  return signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The container configuration from the shim's: its output to stdio_fd. */
static void
container_config (grove_container_config_t *cc, int stdio_fd)
{
  cgroup.mode = strcmp (cfg.cg_mode, "v2") == 0 ? GROVE_CGROUP_V2 : GROVE_CGROUP_V1;
  cgroup.root = cfg.cg_root;
  cgroup.parent = cfg.cg_parent;
  cgroup.id = cgroup_name != NULL ? cgroup_name : cfg.id;
  cgroup.v1_join = cgroup_v1_join;
  cgroup.v1_prefix = ncgroup_prefix > 0 ? cgroup_prefix : NULL;
  cgroup.nv1_prefix = ncgroup_prefix;
  memset (cc, 0, sizeof (*cc));
  grove_process_config_apply (&cfg.proc, cc);
  cc->rootfs = cfg.rootfs;
  cc->cwd = cfg.cwd != NULL ? cfg.cwd : "/";
  cc->hostname = cfg.hostname;
  cc->log_path = cfg.log;
  cc->cgroup = &cgroup;
  cc->netns_path = cfg.netns;
  cc->stdio_fd = stdio_fd;
  cc->inherit_stdio = cfg.hold_stdio;
  cc->oom_score_adj_set = cfg.oom_score_adj_set;
  cc->oom_score_adj = cfg.oom_score_adj;
  cc->umask_set = cfg.umask_set;
  cc->umask = cfg.umask;
  cc->no_new_privs_off = cfg.no_new_privs_off;
  cc->attrs = GROVE_OCI_ATTRS_ANY (&proc_attrs) ? &proc_attrs : NULL;
  cc->sysctls = cfg.sysctls;
  cc->nsysctls = cfg.nsysctls;
  cc->inherit_fds = stdio_fds;
  cc->readonly_rootfs = cfg.readonly_rootfs;
  cc->host_cgroupns = cfg.host_cgroupns;
  cc->rootfs_propagation = cfg.rootfs_propagation;
  cc->mounts = cfg.mounts;
  cc->nmounts = cfg.nmounts;
  cc->uid_maps = cfg.uid_maps;
  cc->nuid_maps = cfg.nuid_maps;
  cc->gid_maps = cfg.gid_maps;
  cc->ngid_maps = cfg.ngid_maps;
  cc->userns_idmap_rootfs = cfg.userns_idmap;
}

/* Starts the container with its output on pipe_w (and, for OCI create, its
 * init held until "start"); 1 (reported on fd 4) when it failed. */
static int
start_container (int pipe_w, int pipe_r)
{
  grove_error_t err;
  grove_container_config_t cc;
  memset (&err, 0, sizeof (err));
  container_config (&cc, pipe_w);
  if (hooks_path != NULL && grove_hooks_load (&hooks, hooks_path, &err) < 0)
    return start_failed (err.errnum, err.msg);
  cc.hooks = hooks_path != NULL ? &hooks : NULL;
  cc.devices = devices;
  cc.ndevices = ndevices;
  cc.uts_ns_path = uts_ns_path;
  cc.ipc_ns_path = ipc_ns_path;
  cc.pid_ns_path = pid_ns_path;
  cc.mnt_ns_path = mnt_ns_path;
  cc.cgroup_ns_path = cgroup_ns_path;
  cc.user_ns_path = user_ns_path;
  cc.time_ns_new = time_ns != NULL && strcmp (time_ns, "new") == 0;
  cc.time_ns_path = cc.time_ns_new ? NULL : time_ns;
  cc.time_offsets = time_offsets;
  cc.ntime_offsets = ntime_offsets;
  cc.masked_paths = masked_paths;
  cc.nmasked_paths = nmasked_paths;
  cc.readonly_paths = readonly_paths;
  cc.nreadonly_paths = nreadonly_paths;
  if (cfg.hold)
    {
      int hold_fds[2];
      if (pipe2 (hold_fds, O_CLOEXEC) < 0)
        return start_failed (errno, "shim: pipe2 failed");
      cc.hold_fd = hold_fds[0];
      hold_w = hold_fds[1];
    }
  /* The init sends the pty's master there before the start returns; the
   * shim keeps no copy of it, nor of the socket. */
  if (cfg.console_socket != NULL && (cc.console_fd = grove_unix_connect (cfg.console_socket, &err)) < 0)
    return start_failed (err.errnum, err.msg);
  cc.console_rows = cfg.console_rows;
  cc.console_cols = cfg.console_cols;
  if (handler.path != NULL ? grove_shim_runtime_start (&handler, cfg.id, pipe_w, pipe_r, &container, &err) < 0
                           : grove_container_start (&cc, &container, &err) < 0)
    return start_failed (err.errnum, err.msg);
  if (cc.console_fd > 0)
    close (cc.console_fd);
  close (pipe_w);
  for (int k = 0; k < 3; k++)
    if (stdio_fds[k] >= 0)
      close (stdio_fds[k]); /* the container's now: the shim holds none of them open */
  if (cc.hold_fd > 0)
    close (cc.hold_fd);
  started_ms = now_ms ();
  write_state_record ();
  report_start (4, 0, container.pid, NULL);
  return 0;
}

/* ---- serving ---------------------------------------------------------------- */

/* Reaps the init when it exited: its status, OOM kill and finish time. */
static void
reap_init (long long *drain_deadline)
{
  int status;
  int64_t ooms = 0;
  grove_error_t ignored;
  if (exited || waitpid (container.pid, &status, WNOHANG) != container.pid)
    return;
  if (WIFEXITED (status))
    {
      exit_status.exit_code = WEXITSTATUS (status);
      exit_status.signal = 0;
    }
  else
    {
      exit_status.signal = WIFSIGNALED (status) ? WTERMSIG (status) : 0;
      exit_status.exit_code = 128 + exit_status.signal;
    }
  exit_status.oom_killed = grove_cgroup_ops_for (cgroup.mode)->oom_kills (&cgroup, &ooms, &ignored) == 0 && ooms > 0;
  finished_ms = now_ms ();
  exited = 1;
  *drain_deadline = finished_ms + DRAIN_TIMEOUT_MS;
}

/* Until the init has exited and its output is drained (or DRAIN_TIMEOUT_MS
 * passed): the log pipe, the socket's clients, SIGCHLD and SIGUSR1. */
static void
serve (int sig_fd, int *listen_fd, int pipe_r)
{
  long long drain_deadline = 0;
  int pipe_open = 1;
  for (;;)
    {
      struct pollfd pfds[3 + MAX_CLIENTS];
      int map[MAX_CLIENTS];
      nfds_t n = 0;
      int timeout = -1;

      if (exited && (!pipe_open || now_ms () >= drain_deadline))
        break;
      pfds[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
      pfds[n++] = (struct pollfd){ .fd = *listen_fd, .events = POLLIN };
      pfds[n++] = (struct pollfd){ .fd = pipe_open ? pipe_r : -1, .events = POLLIN };
      for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
          {
            map[n - 3] = i;
            pfds[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
          }
      if (exited)
        {
          long long left = drain_deadline - now_ms ();
          timeout = left > 0 ? (int) left : 0;
        }
      if (poll (pfds, n, timeout) < 0 && errno != EINTR)
        break;

      if (pfds[0].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          int restore = 0;
          while (read (sig_fd, &si, sizeof (si)) > 0)
            if (si.ssi_signo == SIGUSR1)
              restore = 1;
          if (restore && !exited)
            restore_records (listen_fd);
          reap_init (&drain_deadline);
        }
      if (pfds[1].revents & POLLIN)
        accept_client (*listen_fd);
      if (pipe_open && (pfds[2].revents & (POLLIN | POLLHUP | POLLERR)))
        for (;;)
          {
            int r = log_pump (pipe_r);
            if (r == 0)
              pipe_open = 0;
            if (r != 1)
              break;
          }
      for (nfds_t k = 3; k < n; k++)
        if (pfds[k].revents & (POLLIN | POLLHUP | POLLERR))
          client_read (&clients[map[k - 3]]);
    }
}

/* The exit record first (a waiter or a restarted agent reads the same),
 * then the answer to every waiter. */
static void
finish (int listen_fd)
{
  char record[512];
  exit_json (record, sizeof (record));
  write_record ("exit", record);
  strcat (record, "\n");
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0)
      {
        if (clients[i].waiting)
          (void) grove_write_all (clients[i].fd, record, strlen (record));
        client_close (&clients[i]);
      }
  unlink (sock_path);
  close (listen_fd);
  if (log_fd >= 0)
    close (log_fd);
}

/* ---- main ----------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  grove_error_t err;
  size_t len = 0;
  char *blob;
  int listen_fd, sig_fd, pipe_fds[2];

  /* `grove-shim exec ID`: a command inside a running container (exec.c). */
  if (argc == 3 && strcmp (argv[1], "exec") == 0)
    return grove_exec_main (argc, argv);
  memset (&err, 0, sizeof (err));

  /* Only fds 0-4 are ours; fd 4 reports the start. */
  syscall (SYS_close_range, 5, ~0U, 0);
  blob = grove_read_all (3, &len);
  close (3);
  if (blob == NULL)
    return start_failed (errno, "shim: reading the config failed");
  if (parse_config (blob, len, &err) < 0)
    return start_failed (err.errnum, err.msg);
  if (detach () < 0)
    return start_failed (errno, "shim: fork failed");

  sig_fd = signal_fd ();
  for (int i = 0; i < MAX_CLIENTS; i++)
    clients[i].fd = -1;
  listen_fd = listen_socket (&err);
  listening = listen_fd >= 0;
  if (listen_fd < 0 || sig_fd < 0)
    return start_failed (err.errnum, listen_fd < 0 ? err.msg : "shim: signalfd failed");
  if (pipe2 (pipe_fds, O_CLOEXEC) < 0)
    return start_failed (errno, "shim: pipe2 failed");
  fcntl (pipe_fds[0], F_SETFL, O_NONBLOCK);
  log_open ();
  if (log_fd < 0)
    {
      int saved = errno;
      char msg[4200];
      snprintf (msg, sizeof (msg), "open log %s: %s", cfg.log, strerror (saved));
      return start_failed (saved, msg);
    }
  if (start_container (pipe_fds[1], pipe_fds[0]) != 0)
    return 1;
  serve (sig_fd, &listen_fd, pipe_fds[0]);
  if (handler.path != NULL)
    grove_shim_runtime_delete (&handler, cfg.id);
  finish (listen_fd);
  return 0;
}
