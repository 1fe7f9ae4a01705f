/* grove-runtime: the OCI runtime command line, in C over the runtime core
 * (no Node start-up per command). Same state layout as the TypeScript
 * NativeRuntime and bin/grove-runtime.js: <root>/<id>/{spec.json, state,
 * exit, output.log, shim.sock}; cgroups <parent>/<id>.
 *
 *   grove-runtime [--root DIR] [--cgroup-parent NAME] COMMAND
 *     create [--bundle DIR] [--pid-file FILE] [--console-socket PATH] ID | start ID | state ID
 *     kill ID [SIGNAL] | delete [--force] ID | run [--bundle DIR] [--pid-file FILE] ID
 *
 * process.terminal: create sends the pty's master to --console-socket (the
 * init sends it, as runc's); run relays it to its own terminal (oci_console.h).
 *
 * run starts the container directly (this process is the parent, its
 * stdout/stderr are the container's; its state directory records the init
 * as oci_reaped.c's, so state, kill and delete reach it); create goes
 * through grove-shim (found next to this executable), which holds the init
 * before execve until start. */
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
#include "hooks.h"
#include "json.h"
#include "oci_cgroup.h"
#include "oci_config.h"
#include "oci_console.h"
#include "oci_reaped.h"
#include "oci_seccomp.h"
#include "shim_protocol.h"
#include "shim_spawn.h"
#include "util.h"

#define MAX_TOKENS 8192

static const char *root_dir = "/run/grove-runtime";
static const char *cgroup_parent = "grove-runtime";
static const char *console_socket; /* --console-socket, absolute */

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

#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))

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

/* The bundle's config.json, or the refusal naming the field. */
static void
load_bundle (grove_oci_bundle_t *b, const char *bundle, const char *id)
{
  grove_error_t err;
  if (grove_oci_bundle_load (b, bundle, id, &err) < 0 || grove_oci_seccomp (b, bundle, id, &err) < 0)
    die (1, "%s", err.msg);
}

/* process.terminal and --console-socket, checked as runc checks them
 * before it creates anything: create (detached) with a terminal needs the
 * socket; the socket needs a terminal and a detached runtime (create; run
 * stays in the foreground). */
static void
check_terminal (const grove_oci_bundle_t *b, int detach)
{
  if (detach && b->terminal && console_socket == NULL)
    die (1, "config.json process.terminal: cannot allocate tty if the runtime will detach without setting console "
            "socket (--console-socket)");
  if ((!detach || !b->terminal) && console_socket != NULL)
    die (1, "--console-socket: cannot use console socket if the runtime will not detach or allocate tty (%s)",
         detach ? "config.json process.terminal is false" : "run stays in the foreground");
}

/* A relative --console-socket is the bundle's (runc dials it after its
 * chdir into the bundle); made absolute for the shim, whose directory is "/". */
static void
absolute_console_socket (const char *bundle)
{
  static char abs_socket[PATH_MAX];
  if (console_socket == NULL || console_socket[0] == '/')
    return;
  if (bundle == NULL || strlen (bundle) + 1 + strlen (console_socket) >= sizeof (abs_socket))
    die (1, "--console-socket %s: %s", console_socket, strerror (ENAMETOOLONG));
  snprintf (abs_socket, sizeof (abs_socket), "%s/%s", bundle, console_socket);
  console_socket = abs_socket;
}

/* The container's cgroup when its config had linux.cgroupsPath (create and
 * run resolve it; later commands read it back from <root>/<id>/cgroup). */
static grove_oci_cgroup_t given_cgroup;
static int cgroup_given;

/* On cgroup v1 the container joins every hierarchy the host mounts, as runc
 * does (its cgroup under runc spec's /sys/fs/cgroup mount, and
 * /proc/self/cgroup, are then the same): the driver's own, and the others
 * (cpuset, blkio, name=systemd, ...) as extra hierarchies. */
