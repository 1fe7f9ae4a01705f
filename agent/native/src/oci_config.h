/* An OCI bundle's config.json (runtime-spec 1.0) read into a container
 * configuration: Grove's one OCI front end. grove-runtime (oci.c) runs what
 * it returns; the addon hands it to the TypeScript command line
 * (readOciBundle, agent/src/oci/config.ts), which runs it through
 * NativeRuntime. What Grove cannot honour is refused naming the field
 * ("config.json linux.sysctl: ..."), never ignored silently; properties the
 * runtime-spec does not define are ignored, as it requires; what Grove
 * always does (its masked and read-only paths, its /proc, /dev, /sys) is
 * accepted when the config asks for the same. */
#ifndef GROVE_OCI_CONFIG_H
#define GROVE_OCI_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include "cgroup.h"
#include "container.h"
#include "error.h"
#include "json.h"
#include "oci_resources.h"

#define GROVE_OCI_MAX_TOKENS 8192
#define GROVE_OCI_MAX_LIST 1024
#define GROVE_OCI_MAX_GROUPS 64
#define GROVE_OCI_MAX_RLIMITS 16
#define GROVE_OCI_MAX_DEVICE_RULES 64

/* Everything a container needs, read from the bundle. Large (its tokens):
 * keep one static or on the heap. Strings are malloc'd; grove_oci_bundle_free. */
typedef struct grove_oci_bundle_s
{
  char *text;
  grove_jtok_t toks[GROVE_OCI_MAX_TOKENS];
  char *rootfs, *cwd, *hostname, *netns;
  char *argv[GROVE_OCI_MAX_LIST + 1];
  char *envp[GROVE_OCI_MAX_LIST + 1]; /* HOME added from the rootfs's /etc/passwd when missing */
  gid_t groups[GROVE_OCI_MAX_GROUPS];
  size_t ngroups;
  grove_rlimit_t rlimits[GROVE_OCI_MAX_RLIMITS];
  size_t nrlimits;
  grove_resources_t res; /* 0: no limit asked for */
  long long cpu_shares;  /* linux.resources.cpu.shares, 0 when absent */
  grove_id_map_t uid_maps[GROVE_MAX_ID_MAPS], gid_maps[GROVE_MAX_ID_MAPS];
  int userns;
  grove_device_rule_t dev_rules[GROVE_OCI_MAX_DEVICE_RULES];
  char dev_text[GROVE_OCI_MAX_DEVICE_RULES][64];
  grove_mount_t mounts[GROVE_MAX_MOUNTS];
  grove_device_t devices[GROVE_MAX_DEVICES]; /* linux.devices besides Grove's own */
  char *masked[GROVE_MAX_EXTRA_PATHS], *readonly[GROVE_MAX_EXTRA_PATHS]; /* beyond Grove's lists */
  char *uts_ns, *ipc_ns;  /* joined (a path, or /proc/self/ns/X when not listed); NULL: new */
  char *pid_ns, *mnt_ns, *cgroup_ns; /* joined by path; NULL: new (cgroup: or the runtime's) */
  char *user_ns, *time_ns;           /* joined by path; NULL: new (when listed) */
  int timens;                        /* linux.namespaces lists time */
  char time_offsets[2][64];          /* linux.timeOffsets as timens_offsets lines */
  const char *time_offset_ptrs[2];
  int uts_listed, ipc_listed;
  int host_net; /* linux.namespaces has no network: the runtime's (netns is /proc/self/ns/net) */
  char *cgroups_path; /* linux.cgroupsPath as given; NULL: none (grove-runtime: <--cgroup-parent>/<id>) */
  char *hooks_blob; /* hooks (hooks.h's blob, with id, bundle and annotations); NULL: none */
  size_t hooks_len;
  char *annotations; /* the config's annotations object as JSON text ("{}" when none) */
  int terminal;      /* process.terminal (cc.console_rows and console_cols: its consoleSize) */
  /* The token of linux.seccomp (an object), 0 when there is none: the static
   * grove-runtime compiles it (oci_seccomp.c) into cc.seccomp_bpf. */
  int seccomp_tok;
  /* process.capabilities' effective, permitted and inheritable masks as the
   * config gave them, -1 when absent (the TypeScript command line gives one
   * set and refuses others; cc has the sets grove-runtime applies). */
  long long cap_given[3];
  char *sysctl_text[GROVE_MAX_SYSCTLS]; /* "name=value" */
  /* Fields set in the config that the static grove-runtime applies and the
   * TypeScript command line does not ("process.oomScoreAdj", ...): it refuses them. */
  const char *static_only[16];
  size_t nstatic_only;
  /* domainname, personality, ioPriority, scheduler (cc.attrs points here
   * when one is set) and the linux.resources written besides the driver's
   * (oci_resources.h: grove-runtime writes them after the driver's setup). */
  grove_oci_attrs_t attrs;
  grove_oci_xres_t xres;
  grove_container_config_t cc; /* points into the above; cgroup, log and stdio are the caller's */
} grove_oci_bundle_t;

/* Reads <bundle>/config.json for container id into b (zeroed first). -1 with
 * err ("config.json FIELD: ...", or the file and errno) when it is refused. */
int grove_oci_bundle_load (grove_oci_bundle_t *b, const char *bundle, const char *id, grove_error_t *err);

/* Frees what grove_oci_bundle_load allocated (also after a failure). */
void grove_oci_bundle_free (grove_oci_bundle_t *b);

#endif
