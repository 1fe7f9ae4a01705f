/* Starting a container and waiting for its init. */
#ifndef GROVE_CONTAINER_H
#define GROVE_CONTAINER_H

#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grove_rlimit_s
{
  int resource; /* RLIMIT_* */
  uint64_t soft, hard;
} grove_rlimit_t;

#define GROVE_MAX_PROPAGATION 8

/* A bind mount of a host file (or directory) onto a path inside the container. */
typedef struct grove_mount_s
{
  const char *source;      /* absolute host path, an existing regular file or directory */
  const char *destination; /* absolute path inside the container; no symlink may lead out of the rootfs */
  int readonly;
  /* NULL: a bind mount of source (flags: MS_REC for a recursive one, with
   * the source's submounts; an OCI bundle's rbind). Else a new filesystem of
   * this type (tmpfs, OCI bundles) on a directory made at destination; source
   * is the device name the kernel shows, flags and data what mount(2) takes. */
  const char *fstype;
  unsigned long flags;
  /* A new filesystem's data; an OCI bind's (MS_BIND in flags) recursive
   * attributes as "SET:CLEAR" (MOUNT_ATTR_*, mount_setattr AT_RECURSIVE), or NULL. */
  const char *data;
  /* 1: Grove's own filesystem for destination /proc, /dev (with its device
   * nodes, pts, shm and mqueue) or /sys is made at this point of the list
   * (an OCI bundle's mounts, made in the order listed); the fields above are
   * unused. Those the list does not place are made before its first mount. */
  int own;
  /* What an error about this mount names ("config.json mounts[3]"); NULL: "mount N". */
  const char *field;
  /* Propagation changes made on the mount once it is made, in this order
   * (an OCI bundle's options: MS_SHARED, MS_SLAVE, MS_PRIVATE or
   * MS_UNBINDABLE, with MS_REC for the r forms). Also for Grove's own. */
  unsigned long propagation[GROVE_MAX_PROPAGATION];
  size_t npropagation;
} grove_mount_t;
#define GROVE_MAX_MOUNTS 32
#define GROVE_MAX_SYSCTLS 32

/* A device node an OCI bundle lists (linux.devices), made in the container. */
typedef struct grove_device_s
{
  const char *path; /* absolute, inside the container */
  mode_t mode;      /* S_IFCHR, S_IFBLK or S_IFIFO | permission bits */
  unsigned major, minor;
  uid_t uid;
  gid_t gid;
} grove_device_t;
#define GROVE_MAX_DEVICES 64
#define GROVE_MAX_EXTRA_PATHS 64

/* One line of a user namespace's uid_map or gid_map: container ids
 * [container_id, container_id + size) are host ids [host_id, host_id + size). */
typedef struct grove_id_map_s
{
  uint32_t container_id;
  uint32_t host_id;
  uint32_t size;
} grove_id_map_t;
#define GROVE_MAX_ID_MAPS 5

/* Docker's default capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
 * SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. */
#define GROVE_DEFAULT_CAPS 0xa80425fbULL

