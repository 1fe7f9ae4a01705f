/* The runtime boundary's configuration: what the agent (and grove-runtime)
 * hands grove-shim on fd 3 and the exec helper on fd 3, as NUL-terminated
 * "key" "value" pairs until EOF.
 *
 * The key names are declared here once; agent/src/runtime/shim-protocol.ts
 * declares the same names in its one table (SHIM_KEYS), and its unit test
 * reads this header and fails when the two disagree.
 *
 * The process keys (caps, seccomp, uid, gid, group, rlimit, arg, env) are
 * the same for the container's init (grove-shim) and for an exec'd process
 * (grove-shim exec): one parser, grove_process_config_key(), reads them for
 * both, and one writer, grove_process_config_write(), writes them from a
 * container configuration (grove-runtime create). */
#ifndef GROVE_SHIM_PROTOCOL_H
#define GROVE_SHIM_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "container.h"
#include "error.h"

/* Both configurations. */
#define GROVE_KEY_ID "id"                       /* container id: names its cgroup */
#define GROVE_KEY_CWD "cwd"                     /* absolute working directory inside the container */
#define GROVE_KEY_CGROUP_MODE "cgroup_mode"     /* "v1" | "v2" */
#define GROVE_KEY_CGROUP_ROOT "cgroup_root"     /* where cgroupfs is mounted */
#define GROVE_KEY_CGROUP_PARENT "cgroup_parent" /* parent cgroup of the runtime's containers */
#define GROVE_KEY_CGROUP_NAME "cgroup_name"     /* the container's cgroup under it when not its id (OCI cgroupsPath) */

/* The process keys, shared (grove_process_config_t). */
#define GROVE_KEY_CAPS "caps"       /* decimal u64 mask (bounding = permitted = effective); or the five sets \
                                       "BOUNDING:EFFECTIVE:PERMITTED:INHERITABLE:AMBIENT" (OCI); absent: Docker's */
#define GROVE_KEY_SECCOMP "seccomp" /* "default" | "unconfined" | "bpf:" and a program (grove_seccomp_from_hex) */
#define GROVE_KEY_SECCOMP_FLAGS "seccomp_flags" /* decimal SECCOMP_FILTER_FLAG_* for the "bpf:" program */
#define GROVE_KEY_UID "uid"
#define GROVE_KEY_GID "gid"
#define GROVE_KEY_GROUP "group"   /* one per supplementary gid */
#define GROVE_KEY_RLIMIT "rlimit" /* "RESOURCE:SOFT:HARD", RESOURCE an RLIMIT_* number */
#define GROVE_KEY_ARG "arg"       /* one per argv element, in order */
#define GROVE_KEY_ENV "env"       /* one "KEY=value" per variable */

/* grove-shim only (the container's start). */
#define GROVE_KEY_ROOTFS "rootfs"
#define GROVE_KEY_HOSTNAME "hostname"
#define GROVE_KEY_LOG "log"         /* host file of the container's stdout and stderr */
#define GROVE_KEY_LOG_MAX "log_max" /* rotate to <log>.1 past this many bytes */
#define GROVE_KEY_DIR "dir"         /* the container's state directory (records, shim.sock) */
#define GROVE_KEY_NETNS "netns"     /* join this network namespace instead of a new one */
#define GROVE_KEY_MOUNT_SRC "mount_src" /* starts a bind mount; mount_dst and mount_ro follow */
#define GROVE_KEY_MOUNT_DST "mount_dst"
#define GROVE_KEY_MOUNT_RO "mount_ro" /* "1" | "0" */
#define GROVE_KEY_READONLY_ROOTFS "readonly_rootfs" /* "1" */
#define GROVE_KEY_CGROUPNS "cgroupns"               /* "host": stay in the runtime's cgroup namespace */
#define GROVE_KEY_UID_MAP "uid_map"                 /* "CONTAINER:HOST:SIZE", one per line */
#define GROVE_KEY_GID_MAP "gid_map"
#define GROVE_KEY_USERNS_IDMAP "userns_idmap" /* "1": show the rootfs through an idmapped mount */
#define GROVE_KEY_HOLD "hold" /* "1": OCI create, the init waits for "start"; "stdio": and gets the shim's fds 0-2 */

