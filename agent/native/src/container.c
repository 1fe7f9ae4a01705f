#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/resource.h>

#include "hooks.h"
#include "oci_attrs.h"
#include "seccomp.h"
#include "util.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef SYSFS_MAGIC
#define SYSFS_MAGIC 0x62656572
#endif

/* Docker's masked and read-only paths (inside the container, after pivot_root);
 * also every /sys/devices/system/cpu/cpuN/thermal_throttle (child_mask_paths). */
static const char *const masked_paths[] = { "/proc/asound",     "/proc/acpi",        "/proc/interrupts",
                                            "/proc/kcore",      "/proc/keys",        "/proc/latency_stats",
                                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                                            "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap" };
#define CPU_SYSFS "/sys/devices/system/cpu"
static const char *const readonly_paths[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
#define N_ELEMS(a) (sizeof (a) / sizeof ((a)[0]))

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#define CHILD_STACK_SIZE (256 * 1024)
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Grove's own filesystems a mount list may place (grove_mount_t.own). */
#define OWN_PROC 1
#define OWN_DEV 2
#define OWN_SYS 4

/* The devices every container gets. Without a user namespace they are made
 * with mknod in the container's own /dev (runc's numbers and mode): the
 * container's root keeps CAP_CHOWN and CAP_FOWNER over host root's inodes,
 * so a bind-mounted host node could be chmod'ed or chown'ed on the host.
 * In a user namespace mknod is refused and host nodes are bind-mounted: its
 * root may not change an inode owned by an unmapped host uid. */
static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
static const unsigned dev_numbers[][2] = { { 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, { 5, 0 } };
#define N_DEV (sizeof (dev_nodes) / sizeof (dev_nodes[0]))
#define DEV_MODE 0666

static const char *const dev_links[][2] = {
  { "/proc/self/fd", "fd" },
  { "/proc/self/fd/0", "stdin" },
  { "/proc/self/fd/1", "stdout" },
  { "/proc/self/fd/2", "stderr" },
};
#define N_LINKS (sizeof (dev_links) / sizeof (dev_links[0]))

/* What the child reports on the error pipe before it _exits; errnum
 * GROVE_CHILD_ASK_HOOKS instead asks the parent to run its OCI hooks. */
#define GROVE_CHILD_ASK_HOOKS (-1)
/* errnum GROVE_CHILD_LISTENER: the init's seccomp notify fd is the int at
 * msg; the parent takes a copy (pidfd_getfd), sends it to
 * linux.seccomp.listenerPath and answers on the sync channel. */
#define GROVE_CHILD_LISTENER (-2)
struct child_error
{
  int errnum;
  char msg[1000];
};

/* A cgroup v1 hierarchy of the host: where it is mounted, the cgroup at its
 * root and its controllers as /proc/self/cgroup names them ("cpu,cpuacct",
 * "name=systemd"). */
struct cgroup_hier
{
  char *mountpoint, *root, *controllers;
};
#define MAX_CGROUP_HIERS 16

/* Everything the child needs, prepared before clone(): between clone and
 * execve the child only makes system calls (no malloc, no stdio, no locks). */
struct child_args
{
  int sync_fd; /* read end: one byte once the parent placed us in the cgroups */
  int err_fd;  /* write end, O_CLOEXEC: EOF at the parent means exec succeeded */
  int log_fd;    /* stdout, and stderr unless err_out_fd > 0 */
  int null_fd;   /* stdin; -1: the container's /dev/null */
  int err_out_fd;
  int netns_fd; /* -1: a new network namespace (CLONE_NEWNET); else setns into it */
  int netns_joined; /* the parent joined a network namespace for us (user namespace) */
  int userns;       /* in a new or joined user namespace: become its root once the parent wrote any maps */
  int cgroupns;     /* unshare a cgroup namespace once the parent placed us in the cgroups */
  const char *rootfs;
  const char *sys_path;
  char *pts_path, *ptmx_path, *shm_path, *mqueue_path;
  uint64_t caps;
  int oom_score_adj_set, oom_score_adj, umask_set, no_new_privs_off;
  mode_t umask;
  const grove_oci_attrs_t *attrs; /* NULL: none */
  char *sysctl_paths[GROVE_MAX_SYSCTLS]; /* /proc/sys/... of each sysctl, prepared by the parent */
  const char *sysctl_values[GROVE_MAX_SYSCTLS];
  size_t nsysctls;
  int caps_sets; /* see grove_container_config_t */
  uint64_t caps_effective, caps_permitted, caps_inheritable, caps_ambient;
  struct sock_fprog seccomp; /* len 0: unconfined */
  unsigned seccomp_flags;    /* SECCOMP_FILTER_FLAG_*: installed with seccomp(2) */
  int seccomp_listener;      /* SCMP_ACT_NOTIFY: the notify fd goes to the parent */
  uid_t uid;
  gid_t gid;
  const gid_t *groups;
  size_t ngroups;
  const grove_rlimit_t *rlimits;
  size_t nrlimits;
  int readonly_rootfs;
  const grove_mount_t *mounts;
  size_t nmounts;
  char *mount_labels[GROVE_MAX_MOUNTS]; /* "config.json mounts[3] (destination /data)" */
  long mount_at;  /* the mount being made, whose label starts an error; -1: none */
  int own_listed; /* OWN_PROC | OWN_DEV | OWN_SYS: where the list places Grove's own */
  int mount_src_dir[GROVE_MAX_MOUNTS]; /* the source is a directory (as the parent saw it) */
  int mount_src_fd[GROVE_MAX_MOUNTS];  /* user namespace: opened before the init drops host root */
  const char *root_path; /* the rootfs as the steps after mounting it name it: rootfs, or "." (user namespace) */
  int hold_fd; /* -1, or the read end the init waits on before execve */
  int console_fd; /* -1, or the console socket (see grove_container_config_t) */
  int console;    /* the pty's slave is our stdio already */
  unsigned short console_rows, console_cols;
  const char *proc_path;
  const char *dev_path;
  char *dev_targets[N_DEV];
  char *link_paths[N_LINKS];
  const char *hostname;
  const char *cwd;
  const char *argv0;
  char **candidates; /* NULL-terminated list of paths to try for argv[0] */
  /* OCI hooks: the init asks the parent for prestart and createRuntime
   * (hooks_parent) and runs createContainer and startContainer itself with
   * these states (its pid, as it sees it, is 1). */
  const grove_device_t *devices; /* linux.devices: made after pivot_root */
  size_t ndevices;
  const char *const *masked_paths; /* the bundle's, beyond Grove's lists */
  size_t nmasked_paths;
  const char *const *readonly_paths;
  size_t nreadonly_paths;
  int uts_ns_fd, ipc_ns_fd; /* -1: the new ones clone() made; else joined first */
  int pid_ns_fd, mnt_ns_fd, cgroup_ns_fd; /* -1: new ones; else joined (see the config) */
  int user_ns_fd, time_ns_fd;             /* joined by the join stage; -1: none */
  int time_ns_new;                        /* the join stage makes a time namespace with these offsets */
  const char *const *time_offsets;
  size_t ntime_offsets;
  int dev_src_fd[GROVE_MAX_DEVICES]; /* user namespace: the host's node of devices[i], opened as host root */
  int staged;           /* started by a join stage (join_stage) */
  int ipc_foreign;      /* the join stage joined an ipc namespace before a user namespace was made or joined */
  int stage_fd;         /* the join stage's: where the init's pid goes */
  int err_read_fd;      /* the parent's end of the error pipe (the stage's error) */
  char *stack_top;      /* the init's stack, for the join stage's clone() */
  /* linux.rootfsPropagation (0: every mount private); with it, the mount
   * that holds the rootfs (its path, as the caller's namespace has it) and
   * whether it is shared there. */
  unsigned long rootfs_propagation;
  char *rootfs_mount;
  int rootfs_mount_shared;
  /* A bundle's cgroup mount (as runc): the host's v1 hierarchies (one per
   * set of controllers), or cgroup v2 at /sys/fs/cgroup (cg_unified). */
  struct cgroup_hier *cg_hier;
  size_t ncg_hier;
  int cg_unified;
  int cg_ns; /* in a cgroup namespace, new or joined (the join stage may have joined it) */
  const grove_hooks_t *hooks;
  int hooks_parent;
  char *hook_state_creating, *hook_state_created;
  char *const *argv;
  char *const *envp;
};

/* ---- child side: async-signal-safe only -------------------------------- */

static size_t
safe_append (char *dst, size_t pos, size_t cap, const char *src)
{
  while (src != NULL && *src != '\0' && pos + 1 < cap)
    dst[pos++] = *src++;
  dst[pos] = '\0';
  return pos;
}

__attribute__ ((noreturn)) static void
child_fail (struct child_args *a, int errnum, const char *what, const char *path)
{
  struct child_error ce;
  size_t pos = 0;
  ssize_t n;

  memset (&ce, 0, sizeof (ce));
  ce.errnum = errnum;
  if (a->mount_at >= 0)
    {
      pos = safe_append (ce.msg, pos, sizeof (ce.msg), a->mount_labels[a->mount_at]);
      pos = safe_append (ce.msg, pos, sizeof (ce.msg), ": ");
    }
  pos = safe_append (ce.msg, pos, sizeof (ce.msg), what);
  if (path != NULL)
    {
      pos = safe_append (ce.msg, pos, sizeof (ce.msg), " ");
      safe_append (ce.msg, pos, sizeof (ce.msg), path);
    }
  if (a->err_fd >= 0)
    do
      n = write (a->err_fd, &ce, sizeof (ce));
    while (n < 0 && errno == EINTR);
  if (a->err_fd < 0)
    {
      /* After create, nobody reads the error pipe any more: say it on stderr. */
      n = write (2, ce.msg, strlen (ce.msg));
      n = write (2, "\n", 1);
    }
  (void) n;
  _exit (127);
}

/* A hook failed: the error names it (ETIMEDOUT: it ran past its timeout). */
__attribute__ ((noreturn)) static void
child_hook_fail (struct child_args *a, const grove_hook_failure_t *f)
{
  char text[512];
  grove_hook_failure_text (f, text, sizeof (text));
  child_fail (a, f->errnum == ETIMEDOUT ? 0 : f->errnum, text, NULL);
}

/* /proc and /dev must be real directories: a symlink could point the mount
 * at the host (CVE-2023-28642, CVE-2026-41579). A missing one is created. */
static void
child_prepare_dir (struct child_args *a, const char *path, int mode)
{
  struct stat st;
  if (lstat (path, &st) == 0)
    {
      if (S_ISLNK (st.st_mode))
        child_fail (a, ELOOP, "refusing to mount over symlink", path);
      if (!S_ISDIR (st.st_mode))
        child_fail (a, ENOTDIR, "mount target", path);
      return;
    }
  if (errno != ENOENT)
    child_fail (a, errno, "lstat", path);
  if (mkdir (path, (mode_t) mode) < 0)
    child_fail (a, errno, "mkdir", path);
}

/* Device node i of dev_nodes at its target in the container's fresh /dev
 * tmpfs (see dev_nodes for why mknod, or a host bind in a user namespace). */
static void
child_make_dev_node (struct child_args *a, size_t i)
{
  char host[64];
  size_t pos;
  int fd;

  if (!a->userns)
    {
      /* Root-owned, mode exactly DEV_MODE whatever the umask. */
      if (mknod (a->dev_targets[i], S_IFCHR | DEV_MODE, makedev (dev_numbers[i][0], dev_numbers[i][1])) < 0
          || fchmodat (AT_FDCWD, a->dev_targets[i], DEV_MODE, 0) < 0)
        child_fail (a, errno, "mknod", a->dev_targets[i]);
      return;
    }
  pos = safe_append (host, 0, sizeof (host), "/dev/");
  safe_append (host, pos, sizeof (host), dev_nodes[i]);
  fd = open (a->dev_targets[i], O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0)
    child_fail (a, errno, "create", a->dev_targets[i]);
  close (fd);
  if (mount (host, a->dev_targets[i], NULL, MS_BIND, NULL) < 0)
    child_fail (a, errno, "bind-mount device on", a->dev_targets[i]);
}

static void
child_setup_dev (struct child_args *a)
{
  child_prepare_dir (a, a->dev_path, 0755);
  /* Not MS_NODEV: the nodes made here must open. */
  if (mount ("tmpfs", a->dev_path, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME, "mode=755,size=65536k") < 0)
    child_fail (a, errno, "mount tmpfs on", a->dev_path);
  for (size_t i = 0; i < N_DEV; i++)
    child_make_dev_node (a, i);
  for (size_t i = 0; i < N_LINKS; i++)
    if (symlink (dev_links[i][0], a->link_paths[i]) < 0)
      child_fail (a, errno, "symlink", a->link_paths[i]);
  /* A private devpts instance, /dev/ptmx through it, /dev/shm, /dev/mqueue. */
  if (mkdir (a->pts_path, 0755) < 0)
    child_fail (a, errno, "mkdir", a->pts_path);
  if (mount ("devpts", a->pts_path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
    child_fail (a, errno, "mount devpts on", a->pts_path);
  if (symlink ("pts/ptmx", a->ptmx_path) < 0)
    child_fail (a, errno, "symlink", a->ptmx_path);
  if (mkdir (a->shm_path, 01777) < 0)
    child_fail (a, errno, "mkdir", a->shm_path);
  if (mount ("shm", a->shm_path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
    child_fail (a, errno, "mount tmpfs on", a->shm_path);
  if (mkdir (a->mqueue_path, 0755) < 0)
    child_fail (a, errno, "mkdir", a->mqueue_path);
  /* A user namespace may not mount mqueue for an ipc namespace it does not
   * own (joined, or the runtime's): /dev/mqueue is then left empty. */
  if (mount ("mqueue", a->mqueue_path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0
      && !(errno == EPERM && a->ipc_foreign))
    child_fail (a, errno, "mount mqueue on", a->mqueue_path);
}

/* "/proc/self/fd/N" into buf (async-signal-safe). */
static void
fd_path (char *buf, size_t cap, int fd)
{
  char digits[16];
  size_t n = 0, pos = safe_append (buf, 0, cap, "/proc/self/fd/");
  do
    digits[n++] = (char) ('0' + fd % 10);
  while ((fd /= 10) > 0 && n < sizeof (digits));
  while (n > 0 && pos + 1 < cap)
    buf[pos++] = digits[--n];
  buf[pos] = '\0';
}

/* Opens the directory `rel` (relative to the rootfs, "" for the rootfs itself)
 * beneath root_fd without leaving it: openat2 RESOLVE_BENEATH refuses absolute
 * symlinks, ".." and symlinks leading out; without openat2 every symlink is
 * refused. */
static int
child_open_beneath (struct child_args *a, int root_fd, const char *rel, const char *dest)
{
  struct open_how how;
  char comp[256];
  int fd;

  memset (&how, 0, sizeof (how));
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  fd = (int) syscall (SYS_openat2, root_fd, *rel == '\0' ? "." : rel, &how, sizeof (how));
  if (fd >= 0)
    return fd;
  if (errno == EXDEV || errno == ELOOP)
    child_fail (a, errno, "mount destination leads out of the rootfs (through a symlink or ..):", dest);
  if (errno != ENOSYS)
    child_fail (a, errno, "open the parent directory of mount destination", dest);
  fd = fcntl (root_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    child_fail (a, errno, "dup rootfs fd for", dest);
  while (*rel != '\0')
    {
      size_t len = 0;
      struct stat st;
      int next;
      while (*rel == '/')
        rel++;
      while (rel[len] != '\0' && rel[len] != '/')
        len++;
      if (len == 0)
        break;
      if (len >= sizeof (comp))
        child_fail (a, ENAMETOOLONG, "mount destination", dest);
      memcpy (comp, rel, len);
      comp[len] = '\0';
      rel += len;
      if (strcmp (comp, ".") == 0)
        continue;
      if (strcmp (comp, "..") == 0)
        child_fail (a, EINVAL, "mount destination has a .. component:", dest);
      next = openat (fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        child_fail (a, errno, "open a parent directory of mount destination", dest);
      if (fstat (next, &st) < 0)
        child_fail (a, errno, "fstat a parent directory of mount destination", dest);
      if (S_ISLNK (st.st_mode))
        child_fail (a, ELOOP, "mount destination has a symlink in its path:", dest);
      if (!S_ISDIR (st.st_mode))
        child_fail (a, ENOTDIR, "a parent of mount destination", dest);
      close (fd);
      fd = next;
    }
  return fd;
}

/* The propagation changes of mount m, in the listed order, on what is now
 * mounted at `name` of parent (looked up again: a fd opened before the
 * mount names what it covers). */
static void
child_propagate (struct child_args *a, const grove_mount_t *m, int parent, const char *name)
{
  char path[64];
  int target;
  if (m->npropagation == 0)
    return;
  target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0)
    child_fail (a, errno, "open mount destination", m->destination);
  fd_path (path, sizeof (path), target);
  for (size_t k = 0; k < m->npropagation; k++)
    if (mount (NULL, path, NULL, m->propagation[k], NULL) < 0)
      child_fail (a, errno, "set the propagation of", m->destination);
  close (target);
}

/* A new filesystem (tmpfs) on directory `name` of parent (made when
 * missing; never a symlink), through its O_PATH fd as the bind mounts. */
static void
child_fs_mount (struct child_args *a, const grove_mount_t *m, int parent, const char *name)
{
  char dst_path[64];
  struct stat st;
  int target;
  if (mkdirat (parent, name, 0755) < 0 && errno != EEXIST)
    child_fail (a, errno, "create mount destination", m->destination);
  target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0 || fstat (target, &st) < 0)
    child_fail (a, errno, "open mount destination", m->destination);
  if (!S_ISDIR (st.st_mode))
    child_fail (a, ENOTDIR, "mount destination is not a directory:", m->destination);
  fd_path (dst_path, sizeof (dst_path), target);
  if (mount (m->source, dst_path, m->fstype, m->flags, m->data) < 0)
    child_fail (a, errno, "mount a new filesystem on", m->destination);
  close (target);
}

/* An OCI bind mount's remount, as runc 1.1.5's: when flags has more than
 * MS_BIND, MS_REC and MS_REMOUNT, the mount at `name` of parent is remounted
 * with exactly them (a locked flag the remount would clear, in a user
 * namespace, fails as it does with runc); when that fails and the mount is
 * read-only (its source is), once more with MS_RDONLY. Only the top mount of
 * an rbind changes. */
static void
child_remount_bind (struct child_args *a, int parent, const char *name, unsigned long flags, const char *dest)
{
  char path[64];
  struct statvfs sv;
  int target;
  if ((flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) == 0)
    return;
  target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0)
    child_fail (a, errno, "open mount destination", dest);
  fd_path (path, sizeof (path), target);
  if (mount (NULL, path, NULL, flags | MS_REMOUNT, NULL) < 0)
    {
      int saved = errno;
      if (fstatvfs (target, &sv) < 0 || !(sv.f_flag & ST_RDONLY)
          || mount (NULL, path, NULL, flags | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        child_fail (a, saved, "remount with the mount's options", dest);
    }
  close (target);
}

/* An OCI bind's recursive attributes ("SET:CLEAR", container.h), as runc:
 * mount_setattr(AT_RECURSIVE) on the mount at `name` of parent. */
static void
child_rec_attrs (struct child_args *a, int parent, const char *name, const char *data, const char *dest)
{
  struct mount_attr attr;
  const char *p = data;
  int target;
  if (data == NULL || data[0] == '\0')
    return;
  memset (&attr, 0, sizeof (attr));
  while (*p >= '0' && *p <= '9')
    attr.attr_set = attr.attr_set * 10 + (unsigned) (*p++ - '0');
  if (*p == ':')
    p++;
  while (*p >= '0' && *p <= '9')
    attr.attr_clr = attr.attr_clr * 10 + (unsigned) (*p++ - '0');
  target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0 || mount_setattr (target, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof (attr)) < 0)
    child_fail (a, errno, "set the recursive mount attributes of", dest);
  close (target);
}

/* The cgroup of hierarchy h that /proc/self/cgroup names (the init is in
 * its cgroups by now), as a host path under h's mount point, into buf. */
static void
child_cgroup_source (struct child_args *a, const struct cgroup_hier *h, char *buf, size_t cap)
{
  static char text[8192];
  size_t len = 0, clen = strlen (h->controllers), rlen = strlen (h->root);
  ssize_t n;
  int fd = open ("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    child_fail (a, errno, "open", "/proc/self/cgroup");
  while (len + 1 < sizeof (text) && (n = read (fd, text + len, sizeof (text) - 1 - len)) > 0)
    len += (size_t) n;
  close (fd);
  text[len] = '\0';
  for (char *line = text; line != NULL && *line != '\0'; line = strchr (line, '\n') ? strchr (line, '\n') + 1 : NULL)
    {
      char *ctl = strchr (line, ':'), *path, *end;
      if (ctl == NULL || (path = strchr (++ctl, ':')) == NULL || (size_t) (path - ctl) != clen
          || memcmp (ctl, h->controllers, clen) != 0)
        continue;
      path++;
      if ((end = strchr (path, '\n')) != NULL)
        *end = '\0';
      /* Below the hierarchy's root as the host mounted it. */
      if (strcmp (h->root, "/") != 0 && strncmp (path, h->root, rlen) == 0)
        path += rlen;
      safe_append (buf, safe_append (buf, 0, cap, h->mountpoint), cap, path);
      return;
    }
  child_fail (a, ENOENT, "no cgroup of the hierarchy in /proc/self/cgroup:", h->mountpoint);
}

/* A mount of type cgroup, as runc 1.1.5 makes it: on cgroup v2 a cgroup2
 * filesystem; on v1 a tmpfs (nosuid, nodev, noexec, mode=755) with each
 * hierarchy of the host under its name, either the container's cgroup bound
 * and remounted with the mount's flags or, with a cgroup namespace, a new
 * mount of the hierarchy (nosuid, nodev, noexec, ro from the flags); a
 * hierarchy of several controllers gets a symlink per controller. */
static void
child_cgroup_mount (struct child_args *a, const grove_mount_t *m, int parent, const char *name)
{
  grove_mount_t fs = *m;
  char src[4096], dst_path[64];
  int dir;
  fs.fstype = a->cg_unified ? "cgroup2" : "tmpfs";
  if (!a->cg_unified)
    {
      fs.source = "tmpfs";
      fs.flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
      fs.data = "mode=755";
    }
  child_fs_mount (a, &fs, parent, name);
  child_propagate (a, m, parent, name);
  if (a->cg_unified)
    return;
  dir = openat (parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0)
    child_fail (a, errno, "open mount destination", m->destination);
  for (size_t i = 0; i < a->ncg_hier; i++)
    {
      const struct cgroup_hier *h = &a->cg_hier[i];
      const char *base = strrchr (h->mountpoint, '/') + 1;
      int target;
      if (mkdirat (dir, base, 0755) < 0 && errno != EEXIST)
        child_fail (a, errno, "create the cgroup directory", base);
      if ((target = openat (dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
        child_fail (a, errno, "open the cgroup directory", base);
      fd_path (dst_path, sizeof (dst_path), target);
      if (a->cg_ns)
        {
          int systemd = strcmp (base, "systemd") == 0; /* runc's names: the directory's */
          if (mount (systemd ? "systemd" : "cgroup", dst_path, "cgroup",
                     MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->flags & MS_RDONLY), systemd ? "name=systemd" : base)
              < 0)
            child_fail (a, errno, "mount the cgroup hierarchy", base);
        }
      else
        {
          child_cgroup_source (a, h, src, sizeof (src));
          if (mount (src, dst_path, NULL, MS_BIND | MS_REC | m->flags, NULL) < 0)
            child_fail (a, errno, "bind-mount the container's cgroup", src);
          child_remount_bind (a, dir, base, MS_BIND | MS_REC | m->flags, m->destination);
        }
      close (target);
      child_propagate (a, m, dir, base);
      for (const char *c = strchr (base, ',') != NULL ? base : NULL; c != NULL;
           c = strchr (c, ',') != NULL ? strchr (c, ',') + 1 : NULL)
        {
          char link[256];
          size_t n = strcspn (c, ",");
          if (n >= sizeof (link))
            continue;
          memcpy (link, c, n);
          link[n] = '\0';
          if (symlinkat (base, dir, link) < 0 && errno != EEXIST)
            child_fail (a, errno, "symlink the cgroup controller", link);
        }
    }
  close (dir);
}

/* Mount i of the list (not one of Grove's own): a bind mount of its source
 * onto its destination resolved inside the rootfs, through /proc/self/fd/N
 * of O_PATH fds so that no path is resolved twice (the source is opened
 * here: a bind mount's source must be in the caller's mount namespace), or
 * a new filesystem there. */
static void
child_mount_one (struct child_args *a, int root_fd, size_t i)
{
  const char *dest = a->mounts[i].destination;
  const char *slash = strrchr (dest, '/');
  const char *name = slash != NULL ? slash + 1 : dest;
  char dir[4096], src_path[64], dst_path[64];
  size_t dlen = slash != NULL ? (size_t) (slash - dest) : 0;
  int parent, target, source;
  struct stat st;

  if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    child_fail (a, EINVAL, "mount destination must name a file:", dest);
  if (dlen >= sizeof (dir))
    child_fail (a, ENAMETOOLONG, "mount destination", dest);
  while (dlen > 0 && *dest == '/')
    {
      dest++;
      dlen--;
    }
  memcpy (dir, dest, dlen);
  dir[dlen] = '\0';
  dest = a->mounts[i].destination;
  parent = child_open_beneath (a, root_fd, dir, dest);
  if (a->mounts[i].fstype != NULL && strcmp (a->mounts[i].fstype, "cgroup") == 0)
    {
      child_cgroup_mount (a, &a->mounts[i], parent, name);
      close (parent);
      return;
    }
  if (a->mounts[i].fstype != NULL)
    {
      child_fs_mount (a, &a->mounts[i], parent, name);
      child_propagate (a, &a->mounts[i], parent, name);
      close (parent);
      return;
    }
  target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0 && errno == ENOENT)
    {
      if (a->mount_src_dir[i])
        {
          if (mkdirat (parent, name, 0755) < 0 && errno != EEXIST)
            child_fail (a, errno, "create mount destination", dest);
        }
      else
        {
          int c = openat (parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
          if (c < 0 && errno != EEXIST)
            child_fail (a, errno, "create mount destination", dest);
          if (c >= 0)
            close (c);
        }
      target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
  if (target < 0)
    child_fail (a, errno, "open mount destination", dest);
  if (fstat (target, &st) < 0)
    child_fail (a, errno, "fstat mount destination", dest);
  if (S_ISLNK (st.st_mode))
    child_fail (a, ELOOP, "mount destination is a symlink:", dest);
  if (a->mount_src_dir[i] ? !S_ISDIR (st.st_mode) : !S_ISREG (st.st_mode))
    child_fail (a, a->mount_src_dir[i] ? ENOTDIR : EINVAL,
                a->mount_src_dir[i] ? "mount destination is not a directory:"
                                    : "mount destination is not a regular file:",
                dest);
  source = a->mount_src_fd[i] >= 0 ? a->mount_src_fd[i] : open (a->mounts[i].source, O_PATH | O_CLOEXEC);
  if (source < 0)
    child_fail (a, errno, "open mount source", a->mounts[i].source);
  if (fstat (source, &st) < 0)
    child_fail (a, errno, "fstat mount source", a->mounts[i].source);
  if (a->mount_src_dir[i] ? !S_ISDIR (st.st_mode) : !S_ISREG (st.st_mode))
    child_fail (a, EINVAL, "mount source changed type:", a->mounts[i].source);
  fd_path (src_path, sizeof (src_path), source);
  fd_path (dst_path, sizeof (dst_path), target);
  /* MS_BIND in flags: an OCI bundle's, mounted with them all and remounted
   * with them as runc does (child_remount_bind); else Grove's own. */
  if (mount (src_path, dst_path, NULL,
             (a->mounts[i].flags & MS_BIND) ? a->mounts[i].flags : MS_BIND | (a->mounts[i].flags & MS_REC), NULL)
      < 0)
    child_fail (a, errno, "bind-mount onto", dest);
  close (source);
  close (target);
  if (a->mounts[i].flags & MS_BIND)
    {
      child_remount_bind (a, parent, name, a->mounts[i].flags, dest);
      child_rec_attrs (a, parent, name, a->mounts[i].data, dest);
    }
  else if (a->mounts[i].readonly)
    {
      /* The fd above names what was mounted over: look the name up again
       * to reach the new mount, keeping its nosuid/nodev/noexec. */
      struct statvfs sv;
      unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
      target = openat (parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (target < 0 || fstatvfs (target, &sv) < 0)
        child_fail (a, errno, "open mount destination", dest);
      if (sv.f_flag & ST_NOSUID)
        flags |= MS_NOSUID;
      if (sv.f_flag & ST_NODEV)
        flags |= MS_NODEV;
      if (sv.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
      fd_path (dst_path, sizeof (dst_path), target);
      if (mount (NULL, dst_path, NULL, flags, NULL) < 0)
        child_fail (a, errno, "remount read-only", dest);
      close (target);
    }
  child_propagate (a, &a->mounts[i], parent, name);
  close (parent);
}

static void
child_mask (struct child_args *a, const char *p)
{
  struct stat st;
  if (lstat (p, &st) < 0)
    return; /* not on this kernel or machine */
  if (S_ISDIR (st.st_mode))
    {
      if (mount ("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0)
        child_fail (a, errno, "mask", p);
    }
  else if (mount ("/dev/null", p, NULL, MS_BIND, NULL) < 0)
    child_fail (a, errno, "mask", p);
}

/* Masks /sys/devices/system/cpu/cpuN/thermal_throttle for every cpu N (its
 * counters tell what other tenants run, as Docker found). getdents64 into the
 * stack: the child allocates nothing. */
static void
child_mask_thermal_throttle (struct child_args *a)
{
  char buf[4096], path[sizeof (CPU_SYSFS) + 300];
  int fd = open (CPU_SYSFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long n;

  if (fd < 0)
    return;
  while ((n = syscall (SYS_getdents64, fd, buf, sizeof (buf))) > 0)
    for (long off = 0; off < n;)
      {
        struct dirent64_s
        {
          uint64_t ino;
          int64_t off;
          unsigned short reclen;
          unsigned char type;
          char name[];
        } *d = (struct dirent64_s *) (buf + off);
        const char *name = d->name;
        off += d->reclen;
        if (strncmp (name, "cpu", 3) != 0 || name[3] < '0' || name[3] > '9' || strlen (name) > 255)
          continue;
        {
          size_t pos = safe_append (path, 0, sizeof (path), CPU_SYSFS "/");
          pos = safe_append (path, pos, sizeof (path), name);
          safe_append (path, pos, sizeof (path), "/thermal_throttle");
        }
        child_mask (a, path);
      }
  close (fd);
}

/* After pivot_root: hide Docker's masked paths, make its read-only ones read-only. */
static void
child_mask_paths (struct child_args *a)
{
  struct stat st;
  for (size_t i = 0; i < N_ELEMS (masked_paths); i++)
    child_mask (a, masked_paths[i]);
  child_mask_thermal_throttle (a);
  for (size_t i = 0; i < N_ELEMS (readonly_paths); i++)
    {
      const char *p = readonly_paths[i];
      if (lstat (p, &st) < 0)
        continue;
      if (mount (p, p, NULL, MS_BIND | MS_REC, NULL) < 0
          || mount (NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail (a, errno, "make read-only", p);
    }
}

static void
child_drop_privileges (struct child_args *a)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];

  if (a->oom_score_adj_set)
    {
      /* While still privileged: lowering it needs CAP_SYS_RESOURCE. */
      char num[16];
      int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC), v = a->oom_score_adj, n = 0;
      unsigned u = (unsigned) (v < 0 ? -v : v);
      char digits[12];
      int d = 0;
      do
        digits[d++] = (char) ('0' + u % 10);
      while ((u /= 10) > 0);
      if (v < 0)
        num[n++] = '-';
      while (d > 0)
        num[n++] = digits[--d];
      if (fd < 0 || write (fd, num, (size_t) n) != n)
        child_fail (a, errno, "write", "/proc/self/oom_score_adj");
      close (fd);
    }
  if (a->attrs != NULL)
    {
      const char *what = NULL;
      if (grove_oci_attrs_apply (a->attrs, &what) < 0)
        child_fail (a, errno, what, NULL);
    }
  for (size_t i = 0; i < a->nrlimits; i++)
    {
      struct rlimit rl = { (rlim_t) a->rlimits[i].soft, (rlim_t) a->rlimits[i].hard };
      if (setrlimit (a->rlimits[i].resource, &rl) < 0)
        child_fail (a, errno, "setrlimit", NULL);
    }
  /* Bounding set first (needs CAP_SETPCAP, which setuid may take away). */
  for (int cap = 0; cap < 64; cap++)
    if (!(a->caps & (1ULL << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      child_fail (a, errno, "drop capability from the bounding set", NULL);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    child_fail (a, errno, "clear ambient capabilities", NULL);
  if (setgroups (a->ngroups, a->groups) < 0)
    child_fail (a, errno, "setgroups", NULL);
  if (setresgid (a->gid, a->gid, a->gid) < 0)
    child_fail (a, errno, "setgid", NULL);
  /* Explicit sets survive the change of user (as runc), to be set below. */
  if (a->caps_sets && prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    child_fail (a, errno, "keep capabilities", NULL);
  if (setresuid (a->uid, a->uid, a->uid) < 0)
    child_fail (a, errno, "setuid", NULL);
  memset (data, 0, sizeof (data));
  if (a->caps_sets)
    {
      data[0].effective = (uint32_t) a->caps_effective;
      data[1].effective = (uint32_t) (a->caps_effective >> 32);
      data[0].permitted = (uint32_t) a->caps_permitted;
      data[1].permitted = (uint32_t) (a->caps_permitted >> 32);
      data[0].inheritable = (uint32_t) a->caps_inheritable;
      data[1].inheritable = (uint32_t) (a->caps_inheritable >> 32);
    }
  else if (a->uid == 0)
    {
      /* Root keeps exactly its set; any other user has none (as with Docker). */
      data[0].effective = data[0].permitted = (uint32_t) a->caps;
      data[1].effective = data[1].permitted = (uint32_t) (a->caps >> 32);
    }
  if (syscall (SYS_capset, &hdr, data) < 0)
    child_fail (a, errno, "capset", NULL);
  /* An ambient capability must be permitted and inheritable: one that is not
   * stays out (EPERM), as with runc, whose `runc spec` lists ambient ones
   * with an empty inheritable set. */
  for (int cap = 0; a->caps_sets && cap < 64; cap++)
    if ((a->caps_ambient & (1ULL << cap)) && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0
        && errno != EPERM && errno != EINVAL)
      child_fail (a, errno, "raise an ambient capability", NULL);
  /* Without it a seccomp filter needs CAP_SYS_ADMIN: kept whenever there is one. */
  if ((!a->no_new_privs_off || a->seccomp.len > 0) && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail (a, errno, "no_new_privs", NULL);
}

static void
child_loopback_up (struct child_args *a)
{
  struct ifreq ifr;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    child_fail (a, errno, "socket for", "lo");
  memset (&ifr, 0, sizeof (ifr));
  safe_append (ifr.ifr_name, 0, sizeof (ifr.ifr_name), "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    child_fail (a, errno, "SIOCGIFFLAGS", "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    child_fail (a, errno, "SIOCSIFFLAGS", "lo");
  close (fd);
}

static void
child_reset_signals (void)
{
  struct sigaction dfl;
  sigset_t none;
  /* Node ignores SIGPIPE and handles others; the workload starts from defaults.
   * The parent blocked all signals around clone() so no Node handler runs here. */
  memset (&dfl, 0, sizeof (dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction (sig, &dfl, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  /* Not dumpable until execve: nothing in the container may open our memory
   * (/proc/1/mem, /proc/1/exe: this is still a copy of node). */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Waits for the parent's go (it has set up the cgroups and, with a user
 * namespace, the maps); returns the idmapped rootfs tree it sent, or -1. */
static int
child_wait_for_parent (struct child_args *a)
{
  char byte;
  ssize_t n;
  int rootfs_tree = -1;
  if (a->userns)
    {
      /* The sync byte comes on a socket, with the idmapped rootfs tree when
       * there is one (created by the parent: it needs host privileges). */
      char cbuf[CMSG_SPACE (sizeof (int))];
      struct iovec iov = { &byte, 1 };
      struct msghdr msg;
      memset (&msg, 0, sizeof (msg));
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof (cbuf);
      do
        n = recvmsg (a->sync_fd, &msg, MSG_CMSG_CLOEXEC);
      while (n < 0 && errno == EINTR);
      if (n == 1)
        {
          struct cmsghdr *cm = CMSG_FIRSTHDR (&msg);
          if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy (&rootfs_tree, CMSG_DATA (cm), sizeof (int));
        }
    }
  else
    do
      n = read (a->sync_fd, &byte, 1);
    while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit (126); /* the parent gave up (it could not set up the cgroups) */
  if (!a->hooks_parent && !a->seccomp_listener)
    close (a->sync_fd);
  return rootfs_tree;
}

/* The cgroup and network namespaces, then the rootfs mounted on itself (or
 * the idmapped tree attached there); with a user namespace, what only host
 * root may reach is opened before becoming the namespace's root. */
static void
child_enter_rootfs (struct child_args *a, int rootfs_tree)
{
  /* In our cgroups now: a cgroup namespace rooted there, so /proc/self/cgroup
   * and mountinfo show "/" instead of the host's cgroup paths. */
  if (a->cgroup_ns_fd >= 0 ? setns (a->cgroup_ns_fd, CLONE_NEWCGROUP) < 0
                           : a->cgroupns && unshare (CLONE_NEWCGROUP) < 0)
    child_fail (a, errno, a->cgroup_ns_fd >= 0 ? "join the cgroup namespace" : "unshare the cgroup namespace", NULL);
  /* Join the given network namespace before anything network-related. */
  if (a->netns_fd >= 0 && !a->netns_joined && setns (a->netns_fd, CLONE_NEWNET) < 0)
    child_fail (a, errno, "setns into network namespace", NULL);

  if (mount (NULL, "/", NULL, a->rootfs_propagation != 0 ? a->rootfs_propagation : MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail (a, errno, "set the propagation (linux.rootfsPropagation) of", "/");
  if (a->rootfs_propagation != 0)
    {
      /* The mount holding the rootfs, private if it is shared now (it is
       * when the flag made it so, or left it as the caller's namespace has
       * it): pivot_root refuses a shared parent, and the rootfs's bind
       * mount must not propagate out (as runc). */
      int reached = (a->rootfs_propagation & MS_REC) || strcmp (a->rootfs_mount, "/") == 0;
      if ((reached ? (a->rootfs_propagation & MS_SHARED) != 0 : a->rootfs_mount_shared)
          && mount (NULL, a->rootfs_mount, NULL, MS_PRIVATE, NULL) < 0)
        child_fail (a, errno, "make private the mount holding the rootfs:", a->rootfs_mount);
    }
  if (rootfs_tree >= 0)
    {
      if (move_mount (rootfs_tree, "", AT_FDCWD, a->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        child_fail (a, errno, "attach the idmapped rootfs on", a->rootfs);
      close (rootfs_tree);
    }
  else if (mount (a->rootfs, a->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    child_fail (a, errno, "bind-mount rootfs", a->rootfs);
  if (a->userns)
    {
      /* Our credentials are still host root's (unmapped in the namespace):
       * while they open what lies behind host directories that only root may
       * search (a 0700 state directory), then become the namespace's root,
       * the mapped host uid, before creating anything. From here on the
       * rootfs is the working directory and named "." (a->root_path). */
      int root = open (a->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (root < 0 || fchdir (root) < 0)
        child_fail (a, errno, "enter rootfs", a->rootfs);
      close (root);
      for (size_t i = 0; i < a->nmounts; i++)
        {
          if (a->mounts[i].fstype != NULL || a->mounts[i].own)
            continue;
          a->mount_at = (long) i;
          a->mount_src_fd[i] = open (a->mounts[i].source, O_PATH | O_CLOEXEC);
          if (a->mount_src_fd[i] < 0)
            child_fail (a, errno, "open mount source", a->mounts[i].source);
        }
      a->mount_at = -1;
      for (size_t i = 0; i < a->ndevices; i++)
        {
          /* A detached bind of the host's node: after pivot_root the old
           * root, and the host's /dev with it, is gone. */
          struct stat st;
          int fd = open (a->devices[i].path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
          if (fd < 0)
            child_fail (a, errno, "open the host's device node (linux.devices in a user namespace)",
                        a->devices[i].path);
          if (fstat (fd, &st) < 0 || (st.st_mode & S_IFMT) != (a->devices[i].mode & S_IFMT))
            child_fail (a, EINVAL, "the host's node is not of the type linux.devices gives:", a->devices[i].path);
          a->dev_src_fd[i] = (int) open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
          if (a->dev_src_fd[i] < 0)
            child_fail (a, errno, "bind the host's device node", a->devices[i].path);
          close (fd);
        }
      if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
        child_fail (a, errno, "become root of the user namespace (is 0 mapped?)", NULL);
    }
}

/* /proc, checked to be a procfs. */
static void
child_mount_proc (struct child_args *a)
{
  struct statfs sfs;
  child_prepare_dir (a, a->proc_path, 0555);
  if (mount ("proc", a->proc_path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    child_fail (a, errno, "mount proc on", a->proc_path);
  /* Nothing is written under /proc unless it is a real procfs (CVE-2019-16884 and kin). */
  if (statfs (a->proc_path, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
    child_fail (a, EPERM, "not a procfs after mounting:", a->proc_path);
}

/* /sys, read-only. */
static void
child_mount_sys (struct child_args *a)
{
  child_prepare_dir (a, a->sys_path, 0555);
  if (mount ("sysfs", a->sys_path, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    {
      /* A user namespace may not mount sysfs for a network namespace it does
       * not own (a joined one): bind the host's /sys read-only instead, as runc. */
      struct mount_attr ro;
      if (!a->userns || errno != EPERM)
        child_fail (a, errno, "mount sysfs on", a->sys_path);
      memset (&ro, 0, sizeof (ro));
      ro.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
      if (mount ("/sys", a->sys_path, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_fail (a, errno, "bind-mount /sys on", a->sys_path);
      if (mount_setattr (AT_FDCWD, a->sys_path, AT_RECURSIVE, &ro, sizeof (ro)) < 0)
        child_fail (a, errno, "make read-only", a->sys_path);
    }
}

/* Grove's own /proc, /dev or /sys at this point of the list (prepare checked
 * that the destination is one of them). */
static void
child_own_mount (struct child_args *a, const grove_mount_t *m)
{
  const char *path;
  if (strcmp (m->destination, "/proc") == 0)
    child_mount_proc (a);
  else if (strcmp (m->destination, "/sys") == 0)
    child_mount_sys (a);
  else
    child_setup_dev (a);
  path = strcmp (m->destination, "/proc") == 0 ? a->proc_path : strcmp (m->destination, "/sys") == 0 ? a->sys_path
                                                                                                      : a->dev_path;
  for (size_t k = 0; k < m->npropagation; k++)
    if (mount (NULL, path, NULL, m->propagation[k], NULL) < 0)
      child_fail (a, errno, "set the propagation of", m->destination);
}

/* Every mount before pivot_root, in the order listed (as runc): what comes
 * later covers what came before (a bind under /dev listed before /dev is
 * hidden by it; one listed after it is seen). Grove's own /proc, /sys and
 * /dev that the list does not place come first. Masked and read-only paths
 * and linux.devices come after all of them (child_pivot); /dev's nodes are
 * always made in the container's own tmpfs. */
static void
child_mounts (struct child_args *a)
{
  int root_fd;
  if (!(a->own_listed & OWN_PROC))
    child_mount_proc (a);
  if (!(a->own_listed & OWN_SYS))
    child_mount_sys (a);
  if (!(a->own_listed & OWN_DEV))
    child_setup_dev (a);
  if (a->nmounts == 0)
    return;
  root_fd = open (a->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0)
    child_fail (a, errno, "open rootfs", a->rootfs);
  for (size_t i = 0; i < a->nmounts; i++)
    {
      a->mount_at = (long) i;
      if (a->mounts[i].own)
        child_own_mount (a, &a->mounts[i]);
      else
        child_mount_one (a, root_fd, i);
    }
  a->mount_at = -1;
  close (root_fd);
}

/* The bundle's sysctls, into the container's own namespaces' files (the
 * reader let through namespaced ones only), before /proc/sys turns read-only. */
static void
child_sysctls (struct child_args *a)
{
  for (size_t i = 0; i < a->nsysctls; i++)
    {
      int fd = open (a->sysctl_paths[i], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      size_t len = strlen (a->sysctl_values[i]);
      if (fd < 0 || write (fd, a->sysctl_values[i], len) != (ssize_t) len)
        child_fail (a, errno, "set sysctl", a->sysctl_paths[i]);
      close (fd);
    }
}

/* The bundle's own masked and read-only paths (OCI linux.maskedPaths,
 * readonlyPaths), after Grove's: the same treatment, a missing path skipped. */
static void
child_mask_extra (struct child_args *a)
{
  struct stat st;
  for (size_t i = 0; i < a->nmasked_paths; i++)
    child_mask (a, a->masked_paths[i]);
  for (size_t i = 0; i < a->nreadonly_paths; i++)
    {
      const char *p = a->readonly_paths[i];
      if (lstat (p, &st) < 0)
        continue;
      if (mount (p, p, NULL, MS_BIND | MS_REC, NULL) < 0
          || mount (NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail (a, errno, "make read-only", p);
    }
}

/* linux.devices in a user namespace, where mknod is refused: the host's node
 * at the same path (opened as host root, child_enter_rootfs) bind-mounted on
 * a file made there, as runc does; its owner and mode are the host's. */
static void
child_bind_device (struct child_args *a, size_t i)
{
  const char *path = a->devices[i].path;
  /* An empty file to bind onto; whatever is there already is covered (never opened). */
  if (mknod (path, S_IFREG, 0) < 0 && errno != EEXIST)
    child_fail (a, errno, "create the bind target of device", path);
  if (move_mount (a->dev_src_fd[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    child_fail (a, errno, "bind-mount the host's device node on", path);
  close (a->dev_src_fd[i]);
}

/* linux.devices: each node (its parent directories made 0755), owner and
 * mode as given; inside the new root already, so no path can lead out. A
 * path that exists is kept. The device cgroup decides what may be opened. */
static void
child_make_devices (struct child_args *a)
{
  for (size_t i = 0; i < a->ndevices; i++)
    {
      const grove_device_t *d = &a->devices[i];
      char dir[4096];
      size_t len = safe_append (dir, 0, sizeof (dir), d->path);
      if (len + 1 >= sizeof (dir))
        child_fail (a, ENAMETOOLONG, "device", d->path);
      for (size_t k = 1; k < len; k++)
        if (dir[k] == '/')
          {
            dir[k] = '\0';
            if (mkdir (dir, 0755) < 0 && errno != EEXIST)
              child_fail (a, errno, "mkdir for device", d->path);
            dir[k] = '/';
          }
      if (a->userns)
        {
          child_bind_device (a, i);
          continue;
        }
      if (mknod (d->path, d->mode, makedev (d->major, d->minor)) < 0)
        {
          if (errno == EEXIST)
            continue;
          child_fail (a, errno, "mknod", d->path);
        }
      if (lchown (d->path, d->uid, d->gid) < 0 || chmod (d->path, d->mode & 07777) < 0)
        child_fail (a, errno, "set the owner and mode of device", d->path);
    }
}

/* OCI terminal: true, as runc's setupConsole: once the rootfs is in place
 * (pivot_root, devices) and before it is finalized (masks, read-only), a
 * pty from the container's own devpts through /dev/ptmx (so the slave is
 * /dev/pts/N inside), the slave bind-mounted on /dev/console, the size
 * set, the master sent on the console socket (payload "/dev/ptmx", as
 * runc's utils.SendFd sends the master's name) and every copy of it and of
 * the socket closed; then a session of our own with the slave as its
 * controlling terminal, and the slave as stdin, stdout and stderr, owned
 * by the process's user (runc's fixStdioPermissions). */
static void
child_console (struct child_args *a)
{
  static const char name[] = "/dev/ptmx";
  char path[32], digits[12], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { (void *) name, sizeof (name) - 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof (cbuf) };
  struct cmsghdr *cm;
  unsigned n = 0;
  int unlock = 0, master, slave, fd, d = 0;
  size_t pos;
  ssize_t sent;
  master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    child_fail (a, errno, "open the console's master", "/dev/ptmx");
  if (ioctl (master, TIOCSPTLCK, &unlock) < 0 || ioctl (master, TIOCGPTN, &n) < 0)
    child_fail (a, errno, "unlock the console's pty", NULL);
  do
    digits[d++] = (char) ('0' + n % 10);
  while ((n /= 10) > 0);
  pos = safe_append (path, 0, sizeof (path), "/dev/pts/");
  while (d > 0 && pos + 1 < sizeof (path))
    path[pos++] = digits[--d];
  path[pos] = '\0';
  slave = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    child_fail (a, errno, "open the console", path);
  if (a->console_rows > 0 && a->console_cols > 0)
    {
      struct winsize ws = { .ws_row = a->console_rows, .ws_col = a->console_cols };
      if (ioctl (master, TIOCSWINSZ, &ws) < 0)
        child_fail (a, errno, "set the console size", NULL);
    }
  fd = open ("/dev/console", O_CREAT | O_WRONLY | O_NOCTTY | O_CLOEXEC, 0666);
  if (fd < 0 && errno != EEXIST)
    child_fail (a, errno, "create", "/dev/console");
  if (fd >= 0 && (fchmod (fd, 0666) < 0 || close (fd) < 0))
    child_fail (a, errno, "chmod", "/dev/console");
  if (mount (path, "/dev/console", NULL, MS_BIND, NULL) < 0)
    child_fail (a, errno, "bind-mount the console on", "/dev/console");
  cm = CMSG_FIRSTHDR (&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &master, sizeof (int));
  do
    sent = sendmsg (a->console_fd, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0)
    child_fail (a, errno, "send the console's master to the console socket", NULL);
  close (master);
  close (a->console_fd);
  a->console_fd = -1;
  if (setsid () < 0)
    child_fail (a, errno, "setsid", NULL);
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    child_fail (a, errno, "make the console the controlling terminal", NULL);
  if (fchown (slave, a->uid, (gid_t) -1) < 0 && errno != EINVAL && errno != EPERM)
    child_fail (a, errno, "chown the console", NULL);
  if (dup2 (slave, 0) < 0 || dup2 (slave, 1) < 0 || dup2 (slave, 2) < 0)
    child_fail (a, errno, "dup2 the console", NULL);
  close (slave);
  a->console = 1;
}

/* Into the rootfs for good: pivot_root, then the hostname, lo, masked paths
 * and the read-only root. */
static void
child_pivot (struct child_args *a)
{
  int old_root = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (old_root < 0)
    child_fail (a, errno, "open the old root", NULL);
  if (chdir (a->root_path) < 0)
    child_fail (a, errno, "chdir", a->rootfs);
  /* pivot_root(".", ".") stacks the old root under the new one; detaching "."
   * then drops it without needing a put_old directory (as runc does). */
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    child_fail (a, errno, "pivot_root", a->rootfs);
  /* From the old root's own directory (mount(2) does not step onto what
   * covers ".", umount2 does), made a slave before it goes, so that
   * detaching it cannot propagate to the caller's mounts. */
  if (fchdir (old_root) < 0 || mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    child_fail (a, errno, "make the old root a slave", NULL);
  close (old_root);
  if (umount2 (".", MNT_DETACH) < 0)
    child_fail (a, errno, "detach old root of", a->rootfs);
  if (chdir ("/") < 0)
    child_fail (a, errno, "chdir", "/");

  if (a->hostname[0] != '\0' && sethostname (a->hostname, strlen (a->hostname)) < 0)
    child_fail (a, errno, "sethostname", a->hostname);
  /* A joined namespace is configured by whoever created it. */
  if (a->netns_fd < 0 && !a->netns_joined)
    child_loopback_up (a);
  child_make_devices (a);
  child_sysctls (a);
  if (a->console_fd >= 0)
    child_console (a);
  child_mask_paths (a);
  child_mask_extra (a);
  if (a->readonly_rootfs && mount (NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
    child_fail (a, errno, "remount the root read-only", NULL);
}

/* A caller's stdio (OCI run and create, `< /dev/null`, a shim) may be the
 * host's /dev/null: its root could fchmod that through /proc/self/fd/N.
 * Each such descriptor is replaced by the container's own /dev/null, as
 * runc's reOpenDevNull does. After pivot_root, so "/dev/null" is ours. */
static void
child_reopen_dev_null (struct child_args *a)
{
  struct stat ours, st;
  int fd;
  if (stat ("/dev/null", &ours) < 0 || !S_ISCHR (ours.st_mode))
    child_fail (a, errno != 0 ? errno : ENODEV, "stat", "/dev/null");
  for (int k = 0; k < 3; k++)
    {
      if (fstat (k, &st) < 0 || !S_ISCHR (st.st_mode) || st.st_rdev != ours.st_rdev
          || (st.st_dev == ours.st_dev && st.st_ino == ours.st_ino))
        continue;
      fd = open ("/dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (fd < 0 || dup2 (fd, k) < 0)
        child_fail (a, errno, "reopen /dev/null as stdio", NULL);
      close (fd);
    }
}

/* stdio, then every other descriptor closed (the shim's socket and pipes,
 * Node's epoll, eventfds...) but the O_CLOEXEC error pipe, which execve
 * closes, and the hold fd; before the chdir, so /proc/self/fd/N can only
 * name these. Then the working directory, checked to be inside the root. */
static void
child_stdio_and_cwd (struct child_args *a)
{
  /* The sync channel too when the parent answers on it once the listener has the notify fd. */
  int keep[3] = { a->err_fd, a->hold_fd, a->seccomp_listener ? a->sync_fd : -1 };
  unsigned from = 3;
  char cwd_buf[4096];
  int in = a->null_fd;
  /* No stdin given: the container's own /dev/null, never the host's (whose
   * inode its root could fchmod through /proc/self/fd/0). */
  if (!a->console && in < 0 && (in = open ("/dev/null", O_RDONLY | O_NOCTTY | O_CLOEXEC)) < 0)
    child_fail (a, errno, "open", "/dev/null");
  if (!a->console
      && (dup2 (in, 0) < 0 || dup2 (a->log_fd, 1) < 0
          || dup2 (a->err_out_fd > 0 ? a->err_out_fd : a->log_fd, 2) < 0))
    child_fail (a, errno, "dup2 stdio", NULL);
  child_reopen_dev_null (a);
  for (int i = 1; i < 3; i++) /* ascending */
    for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--)
      {
        int x = keep[j];
        keep[j] = keep[j - 1];
        keep[j - 1] = x;
      }
  for (int k = 0; k < 3; k++)
    {
      if (keep[k] < 0)
        continue;
      if ((unsigned) keep[k] > from && syscall (SYS_close_range, from, (unsigned) keep[k] - 1, 0) < 0)
        child_fail (a, errno, "close_range", NULL);
      from = (unsigned) keep[k] + 1;
    }
  if (syscall (SYS_close_range, from, ~0U, 0) < 0)
    child_fail (a, errno, "close_range", NULL);

  if (chdir (a->cwd) < 0)
    child_fail (a, errno, "chdir", a->cwd);
  /* A cwd outside the root shows up as ENOENT or "(unreachable)" (CVE-2024-21626). */
  if (syscall (SYS_getcwd, cwd_buf, sizeof (cwd_buf)) < 0)
    child_fail (a, errno, "getcwd after chdir", a->cwd);
  if (cwd_buf[0] != '/')
    child_fail (a, EPERM, "working directory escapes the root:", a->cwd);
}

/* OCI create: the command must be one execve can run, or create fails
 * (runtime-spec: an error, not a container that stops at start). As execvp
 * and runc: the first candidate that is a regular file we may execute. */
static void
child_check_exec (struct child_args *a)
{
  int first_errno = ENOENT;
  for (char **c = a->candidates; *c != NULL; c++)
    {
      struct stat st;
      if (stat (*c, &st) == 0)
        {
          if (S_ISREG (st.st_mode) && access (*c, X_OK) == 0)
            return;
          if (!S_ISREG (st.st_mode))
            errno = EACCES;
        }
      if (errno != ENOENT && errno != ENOTDIR)
        first_errno = errno;
    }
  child_fail (a, first_errno, "exec", a->argv0);
}

/* OCI create: everything is set up; run the command on start. Tell the
 * parent we are ready by closing the error pipe with nothing written. */
static void
child_hold (struct child_args *a)
{
  char go;
  ssize_t r;
  child_check_exec (a);
  close (a->err_fd);
  a->err_fd = -1;
  do
    r = read (a->hold_fd, &go, 1);
  while (r < 0 && errno == EINTR);
  if (r != 1)
    _exit (126); /* deleted before it was started */
  close (a->hold_fd);
}

/* OCI linux.namespaces with a path (or absent: the runtime's): the uts and
 * ipc namespaces joined before anything uses them (clone() made new ones,
 * which go with this). */
static void
child_join_namespaces (struct child_args *a)
{
  if (a->uts_ns_fd >= 0 && setns (a->uts_ns_fd, CLONE_NEWUTS) < 0)
    child_fail (a, errno, "join the uts namespace", NULL);
  if (a->ipc_ns_fd >= 0 && setns (a->ipc_ns_fd, CLONE_NEWIPC) < 0)
    child_fail (a, errno, "join the ipc namespace", NULL);
  /* Before any mount: they are all made in the joined namespace (as runc). */
  if (a->mnt_ns_fd >= 0 && setns (a->mnt_ns_fd, CLONE_NEWNS) < 0)
    child_fail (a, errno, "join the mount namespace", NULL);
}

/* OCI hooks around the create: the parent's prestart and createRuntime (it
 * is asked on the error pipe and answers on the sync channel), then
 * createContainer here, in the container's namespaces before pivot_root. */
static void
child_create_hooks (struct child_args *a)
{
  grove_hook_failure_t f;
  if (a->hooks == NULL)
    return;
  if (a->hooks_parent)
    {
      struct child_error ask;
      char go;
      ssize_t n;
      memset (&ask, 0, sizeof (ask));
      ask.errnum = GROVE_CHILD_ASK_HOOKS;
      do
        n = write (a->err_fd, &ask, sizeof (ask));
      while (n < 0 && errno == EINTR);
      do
        n = read (a->sync_fd, &go, 1);
      while (n < 0 && errno == EINTR);
      if (n != 1)
        _exit (126); /* a hook failed: the parent kills us */
      if (!a->seccomp_listener)
        close (a->sync_fd);
    }
  if (grove_hooks_run_raw (a->hooks, GROVE_HOOK_CREATE_CONTAINER, a->hook_state_creating, &f) < 0)
    child_hook_fail (a, &f);
}

/* startContainer: inside the container, as its process, just before execve. */
static void
child_start_hooks (struct child_args *a)
{
  grove_hook_failure_t f;
  if (a->hooks != NULL && grove_hooks_run_raw (a->hooks, GROVE_HOOK_START_CONTAINER, a->hook_state_created, &f) < 0)
    child_hook_fail (a, &f);
}

/* The bundle's filter (or Grove's): with flags or a listener through
 * seccomp(2). The parent sends the notify fd to the listener, as runc's
 * does: the init only writes its number on the error pipe and waits for the
 * parent's byte (write, read and close are the calls it makes under the
 * filter; a profile may not notify write, as runc refuses). */
static void
child_seccomp (struct child_args *a)
{
  struct child_error ask;
  char go;
  ssize_t n;
  unsigned flags = a->seccomp_flags | (a->seccomp_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
  long fd;
  if (a->seccomp.len == 0)
    return;
  if (flags == 0)
    {
      if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &a->seccomp, 0, 0) < 0)
        child_fail (a, errno, "install the seccomp filter", NULL);
      return;
    }
  fd = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &a->seccomp);
  if (fd < 0)
    child_fail (a, errno, "install the seccomp filter (with its flags)", NULL);
  if (!a->seccomp_listener)
    return;
  memset (&ask, 0, sizeof (ask));
  ask.errnum = GROVE_CHILD_LISTENER;
  memcpy (ask.msg, &(int){ (int) fd }, sizeof (int));
  if (write (a->err_fd, &ask, sizeof (ask)) != (ssize_t) sizeof (ask))
    _exit (126); /* the parent is gone */
  do
    n = read (a->sync_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit (126); /* the parent could not reach the listener: it kills us */
  close ((int) fd);
  close (a->sync_fd);
}

static int
child_main (void *arg)
{
  struct child_args *a = arg;
  int exec_errno = ENOENT;

  child_reset_signals ();
  child_join_namespaces (a);
  child_enter_rootfs (a, child_wait_for_parent (a));
  child_mounts (a);
  child_create_hooks (a);
  child_pivot (a);
  child_stdio_and_cwd (a);
  child_drop_privileges (a);
  /* Last: the filter also applies to what we would still call. */
  child_seccomp (a);
  if (a->hold_fd >= 0)
    child_hold (a);
  child_start_hooks (a);
  if (a->umask_set)
    umask (a->umask);
  for (char **c = a->candidates; *c != NULL; c++)
    {
      execve (*c, a->argv, a->envp);
      /* Like execvp: remember a more telling error than ENOENT, keep searching. */
      if (errno != ENOENT && errno != ENOTDIR)
        exec_errno = errno;
    }
  child_fail (a, exec_errno, "exec", a->argv0);
}

/* ---- parent side ------------------------------------------------------- */

struct prepared
{
  struct child_args a;
  char *proc_path;
  char *dev_path;
  char *sys_path;
  char **candidates;
};

static void
prepared_free (struct prepared *p)
{
  free (p->proc_path);
  free (p->dev_path);
  free (p->sys_path);
  free (p->a.pts_path);
  free (p->a.ptmx_path);
  free (p->a.shm_path);
  free (p->a.mqueue_path);
  free (p->a.rootfs_mount);
  free (p->a.seccomp.filter);
  for (size_t i = 0; p->a.cg_hier != NULL && i < p->a.ncg_hier; i++)
    {
      free (p->a.cg_hier[i].mountpoint);
      free (p->a.cg_hier[i].root);
      free (p->a.cg_hier[i].controllers);
    }
  free (p->a.cg_hier);
  grove_closep (&p->a.uts_ns_fd);
  grove_closep (&p->a.ipc_ns_fd);
  grove_closep (&p->a.pid_ns_fd);
  grove_closep (&p->a.mnt_ns_fd);
  grove_closep (&p->a.cgroup_ns_fd);
  grove_closep (&p->a.user_ns_fd);
  grove_closep (&p->a.time_ns_fd);
  free (p->a.hook_state_creating);
  free (p->a.hook_state_created);
  for (size_t i = 0; i < p->a.nsysctls; i++)
    free (p->a.sysctl_paths[i]);
  for (size_t i = 0; i < N_DEV; i++)
    free (p->a.dev_targets[i]);
  for (size_t i = 0; i < N_LINKS; i++)
    free (p->a.link_paths[i]);
  for (size_t i = 0; i < GROVE_MAX_MOUNTS; i++)
    free (p->a.mount_labels[i]);
  if (p->candidates != NULL)
    for (char **c = p->candidates; *c != NULL; c++)
      free (*c);
  free (p->candidates);
}

static void
closep_pair (int (*fds)[2])
{
  grove_closep (&(*fds)[0]);
  grove_closep (&(*fds)[1]);
}
#define cleanup_pipe __attribute__ ((cleanup (closep_pair)))
#define cleanup_prepared __attribute__ ((cleanup (prepared_free)))

/* The paths execve will try: argv[0] itself when it has a '/', else each PATH entry. */
static int
exec_candidates (const grove_container_config_t *cfg, char ***out, grove_error_t *err)
{
  *out = grove_exec_candidates (cfg->argv[0], cfg->envp);
  return *out != NULL ? 0 : grove_error_set (err, ENOMEM, "exec %s", cfg->argv[0]);
}

/* Each "name=value" as the file under /proc/sys the init writes (dots are
 * slashes: net.ipv4.ip_forward) and its value. */
static int
prepare_sysctls (const grove_container_config_t *cfg, struct child_args *a, grove_error_t *err)
{
  if (cfg->nsysctls > GROVE_MAX_SYSCTLS)
    return grove_error_set (err, EINVAL, "%zu sysctls, at most %d", cfg->nsysctls, GROVE_MAX_SYSCTLS);
  for (size_t i = 0; i < cfg->nsysctls; i++)
    {
      const char *eq = strchr (cfg->sysctls[i], '=');
      if (eq == NULL || eq == cfg->sysctls[i] || memchr (cfg->sysctls[i], '/', (size_t) (eq - cfg->sysctls[i])) != NULL)
        return grove_error_set (err, EINVAL, "sysctl %s is not NAME=VALUE", cfg->sysctls[i]);
      if (grove_asprintf (&a->sysctl_paths[i], err, "/proc/sys/%.*s", (int) (eq - cfg->sysctls[i]), cfg->sysctls[i]) < 0)
        return -1;
      for (char *c = a->sysctl_paths[i] + 10; *c != '\0'; c++)
        if (*c == '.')
          *c = '/';
      a->sysctl_values[i] = eq + 1;
      a->nsysctls = i + 1;
    }
  return 0;
}

/* A namespace file to join (checked to be one); -1 for none. */
static int
open_ns (const char *path, int *fd, grove_error_t *err)
{
  struct statfs sfs;
  if (path == NULL)
    return 0;
  *fd = open (path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    return grove_error_set (err, errno, "open namespace %s", path);
  if (fstatfs (*fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC)
    return grove_error_set (err, EINVAL, "%s is not a namespace file (nsfs)", path);
  return 0;
}

/* The states the init hands its hooks, made here (it may not malloc). */
static int
prepare_hooks (const grove_container_config_t *cfg, struct child_args *a, grove_error_t *err)
{
  char state[8192];
  if (cfg->hooks == NULL)
    return 0;
  a->hooks = cfg->hooks;
  a->hooks_parent = grove_hooks_has (cfg->hooks, GROVE_HOOK_PRESTART)
                    || grove_hooks_has (cfg->hooks, GROVE_HOOK_CREATE_RUNTIME);
  if (grove_hooks_state (cfg->hooks, "creating", 1, state, sizeof (state)) < 0
      || (a->hook_state_creating = strdup (state)) == NULL
      || grove_hooks_state (cfg->hooks, "created", 1, state, sizeof (state)) < 0
      || (a->hook_state_created = strdup (state)) == NULL)
    return grove_error_set (err, ENOMEM, "hooks: the state (annotations too large?)");
  return 0;
}

/* Mount i checked, and the label its errors start with. */
static int
prepare_mount (const grove_container_config_t *cfg, size_t i, struct child_args *a, grove_error_t *err)
{
  static const char *const own[] = { "/proc", "/dev", "/sys" };
  const grove_mount_t *m = &cfg->mounts[i];
  const char *dst = m->destination != NULL ? m->destination : "?";
  const char *label;
  struct stat st;
  if ((m->field != NULL ? grove_asprintf (&a->mount_labels[i], err, "%s (destination %s)", m->field, dst)
                        : grove_asprintf (&a->mount_labels[i], err, "mount %zu (destination %s)", i, dst))
      < 0)
    return -1;
  label = a->mount_labels[i];
  if (m->own)
    {
      for (int k = 0; k < 3; k++)
        if (strcmp (dst, own[k]) == 0)
          {
            a->own_listed |= k == 0 ? OWN_PROC : k == 1 ? OWN_DEV : OWN_SYS;
            return 0;
          }
      return grove_error_set (err, EINVAL, "%s: Grove's own filesystems are /proc, /dev and /sys only", label);
    }
  if (m->fstype != NULL)
    {
      if (m->source == NULL || m->destination == NULL || m->destination[0] != '/')
        return grove_error_set (err, EINVAL, "%s: a source and an absolute destination are required", label);
      return 0;
    }
  if (m->source == NULL || m->source[0] != '/' || m->destination == NULL || m->destination[0] != '/')
    return grove_error_set (err, EINVAL, "%s: source and destination must be absolute paths", label);
  if (stat (m->source, &st) < 0)
    return grove_error_set (err, errno, "%s: mount source %s", label, m->source);
  if (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode))
    return grove_error_set (err, EINVAL, "%s: mount source %s is not a regular file or directory", label, m->source);
  a->mount_src_dir[i] = S_ISDIR (st.st_mode);
  return 0;
}

/* For a cgroup mount of the bundle's (child_cgroup_mount): whether
 * /sys/fs/cgroup is cgroup v2, else the host's v1 hierarchies from
 * mountinfo (the first mount of each set of controllers, as runc). */
static int
prepare_cgroup_mounts (const grove_container_config_t *cfg, struct child_args *a, grove_error_t *err)
{
  struct statfs sfs;
  char *line = NULL;
  size_t cap = 0;
  int wanted = 0;
  FILE *f;
  for (size_t i = 0; i < cfg->nmounts; i++)
    wanted |= cfg->mounts[i].fstype != NULL && strcmp (cfg->mounts[i].fstype, "cgroup") == 0;
  if (!wanted)
    return 0;
  a->cg_ns = !cfg->host_cgroupns || cfg->cgroup_ns_path != NULL;
  if (statfs ("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */)
    {
      a->cg_unified = 1;
      return 0;
    }
  if ((f = fopen ("/proc/self/mountinfo", "re")) == NULL)
    return grove_error_set (err, errno, "/proc/self/mountinfo");
  a->cg_hier = calloc (MAX_CGROUP_HIERS, sizeof (*a->cg_hier));
  while (a->cg_hier != NULL && a->ncg_hier < MAX_CGROUP_HIERS && getline (&line, &cap, f) > 0)
    {
      /* id parent dev root mountpoint options [optional...] - type source superoptions */
      char root[4096], point[4096], type[64], super[1024], ctl[1024] = "";
      const char *dash = strstr (line, " - ");
      int dup = 0;
      if (dash == NULL || sscanf (line, "%*s %*s %*s %4095s %4095s", root, point) != 2
          || sscanf (dash, " - %63s %*s %1023s", type, super) != 2 || strcmp (type, "cgroup") != 0
          || strrchr (point, '/') == NULL)
        continue;
      /* The controllers (and name=): the superblock's options but rw/ro and the flags. */
      char *save = NULL;
      for (char *o = strtok_r (super, ",", &save); o != NULL; o = strtok_r (NULL, ",", &save))
        if (strcmp (o, "rw") != 0 && strcmp (o, "ro") != 0 && strcmp (o, "xattr") != 0
            && strcmp (o, "noprefix") != 0 && strcmp (o, "clone_children") != 0 && strcmp (o, "cpuset_v2_mode") != 0
            && strncmp (o, "release_agent=", 14) != 0)
          snprintf (ctl + strlen (ctl), sizeof (ctl) - strlen (ctl), "%s%s", ctl[0] ? "," : "", o);
      for (size_t k = 0; k < a->ncg_hier; k++)
        dup |= strcmp (a->cg_hier[k].controllers, ctl) == 0;
      if (dup)
        continue;
      a->cg_hier[a->ncg_hier] = (struct cgroup_hier){ strdup (point), strdup (root), strdup (ctl) };
      if (a->cg_hier[a->ncg_hier++].controllers == NULL)
        break;
    }
  free (line);
  fclose (f);
  wanted = a->cg_hier != NULL; /* prepared_free frees what was made */
  for (size_t k = 0; wanted && k < a->ncg_hier; k++)
    wanted = a->cg_hier[k].mountpoint != NULL && a->cg_hier[k].root != NULL && a->cg_hier[k].controllers != NULL;
  return wanted ? 0 : grove_error_set (err, ENOMEM, "the cgroup hierarchies");
}

/* For linux.rootfsPropagation: the mount point of the mount that holds the
 * rootfs (its real path walked up to a mount root) and whether it is shared
 * here (a shared:N field in its mountinfo line). */
static int
rootfs_mount (const char *rootfs, struct child_args *a, grove_error_t *err)
{
  struct statx sx;
  char *line = NULL;
  size_t cap = 0;
  FILE *info;
  if ((a->rootfs_mount = realpath (rootfs, NULL)) == NULL)
    return grove_error_set (err, errno, "rootfs %s", rootfs);
  for (;;)
    {
      char *slash;
      if (statx (AT_FDCWD, a->rootfs_mount, 0, STATX_MNT_ID, &sx) < 0)
        return grove_error_set (err, errno, "statx %s", a->rootfs_mount);
      if ((sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) || strcmp (a->rootfs_mount, "/") == 0)
        break;
      slash = strrchr (a->rootfs_mount, '/');
      slash[slash == a->rootfs_mount ? 1 : 0] = '\0';
    }
  if ((info = fopen ("/proc/self/mountinfo", "re")) == NULL)
    return grove_error_set (err, errno, "/proc/self/mountinfo");
  while (getline (&line, &cap, info) > 0)
    {
      unsigned long long id;
      const char *dash = strstr (line, " - "), *shared = strstr (line, " shared:");
      if (sscanf (line, "%llu", &id) == 1 && id == sx.stx_mnt_id)
        {
          a->rootfs_mount_shared = shared != NULL && (dash == NULL || shared < dash);
          break;
        }
    }
  free (line);
  fclose (info);
  return 0;
}

static int
prepare (const grove_container_config_t *cfg, struct prepared *p, grove_error_t *err)
{
  /* With a user namespace the init works from inside the rootfs ("."): the
   * mapped root may not be allowed to search the directories above it. */
  const char *base = cfg->nuid_maps > 0 || cfg->ngid_maps > 0 || cfg->user_ns_path != NULL ? "." : cfg->rootfs;
  if (grove_asprintf (&p->proc_path, err, "%s/proc", base) < 0
      || grove_asprintf (&p->dev_path, err, "%s/dev", base) < 0
      || grove_asprintf (&p->sys_path, err, "%s/sys", base) < 0
      || grove_asprintf (&p->a.pts_path, err, "%s/dev/pts", base) < 0
      || grove_asprintf (&p->a.ptmx_path, err, "%s/dev/ptmx", base) < 0
      || grove_asprintf (&p->a.shm_path, err, "%s/dev/shm", base) < 0
      || grove_asprintf (&p->a.mqueue_path, err, "%s/dev/mqueue", base) < 0)
    return -1;
  p->a.root_path = base;
  p->a.mount_at = -1;
  for (size_t i = 0; i < GROVE_MAX_MOUNTS; i++)
    p->a.mount_src_fd[i] = -1;
  p->a.sys_path = p->sys_path;
  p->a.caps = cfg->caps_set ? cfg->caps : GROVE_DEFAULT_CAPS;
  p->a.caps_sets = cfg->caps_set && cfg->caps_sets;
  p->a.oom_score_adj_set = cfg->oom_score_adj_set;
  p->a.oom_score_adj = cfg->oom_score_adj;
  p->a.umask_set = cfg->umask_set;
  p->a.umask = cfg->umask;
  p->a.attrs = cfg->attrs;
  p->a.no_new_privs_off = cfg->no_new_privs_off;
  if (prepare_sysctls (cfg, &p->a, err) < 0)
    return -1;
  p->a.caps_effective = cfg->caps_effective;
  p->a.caps_permitted = cfg->caps_permitted;
  p->a.caps_inheritable = cfg->caps_inheritable;
  p->a.caps_ambient = cfg->caps_ambient;
  /* Capability-conditional rules of the profile follow the bounding set (as Docker). */
  if (cfg->seccomp_bpf != NULL)
    {
      if (grove_seccomp_from_hex (cfg->seccomp_bpf, &p->a.seccomp) < 0)
        return grove_error_set (err, errno, "the bundle's seccomp filter");
      p->a.seccomp_flags = cfg->seccomp_flags;
      p->a.seccomp_listener = cfg->hooks != NULL && cfg->hooks->listener != NULL;
    }
  else if (!cfg->seccomp_unconfined && grove_seccomp_default (p->a.caps, &p->a.seccomp) < 0)
    return grove_error_set (err, errno, "the default seccomp filter%s",
                            errno == ENOSYS ? " (none for this architecture: run unconfined)" : "");
  p->a.uid = cfg->uid;
  p->a.gid = cfg->gid;
  p->a.groups = cfg->groups;
  p->a.ngroups = cfg->ngroups;
  p->a.rlimits = cfg->rlimits;
  p->a.nrlimits = cfg->nrlimits;
  p->a.readonly_rootfs = cfg->readonly_rootfs;
  p->a.cgroupns = !cfg->host_cgroupns;
  p->a.hold_fd = cfg->hold_fd > 0 ? cfg->hold_fd : -1;
  p->a.console_fd = cfg->console_fd > 0 ? cfg->console_fd : -1;
  p->a.console_rows = cfg->console_rows;
  p->a.console_cols = cfg->console_cols;
  if (cfg->nmounts > GROVE_MAX_MOUNTS)
    return grove_error_set (err, EINVAL, "%zu mounts, at most %d", cfg->nmounts, GROVE_MAX_MOUNTS);
  for (size_t i = 0; i < cfg->nmounts; i++)
    if (prepare_mount (cfg, i, &p->a, err) < 0)
      return -1;
  p->a.mounts = cfg->mounts;
  p->a.nmounts = cfg->nmounts;
  for (size_t i = 0; i < N_DEV; i++)
    if (grove_asprintf (&p->a.dev_targets[i], err, "%s/%s", p->dev_path, dev_nodes[i]) < 0)
      return -1;
  for (size_t i = 0; i < N_LINKS; i++)
    if (grove_asprintf (&p->a.link_paths[i], err, "%s/%s", p->dev_path, dev_links[i][1]) < 0)
      return -1;
  if (exec_candidates (cfg, &p->candidates, err) < 0)
    return -1;
  p->a.rootfs = cfg->rootfs;
  p->a.proc_path = p->proc_path;
  p->a.dev_path = p->dev_path;
  p->a.hostname = cfg->hostname;
  p->a.cwd = cfg->cwd != NULL ? cfg->cwd : "/";
  p->a.argv0 = cfg->argv[0];
  p->a.candidates = p->candidates;
  p->a.argv = cfg->argv;
  p->a.envp = cfg->envp;
  if (cfg->ndevices > GROVE_MAX_DEVICES)
    return grove_error_set (err, EINVAL, "%zu devices, at most %d", cfg->ndevices, GROVE_MAX_DEVICES);
  p->a.devices = cfg->devices;
  p->a.ndevices = cfg->ndevices;
  if (open_ns (cfg->uts_ns_path, &p->a.uts_ns_fd, err) < 0 || open_ns (cfg->ipc_ns_path, &p->a.ipc_ns_fd, err) < 0
      || open_ns (cfg->pid_ns_path, &p->a.pid_ns_fd, err) < 0 || open_ns (cfg->mnt_ns_path, &p->a.mnt_ns_fd, err) < 0
      || open_ns (cfg->cgroup_ns_path, &p->a.cgroup_ns_fd, err) < 0
      || open_ns (cfg->user_ns_path, &p->a.user_ns_fd, err) < 0
      || open_ns (cfg->time_ns_path, &p->a.time_ns_fd, err) < 0)
    return -1;
  if (cfg->ntime_offsets > 2 || (cfg->ntime_offsets > 0 && !cfg->time_ns_new))
    return grove_error_set (err, EINVAL, "time offsets need a new time namespace (at most 2)");
  p->a.time_ns_new = cfg->time_ns_new;
  p->a.time_offsets = cfg->time_offsets;
  p->a.ntime_offsets = cfg->ntime_offsets;
  for (size_t i = 0; i < GROVE_MAX_DEVICES; i++)
    p->a.dev_src_fd[i] = -1;
  p->a.masked_paths = cfg->masked_paths;
  p->a.nmasked_paths = cfg->nmasked_paths;
  p->a.readonly_paths = cfg->readonly_paths;
  p->a.nreadonly_paths = cfg->nreadonly_paths;
  p->a.rootfs_propagation = cfg->rootfs_propagation;
  if ((cfg->rootfs_propagation != 0 && rootfs_mount (cfg->rootfs, &p->a, err) < 0)
      || prepare_cgroup_mounts (cfg, &p->a, err) < 0)
    return -1;
  return prepare_hooks (cfg, &p->a, err);
}

/* ---- user namespaces (parent side) ------------------------------------- */

static int
check_id_maps (const char *what, const grove_id_map_t *maps, size_t n, grove_error_t *err)
{
  int has_root = 0;
  if (n == 0 || n > GROVE_MAX_ID_MAPS)
    return grove_error_set (err, EINVAL, "user namespace: %zu %s lines, 1 to %d", n, what, GROVE_MAX_ID_MAPS);
  for (size_t i = 0; i < n; i++)
    {
      if (maps[i].size == 0 || (uint64_t) maps[i].container_id + maps[i].size > 0xffffffffULL
          || (uint64_t) maps[i].host_id + maps[i].size > 0xffffffffULL)
        return grove_error_set (err, EINVAL, "user namespace: %s line %zu (%u %u %u) is empty or overflows", what, i,
                                maps[i].container_id, maps[i].host_id, maps[i].size);
      if (maps[i].container_id == 0)
        has_root = 1;
    }
  if (!has_root)
    return grove_error_set (err, EINVAL, "user namespace: %s must map container id 0", what);
  return 0;
}

/* Writes /proc/<pid>/<file> in one write, as the kernel requires. */
static int
write_id_map (pid_t pid, const char *file, const grove_id_map_t *maps, size_t n, grove_error_t *err)
{
  char path[64], buf[GROVE_MAX_ID_MAPS * 36 + 1];
  size_t pos = 0;
  for (size_t i = 0; i < n; i++)
    pos += (size_t) snprintf (buf + pos, sizeof (buf) - pos, "%u %u %u\n", maps[i].container_id, maps[i].host_id,
                              maps[i].size);
  snprintf (path, sizeof (path), "/proc/%d/%s", (int) pid, file);
  return grove_write_file (path, buf, err);
}

/* The host id a container id becomes; an id already in a host range stays. */
static uint32_t
shift_id (uint32_t id, const grove_id_map_t *maps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (id >= maps[i].host_id && id - maps[i].host_id < maps[i].size)
      return id;
  for (size_t i = 0; i < n; i++)
    if (id >= maps[i].container_id && id - maps[i].container_id < maps[i].size)
      return maps[i].host_id + (id - maps[i].container_id);
  return id;
}

/* nftw has no user argument: the maps of the walk in progress (per thread). */
static __thread const grove_container_config_t *shift_cfg;
static __thread int shift_errno;

static int
shift_one (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  uid_t uid = shift_id (st->st_uid, shift_cfg->uid_maps, shift_cfg->nuid_maps);
  gid_t gid = shift_id (st->st_gid, shift_cfg->gid_maps, shift_cfg->ngid_maps);
  (void) type;
  (void) ftw;
  if (uid == st->st_uid && gid == st->st_gid)
    return 0;
  if (lchown (path, uid, gid) < 0)
    {
      shift_errno = errno;
      return 1;
    }
  /* chown clears setuid and setgid: put them back. */
  if (!S_ISLNK (st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) && chmod (path, st->st_mode & 07777) < 0)
    {
      shift_errno = errno;
      return 1;
    }
  return 0;
}

/* The rootfs as the user namespace's root should see it. An idmapped mount
 * (mount_setattr MOUNT_ATTR_IDMAP, detached, handed to the child) where the
 * filesystem has them; on an overlayfs (an image instance's own mount, which
 * has no idmapped mounts on this kernel) the ownership is shifted in place,
 * copying files up into the instance's upper directory. */
static int
prepare_userns_rootfs (const grove_container_config_t *cfg, pid_t pid, int *tree, grove_error_t *err)
{
  char path[64];
  struct mount_attr attr;
  struct statfs sfs;
  cleanup_close int userns = -1;
  int fd, saved;

  *tree = -1;
  snprintf (path, sizeof (path), "/proc/%d/ns/user", (int) pid);
  userns = open (path, O_RDONLY | O_CLOEXEC);
  if (userns < 0)
    return grove_error_set (err, errno, "open %s", path);
  fd = (int) open_tree (AT_FDCWD, cfg->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0)
    return grove_error_set (err, errno, "open_tree %s", cfg->rootfs);
  memset (&attr, 0, sizeof (attr));
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (uint64_t) userns;
  if (mount_setattr (fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof (attr)) == 0)
    {
      *tree = fd;
      return 0;
    }
  saved = errno;
  close (fd);
  if (statfs (cfg->rootfs, &sfs) == 0 && sfs.f_type == OVERLAYFS_SUPER_MAGIC)
    {
      shift_cfg = cfg;
      shift_errno = 0;
      if (nftw (cfg->rootfs, shift_one, 32, FTW_PHYS | FTW_MOUNT) != 0)
        return grove_error_set (err, shift_errno != 0 ? shift_errno : errno,
                                "shift the ownership of rootfs %s to the user namespace", cfg->rootfs);
      return 0;
    }
  return grove_error_set (err, saved,
                          "idmapped mount of rootfs %s for the user namespace (its filesystem or kernel has none)",
                          cfg->rootfs);
}

/* Sends the release byte, with fd attached when >= 0. */
static ssize_t
send_sync (int sock, int fd)
{
  char byte = 'x';
  char cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { &byte, 1 };
  struct msghdr msg;
  ssize_t n;

  memset (&msg, 0, sizeof (msg));
  memset (cbuf, 0, sizeof (cbuf));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0)
    {
      struct cmsghdr *cm;
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof (cbuf);
      cm = CMSG_FIRSTHDR (&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cm), &fd, sizeof (int));
    }
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

static void
reap (pid_t pid)
{
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* The init's stdin, stdout and stderr: the caller's (OCI run), or the
 * container's /dev/null (opened by the init) and the log (a file, or the
 * shim's pipe). */
static int
open_stdio (const grove_container_config_t *cfg, int *null_fd, int *log_fd, int *err_out_fd, grove_error_t *err)
{
  if (cfg->inherit_stdio)
    {
      const int *fd = cfg->inherit_fds;
      *null_fd = fcntl (fd != NULL ? fd[0] : 0, F_DUPFD_CLOEXEC, 3);
      *log_fd = fcntl (fd != NULL ? fd[1] : 1, F_DUPFD_CLOEXEC, 3);
      *err_out_fd = fcntl (fd != NULL ? fd[2] : 2, F_DUPFD_CLOEXEC, 3);
      if (*null_fd < 0 || *log_fd < 0 || *err_out_fd < 0)
        return grove_error_set (err, errno, "dup stdio");
      return 0;
    }
  if (cfg->stdio_fd > 0)
    *log_fd = fcntl (cfg->stdio_fd, F_DUPFD_CLOEXEC, 3);
  else
    *log_fd = open (cfg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
  if (*log_fd < 0)
    return grove_error_set (err, errno, "open log %s", cfg->log_path);
  *null_fd = -1; /* the init opens its own /dev/null (child_stdio_and_cwd) */
  return 0;
}

/* The network namespace to join (checked to be one), or -1 for a new one. */
static int
open_netns (const grove_container_config_t *cfg, int *netns_fd, grove_error_t *err)
{
  struct statfs sfs;
  if (cfg->netns_path == NULL)
    return 0;
  *netns_fd = open (cfg->netns_path, O_RDONLY | O_CLOEXEC);
  if (*netns_fd < 0)
    return grove_error_set (err, errno, "open network namespace %s", cfg->netns_path);
  if (fstatfs (*netns_fd, &sfs) < 0)
    return grove_error_set (err, errno, "fstatfs network namespace %s", cfg->netns_path);
  if (sfs.f_type != NSFS_MAGIC)
    return grove_error_set (err, EINVAL, "netnsPath %s is not a namespace file (nsfs)", cfg->netns_path);
  return 0;
}

/* This thread back in the network and pid namespaces it came from (after it
 * joined a container's for a clone()): never left in the container's. */
static void
return_home (int orig_netns, int orig_pidns)
{
  if ((orig_netns >= 0 && setns (orig_netns, CLONE_NEWNET) < 0)
      || (orig_pidns >= 0 && setns (orig_pidns, CLONE_NEWPID) < 0))
    {
      /* Should not happen (we came from there); never stay in the container's. */
      fprintf (stderr, "grove: cannot return to the original network or pid namespace: %s\n", strerror (errno));
      abort ();
    }
}

/* The join stage (see grove_container_config_t.user_ns_path): a process of
 * its own (single-threaded, its own fs: setns into a user, mount or time
 * namespace needs both), still with host root's privileges. It joins the
 * namespaces given by path, the user namespace first (as the kernel wants
 * and runc's nsexec does: then it holds every capability there, and so over
 * the namespaces that user namespace owns), makes the time namespace, and
 * clone()s the init as a child of the runtime (CLONE_PARENT) into the new
 * namespaces, which the joined user namespace, or a new one, then owns. It
 * writes the init's pid to a->stage_fd and ends; an error goes down the
 * error pipe as the init's would. */
static int
join_stage (void *arg)
{
  struct child_args *a = arg;
  int offsets = -1;
  pid_t pid;
  int flags = (a->pid_ns_fd < 0 ? CLONE_NEWPID : 0) | (a->mnt_ns_fd < 0 ? CLONE_NEWNS : 0)
              | (a->uts_ns_fd < 0 ? CLONE_NEWUTS : 0) | (a->ipc_ns_fd < 0 ? CLONE_NEWIPC : 0)
              | (a->netns_fd < 0 ? CLONE_NEWNET : 0) | (a->userns && a->user_ns_fd < 0 ? CLONE_NEWUSER : 0)
              | CLONE_PARENT | SIGCHLD;
  const struct
  {
    int *fd;
    int type;
    const char *what;
  } joins[] = { { &a->user_ns_fd, CLONE_NEWUSER, "join the user namespace" },
                { &a->ipc_ns_fd, CLONE_NEWIPC, "join the ipc namespace" },
                { &a->uts_ns_fd, CLONE_NEWUTS, "join the uts namespace" },
                { &a->netns_fd, CLONE_NEWNET, "setns into network namespace" },
                { &a->pid_ns_fd, CLONE_NEWPID, "join the pid namespace" },
                { &a->cgroup_ns_fd, CLONE_NEWCGROUP, "join the cgroup namespace" },
                { &a->time_ns_fd, CLONE_NEWTIME, "join the time namespace" },
                { &a->mnt_ns_fd, CLONE_NEWNS, "join the mount namespace" } };

  /* Before the mount namespace changes (it may have no /proc). */
  if (a->time_ns_new && (offsets = open ("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC)) < 0)
    child_fail (a, errno, "open /proc/self/timens_offsets", NULL);
  for (size_t k = 0; k < sizeof (joins) / sizeof (joins[0]); k++)
    {
      if (*joins[k].fd < 0)
        continue;
      if (setns (*joins[k].fd, joins[k].type) < 0)
        child_fail (a, errno, joins[k].what, NULL);
      if (joins[k].type == CLONE_NEWNET)
        a->netns_joined = 1; /* the init keeps netns_fd: a joined one is not configured */
      else
        *joins[k].fd = -1; /* the init's copy: nothing left to join */
      if (joins[k].type == CLONE_NEWCGROUP)
        a->cgroupns = 0;
      if (joins[k].type == CLONE_NEWIPC)
        a->ipc_foreign = a->userns;
    }
  if (a->time_ns_new)
    {
      if (unshare (CLONE_NEWTIME) < 0)
        child_fail (a, errno, "unshare the time namespace", NULL);
      for (size_t k = 0; k < a->ntime_offsets; k++)
        if (write (offsets, a->time_offsets[k], strlen (a->time_offsets[k])) < 0)
          child_fail (a, errno, "write linux.timeOffsets to /proc/self/timens_offsets:", a->time_offsets[k]);
      close (offsets);
    }
  pid = clone (child_main, a->stack_top, flags, a);
  if (pid < 0)
    child_fail (a, errno, "clone the container's init", NULL);
  if (write (a->stage_fd, &pid, sizeof (pid)) != (ssize_t) sizeof (pid))
    _exit (1);
  _exit (0);
}

/* The init started by a join stage: its pid, or -1 with the stage's error. */
static pid_t
run_join_stage (struct child_args *a, void *stack, grove_error_t *err)
{
  int report[2];
  pid_t stage, pid = -1;
  ssize_t n;
  if (pipe2 (report, O_CLOEXEC) < 0)
    return grove_error_set (err, errno, "pipe2");
  a->stage_fd = report[1];
  a->stack_top = (char *) stack + CHILD_STACK_SIZE;
  /* The stage runs on the upper half of the init's stack; the init gets its own copy of it. */
  stage = clone (join_stage, (char *) stack + CHILD_STACK_SIZE / 2, SIGCHLD, a);
  a->stage_fd = -1;
  close (report[1]);
  if (stage < 0)
    {
      int saved = errno;
      close (report[0]);
      return grove_error_set (err, saved, "clone the namespace join stage");
    }
  do
    n = read (report[0], &pid, sizeof (pid));
  while (n < 0 && errno == EINTR);
  close (report[0]);
  while (waitpid (stage, NULL, 0) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t) sizeof (pid))
    {
      /* It failed before the clone: its error is on the error pipe (written
       * before it ended), or nothing is. */
      struct child_error ce;
      fcntl (a->err_read_fd, F_SETFL, O_NONBLOCK);
      do
        n = read (a->err_read_fd, &ce, sizeof (ce));
      while (n < 0 && errno == EINTR);
      if (n != (ssize_t) sizeof (ce))
        return grove_error_set (err, EIO, "the namespace join stage ended without a word");
      ce.msg[sizeof (ce.msg) - 1] = '\0';
      return grove_error_set (err, ce.errnum, "%s", ce.msg);
    }
  return pid;
}

/* clone()s the init into its new namespaces, with every signal blocked (no
 * Node handler may run in the child before it resets them); this thread is
 * back in orig_netns (>= 0: it joined the container's for the clone), and
 * its children's pid namespace back to orig_pidns (>= 0: the joined one). */
static pid_t
clone_init (struct child_args *a, int orig_netns, int orig_pidns, grove_error_t *err)
{
  void *stack;
  sigset_t all, old;
  pid_t pid;
  int saved;
  stack = mmap (NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    {
      saved = errno;
      return_home (orig_netns, -1);
      return grove_error_set (err, saved, "mmap child stack");
    }
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  if (a->staged)
    {
      pid = run_join_stage (a, stack, err);
      pthread_sigmask (SIG_SETMASK, &old, NULL);
      munmap (stack, CHILD_STACK_SIZE);
      return pid;
    }
  if (orig_pidns >= 0 && setns (a->pid_ns_fd, CLONE_NEWPID) < 0)
    {
      saved = errno;
      return_home (orig_netns, -1);
      pthread_sigmask (SIG_SETMASK, &old, NULL);
      munmap (stack, CHILD_STACK_SIZE);
      return grove_error_set (err, saved, "join the pid namespace");
    }
  pid = clone (child_main, (char *) stack + CHILD_STACK_SIZE,
               (a->pid_ns_fd < 0 ? CLONE_NEWPID : 0) | (a->mnt_ns_fd < 0 ? CLONE_NEWNS : 0) | CLONE_NEWUTS
                   | CLONE_NEWIPC | (a->netns_fd < 0 ? CLONE_NEWNET : 0) | (a->userns ? CLONE_NEWUSER : 0) | SIGCHLD,
               a);
  saved = errno;
  return_home (orig_netns, orig_pidns);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  /* The child has its own copy of the address space (no CLONE_VM). */
  munmap (stack, CHILD_STACK_SIZE);
  errno = saved;
  if (pid < 0)
    return grove_error_set (err, errno, "clone container init for %s", a->rootfs);
  return pid;
}

/* The parent's part between clone() and the init's first step: the init into
 * its cgroups, its id maps (and idmapped rootfs) written, then the release
 * byte; the init's error, if it reports one before execve. -1 leaves the
 * init to the caller (killed and reaped). */
/* The init's notify fd (number fdnum in it) to linux.seccomp.listenerPath, then the init goes on. */
static int
send_listener (const grove_container_config_t *cfg, pid_t pid, int pidfd, int sync_fd, int fdnum,
               grove_error_t *err)
{
  cleanup_close int fd = (int) syscall (SYS_pidfd_getfd, pidfd, fdnum, 0); /* O_CLOEXEC */
  if (fd < 0)
    return grove_error_set (err, errno, "take the seccomp notify fd of container init %d", (int) pid);
  if (grove_hooks_send_listener (cfg->hooks, pid, fd, err) < 0)
    return -1;
  if (write (sync_fd, "x", 1) != 1)
    return grove_error_set (err, errno, "resume container init %d after its seccomp listener", (int) pid);
  return 0;
}

static int
release_init (const grove_container_config_t *cfg, pid_t pid, int pidfd, int userns, int sync_fd, int err_fd,
              grove_error_t *err)
{
  cleanup_close int rootfs_tree = -1;
  struct child_error ce;
  ssize_t n;
  /* Into the cgroups before the child runs a single step of its own. */
  if (grove_cgroup_ops_for (cfg->cgroup->mode)->enter (cfg->cgroup, pid, err) < 0)
    return -1;
  if (userns && cfg->user_ns_path == NULL
      && (write_id_map (pid, "uid_map", cfg->uid_maps, cfg->nuid_maps, err) < 0
          || write_id_map (pid, "gid_map", cfg->gid_maps, cfg->ngid_maps, err) < 0
          || (cfg->userns_idmap_rootfs && prepare_userns_rootfs (cfg, pid, &rootfs_tree, err) < 0)))
    return -1;
  if (userns)
    n = send_sync (sync_fd, rootfs_tree);
  else
    do
      n = write (sync_fd, "x", 1);
    while (n < 0 && errno == EINTR);
  if (n != 1)
    return grove_error_set (err, errno, "release container init %d", (int) pid);
  for (;;)
    {
      do
        n = read (err_fd, &ce, sizeof (ce));
      while (n < 0 && errno == EINTR);
      if (n <= 0)
        return 0;
      if (ce.errnum == GROVE_CHILD_LISTENER)
        {
          int fdnum;
          memcpy (&fdnum, ce.msg, sizeof (int));
          if (send_listener (cfg, pid, pidfd, sync_fd, fdnum, err) < 0)
            return -1;
          continue;
        }
      if (ce.errnum != GROVE_CHILD_ASK_HOOKS)
        break;
      /* The init's namespaces exist, its mounts are made: the hooks the
       * runtime's namespaces run, then the init goes on. */
      if (grove_hooks_run (cfg->hooks, GROVE_HOOK_PRESTART, "creating", pid, err) < 0
          || grove_hooks_run (cfg->hooks, GROVE_HOOK_CREATE_RUNTIME, "creating", pid, err) < 0)
        return -1;
      if (write (sync_fd, "x", 1) != 1)
        return grove_error_set (err, errno, "resume container init %d after its hooks", (int) pid);
    }
  ce.msg[sizeof (ce.msg) - 1] = '\0';
  return grove_error_set (err, ce.errnum, "%s", ce.msg);
}

int
grove_container_start (const grove_container_config_t *cfg, grove_container_t *out, grove_error_t *err)
{
  cleanup_prepared struct prepared p;
  cleanup_pipe int sync_pipe[2] = { -1, -1 };
  cleanup_pipe int err_pipe[2] = { -1, -1 };
  cleanup_close int log_fd = -1;
  cleanup_close int null_fd = -1;
  cleanup_close int err_out_fd = -1;
  cleanup_close int netns_fd = -1;
  cleanup_close int orig_netns = -1;
  cleanup_close int orig_pidns = -1;
  int userns;
  pid_t pid;
  int pidfd;

  memset (&p, 0, sizeof (p));
  p.a.uts_ns_fd = p.a.ipc_ns_fd = p.a.pid_ns_fd = p.a.mnt_ns_fd = p.a.cgroup_ns_fd = -1;
  p.a.user_ns_fd = p.a.time_ns_fd = p.a.stage_fd = -1;
  if (cfg->argv == NULL || cfg->argv[0] == NULL || cfg->argv[0][0] == '\0')
    return grove_error_set (err, EINVAL, "start: empty command");
  if (prepare (cfg, &p, err) < 0)
    return -1;
  userns = cfg->nuid_maps > 0 || cfg->ngid_maps > 0 || cfg->user_ns_path != NULL;
  if (cfg->user_ns_path != NULL && (cfg->nuid_maps > 0 || cfg->ngid_maps > 0))
    return grove_error_set (err, EINVAL, "a joined user namespace has its maps already");
  if ((cfg->nuid_maps > 0 || cfg->ngid_maps > 0)
      && (check_id_maps ("uid_map", cfg->uid_maps, cfg->nuid_maps, err) < 0
          || check_id_maps ("gid_map", cfg->gid_maps, cfg->ngid_maps, err) < 0))
    return -1;
  if (open_stdio (cfg, &null_fd, &log_fd, &err_out_fd, err) < 0 || open_netns (cfg, &netns_fd, err) < 0)
    return -1;
  /* With a user namespace the release byte may carry the idmapped rootfs: a socket. */
  if (userns ? socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pipe) < 0 : pipe2 (sync_pipe, O_CLOEXEC) < 0)
    return grove_error_set (err, errno, "sync channel");
  if (pipe2 (err_pipe, O_CLOEXEC) < 0)
    return grove_error_set (err, errno, "pipe2");

  p.a.sync_fd = sync_pipe[0];
  p.a.err_fd = err_pipe[1];
  p.a.log_fd = log_fd;
  p.a.null_fd = null_fd;
  p.a.err_out_fd = err_out_fd;
  p.a.netns_fd = netns_fd;
  p.a.userns = userns;
  p.a.err_read_fd = err_pipe[0];
  /* A joined user namespace, a new one with namespaces joined by path, or a
   * time namespace: a join stage does the joins and clones the init. */
  p.a.staged = p.a.user_ns_fd >= 0 || p.a.time_ns_fd >= 0 || p.a.time_ns_new
               || (userns
                   && (p.a.uts_ns_fd >= 0 || p.a.ipc_ns_fd >= 0 || p.a.pid_ns_fd >= 0 || p.a.mnt_ns_fd >= 0
                       || p.a.cgroup_ns_fd >= 0));
  if (userns && netns_fd >= 0 && !p.a.staged)
    {
      /* Joining a namespace of the host's user namespace takes the host's
       * privileges, which the child, in its own user namespace, lacks: this
       * thread joins it for the clone() and comes back. */
      orig_netns = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (orig_netns < 0)
        return grove_error_set (err, errno, "open /proc/thread-self/ns/net");
      if (setns (netns_fd, CLONE_NEWNET) < 0)
        return grove_error_set (err, errno, "join network namespace %s", cfg->netns_path);
      p.a.netns_joined = 1;
    }
  if (p.a.pid_ns_fd >= 0 && !p.a.staged)
    {
      /* A pid namespace is joined for the children of this thread: the
       * init is born in it (as runc), then this thread comes back. */
      orig_pidns = open ("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
      if (orig_pidns < 0)
        {
          int saved = errno;
          return_home (orig_netns, -1);
          return grove_error_set (err, saved, "open /proc/thread-self/ns/pid");
        }
    }
  pid = clone_init (&p.a, orig_netns, orig_pidns, err);
  if (pid < 0)
    return -1;
  grove_closep (&sync_pipe[0]);
  sync_pipe[0] = -1;
  grove_closep (&err_pipe[1]);
  err_pipe[1] = -1;

  pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    grove_error_set (err, errno, "pidfd_open %d", (int) pid);
  else
    fcntl (pidfd, F_SETFD, FD_CLOEXEC);
  if (pidfd < 0 || release_init (cfg, pid, pidfd, userns, sync_pipe[1], err_pipe[0], err) < 0)
    {
      /* The one way out for an init that will not run. */
      kill (pid, SIGKILL);
      reap (pid);
      if (pidfd >= 0)
        close (pidfd);
      return -1;
    }
  out->pid = pid;
  out->pidfd = pidfd;
  return 0;
}

int
grove_container_wait (pid_t pid, const grove_cgroup_t *cg, grove_exit_t *result, grove_error_t *err)
{
  int status = 0;
  int64_t ooms = 0;
  grove_error_t ignored;

  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return grove_error_set (err, errno, "waitpid %d", (int) pid);

  if (WIFEXITED (status))
    {
      result->exit_code = WEXITSTATUS (status);
      result->signal = 0;
    }
  else
    {
      result->signal = WIFSIGNALED (status) ? WTERMSIG (status) : 0;
      result->exit_code = 128 + result->signal;
    }
  /* A missing counter (old kernel, removed cgroup) means "not OOM killed". */
  result->oom_killed = grove_cgroup_ops_for (cg->mode)->oom_kills (cg, &ooms, &ignored) == 0 && ooms > 0;
  return 0;
}

int
grove_pidfd_signal (int pidfd, int sig, grove_error_t *err)
{
  if (syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
    return 1;
  if (errno == ESRCH)
    return 0;
  return grove_error_set (err, errno, "pidfd_send_signal %d", sig);
}