static void
join_every_hierarchy (grove_oci_bundle_t *b, grove_cgroup_t *cg)
{
  if (cg->mode == GROVE_CGROUP_V1)
    b->xres.v1_join |= grove_cgroup_v1_extras_mounted (cg->root);
  cg->v1_join = b->xres.v1_join;
}

/* <--cgroup-parent>/<id>, or where linux.cgroupsPath put it: <root>/<id>/cgroup
 * holds its parent, its name and (v1, a relative path) one line per
 * hierarchy's prefix, "memory:/process_api/x". */
static void
cgroup_of (grove_cgroup_t *cg, const char *id)
{
  grove_error_t err;
  grove_cgroup_mode_t mode;
  char file[PATH_MAX];
  char *text = NULL;
  if (grove_cgroup_detect ("/sys/fs/cgroup", &mode, &err) < 0)
    die (1, "%s", err.msg);
  *cg = (grove_cgroup_t){ mode, "/sys/fs/cgroup", cgroup_parent, id, 0, NULL, 0 };
  snprintf (file, sizeof (file), "%s/%s/cgroup", root_dir, id);
  if (!cgroup_given && grove_read_file (file, &text, &err) == 0)
    {
      char *line = text, *next;
      for (int n = 0; line != NULL; n++, line = next)
        {
          next = strchr (line, '\n');
          if (next != NULL)
            *next++ = '\0';
          if (n == 0)
            snprintf (given_cgroup.parent, sizeof (given_cgroup.parent), "%s", line);
          else if (n == 1)
            cgroup_given = snprintf (given_cgroup.name, sizeof (given_cgroup.name), "%s", line) > 0;
          else if (*line != '\0' && grove_oci_cgroup_add_prefix (&given_cgroup, line, &err) < 0)
            die (1, "%s: %s", file, err.msg);
        }
      free (text);
    }
  if (cgroup_given)
    grove_oci_cgroup_point (&given_cgroup, cg);
}