/* grove-shim, written by grove-runtime only (OCI bundles; not in the agent's ShimConfig). */
#define GROVE_KEY_OOM_SCORE_ADJ "oom_score_adj" /* -1000..1000 */
#define GROVE_KEY_UMASK "umask"                 /* octal */
#define GROVE_KEY_NO_NEW_PRIVS "no_new_privs"   /* "0": leave it unset */
#define GROVE_KEY_SYSCTL "sysctl"               /* "name=value", one per sysctl */
#define GROVE_KEY_MOUNT_TYPE "mount_type"       /* after mount_src: a new filesystem of this type (tmpfs) */
#define GROVE_KEY_MOUNT_FLAGS "mount_flags"     /* its MS_* flags, decimal */
#define GROVE_KEY_MOUNT_DATA "mount_data"       /* its options (size=1m,mode=1777) */
#define GROVE_KEY_MOUNT_OWN "mount_own"         /* after mount_src: "1", Grove's own /proc, /dev or /sys made here */
#define GROVE_KEY_MOUNT_FIELD "mount_field"     /* after mount_src: what its errors name (config.json mounts[3]) */
#define GROVE_KEY_MOUNT_PROPAGATION "mount_propagation" /* after mount_src: MS_* propagation flags, decimal, one per change */
#define GROVE_KEY_ROOTFS_PROPAGATION "rootfs_propagation" /* linux.rootfsPropagation's MS_* flags, decimal */
#define GROVE_KEY_HOOKS "hooks"                 /* file of the OCI hooks (hooks.h's blob) */
#define GROVE_KEY_MASKED_PATH "masked_path"     /* one per path masked beyond Grove's list */
#define GROVE_KEY_READONLY_PATH "readonly_path" /* one per path made read-only beyond Grove's list */
#define GROVE_KEY_UTS_NS "uts_ns" /* join this uts namespace instead of a new one */
#define GROVE_KEY_IPC_NS "ipc_ns" /* join this ipc namespace instead of a new one */
#define GROVE_KEY_PID_NS "pid_ns" /* join this pid namespace instead of a new one */
#define GROVE_KEY_MNT_NS "mnt_ns" /* join this mount namespace instead of a new one */
#define GROVE_KEY_CGROUP_NS "cgroup_ns" /* join this cgroup namespace instead of a new one */
#define GROVE_KEY_USER_NS "user_ns" /* join this user namespace (first) instead of a new one */
#define GROVE_KEY_TIME_NS "time_ns" /* "new", or join this time namespace */
#define GROVE_KEY_TIME_OFFSET "time_offset" /* "monotonic|boottime SECS NANOSECS", one per clock, with time_ns new */
#define GROVE_KEY_DEVICE "device" /* "MODE:MAJOR:MINOR:UID:GID:PATH", MODE octal with S_IFCHR/S_IFBLK/S_IFIFO */
#define GROVE_KEY_PROC_ATTR "proc_attr" /* one per OCI process attribute (oci_attrs.h): "domainname:NAME", ... */
#define GROVE_KEY_CGROUP_V1_JOIN "cgroup_v1_join" /* grove_cgroup_t.v1_join, decimal: extra v1 hierarchies joined */
#define GROVE_KEY_CGROUP_PREFIX "cgroup_prefix" /* v1 "CONTROLLER:/PATH", one per hierarchy: grove_cgroup_t.v1_prefix */
#define GROVE_KEY_CONSOLE_SOCKET "console_socket" /* terminal: true, --console-socket; its size: rows, cols */

/* grove-shim of a runtime handler instance only (shim_runtime.c). */
#define GROVE_KEY_RUNTIME "runtime"           /* the OCI runtime's executable */
#define GROVE_KEY_BUNDLE "bundle"             /* the bundle directory the agent wrote (config.json) */
#define GROVE_KEY_RUNTIME_ROOT "runtime_root" /* the runtime's --root (its state directory) */

/* grove-shim exec only. */
#define GROVE_KEY_PID "pid" /* host pid of the container's init */
#define GROVE_KEY_TTY "tty" /* "1": a new terminal of the container */
#define GROVE_KEY_COLS "cols" /* also grove-shim's, with console_socket */
#define GROVE_KEY_ROWS "rows"

#define GROVE_MAX_ARGS 4096
#define GROVE_MAX_GROUPS 64
#define GROVE_MAX_RLIMITS 16

/* The process part of a configuration; its strings point into the blob. */
typedef struct grove_process_config_s
{
  char *argv[GROVE_MAX_ARGS + 1]; /* NULL-terminated by grove_process_config_finish */
  char *envp[GROVE_MAX_ARGS + 1];
  size_t argc, envc;
  int caps_set; /* 0: Docker's default capabilities */
  uint64_t caps;
  int caps_sets; /* the five-set form: caps is the bounding set */
  uint64_t caps_effective, caps_permitted, caps_inheritable, caps_ambient;
  int seccomp_unconfined;
  const char *seccomp_bpf; /* "bpf:" value: the program's hex, or NULL */
  unsigned seccomp_flags;
  uid_t uid;
  gid_t gid;
  gid_t groups[GROVE_MAX_GROUPS];
  size_t ngroups;
  grove_rlimit_t rlimits[GROVE_MAX_RLIMITS];
  size_t nrlimits;
} grove_process_config_t;

/* Takes key/val when key is a process key: 1 when taken, 0 when key is not a
 * process key, -1 (err names `what` and the key) when the value is malformed
 * or a list is full. */
int grove_process_config_key (grove_process_config_t *p, const char *key, char *val, const char *what,
                              grove_error_t *err);

/* After the last pair: NULL-terminates argv and envp; -1 without an arg or
 * with an empty argv[0]. */
int grove_process_config_finish (grove_process_config_t *p, const char *what, grove_error_t *err);

/* Points a container configuration's process fields at p. */
void grove_process_config_apply (const grove_process_config_t *p, grove_container_config_t *cc);

/* A decimal number that fills all of val and is at most max: 0, else -1. */
int grove_parse_u64 (const char *val, uint64_t max, uint64_t *out);

/* Writes "key\0value\0". */
void grove_config_put (FILE *out, const char *key, const char *val);

/* Writes the process keys of cc (caps only when caps_set; five sets when caps_sets). */
void grove_process_config_write (FILE *out, const grove_container_config_t *cc);

#endif