typedef struct grove_container_config_s
{
  const char *rootfs;   /* absolute host path */
  char *const *argv;    /* NULL-terminated; argv[0] is resolved through PATH when it has no '/' */
  char *const *envp;    /* NULL-terminated "KEY=value" */
  const char *cwd;      /* inside the container */
  const char *hostname;
  const char *log_path; /* host file: stdout and stderr, opened O_APPEND */
  const grove_cgroup_t *cgroup; /* set up already; the child joins it before it runs */
  const char *netns_path; /* NULL: a new network namespace; else join this one (e.g. /run/netns/X) */
  int stdio_fd;           /* > 0: stdout and stderr go here (e.g. the shim's log pipe) instead of log_path */
  /* Security settings; all-zero means the defaults (Docker's). */
  int caps_set;           /* 0: Docker's 14 default capabilities; 1: exactly `caps` */
  uint64_t caps;          /* bit n = capability n, for bounding, permitted and effective (root) */
  /* 1 (an OCI bundle's process.capabilities): `caps` is the bounding set and
   * these four are applied as given, kept across the change of user; execve
   * then transforms them as the kernel does (root: permitted and effective
   * become bounding | inheritable; another user keeps the ambient set). */
  int caps_sets;
  uint64_t caps_effective, caps_permitted, caps_inheritable, caps_ambient;
  int seccomp_unconfined; /* 0: the default filter (see seccomp.c); 1: none */
  const char *seccomp_bpf; /* non-NULL: this program instead (an OCI bundle's profile, grove_seccomp_from_hex) */
  unsigned seccomp_flags;  /* SECCOMP_FILTER_FLAG_* of an OCI profile (0: installed with prctl) */
  uid_t uid;
  gid_t gid;
  const gid_t *groups;    /* supplementary groups */
  size_t ngroups;
  const grove_rlimit_t *rlimits;
  size_t nrlimits;
  int readonly_rootfs;    /* remount the root read-only after pivot_root */
  /* Made before pivot_root in this order (at most GROVE_MAX_MOUNTS); an error
   * names the mount ("config.json mounts[3] (destination /data): ..."). */
  const grove_mount_t *mounts;
  size_t nmounts;
  int hold_fd;            /* > 0: the init waits for one byte on this fd before execve (OCI create/start) */
  /* A user namespace (CLONE_NEWUSER) when nuid_maps > 0: every other namespace
   * is owned by it; the parent writes the maps before the init runs a step of
   * its own. Both lists are needed (at most GROVE_MAX_ID_MAPS lines each). */
  const grove_id_map_t *uid_maps;
  size_t nuid_maps;
  const grove_id_map_t *gid_maps;
  size_t ngid_maps;
  /* With a user namespace: 1 shows the rootfs to the container through an
   * idmapped mount (host uid 0 is container root; the files stay as they are);
   * on a filesystem without idmapped mounts (overlayfs on this kernel) the
   * ownership of the rootfs is shifted in place instead (chown), which is only
   * done on an overlayfs rootfs (a per-container copy-up). 0: the rootfs is used
   * as it is (OCI: the bundle's owner prepared it for the mapping). */
  int userns_idmap_rootfs;
  /* 1: the container's stdin, stdout and stderr are the caller's fds 0, 1 and 2
   * (OCI `run` without a terminal); log_path and stdio_fd are then unused. */
  int inherit_stdio;
  /* With inherit_stdio: these three descriptors instead of 0, 1 and 2 (the
   * shim keeps OCI create's caller's stdio aside for the container). */
  const int *inherit_fds;
  /* OCI process and linux settings (grove-runtime). */
  int oom_score_adj_set;  /* 1: write oom_score_adj (-1000..1000) before the command runs */
  int oom_score_adj;
  int umask_set;          /* 1: umask before execve */
  mode_t umask;
  int no_new_privs_off;   /* 1: leave no_new_privs unset (process.noNewPrivileges false, no filter) */
  const char *const *sysctls; /* "name=value", namespaced ones, written into /proc/sys before it turns read-only */
  size_t nsysctls;
  /* 0: a private cgroup namespace, rooted at the container's cgroups (its
   * /proc/self/cgroup shows "/"); 1: the caller's (an OCI bundle without a
   * cgroup namespace). */
  int host_cgroupns;
  /* OCI hooks (hooks.h), NULL: none. This runs prestart and createRuntime
   * (here, once the init's namespaces exist), createContainer (in the init,
   * before pivot_root) and startContainer (in the init, before execve). */
  const struct grove_hooks_s *hooks;
  /* Device nodes to make (mknod) once in the rootfs, before it may turn
   * read-only; an existing path is kept (as runc). In a user namespace, where
   * mknod is refused, the host's node at the same path is bind-mounted there
   * (as runc). */
  const grove_device_t *devices;
  size_t ndevices;
  /* OCI linux.maskedPaths and readonlyPaths beyond Grove's own lists (which
   * always apply): masked and made read-only after them, inside the root. */
  const char *const *masked_paths;
  size_t nmasked_paths;
  const char *const *readonly_paths;
  size_t nreadonly_paths;
  /* OCI linux.namespaces: NULL, a new uts / ipc namespace; else the one this
   * namespace file is (another container's, or /proc/self/ns/X: the
   * runtime's own when the bundle lists none). With a joined uts namespace
   * an empty hostname leaves the name alone. */
  const char *uts_ns_path;
  const char *ipc_ns_path;
  /* OCI linux.namespaces with a path: NULL, a new pid / mount / cgroup
   * namespace; else the one this namespace file is, joined as runc joins
   * it: pid by the parent before clone() (the init is born in it, not its
   * pid 1), mount by the init first (its mounts are then made in that
   * namespace), cgroup by the init once it is in its cgroups (in place of a
   * new one). With a user namespace (new or joined) the join stage joins
   * them all (see user_ns_path). */
  const char *pid_ns_path;
  const char *mnt_ns_path;
  const char *cgroup_ns_path;
  /* OCI linux.namespaces user with a path: the user namespace this file is,
   * joined first (the kernel's order: then every other namespace it owns can
   * be joined or made), with no maps to write (nuid_maps and ngid_maps 0).
   * A joined user namespace, or a new one together with namespaces joined
   * by path, or a time namespace, is made by a join stage (a forked process
   * on the host's side): it joins the paths, user first, then clone()s the
   * init with CLONE_PARENT into the new ones, as runc's nsexec does. */
  const char *user_ns_path;
  /* OCI time namespace: time_ns_path joins one; time_ns_new makes one with
   * these lines of /proc/self/timens_offsets ("monotonic 5 0"). */
  const char *time_ns_path;
  int time_ns_new;
  const char *const *time_offsets;
  size_t ntime_offsets;
  /* OCI linux.rootfsPropagation: the propagation the mount namespace's
   * mounts get before the rootfs is mounted (MS_SHARED, MS_SLAVE, MS_PRIVATE
   * or MS_UNBINDABLE, | MS_REC); the mount that holds the rootfs is then
   * made private when it is shared (pivot_root needs it, and the rootfs's
   * bind mount must not propagate out), as runc. 0: MS_REC | MS_PRIVATE,
   * every mount private (Grove's default; runc's is MS_REC | MS_SLAVE). */
  unsigned long rootfs_propagation;
  /* OCI domainname, linux.personality, process.ioPriority and scheduler
   * (oci_attrs.h), applied by the init before its change of user; NULL: none. */
  const struct grove_oci_attrs_s *attrs;
  /* > 0: a connected unix socket (OCI terminal: true, --console-socket). The
   * init opens a pty from its own devpts once /dev/pts is mounted (the
   * slave is /dev/pts/N inside), bind-mounts the slave on /dev/console,
   * sets console_rows x console_cols (when both > 0), sends the master on
   * this socket (SCM_RIGHTS, payload "/dev/ptmx", as runc) and closes its
   * copies; the slave becomes its controlling terminal and stdio, owned by
   * its user. The other stdio fields are then unused. */
  int console_fd;
  unsigned short console_rows, console_cols;
} grove_container_config_t;

typedef struct grove_container_s
{
  pid_t pid;
  int pidfd; /* O_CLOEXEC pidfd of the init: signals cannot hit a recycled pid */
} grove_container_t;

typedef struct grove_exit_s
{
  int exit_code; /* status, or 128 + signal */
  int signal;    /* 0 when it exited normally */
  int oom_killed;
} grove_exit_t;

/* Clones the init into new pid, mount, uts, ipc and net namespaces, joins it to
 * cfg->cgroup and then a new cgroup namespace, and returns once it has exec'd the command (or fails with the
 * child's error, e.g. "exec /bin/nosuch: No such file or directory"). */
int grove_container_start (const grove_container_config_t *cfg, grove_container_t *out, grove_error_t *err);

/* Blocks in waitpid(pid) (this pid only: never -1, Node reaps its own children),
 * then reads the cgroup's OOM kill count. */
int grove_container_wait (pid_t pid, const grove_cgroup_t *cg, grove_exit_t *result, grove_error_t *err);

/* pidfd_send_signal; returns 1 when sent, 0 when the process is gone (ESRCH). */
int grove_pidfd_signal (int pidfd, int sig, grove_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