/* linux.cgroupsPath: resolved, the cgroups above it made, cg pointed at it. */
static void
cgroup_from_config (grove_cgroup_t *cg, const char *cgroups_path)
{
  grove_error_t err;
  if (cgroups_path == NULL)
    return;
  if (grove_oci_cgroup_resolve (cg->root, cg->mode, cgroups_path, &given_cgroup, &err) < 0
      || grove_oci_cgroup_make_ancestors (cg->root, cg->mode, &given_cgroup, &err) < 0)
    die (1, "%s", err.msg);
  cgroup_given = 1;
  grove_oci_cgroup_point (&given_cgroup, cg);
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

/* The bundle's hooks as the runtime core takes them (the blob moves into h); 0: none. */
static int
bundle_hooks (grove_oci_bundle_t *b, grove_hooks_t *h)
{
  grove_error_t err;
  char *blob = b->hooks_blob;
  if (blob == NULL)
    return 0;
  b->hooks_blob = NULL;
  if (grove_hooks_parse (h, blob, b->hooks_len, &err) < 0)
    die (1, "%s", err.msg);
  return 1;
}

/* The hooks create kept in the container's state directory; 0: none. */
static int
saved_hooks (const char *id, grove_hooks_t *h)
{
  char file[PATH_MAX];
  grove_error_t err;
  snprintf (file, sizeof (file), "%s/%s/hooks", root_dir, id);
  if (access (file, F_OK) != 0)
    return 0;
  if (grove_hooks_load (h, file, &err) < 0)
    die (1, "%s", err.msg);
  return 1;
}

/* poststart and poststop: one that fails is a warning and the lifecycle goes
 * on (runtime-spec, "Lifecycle"). */
static void
post_hooks (const grove_hooks_t *h, grove_hook_kind_t kind, const char *status, pid_t pid)
{
  grove_error_t err;
  if (grove_hooks_run (h, kind, status, pid, &err) < 0)
    fprintf (stderr, "grove-runtime: warning: %s\n", err.msg);
}

static void write_spec_json (const char *dir, const char *id, const char *bundle, const grove_oci_bundle_t *b);
static void write_state_extras (const grove_oci_bundle_t *b, const grove_cgroup_t *cg, const char *id,
                                const char *dir, char *hooks_file, size_t cap);

/* run: this process is the init's parent; the container has a state
 * directory as create's, its init recorded as a reaping caller's
 * (oci_reaped.c), so state says running and kill and delete work while run
 * waits; removed when it ends (unless delete removed it). */
static int
cmd_run (const char *bundle, const char *pid_file, const char *id)
{
  static grove_oci_bundle_t b;
  static grove_hooks_t hooks;
  static char dir[PATH_MAX], hooks_file[PATH_MAX + 16];
  grove_cgroup_t cg;
  grove_error_t err;
  grove_container_t c;
  grove_exit_t ex;
  const struct grove_cgroup_ops *ops;
  int host = -1, console[2] = { -1, -1 };

  load_bundle (&b, bundle, id);
  check_terminal (&b, 0);
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  if (access (dir, F_OK) == 0)
    die (1, "container %s already exists", id);
  /* A terminal: the init sends its master here, relayed to the caller's terminal. */
  if (b.terminal && ((host = grove_oci_console_host (&err)) < 0))
    die (1, "%s", err.msg);
  if (b.terminal && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) < 0)
    die (1, "process.terminal: socketpair: %s", strerror (errno));
  b.cc.console_fd = console[1];
  cgroup_of (&cg, id);
  cgroup_from_config (&cg, b.cgroups_path);
  ops = grove_cgroup_ops_for (cg.mode);
  join_every_hierarchy (&b, &cg);
  mkdir (root_dir, 0700);
  if (mkdir (dir, 0700) < 0)
    die (1, "mkdir %s: %s", dir, strerror (errno));
  write_spec_json (dir, id, bundle, &b);
  write_state_extras (&b, &cg, id, dir, hooks_file, sizeof (hooks_file));
  if (bundle_hooks (&b, &hooks))
    b.cc.hooks = &hooks;
  b.cc.cgroup = &cg;
  b.cc.log_path = "/dev/null";
  b.cc.inherit_stdio = 1; /* the container's stdin, stdout and stderr are ours (as runc run) */
  if (ops->setup (&cg, &b.res, &err) < 0)
    {
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  if (grove_oci_xres_apply (&cg, &b.xres, &err) < 0)
    {
      grove_error_t ignored;
      ops->remove (&cg, &ignored);
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  if (grove_container_start (&b.cc, &c, &err) < 0 || grove_oci_reaped_record (dir, c.pid, &err) < 0)
    {
      grove_error_t ignored;
      int killed;
      ops->kill (&cg, SIGKILL, &killed, &ignored);
      ops->remove (&cg, &ignored);
      remove_dir (id);
      post_hooks (&hooks, GROVE_HOOK_POSTSTOP, "stopped", 0);
      die (1, "%s", err.msg);
    }
  post_hooks (&hooks, GROVE_HOOK_POSTSTART, "running", c.pid);
  if (pid_file != NULL)
    {
      FILE *f = fopen (pid_file, "we");
      if (f != NULL)
        {
          fprintf (f, "%d", (int) c.pid);
          fclose (f);
        }
    }
  if (b.terminal)
    {
      int master;
      close (console[1]);
      master = grove_oci_console_recv (console[0], &err);
      close (console[0]);
      if (master >= 0)
        grove_oci_console_relay (master, host);
      else
        fprintf (stderr, "grove-runtime: %s\n", err.msg);
    }
  if (grove_container_wait (c.pid, &cg, &ex, &err) < 0)
    die (1, "%s", err.msg);
  close (c.pidfd);
  if (access (dir, F_OK) != 0)
    return ex.exit_code; /* deleted while it ran: delete removed the cgroup and ran poststop */
  remove_dir (id);
  if (ops->remove (&cg, &err) < 0)
    die (1, "%s", err.msg);
  {
    grove_cgroup_t parent = cg;
    grove_error_t ignored;
    parent.id = NULL;
    if (!cgroup_given) /* a cgroupsPath's parents are not ours */
      ops->remove (&parent, &ignored); /* fails while other containers use it: fine */
  }
  post_hooks (&hooks, GROVE_HOOK_POSTSTOP, "stopped", 0);
  return ex.exit_code;
}

/* create for a caller that reaps the init itself (oci_reaped.c): no grove-shim.
 * cg is where cgroup_of and cgroup_from_config put it, recorded as for any
 * container (write_state_extras). The hooks run as with a shim, this process
 * in the shim's place: prestart and createRuntime here, createContainer and
 * startContainer in the init; poststart in start, poststop in delete or
 * after a failed create. */
static int
create_reaped (grove_oci_bundle_t *b, const grove_cgroup_t *cg, const grove_hooks_t *hooks, const char *pid_file,
               const char *id)
{
  char dir[PATH_MAX];
  grove_error_t err;
  pid_t pid;
  FILE *f;
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  if (hooks->blob != NULL)
    b->cc.hooks = hooks;
  /* The init sends the master there during the create; no copy stays here. */
  if (b->terminal && (b->cc.console_fd = grove_unix_connect (console_socket, &err)) < 0)
    {
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  int rc = grove_oci_reaped_create (b, cg, dir, &pid, &err);
  if (b->cc.console_fd > 0)
    close (b->cc.console_fd);
  if (rc < 0)
    {
      remove_dir (id);
      post_hooks (hooks, GROVE_HOOK_POSTSTOP, "stopped", 0);
      die (1, "%s", err.msg);
    }
  if (pid_file != NULL && (f = fopen (pid_file, "we")) != NULL)
    {
      fprintf (f, "%d", (int) pid);
      fclose (f);
    }
  return 0;
}

/* The shim keys only grove-runtime writes (OCI process and linux settings). */
static void
put_oci_keys (FILE *mem, const grove_oci_bundle_t *b)
{
  char num[64];
  if (b->cc.oom_score_adj_set)
    {
      snprintf (num, sizeof (num), "%d", b->cc.oom_score_adj);
      grove_config_put (mem, GROVE_KEY_OOM_SCORE_ADJ, num);
    }
  if (b->cc.umask_set)
    {
      snprintf (num, sizeof (num), "%o", (unsigned) b->cc.umask);
      grove_config_put (mem, GROVE_KEY_UMASK, num);
    }
  if (b->cc.no_new_privs_off)
    grove_config_put (mem, GROVE_KEY_NO_NEW_PRIVS, "0");
  for (size_t k = 0; k < b->cc.nsysctls; k++)
    grove_config_put (mem, GROVE_KEY_SYSCTL, b->cc.sysctls[k]);
  grove_oci_attrs_put (mem, GROVE_KEY_PROC_ATTR, &b->attrs);
  if (b->xres.v1_join != 0)
    {
      snprintf (num, sizeof (num), "%u", b->xres.v1_join);
      grove_config_put (mem, GROVE_KEY_CGROUP_V1_JOIN, num);
    }
  if (b->cc.uts_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_UTS_NS, b->cc.uts_ns_path);
  if (b->cc.ipc_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_IPC_NS, b->cc.ipc_ns_path);
  if (b->cc.pid_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_PID_NS, b->cc.pid_ns_path);
  if (b->cc.mnt_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_MNT_NS, b->cc.mnt_ns_path);
  if (b->cc.cgroup_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_CGROUP_NS, b->cc.cgroup_ns_path);
  if (b->cc.user_ns_path != NULL)
    grove_config_put (mem, GROVE_KEY_USER_NS, b->cc.user_ns_path);
  if (b->cc.time_ns_path != NULL || b->cc.time_ns_new)
    grove_config_put (mem, GROVE_KEY_TIME_NS, b->cc.time_ns_new ? "new" : b->cc.time_ns_path);
  for (size_t k = 0; k < b->cc.ntime_offsets; k++)
    grove_config_put (mem, GROVE_KEY_TIME_OFFSET, b->cc.time_offsets[k]);
  if (b->cc.rootfs_propagation != 0)
    {
      snprintf (num, sizeof (num), "%lu", b->cc.rootfs_propagation);
      grove_config_put (mem, GROVE_KEY_ROOTFS_PROPAGATION, num);
    }
  for (size_t k = 0; k < b->cc.nmasked_paths; k++)
    grove_config_put (mem, GROVE_KEY_MASKED_PATH, b->masked[k]);
  for (size_t k = 0; k < b->cc.nreadonly_paths; k++)
    grove_config_put (mem, GROVE_KEY_READONLY_PATH, b->readonly[k]);
  for (size_t k = 0; k < b->cc.ndevices; k++)
    {
      static char dev[PATH_MAX + 64];
      const grove_device_t *d = &b->devices[k];
      snprintf (dev, sizeof (dev), "%o:%u:%u:%u:%u:%s", (unsigned) d->mode, d->major, d->minor, (unsigned) d->uid,
                (unsigned) d->gid, d->path);
      grove_config_put (mem, GROVE_KEY_DEVICE, dev);
    }
}

/* <dir>/spec.json: the fields bin/grove-runtime.js, NativeRuntime.load() and state read back. */
static void
write_spec_json (const char *dir, const char *id, const char *bundle, const grove_oci_bundle_t *b)
{
  char file[PATH_MAX + 16];
  FILE *f;
  snprintf (file, sizeof (file), "%s/spec.json", dir);
  f = fopen (file, "we");
  if (f == NULL)
    {
      remove_dir (id);
      die (1, "%s: %s", file, strerror (errno));
    }
  fprintf (f, "{\"spec\":{\"id\":\"%s\",\"annotations\":{\"grove.oci.bundle\":", id);
  put_json_string (f, bundle);
  fputs (",\"grove.oci.annotations\":", f);
  put_json_string (f, b->annotations);
  fprintf (f, "}},\"createdAtMs\":%lld}\n", (long long) time (NULL) * 1000);
  fclose (f);
}

/* Where the container's cgroup is, for the shim. */
static void
put_cgroup_keys (FILE *mem, const grove_cgroup_t *cg, const char *id)
{
  grove_config_put (mem, GROVE_KEY_CGROUP_MODE, cg->mode == GROVE_CGROUP_V2 ? "v2" : "v1");
  grove_config_put (mem, GROVE_KEY_CGROUP_ROOT, cg->root);
  grove_config_put (mem, GROVE_KEY_CGROUP_PARENT, cg->parent);
  if (strcmp (cg->id, id) != 0)
    grove_config_put (mem, GROVE_KEY_CGROUP_NAME, cg->id);
  for (size_t k = 0; k < cg->nv1_prefix; k++)
    {
      static char line[PATH_MAX + 64];
      snprintf (line, sizeof (line), "%s:/%s", cg->v1_prefix[k].controller, cg->v1_prefix[k].prefix);
      grove_config_put (mem, GROVE_KEY_CGROUP_PREFIX, line);
    }
}

/* The container's state directory besides spec.json: where its cgroup is
 * (cgroupsPath: for state, kill and delete) and its hooks (for the shim,
 * start and delete). */
static void
write_state_extras (const grove_oci_bundle_t *b, const grove_cgroup_t *cg, const char *id, const char *dir,
                    char *hooks_file, size_t cap)
{
  char file[PATH_MAX + 16];
  FILE *f;
  hooks_file[0] = '\0';
  if (cgroup_given)
    {
      snprintf (file, sizeof (file), "%s/cgroup", dir);
      f = fopen (file, "we");
      int bad = f == NULL || fprintf (f, "%s\n%s\n", cg->parent, cg->id) < 0;
      for (size_t k = 0; !bad && k < cg->nv1_prefix; k++)
        bad = fprintf (f, "%s:/%s\n", cg->v1_prefix[k].controller, cg->v1_prefix[k].prefix) < 0;
      if (f == NULL || bad || fclose (f) != 0)
        {
          remove_dir (id);
          die (1, "%s: %s", file, strerror (errno));
        }
    }
  if (b->hooks_blob != NULL)
    {
      snprintf (hooks_file, cap, "%s/hooks", dir);
      f = fopen (hooks_file, "we");
      if (f == NULL || fwrite (b->hooks_blob, 1, b->hooks_len, f) != b->hooks_len || fclose (f) != 0)
        {
          remove_dir (id);
          die (1, "%s: %s", hooks_file, strerror (errno));
        }
    }
}

static int
cmd_create (const char *bundle, const char *pid_file, const char *id)
{
  static grove_oci_bundle_t b;
  static grove_hooks_t hooks;
  static char self[PATH_MAX], shim[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16], hooks_file[PATH_MAX + 16];
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
  check_terminal (&b, 1);
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  if (access (dir, F_OK) == 0)
    die (1, "container %s already exists", id);
  cgroup_of (&cg, id);
  cgroup_from_config (&cg, b.cgroups_path);
  join_every_hierarchy (&b, &cg);
  ops = grove_cgroup_ops_for (cg.mode);
  n = readlink ("/proc/self/exe", self, sizeof (self) - 1);
  if (n < 0)
    die (1, "readlink /proc/self/exe: %s", strerror (errno));
  self[n] = '\0';
  snprintf (shim, sizeof (shim), "%s/grove-shim", dirname (self));

  mkdir (root_dir, 0700);
  if (mkdir (dir, 0700) < 0)
    die (1, "mkdir %s: %s", dir, strerror (errno));
  write_spec_json (dir, id, bundle, &b);
  write_state_extras (&b, &cg, id, dir, hooks_file, sizeof (hooks_file));
  bundle_hooks (&b, &hooks);
  if (grove_oci_reaped_wanted (&b))
    return create_reaped (&b, &cg, &hooks, pid_file, id);

  mem = open_memstream (&cfg, &cfg_len);
  grove_config_put (mem, GROVE_KEY_ID, id);
  grove_config_put (mem, GROVE_KEY_ROOTFS, b.rootfs);
  grove_config_put (mem, GROVE_KEY_CWD, b.cc.cwd);
  grove_config_put (mem, GROVE_KEY_HOSTNAME, b.hostname);
  snprintf (file, sizeof (file), "%s/output.log", dir);
  grove_config_put (mem, GROVE_KEY_LOG, file);
  grove_config_put (mem, GROVE_KEY_DIR, dir);
  put_cgroup_keys (mem, &cg, id);
  grove_config_put (mem, GROVE_KEY_HOLD, "stdio"); /* the caller's stdio is the container's */
  if (b.terminal)
    {
      grove_config_put (mem, GROVE_KEY_CONSOLE_SOCKET, console_socket); /* its pty's instead */
      snprintf (num, sizeof (num), "%u", (unsigned) b.cc.console_rows);
      grove_config_put (mem, GROVE_KEY_ROWS, num);
      snprintf (num, sizeof (num), "%u", (unsigned) b.cc.console_cols);
      grove_config_put (mem, GROVE_KEY_COLS, num);
    }
  if (b.netns != NULL)
    grove_config_put (mem, GROVE_KEY_NETNS, b.netns);
  if (b.cc.readonly_rootfs)
    grove_config_put (mem, GROVE_KEY_READONLY_ROOTFS, "1");
  if (b.cc.host_cgroupns)
    grove_config_put (mem, GROVE_KEY_CGROUPNS, "host");
  for (size_t k = 0; k < b.cc.nuid_maps + b.cc.ngid_maps; k++)
    {
      const grove_id_map_t *m = k < b.cc.nuid_maps ? &b.uid_maps[k] : &b.gid_maps[k - b.cc.nuid_maps];
      snprintf (num, sizeof (num), "%u:%u:%u", m->container_id, m->host_id, m->size);
      grove_config_put (mem, k < b.cc.nuid_maps ? GROVE_KEY_UID_MAP : GROVE_KEY_GID_MAP, num);
    }
  for (size_t k = 0; k < b.cc.nmounts; k++)
    {
      grove_config_put (mem, GROVE_KEY_MOUNT_SRC, b.mounts[k].source);
      grove_config_put (mem, GROVE_KEY_MOUNT_DST, b.mounts[k].destination);
      grove_config_put (mem, GROVE_KEY_MOUNT_RO, b.mounts[k].readonly ? "1" : "0");
      if (b.mounts[k].field != NULL)
        grove_config_put (mem, GROVE_KEY_MOUNT_FIELD, b.mounts[k].field);
      if (b.mounts[k].own)
        grove_config_put (mem, GROVE_KEY_MOUNT_OWN, "1");
      for (size_t q = 0; q < b.mounts[k].npropagation; q++)
        {
          snprintf (num, sizeof (num), "%lu", b.mounts[k].propagation[q]);
          grove_config_put (mem, GROVE_KEY_MOUNT_PROPAGATION, num);
        }
      if (b.mounts[k].fstype != NULL)
        {
          grove_config_put (mem, GROVE_KEY_MOUNT_TYPE, b.mounts[k].fstype);
          snprintf (num, sizeof (num), "%lu", b.mounts[k].flags);
          grove_config_put (mem, GROVE_KEY_MOUNT_FLAGS, num);
          grove_config_put (mem, GROVE_KEY_MOUNT_DATA, b.mounts[k].data != NULL ? b.mounts[k].data : "");
        }
      else if (b.mounts[k].flags != 0) /* a bind's MS_REC (rbind); a bundle's: MS_BIND and its flags */
        {
          snprintf (num, sizeof (num), "%lu", b.mounts[k].flags);
          grove_config_put (mem, GROVE_KEY_MOUNT_FLAGS, num);
          if (b.mounts[k].data != NULL) /* its recursive attributes */
            grove_config_put (mem, GROVE_KEY_MOUNT_DATA, b.mounts[k].data);
        }
    }
  put_oci_keys (mem, &b);
  if (hooks.blob != NULL)
    grove_config_put (mem, GROVE_KEY_HOOKS, hooks_file);
  grove_process_config_write (mem, &b.cc);
  fclose (mem);

  if (ops->setup (&cg, &b.res, &err) < 0)
    {
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  if (grove_oci_xres_apply (&cg, &b.xres, &err) < 0)
    {
      grove_error_t ignored;
      ops->remove (&cg, &ignored);
      remove_dir (id);
      die (1, "%s", err.msg);
    }
  if (grove_shim_spawn (shim, id, cfg, cfg_len, &rep, &err) < 0)
    {
      grove_error_t ignored;
      ops->remove (&cg, &ignored);
      remove_dir (id);
      /* A failed create goes on to delete's poststop (runtime-spec, as runc). */
      post_hooks (&hooks, GROVE_HOOK_POSTSTOP, "stopped", 0);
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

/* The state of a container created for a reaping caller (0: not one);
 * reaped_parent and reaped_name: the cgroup an older record holds, else "". */
static pid_t reaped_pid;
static char reaped_parent[65], reaped_name[65];
static int
reaped_state (const char *id, char *status, size_t cap)
{
  char dir[PATH_MAX];
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  return grove_oci_reaped_state (dir, status, cap, &reaped_pid, reaped_parent, reaped_name, sizeof (reaped_name));
}

static int
cmd_state (const char *id)
{
  char dir[PATH_MAX], file[PATH_MAX + 16], ans[1024], status[32] = "stopped", pid[32] = "0";
  size_t len;
  char *spec, *bundle, *annotations;
  grove_error_t err;
  static grove_jtok_t toks[MAX_TOKENS];
  int a;
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, id);
  snprintf (file, sizeof (file), "%s/spec.json", dir);
  if (grove_read_file (file, &spec, &err) < 0)
    die (1, "container %s does not exist", id);
  len = strlen (spec);
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
  else if (reaped_state (id, status, sizeof (status)))
    {
      if (strcmp (status, "stopped") != 0)
        snprintf (pid, sizeof (pid), "%d", (int) reaped_pid);
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
  char cwd[PATH_MAX], ans[1024], dir[PATH_MAX], status[32];
  grove_error_t err;
  static grove_hooks_t hooks; /* start's and delete's (poststart, poststop) */

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
      else if (strcmp (a, "--console-socket") == 0)
        console_socket = VALUE ();
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
  absolute_console_socket (bundle);

  if (strcmp (cmd, "run") == 0)
    return cmd_run (bundle, pid_file, pos[0]);
  if (strcmp (cmd, "create") == 0)
    return cmd_create (bundle, pid_file, pos[0]);
  if (strcmp (cmd, "state") == 0)
    return cmd_state (pos[0]);
  snprintf (dir, sizeof (dir), "%s/%s", root_dir, pos[0]);
  if (strcmp (cmd, "start") == 0 && reaped_state (pos[0], status, sizeof (status)))
    {
      if (grove_oci_reaped_start (dir, pos[0], &err) < 0)
        die (1, "%s", err.msg);
      if (saved_hooks (pos[0], &hooks))
        post_hooks (&hooks, GROVE_HOOK_POSTSTART, "running", reaped_pid);
      return 0;
    }
  if (strcmp (cmd, "kill") == 0 && reaped_state (pos[0], status, sizeof (status)))
    {
      if (grove_oci_reaped_kill (dir, pos[0], signal_number (pos[1] != NULL ? pos[1] : "TERM"), &err) < 0)
        die (1, "%s", err.msg);
      return 0;
    }
  if (strcmp (cmd, "start") == 0)
    {
      if (shim_ask (pos[0], "start", ans, sizeof (ans)) < 0)
        die (1, "container %s does not exist or has stopped", pos[0]);
      if (strstr (ans, "\"started\":true") == NULL)
        die (1, "container %s is not in the created state", pos[0]);
      if (saved_hooks (pos[0], &hooks))
        {
          char pid[32] = "0";
          if (shim_ask (pos[0], "state", ans, sizeof (ans)) == 0)
            json_field (ans, "pid", pid, sizeof (pid));
          post_hooks (&hooks, GROVE_HOOK_POSTSTART, "running", (pid_t) atoi (pid));
        }
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
      char file[PATH_MAX];
      int live = shim_ask (pos[0], "state", ans, sizeof (ans)) == 0;
      int reaped = !live && reaped_state (pos[0], status, sizeof (status));
      if (!reaped)
        status[0] = '\0';
      live |= reaped;
      snprintf (file, sizeof (file), "%s/%s/spec.json", root_dir, pos[0]);
      if (!live && access (file, F_OK) != 0)
        {
          if (force)
            return 0;
          die (1, "container %s does not exist", pos[0]);
        }
      if (live && !reaped)
        json_field (ans, "status", status, sizeof (status));
      cgroup_of (&cg, pos[0]);
      if (reaped && reaped_name[0] != '\0' && !cgroup_given)
        {
          /* Created by a grove-runtime that kept the cgroup in its record only. */
          cg.parent = reaped_parent;
          cg.id = reaped_name;
        }
      saved_hooks (pos[0], &hooks);
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
      if (!cgroup_given) /* a cgroupsPath's parents are not ours */
        grove_cgroup_ops_for (cg.mode)->remove (&cg, &err);
      remove_dir (pos[0]);
      post_hooks (&hooks, GROVE_HOOK_POSTSTOP, "stopped", 0);
      return 0;
    }
  die (2, "unknown command %s", cmd);
}
