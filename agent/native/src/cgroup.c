#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CFS_PERIOD_US 100000

/* Controllers Grove needs on v1; cpuacct is joined when mounted, never required.
 * devices is required by setup (v1_setup refuses without it) but stays on the
 * optional list for the others: a host may lose it after containers ran. */
static const char *const v1_required[] = { "memory", "cpu", "pids" };
static const char *const v1_optional[] = { "cpuacct", "devices", "freezer" };
const char *const grove_cgroup_v1_extra[GROVE_CGROUP_V1_NEXTRA]
    = { "cpuset", "blkio", "hugetlb", "net_cls", "net_prio", "rdma", "perf_event", "systemd", "unified" };

/* The devices a container may use: the minimal /dev, and mknod of anything
 * (as Docker); reading or writing other devices is refused. v1 writes it to the
 * devices cgroup; v2 compiles it into an eBPF device program (below). */
static const char *const v1_device_allow[] = { "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                                                "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm" };
#define N_ELEMENTS(a) (sizeof (a) / sizeof ((a)[0]))

void
grove_string_list_free (char **list, size_t count)
{
  if (list == NULL)
    return;
  for (size_t i = 0; i < count; i++)
    free (list[i]);
  free (list);
}

int
grove_cgroup_detect (const char *root, grove_cgroup_mode_t *mode, grove_error_t *err)
{
  struct statfs st;

  if (statfs (root, &st) < 0)
    return grove_error_set (err, errno, "statfs %s", root);
  *mode = st.f_type == CGROUP2_SUPER_MAGIC ? GROVE_CGROUP_V2 : GROVE_CGROUP_V1;
  return 0;
}

const struct grove_cgroup_ops *
grove_cgroup_ops_for (grove_cgroup_mode_t mode)
{
  return mode == GROVE_CGROUP_V2 ? &grove_cgroup_v2_ops : &grove_cgroup_v1_ops;
}

const char *
grove_cgroup_v1_prefix (const grove_cgroup_t *cg, const char *controller)
{
  for (size_t i = 0; cg->mode == GROVE_CGROUP_V1 && i < cg->nv1_prefix; i++)
    if (strcmp (cg->v1_prefix[i].controller, controller) == 0)
      return cg->v1_prefix[i].prefix;
  return "";
}

/* <base>[/<prefix>]/<parent>[/<id>]; the prefix of the hierarchy base is
 * (<root>/<controller>) on v1. */
static int
cgroup_path (char **out, const char *base, const grove_cgroup_t *cg, int with_id, grove_error_t *err)
{
  size_t n = strlen (cg->root);
  const char *pre = cg->nv1_prefix > 0 && strncmp (base, cg->root, n) == 0 && base[n] == '/'
                        ? grove_cgroup_v1_prefix (cg, base + n + 1)
                        : "";
  if (with_id && cg->id != NULL)
    return grove_asprintf (out, err, "%s%s%s/%s/%s", base, *pre != '\0' ? "/" : "", pre, cg->parent, cg->id);
  return grove_asprintf (out, err, "%s%s%s/%s", base, *pre != '\0' ? "/" : "", pre, cg->parent);
}

int
grove_cgroup_dir (const grove_cgroup_t *cg, const char *controller, char **out, grove_error_t *err)
{
  cleanup_free char *base = NULL;
  if (cg->mode == GROVE_CGROUP_V2)
    return cgroup_path (out, cg->root, cg, 1, err);
  if (grove_asprintf (&base, err, "%s/%s", cg->root, controller) < 0)
    return -1;
  return cgroup_path (out, base, cg, 1, err);
}

static int
write_in (const char *dir, const char *file, const char *value, grove_error_t *err)
{
  cleanup_free char *path = NULL;
  if (grove_asprintf (&path, err, "%s/%s", dir, file) < 0)
    return -1;
  return grove_write_file (path, value, err);
}

static int
write_in_if_exists (const char *dir, const char *file, const char *value, grove_error_t *err)
{
  cleanup_free char *path = NULL;
  if (grove_asprintf (&path, err, "%s/%s", dir, file) < 0)
    return -1;
  return grove_write_file_if_exists (path, value, err) < 0 ? -1 : 0;
}

/* Reads "<key> N" from a flat-keyed file such as memory.events. */
static int
read_keyed (const char *path, const char *key, int64_t *value, grove_error_t *err)
{
  cleanup_free char *buf = NULL;
  size_t klen = strlen (key);

  if (grove_read_file (path, &buf, err) < 0)
    return -1;
  for (char *line = buf; line != NULL && *line != '\0';)
    {
      char *next = strchr (line, '\n');
      if (next != NULL)
        *next++ = '\0';
      if (strncmp (line, key, klen) == 0 && line[klen] == ' ')
        {
          *value = strtoll (line + klen + 1, NULL, 10);
          return 0;
        }
      line = next;
    }
  return grove_error_set (err, 0, "no `%s` in %s", key, path);
}

/* Signals the pids listed in <dir>/cgroup.procs; with SIGKILL, repeats until the
 * list is empty (a process forking while we read is caught by the next pass). */
static int
kill_procs (const char *dir, int sig, int *signalled, grove_error_t *err)
{
  cleanup_free char *procs = NULL;
  int total = 0;

  if (grove_asprintf (&procs, err, "%s/cgroup.procs", dir) < 0)
    return -1;
  for (int pass = 0; pass < 500; pass++)
    {
      cleanup_free char *buf = NULL;
      int seen = 0;
      struct timespec ts = { 0, 10 * 1000 * 1000 };

      if (grove_read_file (procs, &buf, err) < 0)
        {
          if (err->errnum == ENOENT)
            break;
          return -1;
        }
      for (char *p = buf; *p != '\0';)
        {
          char *end;
          long pid = strtol (p, &end, 10);
          if (end == p)
            break;
          p = end;
          while (*p == '\n')
            p++;
          if (pid <= 0)
            continue;
          seen++;
          if (kill ((pid_t) pid, sig) == 0 && pass == 0)
            total++;
        }
      if (seen == 0 || sig != SIGKILL)
        break;
      nanosleep (&ts, NULL);
    }
  if (signalled != NULL)
    *signalled = total;
  return 0;
}

static int
list_children (const char *dir, char ***ids, size_t *count, grove_error_t *err)
{
  cleanup_dir DIR *d = opendir (dir);
  struct dirent *de;

  if (d == NULL)
    {
      if (errno == ENOENT)
        return 0;
      return grove_error_set (err, errno, "opendir %s", dir);
    }
  while ((de = readdir (d)) != NULL)
    {
      int dup = 0;
      char **nids;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      for (size_t i = 0; i < *count; i++)
        if (strcmp ((*ids)[i], de->d_name) == 0)
          dup = 1;
      if (dup)
        continue;
      nids = realloc (*ids, (*count + 1) * sizeof (char *));
      if (nids == NULL)
        return grove_error_set (err, ENOMEM, "list %s", dir);
      *ids = nids;
      (*ids)[*count] = strdup (de->d_name);
      if ((*ids)[*count] == NULL)
        return grove_error_set (err, ENOMEM, "list %s", dir);
      (*count)++;
    }
  return 0;
}

/* cpu.shares as Kubernetes computes it: 1024 per CPU, at least 2. */
static int64_t
cpu_shares (int64_t millis)
{
  int64_t shares = millis * 1024 / 1000;
  return shares < 2 ? 2 : shares;
}

/* ---- v1 ---------------------------------------------------------------- */

static int
v1_controller_mounted (const char *root, const char *controller)
{
  char path[4096];
  struct stat st;
  snprintf (path, sizeof (path), "%s/%s", root, controller);
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

unsigned
grove_cgroup_v1_extras_mounted (const char *root)
{
  unsigned bits = 0;
  for (size_t i = 0; i < GROVE_CGROUP_V1_NEXTRA; i++)
    if (v1_controller_mounted (root, grove_cgroup_v1_extra[i]))
      bits |= 1u << i;
  return bits;
}

int
grove_cgroup_of (const char *text, const char *controller, char *out, size_t cap)
{
  size_t want = controller != NULL ? strlen (controller) : 0;
  for (const char *line = text; *line != '\0';)
    {
      const char *end = strchr (line, '\n');
      const char *c1, *c2 = NULL;
      int match = 0;
      if (end == NULL)
        end = line + strlen (line);
      c1 = memchr (line, ':', (size_t) (end - line));
      if (c1 != NULL)
        c2 = memchr (c1 + 1, ':', (size_t) (end - c1 - 1));
      if (c2 != NULL && controller == NULL)
        match = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
      else if (c2 != NULL)
        for (const char *p = c1 + 1; !match && p < c2;)
          {
            const char *q = memchr (p, ',', (size_t) (c2 - p));
            if (q == NULL)
              q = c2;
            match = (size_t) (q - p) == want && memcmp (p, controller, want) == 0;
            p = q + 1;
          }
      if (match)
        {
          snprintf (out, cap, "%.*s", (int) (end - c2 - 1), c2 + 1);
          return 0;
        }
      line = *end != '\0' ? end + 1 : end;
    }
  return -1;
}

static int
v1_mkdirs (const grove_cgroup_t *cg, const char *controller, char **out, grove_error_t *err)
{
  cleanup_free char *base = NULL;
  cleanup_free char *parent = NULL;

  if (grove_asprintf (&base, err, "%s/%s", cg->root, controller) < 0)
    return -1;
  if (cgroup_path (&parent, base, cg, 0, err) < 0 || grove_mkdir (parent, 0755, err) < 0)
    return -1;
  if (cgroup_path (out, base, cg, 1, err) < 0)
    return -1;
  return grove_mkdir (*out, 0755, err);
}

/* Whether <dir>/devices.list already is exactly the allow list: a second setup
 * (a live update of the limits) must not write "deny a" again, which would
 * refuse every device to the running container until the allow lines follow. */
static int
v1_devices_in_place (const char *dir)
{
  cleanup_free char *file = NULL;
  cleanup_free char *buf = NULL;
  grove_error_t ignored = { 0 };
  size_t lines = 0;

  if (grove_asprintf (&file, &ignored, "%s/devices.list", dir) < 0 || grove_read_file (file, &buf, &ignored) < 0)
    return 0;
  for (char *line = buf, *next; *line != '\0'; line = next)
    {
      int known = 0;
      next = strchr (line, '\n');
      if (next != NULL)
        *next++ = '\0';
      else
        next = line + strlen (line);
      if (*line == '\0')
        continue;
      for (size_t d = 0; d < N_ELEMENTS (v1_device_allow); d++)
        if (strcmp (line, v1_device_allow[d]) == 0)
          known = 1;
      if (!known)
        return 0;
      lines++;
    }
  return lines == N_ELEMENTS (v1_device_allow);
}

/* v1 memory.memsw.limit_in_bytes: the memory limit (no swap), OCI's swap
 * (memory + swap) as given, or -1 (unlimited). */
static void
memsw_value (const grove_resources_t *res, char *out, size_t cap)
{
  snprintf (out, cap, "%" PRId64,
            res->memory_swap_bytes > 0 ? res->memory_swap_bytes
            : res->memory_swap_bytes < 0 ? -1
                                         : res->memory_bytes);
}

static int
v1_setup (const grove_cgroup_t *cg, const grove_resources_t *res, grove_error_t *err)
{
  cleanup_free char *memory = NULL;
  cleanup_free char *cpu = NULL;
  cleanup_free char *pids = NULL;
  char value[64];

  /* mknod is allowed (as with Docker): only the devices controller keeps a
   * container from opening a node it made, e.g. the host's disk. */
  if (!v1_controller_mounted (cg->root, "devices"))
    return grove_error_set (err, EOPNOTSUPP,
                            "cgroup v1: the devices controller is not mounted (no %s/devices); without it a container "
                            "could open any device node it creates, so Grove refuses to run containers (mount it: "
                            "mount -t cgroup -o devices devices %s/devices)",
                            cg->root, cg->root);
  if (v1_mkdirs (cg, "memory", &memory, err) < 0 || v1_mkdirs (cg, "cpu", &cpu, err) < 0
      || v1_mkdirs (cg, "pids", &pids, err) < 0)
    return -1;
  for (size_t i = 0; i < N_ELEMENTS (v1_optional); i++)
    if (v1_controller_mounted (cg->root, v1_optional[i]))
      {
        cleanup_free char *opt = NULL;
        if (v1_mkdirs (cg, v1_optional[i], &opt, err) < 0)
          return -1;
        if (strcmp (v1_optional[i], "devices") == 0 && cg->id != NULL && !v1_devices_in_place (opt))
          {
            if (write_in (opt, "devices.deny", "a", err) < 0)
              return -1;
            for (size_t d = 0; d < res->ndevices; d++)
              if (write_in (opt, res->devices[d].allow ? "devices.allow" : "devices.deny", res->devices[d].rule, err) < 0)
                return -1;
            for (size_t d = 0; d < N_ELEMENTS (v1_device_allow); d++)
              if (write_in (opt, "devices.allow", v1_device_allow[d], err) < 0)
                return -1;
          }
      }

  if (res->memory_bytes > 0)
    {
      char memsw[32];
      memsw_value (res, memsw, sizeof (memsw));
      snprintf (value, sizeof (value), "%" PRId64, res->memory_bytes);
      /* memsw (memory + swap) exists only with swap accounting; same value = no swap.
       * The kernel keeps memsw >= memory: raising a live limit (an update) takes
       * memsw first, lowering takes memory first. */
      if (write_in (memory, "memory.limit_in_bytes", value, err) < 0)
        {
          if (err->errnum != EINVAL || write_in_if_exists (memory, "memory.memsw.limit_in_bytes", memsw, err) < 0
              || write_in (memory, "memory.limit_in_bytes", value, err) < 0)
            return -1;
        }
      if (write_in_if_exists (memory, "memory.memsw.limit_in_bytes", memsw, err) < 0)
        return -1;
    }
  if (res->cpu_millis > 0)
    {
      snprintf (value, sizeof (value), "%" PRId64, res->cpu_period_us > 0 ? res->cpu_period_us : CFS_PERIOD_US);
      if (write_in (cpu, "cpu.cfs_period_us", value, err) < 0)
        return -1;
      snprintf (value, sizeof (value), "%" PRId64,
                res->cpu_period_us > 0 ? res->cpu_quota_us : res->cpu_millis * (CFS_PERIOD_US / 1000));
      if (write_in (cpu, "cpu.cfs_quota_us", value, err) < 0)
        return -1;
      snprintf (value, sizeof (value), "%" PRId64, cpu_shares (res->cpu_millis));
      if (write_in (cpu, "cpu.shares", value, err) < 0)
        return -1;
    }
  if (res->pids > 0)
    snprintf (value, sizeof (value), "%" PRId64, res->pids);
  else
    snprintf (value, sizeof (value), "max");
  return write_in (pids, "pids.max", value, err);
}

static int
v1_enter (const grove_cgroup_t *cg, pid_t pid, grove_error_t *err)
{
  char value[32];
  snprintf (value, sizeof (value), "%d", (int) pid);

  for (size_t i = 0; i < N_ELEMENTS (v1_required) + N_ELEMENTS (v1_optional); i++)
    {
      int optional = i >= N_ELEMENTS (v1_required);
      const char *controller = optional ? v1_optional[i - N_ELEMENTS (v1_required)] : v1_required[i];
      cleanup_free char *base = NULL;
      cleanup_free char *dir = NULL;

      if (optional && !v1_controller_mounted (cg->root, controller))
        continue;
      if (grove_asprintf (&base, err, "%s/%s", cg->root, controller) < 0
          || cgroup_path (&dir, base, cg, 1, err) < 0 || write_in (dir, "cgroup.procs", value, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < GROVE_CGROUP_V1_NEXTRA; i++)
    {
      cleanup_free char *base = NULL;
      cleanup_free char *dir = NULL;
      if ((cg->v1_join & (1u << i))
          && (grove_asprintf (&base, err, "%s/%s", cg->root, grove_cgroup_v1_extra[i]) < 0
              || cgroup_path (&dir, base, cg, 1, err) < 0 || write_in (dir, "cgroup.procs", value, err) < 0))
        return -1;
    }
  return 0;
}

static int
v1_kill (const grove_cgroup_t *cg, int sig, int *signalled, grove_error_t *err)
{
  cleanup_free char *base = NULL;
  cleanup_free char *dir = NULL;

  /* Every process of the container is in its pids cgroup. */
  if (grove_asprintf (&base, err, "%s/pids", cg->root) < 0 || cgroup_path (&dir, base, cg, 1, err) < 0)
    return -1;
  return kill_procs (dir, sig, signalled, err);
}

static int
v1_remove (const grove_cgroup_t *cg, grove_error_t *err)
{
  /* Try every hierarchy even when one refuses, so that one busy controller
   * does not leave the others behind; report the first failure. */
  int ret = 0;
  for (size_t i = 0; i < N_ELEMENTS (v1_required) + N_ELEMENTS (v1_optional); i++)
    {
      const char *controller
          = i < N_ELEMENTS (v1_required) ? v1_required[i] : v1_optional[i - N_ELEMENTS (v1_required)];
      cleanup_free char *base = NULL;
      cleanup_free char *dir = NULL;
      grove_error_t one = { 0 };

      if (grove_asprintf (&base, err, "%s/%s", cg->root, controller) < 0 || cgroup_path (&dir, base, cg, 1, err) < 0)
        return -1;
      if (grove_rmdir (dir, ret < 0 ? &one : err) < 0)
        ret = -1;
    }
  /* An OCI bundle's extra hierarchies (grove-runtime): missing is fine. */
  for (size_t i = 0; i < GROVE_CGROUP_V1_NEXTRA; i++)
    {
      cleanup_free char *base = NULL;
      cleanup_free char *dir = NULL;
      grove_error_t one = { 0 };
      if (!v1_controller_mounted (cg->root, grove_cgroup_v1_extra[i]))
        continue;
      if (grove_asprintf (&base, err, "%s/%s", cg->root, grove_cgroup_v1_extra[i]) < 0
          || cgroup_path (&dir, base, cg, 1, err) < 0)
        return -1;
      if (grove_rmdir (dir, ret < 0 ? &one : err) < 0)
        ret = -1;
    }
  return ret;
}

static int
v1_list (const grove_cgroup_t *cg, char ***ids, size_t *count, grove_error_t *err)
{
  /* Every hierarchy a container may have a cgroup in: a leftover can be in an
   * optional one only (a removal that stopped half-way). */
  *ids = NULL;
  *count = 0;
  for (size_t i = 0; i < N_ELEMENTS (v1_required) + N_ELEMENTS (v1_optional); i++)
    {
      const char *controller
          = i < N_ELEMENTS (v1_required) ? v1_required[i] : v1_optional[i - N_ELEMENTS (v1_required)];
      cleanup_free char *base = NULL;
      cleanup_free char *dir = NULL;
      if (grove_asprintf (&base, err, "%s/%s", cg->root, controller) < 0
          || cgroup_path (&dir, base, cg, 0, err) < 0 || list_children (dir, ids, count, err) < 0)
        {
          grove_string_list_free (*ids, *count);
          *ids = NULL;
          *count = 0;
          return -1;
        }
    }
  return 0;
}

static int
v1_oom_kills (const grove_cgroup_t *cg, int64_t *count, grove_error_t *err)
{
  cleanup_free char *base = NULL;
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;

  if (grove_asprintf (&base, err, "%s/memory", cg->root) < 0 || cgroup_path (&dir, base, cg, 1, err) < 0
      || grove_asprintf (&path, err, "%s/memory.oom_control", dir) < 0)
    return -1;
  return read_keyed (path, "oom_kill", count, err);
}

const struct grove_cgroup_ops grove_cgroup_v1_ops = {
  .setup = v1_setup,
  .enter = v1_enter,
  .kill = v1_kill,
  .remove = v1_remove,
  .list = v1_list,
  .oom_kills = v1_oom_kills,
};

/* ---- v2 device program -------------------------------------------------- */

/* One rule of the allow list: type 'a' (any), 'c' or 'b'; -1 = any number. */
struct device_rule
{
  char type;
  int64_t major, minor;
  uint32_t access; /* BPF_DEVCG_ACC_* bits */
};

static int
parse_device_number (const char **p, int64_t *out)
{
  char *end;
  if (**p == '*')
    {
      *out = -1;
      (*p)++;
      return 0;
    }
  *out = strtoll (*p, &end, 10);
  if (end == *p || *out < 0)
    return -1;
  *p = end;
  return 0;
}

/* "c 1:3 rwm" (the v1 devices.allow syntax) -> rule. */
static int
parse_device_rule (const char *text, struct device_rule *r, grove_error_t *err)
{
  const char *p = text;
  r->type = *p++;
  if ((r->type != 'a' && r->type != 'c' && r->type != 'b') || *p++ != ' ' || parse_device_number (&p, &r->major) < 0
      || *p++ != ':' || parse_device_number (&p, &r->minor) < 0 || *p++ != ' ')
    return grove_error_set (err, EINVAL, "device rule `%s`: not TYPE MAJOR:MINOR ACCESS", text);
  r->access = 0;
  for (; *p != '\0'; p++)
    {
      if (*p == 'r')
        r->access |= BPF_DEVCG_ACC_READ;
      else if (*p == 'w')
        r->access |= BPF_DEVCG_ACC_WRITE;
      else if (*p == 'm')
        r->access |= BPF_DEVCG_ACC_MKNOD;
      else
        return grove_error_set (err, EINVAL, "device rule `%s`: access must be of r, w, m", text);
    }
  return 0;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ (uint8_t) (c), (d), (s), (int16_t) (o), (int32_t) (i) })
#define LDX_W(dst, src, off) INSN (BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm) INSN (BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) INSN (BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define JNE_IMM(dst, imm, off) INSN (BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define MOV64_IMM(dst, imm) INSN (BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define EXIT_INSN() INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

int
grove_device_rule_check (const char *rule, grove_error_t *err)
{
  struct device_rule r;
  return parse_device_rule (rule, &r, err);
}

int
grove_device_program (const grove_device_rule_t *extra, size_t nextra, struct bpf_insn **out, size_t *count,
                      grove_error_t *err)
{
  const size_t ndefault = N_ELEMENTS (v1_device_allow);
  const size_t nrules = ndefault + nextra;
  int unconditional = 0;
  /* 6 to load the context, at most 8 per rule, 2 to deny. */
  struct bpf_insn *insn = calloc (6 + 8 * nrules + 2, sizeof (struct bpf_insn));
  size_t n = 0;

  if (insn == NULL)
    return grove_error_set (err, ENOMEM, "device program");
  /* struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } */
  insn[n++] = LDX_W (BPF_REG_2, BPF_REG_1, 0);
  insn[n++] = ALU32_IMM (BPF_AND, BPF_REG_2, 0xffff); /* r2 = type */
  insn[n++] = LDX_W (BPF_REG_3, BPF_REG_1, 0);
  insn[n++] = ALU32_IMM (BPF_RSH, BPF_REG_3, 16); /* r3 = access */
  insn[n++] = LDX_W (BPF_REG_4, BPF_REG_1, 4);    /* r4 = major */
  insn[n++] = LDX_W (BPF_REG_5, BPF_REG_1, 8);    /* r5 = minor */
  /* The last matching rule decides: test them from the last (the allow list) back. */
  for (size_t k = nrules; k-- > 0;)
    {
      struct device_rule r = { 'a', -1, -1, 0 };
      const uint32_t all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
      size_t len = 2, start = n, end;
      int allow = k >= nextra ? 1 : extra[k].allow;
      if (parse_device_rule (k >= nextra ? v1_device_allow[k - nextra] : extra[k].rule, &r, err) < 0)
        {
          free (insn);
          return -1;
        }
      len += (r.type != 'a') + (r.access != all ? 3 : 0) + (r.major >= 0) + (r.minor >= 0);
      end = start + len;
      /* Each test jumps to the next rule when it does not match. */
      if (r.type != 'a')
        {
          insn[n] = JNE_IMM (BPF_REG_2, r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, end - n - 1);
          n++;
        }
      if (r.access != all)
        {
          /* Any access bit the rule does not grant: no match. */
          insn[n++] = MOV32_REG (BPF_REG_1, BPF_REG_3);
          insn[n++] = ALU32_IMM (BPF_AND, BPF_REG_1, (int32_t) ~r.access);
          insn[n] = JNE_IMM (BPF_REG_1, 0, end - n - 1);
          n++;
        }
      if (r.major >= 0)
        {
          insn[n] = JNE_IMM (BPF_REG_4, r.major, end - n - 1);
          n++;
        }
      if (r.minor >= 0)
        {
          insn[n] = JNE_IMM (BPF_REG_5, r.minor, end - n - 1);
          n++;
        }
      insn[n++] = MOV64_IMM (BPF_REG_0, allow ? 1 : 0);
      insn[n++] = EXIT_INSN ();
      /* A rule matching everything ("a *:* rwm") decides alone: what would
       * follow is unreachable, which the verifier refuses. */
      if (len == 2)
        {
          unconditional = 1;
          break;
        }
    }
  if (!unconditional)
    {
      insn[n++] = MOV64_IMM (BPF_REG_0, 0);
      insn[n++] = EXIT_INSN ();
    }
  *out = insn;
  *count = n;
  return 0;
}

static int
sys_bpf (int cmd, union bpf_attr *attr)
{
  return (int) syscall (SYS_bpf, cmd, attr, sizeof (*attr));
}

int
grove_cgroup_attach_device_program (const char *dir, const grove_device_rule_t *extra, size_t nextra,
                                    grove_error_t *err)
{
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_close int cgfd = -1;
  cleanup_close int prog = -1;
  size_t count;
  union bpf_attr attr;
  int saved = 0;
  char log[4096];

  cgfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0)
    return grove_error_set (err, errno, "open cgroup %s", dir);
  /* Already there (a second setup: a live update, an adopted container). */
  memset (&attr, 0, sizeof (attr));
  attr.query.target_fd = (uint32_t) cgfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  if (sys_bpf (BPF_PROG_QUERY, &attr) == 0 && attr.query.prog_cnt > 0)
    return 0;

  if (grove_device_program (extra, nextra, &insns, &count, err) < 0)
    return -1;
  for (int verbose = 0; prog < 0 && verbose < 2; verbose++)
    {
      /* Quiet first (a full verifier log of a good program can overflow the
       * buffer: ENOSPC); on failure again with the log, for the message. */
      memset (&attr, 0, sizeof (attr));
      log[0] = '\0';
      attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
      attr.insns = (uint64_t) (uintptr_t) insns;
      attr.insn_cnt = (uint32_t) count;
      /* Device programs call no GPL-only helper: any license string loads. */
      attr.license = (uint64_t) (uintptr_t) "Apache";
      if (verbose)
        {
          attr.log_buf = (uint64_t) (uintptr_t) log;
          attr.log_size = sizeof (log);
          attr.log_level = 1;
        }
      prog = sys_bpf (BPF_PROG_LOAD, &attr);
      if (prog < 0 && !verbose)
        saved = errno;
    }
  if (prog < 0)
    return grove_error_set (err, saved, "load the device program for %s: %.300s", dir, log);
  memset (&attr, 0, sizeof (attr));
  attr.target_fd = (uint32_t) cgfd;
  attr.attach_bpf_fd = (uint32_t) prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf (BPF_PROG_ATTACH, &attr) < 0)
    return grove_error_set (err, errno, "attach the device program to %s", dir);
  /* The cgroup holds the program now; it goes with the cgroup's rmdir. */
  return 0;
}

/* ---- v2 ---------------------------------------------------------------- */

static int
v2_setup (const grove_cgroup_t *cg, const grove_resources_t *res, grove_error_t *err)
{
  static const char controllers[] = "+memory +cpu +pids";
  cleanup_free char *parent = NULL;
  cleanup_free char *dir = NULL;
  grove_error_t ignored;
  char value[64];

  if (cgroup_path (&parent, cg->root, cg, 0, err) < 0 || grove_mkdir (parent, 0755, err) < 0)
    return -1;
  /* The root usually delegates these already (systemd does); a refusal here shows
   * up as a failed write to the parent's subtree_control below. */
  write_in (cg->root, "cgroup.subtree_control", controllers, &ignored);
  if (write_in (parent, "cgroup.subtree_control", controllers, err) < 0)
    return -1;
  if (cgroup_path (&dir, cg->root, cg, 1, err) < 0 || grove_mkdir (dir, 0755, err) < 0)
    return -1;
  /* The device allow list, before any process can join. Only on a real
   * cgroup2 directory (a fake tree in tests has none to attach to). */
  if (cg->id != NULL)
    {
      struct statfs st;
      if (statfs (dir, &st) < 0)
        return grove_error_set (err, errno, "statfs %s", dir);
      if (st.f_type == CGROUP2_SUPER_MAGIC
          && grove_cgroup_attach_device_program (dir, res->devices, res->ndevices, err) < 0)
        return -1;
    }

  if (res->memory_bytes > 0)
    {
      snprintf (value, sizeof (value), "%" PRId64, res->memory_bytes);
      if (write_in (dir, "memory.max", value, err) < 0)
        return -1;
      /* Absent when the kernel has no swap accounting. runc's conversion:
       * OCI's swap is memory + swap, swap.max the swap alone. */
      if (res->memory_swap_bytes > 0)
        snprintf (value, sizeof (value), "%" PRId64, res->memory_swap_bytes - res->memory_bytes);
      else
        snprintf (value, sizeof (value), "%s", res->memory_swap_bytes < 0 ? "max" : "0");
      if (write_in_if_exists (dir, "memory.swap.max", value, err) < 0)
        return -1;
    }
  if (res->cpu_millis > 0)
    {
      int64_t shares = cpu_shares (res->cpu_millis);
      /* The shares -> weight mapping runc and the kubelet use: [2, 262144] -> [1, 10000]. */
      int64_t weight = 1 + ((shares - 2) * 9999) / 262142;
      if (weight > 10000)
        weight = 10000;
      if (res->cpu_period_us > 0)
        snprintf (value, sizeof (value), "%" PRId64 " %" PRId64, res->cpu_quota_us, res->cpu_period_us);
      else
        snprintf (value, sizeof (value), "%" PRId64 " %d", res->cpu_millis * (CFS_PERIOD_US / 1000), CFS_PERIOD_US);
      if (write_in (dir, "cpu.max", value, err) < 0)
        return -1;
      snprintf (value, sizeof (value), "%" PRId64, weight);
      if (write_in (dir, "cpu.weight", value, err) < 0)
        return -1;
    }
  if (res->pids > 0)
    snprintf (value, sizeof (value), "%" PRId64, res->pids);
  else
    snprintf (value, sizeof (value), "max");
  return write_in (dir, "pids.max", value, err);
}

static int
v2_enter (const grove_cgroup_t *cg, pid_t pid, grove_error_t *err)
{
  cleanup_free char *dir = NULL;
  char value[32];

  snprintf (value, sizeof (value), "%d", (int) pid);
  if (cgroup_path (&dir, cg->root, cg, 1, err) < 0)
    return -1;
  return write_in (dir, "cgroup.procs", value, err);
}

static int
v2_kill (const grove_cgroup_t *cg, int sig, int *signalled, grove_error_t *err)
{
  cleanup_free char *dir = NULL;

  if (cgroup_path (&dir, cg->root, cg, 1, err) < 0)
    return -1;
  /* cgroup.kill (5.14+) kills the whole subtree atomically, forks included. */
  if (sig == SIGKILL && write_in_if_exists (dir, "cgroup.kill", "1", err) < 0 && err->errnum != ENOENT)
    return -1;
  return kill_procs (dir, sig, signalled, err);
}

static int
v2_remove (const grove_cgroup_t *cg, grove_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (cgroup_path (&dir, cg->root, cg, 1, err) < 0)
    return -1;
  return grove_rmdir (dir, err);
}

static int
v2_list (const grove_cgroup_t *cg, char ***ids, size_t *count, grove_error_t *err)
{
  cleanup_free char *dir = NULL;
  *ids = NULL;
  *count = 0;
  if (cgroup_path (&dir, cg->root, cg, 0, err) < 0)
    return -1;
  if (list_children (dir, ids, count, err) < 0)
    {
      grove_string_list_free (*ids, *count);
      *ids = NULL;
      *count = 0;
      return -1;
    }
  return 0;
}

static int
v2_oom_kills (const grove_cgroup_t *cg, int64_t *count, grove_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;
  if (cgroup_path (&dir, cg->root, cg, 1, err) < 0 || grove_asprintf (&path, err, "%s/memory.events", dir) < 0)
    return -1;
  return read_keyed (path, "oom_kill", count, err);
}

const struct grove_cgroup_ops grove_cgroup_v2_ops = {
  .setup = v2_setup,
  .enter = v2_enter,
  .kill = v2_kill,
  .remove = v2_remove,
  .list = v2_list,
  .oom_kills = v2_oom_kills,
};
