/* Grove's seccomp profile compiler: a profile in Docker's format (the
 * default, seccomp/default.json, compiled by the build's compile.c) or an OCI
 * bundle's linux.seccomp (compiled by grove-runtime when a container is
 * created) into one classic BPF program for this build's architecture.
 * libseccomp only turns syscall names into this architecture's numbers; the
 * program is Grove's (see compile.c for its shape).
 *
 * The two formats differ in the envelope: Docker's has archMap and per-rule
 * includes/excludes (capabilities become gates set per container, see
 * seccomp.c); OCI's has architectures, flags and listenerPath, an errnoRet
 * per rule defaulting to EPERM, and ignores properties it does not define
 * (runtime-spec). The rules and the program are the same, bar arguments: an
 * OCI profile's are compared on all 64 bits as libseccomp compares them for
 * runc (both 32-bit halves, the high one first; GT/GE/LT/LE as unsigned
 * 64-bit numbers, MASKED_EQ on each half), Docker's format (Grove's
 * default.json) on the low 32 bits, which the kernel reads an int from. SCMP_ACT_TRACE is SECCOMP_RET_TRACE with errnoRet
 * (EPERM) as its data (no tracer: the kernel fails the call with ENOSYS);
 * SCMP_ACT_NOTIFY is SECCOMP_RET_USER_NOTIF, for the listener at the
 * profile's listenerPath (grove-runtime hands it the notify fd); flags
 * become the filter's SECCOMP_FILTER_FLAG_* (out->flags).
 *
 * An OCI profile's architectures may list the other ABIs this kernel runs
 * (x86 and x32 on x86_64, arm on aarch64): the rules are then compiled again
 * with that ABI's numbers, in a section of the program of its own, as
 * libseccomp does for runc (x86's socketcall and ipc multiplexers included).
 * An ABI not listed is killed, as by runc (x32 in Docker's format, the
 * default filter: EPERM). */
#include "profile.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 4096
#define MAX_NR 4096
#define MAX_INSNS GROVE_PROFILE_MAX_INSNS
#define MAX_CONDS 6
#define MAX_GATES 4

static grove_profile_format_t format;
static const char *prefix; /* the message prefix: "default.json: ", "config.json linux.seccomp." */
static char *errbuf;
static size_t errcap;
static jmp_buf fail;

/* The strings read from the profile that are not freed yet (at most one or
 * two at a time): die() frees them after writing its message, which may
 * name them, so a refused profile leaks nothing (grove-runtime exits, but
 * the compiler runs once per profile in the fuzzer and may in a long-lived
 * process). */
static char *held[8];
static int nheld;

__attribute__ ((noreturn, format (printf, 1, 2))) static void
die (const char *fmt, ...)
{
  va_list ap;
  int n = snprintf (errbuf, errcap, "%s", prefix);
  va_start (ap, fmt);
  if (n >= 0 && (size_t) n < errcap)
    vsnprintf (errbuf + n, errcap - (size_t) n, fmt, ap);
  va_end (ap);
  while (nheld > 0)
    free (held[--nheld]);
  longjmp (fail, 1);
}

/* v (a malloc'd string or NULL), freed by release() or die(). */
static char *
hold (char *v)
{
  if (v == NULL)
    return NULL;
  if (nheld >= (int) (sizeof (held) / sizeof (held[0])))
    {
      free (v);
      die ("internal error: more than %d strings held", nheld);
    }
  return held[nheld++] = v;
}

static void
release (char *v)
{
  for (int i = nheld - 1; i >= 0; i--)
    if (held[i] == v)
      {
        held[i] = held[--nheld];
        break;
      }
  free (v);
}

/* ---- the native architecture ---------------------------------------------- */

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#define NATIVE_SCMP "SCMP_ARCH_X86_64"
#define NATIVE_DOCKER "amd64" /* includes.arches / excludes.arches spelling */
#define X32_SYSCALL_BIT 0x40000000u
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define NATIVE_SCMP "SCMP_ARCH_AARCH64"
#define NATIVE_DOCKER "arm64"
#else
/* No filter for this architecture: an empty program, and containers must run
 * seccomp: unconfined (grove_seccomp_default fails with ENOSYS). */
#define NATIVE_NONE 1
#define NATIVE_AUDIT_ARCH 0
#define NATIVE_SCMP "none"
#define NATIVE_DOCKER "none"
#endif

/* The ABIs a program has a section for: the native one always, the others
 * when an OCI profile lists them. x32 is x86_64's audit arch with
 * X32_SYSCALL_BIT in the number (libseccomp answers x32 numbers with it). */
enum
{
  ABI_NATIVE,
  ABI_COMPAT, /* x86 on x86_64, arm on aarch64 */
  ABI_X32,
  NABI
};
static const struct abi
{
  const char *name; /* NULL: none on this architecture */
  uint32_t scmp, audit, base;
} abis[NABI] = {
#if defined(__x86_64__)
  { NATIVE_SCMP, SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64, 0 },
  { "SCMP_ARCH_X86", SCMP_ARCH_X86, AUDIT_ARCH_I386, 0 },
  { "SCMP_ARCH_X32", SCMP_ARCH_X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT },
#elif defined(__aarch64__)
  { NATIVE_SCMP, SCMP_ARCH_AARCH64, AUDIT_ARCH_AARCH64, 0 },
  { "SCMP_ARCH_ARM", SCMP_ARCH_ARM, AUDIT_ARCH_ARM, 0 },
  { NULL, 0, 0, 0 },
#else
  { NATIVE_SCMP, 0, 0, 0 },
  { NULL, 0, 0, 0 },
  { NULL, 0, 0, 0 },
#endif
};

#if defined(__x86_64__)
/* x86 (i386) reaches the socket and SysV IPC calls two ways: directly
 * (Linux 4.3 and 5.1 added those numbers) and through socketcall(call,
 * args) and ipc(call, ...). libseccomp names them with pseudo numbers
 * (-100 - call, -200 - call); a rule on one applies to the direct number,
 * with its conditions, and to the multiplexer with argument 0 == call only
 * (socketcall's arguments are in memory, the filter cannot read them), as
 * libseccomp adds it for runc. Index: the call; 0: no direct number. */
#define X86_SOCKETCALL 102
#define X86_IPC 117
static const int x86_socket_direct[21] = { 0,   359, 361, 362, 363, 0,   367, 368, 360, 0,  0,
                                           369, 371, 373, 366, 365, 370, 372, 364, 337, 345 };
static const int x86_ipc_direct[25] = { 0, 0, 393, 394, 0, 0, 0, 0, 0, 0, 0, 400, 401, 399, 402, 0,
                                        0, 0, 0,   0,   0, 397, 398, 395, 396 };
#endif

/* Offset of the low and high 32 bits of seccomp_data.args[i] (both are little-endian). */
#define ARG_LO(i) ((unsigned) (offsetof (struct seccomp_data, args) + 8 * (i)))
#define ARG_HI(i) (ARG_LO (i) + 4)

/* ---- the profile ------------------------------------------------------------ */

enum op
{
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_MASKED_EQ,
};

struct cond
{
  unsigned index;
  enum op op;
  uint64_t value, value_two;
};

struct gate
{
  int cap;
  int want; /* 1: the rule needs the cap (includes); 0: it needs its absence (excludes) */
};

struct rule
{
  int src;     /* index in syscalls[] */
  uint32_t ret; /* SECCOMP_RET_* | data */
  struct cond conds[MAX_CONDS];
  int nconds;
  struct gate gates[MAX_GATES];
  int ngates;
};

/* Rules per syscall number, in profile order. */
struct sys
{
  int *rules; /* indexes into rules[] */
  int nrules;
};

static struct rule rules[MAX_RULES];
static int nrules;
/* Per ABI: the rules of each syscall number (less the ABI's base) and the
 * highest number named (-1: none); abi_listed[] says which are compiled.
 * syscalls and max_nr are the section being generated. */
static struct sys tables[NABI][MAX_NR];
static int max_nrs[NABI];
static int abi_listed[NABI];
static struct sys *syscalls = tables[ABI_NATIVE];
static int max_nr = -1;
static uint32_t nr_base;
static uint32_t default_ret;
static unsigned filter_flags; /* SECCOMP_FILTER_FLAG_* (OCI flags) */
static int has_notify;        /* an action is SCMP_ACT_NOTIFY */
static int listener_tok, listener_metadata_tok;

static const char *s;
static grove_jtok_t *t;
static void (*warn_fn) (const char *msg);

static char *
str_at (int i, const char *field)
{
  char *v = hold (grove_json_str (s, t, i));
  if (v == NULL)
    die ("%s: must be a string", field);
  return v;
}

static void
only_keys (int obj, const char *field, const char *const *keys, size_t nkeys)
{
  if (obj < 0)
    return;
  if (t[obj].type != GROVE_J_OBJ)
    die ("%s: must be an object", field);
  if (format == GROVE_PROFILE_OCI)
    return; /* runtime-spec: properties it does not define are ignored */
  for (int m = 0, k = obj + 1; m < t[obj].size; m++, k = t[k + 1].next)
    {
      char *key = hold (grove_json_str (s, t, k));
      int known = 0;
      for (size_t i = 0; i < nkeys; i++)
        known |= key != NULL && strcmp (key, keys[i]) == 0;
      if (!known)
        die ("%s%s: is not supported by Grove's profile compiler", field, key != NULL ? key : "?");
      release (key);
    }
}

static uint32_t
u32_at (int i, const char *field)
{
  long long v;
  if (i < 0 || grove_json_num (s, t, i, &v) < 0)
    die ("%s: must be an integer", field);
  if (v < 0 || v > 0xffffffffLL)
    die ("%s: %lld does not fit in 32 bits", field, v);
  return (uint32_t) v;
}

/* An argument's value: an unsigned 64-bit integer (runtime-spec: uint64). */
static uint64_t
u64_at (int i, const char *field)
{
  char buf[32];
  char *end;
  size_t l;
  unsigned long long v;
  if (i < 0 || t[i].type != GROVE_J_NUM)
    die ("%s: must be an integer", field);
  l = (size_t) (t[i].end - t[i].start);
  if (l == 0 || l >= sizeof (buf))
    die ("%s: must be an integer from 0 to 18446744073709551615", field);
  memcpy (buf, s + t[i].start, l);
  buf[l] = '\0';
  errno = 0;
  v = strtoull (buf, &end, 10);
  if (buf[0] == '-' || *end != '\0' || errno == ERANGE)
    die ("%s: %s is not an integer from 0 to 18446744073709551615", field, buf);
  return (uint64_t) v;
}

/* An action (tok) with its errnoRet (errno_tok, or -1 for errno_default). */
static uint32_t
action_at (int tok, const char *field, int errno_tok, const char *errno_field, uint32_t errno_default)
{
  char *a = str_at (tok, field);
  uint32_t ret;
  if (strcmp (a, "SCMP_ACT_ALLOW") == 0)
    ret = SECCOMP_RET_ALLOW;
  else if (strcmp (a, "SCMP_ACT_ERRNO") == 0)
    {
      uint32_t e = errno_tok >= 0 ? u32_at (errno_tok, errno_field) : errno_default;
      if (e == 0 || e > 4095)
        die ("%s: errno %u, must be 1 to 4095", errno_tok >= 0 ? errno_field : field, e);
      ret = SECCOMP_RET_ERRNO | e;
    }
  else if (strcmp (a, "SCMP_ACT_KILL_PROCESS") == 0)
    ret = SECCOMP_RET_KILL_PROCESS;
  else if (strcmp (a, "SCMP_ACT_KILL") == 0 || strcmp (a, "SCMP_ACT_KILL_THREAD") == 0)
    ret = SECCOMP_RET_KILL_THREAD;
  else if (strcmp (a, "SCMP_ACT_LOG") == 0)
    ret = SECCOMP_RET_LOG;
  else if (strcmp (a, "SCMP_ACT_TRAP") == 0)
    ret = SECCOMP_RET_TRAP;
  else if (strcmp (a, "SCMP_ACT_TRACE") == 0 && format == GROVE_PROFILE_OCI)
    {
      /* The tracer's data: errnoRet, else EPERM (as runc); without a tracer the call fails with ENOSYS. */
      uint32_t e = errno_tok >= 0 ? u32_at (errno_tok, errno_field) : errno_default;
      if (e > 0xffff)
        die ("%s: %u, must be 0 to 65535 (the tracer's data)", errno_field, e);
      ret = SECCOMP_RET_TRACE | e;
    }
  else if (strcmp (a, "SCMP_ACT_NOTIFY") == 0 && format == GROVE_PROFILE_OCI)
    {
      if (errno_field == NULL)
        die ("%s: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own calls would wait on the "
             "listener)",
             field);
      ret = SECCOMP_RET_USER_NOTIF;
      has_notify = 1;
    }
  else
    die ("%s: %s is not supported (SCMP_ACT_ALLOW, _ERRNO, _KILL_PROCESS, _KILL_THREAD, _TRAP, _LOG%s)", field, a,
         format == GROVE_PROFILE_OCI ? ", _TRACE, _NOTIFY" : "");
  release (a);
  return ret;
}

static const char *const cap_names[] = {
  "CAP_CHOWN",           "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",          "CAP_FSETID",
  "CAP_KILL",            "CAP_SETGID",       "CAP_SETUID",          "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",      "CAP_NET_RAW",         "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",       "CAP_SYS_MODULE",   "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",    "CAP_SYS_BOOT",        "CAP_SYS_NICE",        "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",         "CAP_LEASE",           "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",      "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",       "CAP_SYSLOG",
  "CAP_WAKE_ALARM",      "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
};

/* Whether the native arch is in a Docker "arches" list. */
static int
arch_listed (int arr, const char *field)
{
  int found = 0;
  if (t[arr].type != GROVE_J_ARR)
    die ("%s: must be an array", field);
  for (int k = 0; k < t[arr].size; k++)
    {
      char *a = str_at (grove_json_at (t, arr, k), field);
      found |= strcmp (a, NATIVE_DOCKER) == 0;
      release (a);
    }
  return found;
}

/* includes / excludes: arches decided here, caps become gates. 0: the rule is
 * not for this architecture. */
static int
conditions (int obj, const char *field, int want, struct rule *r)
{
  static const char *const keys[] = { "caps", "arches" };
  char sub[160];
  int caps, arches;
  if (obj < 0)
    return 1;
  only_keys (obj, field, keys, 2);
  arches = grove_json_get (s, t, obj, "arches");
  snprintf (sub, sizeof (sub), "%sarches", field);
  if (arches >= 0 && t[arches].size > 0 && arch_listed (arches, sub) != want)
    return 0;
  caps = grove_json_get (s, t, obj, "caps");
  snprintf (sub, sizeof (sub), "%scaps", field);
  if (caps >= 0 && t[caps].type != GROVE_J_ARR)
    die ("%s: must be an array", sub);
  for (int k = 0; caps >= 0 && k < t[caps].size; k++)
    {
      char *c = str_at (grove_json_at (t, caps, k), sub);
      int n = -1;
      for (size_t i = 0; i < sizeof (cap_names) / sizeof (cap_names[0]); i++)
        if (strcmp (c, cap_names[i]) == 0)
          n = (int) i;
      if (n < 0)
        die ("%s[%d]: unknown capability %s", sub, k, c);
      if (r->ngates >= MAX_GATES)
        die ("%s: more than %d capabilities in one rule", sub, MAX_GATES);
      r->gates[r->ngates++] = (struct gate){ n, want };
      release (c);
    }
  return 1;
}

static void
read_args (int arr, int src, struct rule *r)
{
  static const char *const keys[] = { "index", "value", "valueTwo", "op" };
  char field[160];
  if (arr < 0)
    return;
  if (t[arr].type != GROVE_J_ARR)
    die ("syscalls[%d].args: must be an array", src);
  if (t[arr].size > MAX_CONDS)
    die ("syscalls[%d].args: more than %d conditions", src, MAX_CONDS);
  for (int k = 0; k < t[arr].size; k++)
    {
      int a = grove_json_at (t, arr, k), vt;
      struct cond *c = &r->conds[r->nconds++];
      char *op;
      snprintf (field, sizeof (field), "syscalls[%d].args[%d].", src, k);
      only_keys (a, field, keys, 4);
      snprintf (field, sizeof (field), "syscalls[%d].args[%d].index", src, k);
      c->index = u32_at (grove_json_get (s, t, a, "index"), field);
      if (c->index > 5)
        die ("%s: %u, a syscall has arguments 0 to 5", field, c->index);
      snprintf (field, sizeof (field), "syscalls[%d].args[%d].value", src, k);
      /* Docker's format (Grove's default.json): 32-bit values, compared on the low half (below). */
      c->value = format == GROVE_PROFILE_OCI ? u64_at (grove_json_get (s, t, a, "value"), field)
                                             : u32_at (grove_json_get (s, t, a, "value"), field);
      vt = grove_json_get (s, t, a, "valueTwo");
      snprintf (field, sizeof (field), "syscalls[%d].args[%d].valueTwo", src, k);
      c->value_two = vt < 0 ? 0 : format == GROVE_PROFILE_OCI ? u64_at (vt, field) : u32_at (vt, field);
      snprintf (field, sizeof (field), "syscalls[%d].args[%d].op", src, k);
      op = str_at (grove_json_get (s, t, a, "op"), field);
      if (strcmp (op, "SCMP_CMP_EQ") == 0)
        c->op = OP_EQ;
      else if (strcmp (op, "SCMP_CMP_NE") == 0)
        c->op = OP_NE;
      else if (strcmp (op, "SCMP_CMP_LT") == 0)
        c->op = OP_LT;
      else if (strcmp (op, "SCMP_CMP_LE") == 0)
        c->op = OP_LE;
      else if (strcmp (op, "SCMP_CMP_GT") == 0)
        c->op = OP_GT;
      else if (strcmp (op, "SCMP_CMP_GE") == 0)
        c->op = OP_GE;
      else if (strcmp (op, "SCMP_CMP_MASKED_EQ") == 0)
        c->op = OP_MASKED_EQ; /* Docker: (arg & value) == valueTwo */
      else
        die ("%s: unknown operator %s", field, op);
      release (op);
    }
}

static void
add_rule_to (int abi, int nr, int ri)
{
  struct sys *sc = &tables[abi][nr];
  int *grown = realloc (sc->rules, sizeof (int) * (size_t) (sc->nrules + 1));
  if (grown == NULL)
    die ("out of memory");
  sc->rules = grown;
  sc->rules[sc->nrules++] = ri;
}

/* Rule ri on syscall number nr of an ABI (less its base). */
static void
add_nr (int abi, int nr, int ri, const char *field, const char *name)
{
  struct sys *sc;
  if (nr < 0 || nr >= MAX_NR)
    die ("%s: %s is syscall %d of %s, more than this compiler handles", field, name, nr, abis[abi].name);
  if (nr > max_nrs[abi])
    max_nrs[abi] = nr;
  sc = &tables[abi][nr];
  /* The same syscall twice in one rule adds nothing. */
  if (sc->nrules == 0 || sc->rules[sc->nrules - 1] != ri)
    add_rule_to (abi, nr, ri);
}

/* A syscall name of rule ri in an ABI's section: its number there (a name
 * this ABI does not have adds nothing). */
static void
add_name (int abi, int ri, const char *field, const char *name)
{
  int nr = seccomp_syscall_resolve_name_arch (abis[abi].scmp, name);
#if defined(__x86_64__)
  /* x86's socket and IPC calls: the direct number with the rule's
   * conditions, and the multiplexer with argument 0 == call instead of
   * them (a rule of its own, right after ri in effect). */
  if (abi == ABI_COMPAT && ((nr <= -101 && nr >= -120) || (nr <= -201 && nr >= -224)))
    {
      int call = nr >= -120 ? -100 - nr : -200 - nr;
      int direct = nr >= -120 ? x86_socket_direct[call] : x86_ipc_direct[call];
      struct rule *m;
      if (direct > 0)
        add_nr (abi, direct, ri, field, name);
      if (nrules >= MAX_RULES)
        die ("syscalls: more than %d rules", MAX_RULES);
      m = &rules[nrules];
      *m = rules[ri];
      m->nconds = 1;
      m->conds[0] = (struct cond){ 0, OP_EQ, (uint32_t) call, 0 };
      add_nr (abi, nr >= -120 ? X86_SOCKETCALL : X86_IPC, nrules++, field, name);
      return;
    }
#endif
  if (nr < 0)
    return; /* a syscall of other architectures only, or unknown */
  add_nr (abi, nr - (int) abis[abi].base, ri, field, name);
}

/* OCI: architectures lists SCMP_ARCH_* names. The native one is always
 * compiled; an ABI this kernel can also run (x86 and x32 on x86_64, arm on
 * aarch64) gets the rules with its own numbers when listed; other
 * architectures never reach this kernel. */
static void
oci_envelope (int root)
{
  int arches = grove_json_get (s, t, root, "architectures"), v;
  if (arches >= 0 && t[arches].type != GROVE_J_NULL)
    {
      if (t[arches].type != GROVE_J_ARR)
        die ("architectures: must be an array");
      for (int k = 0; k < t[arches].size; k++)
        {
          char field[64];
          char *a;
          snprintf (field, sizeof (field), "architectures[%d]", k);
          a = str_at (grove_json_at (t, arches, k), field);
          for (int i = ABI_COMPAT; i < NABI; i++)
            if (abis[i].name != NULL && strcmp (a, abis[i].name) == 0)
              abi_listed[i] = 1;
          release (a);
        }
    }
  v = grove_json_get (s, t, root, "flags");
  if (v >= 0 && t[v].type != GROVE_J_NULL && t[v].type != GROVE_J_ARR)
    die ("flags: must be an array");
  for (int k = 0; v >= 0 && t[v].type == GROVE_J_ARR && k < t[v].size; k++)
    {
      char field[64];
      char *f;
      snprintf (field, sizeof (field), "flags[%d]", k);
      f = str_at (grove_json_at (t, v, k), field);
      if (strcmp (f, "SECCOMP_FILTER_FLAG_LOG") == 0)
        filter_flags |= SECCOMP_FILTER_FLAG_LOG;
      else if (strcmp (f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
        filter_flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
      else if (strcmp (f, "SECCOMP_FILTER_FLAG_TSYNC") != 0) /* the init has one thread: TSYNC changes nothing */
        die ("%s: %s is not supported (SECCOMP_FILTER_FLAG_TSYNC, _LOG, _SPEC_ALLOW)", field, f);
      release (f);
    }
  v = grove_json_get (s, t, root, "listenerPath");
  if (v >= 0 && t[v].type != GROVE_J_NULL && t[v].type != GROVE_J_STR)
    die ("listenerPath: must be a string");
  listener_tok = v >= 0 && t[v].type == GROVE_J_STR && t[v].end > t[v].start ? v : -1;
  if (listener_tok >= 0 && s[t[v].start] != '/')
    die ("listenerPath: must be an absolute path");
  v = grove_json_get (s, t, root, "listenerMetadata");
  if (v >= 0 && t[v].type != GROVE_J_NULL && t[v].type != GROVE_J_STR)
    die ("listenerMetadata: must be a string");
  listener_metadata_tok = v >= 0 && t[v].type == GROVE_J_STR ? v : -1;
}

/* Docker: archMap must list the native architecture, without subArchitectures. */
static void
docker_envelope (int root)
{
  static const char *const arch_keys[] = { "architecture", "subArchitectures" };
  int arch_map, native_listed = 0;
  /* Only the native architecture is let through; the others are killed
   * (a 32-bit or x32 process would see other syscall numbers). */
  arch_map = grove_json_get (s, t, root, "archMap");
  if (arch_map < 0 || t[arch_map].type != GROVE_J_ARR)
    die ("archMap: must be an array");
  for (int k = 0; k < t[arch_map].size; k++)
    {
      int a = grove_json_at (t, arch_map, k), sub;
      char field[64];
      char *name;
      snprintf (field, sizeof (field), "archMap[%d].", k);
      only_keys (a, field, arch_keys, 2);
      snprintf (field, sizeof (field), "archMap[%d].architecture", k);
      name = str_at (grove_json_get (s, t, a, "architecture"), field);
      sub = grove_json_get (s, t, a, "subArchitectures");
      if (sub >= 0 && t[sub].type == GROVE_J_ARR && t[sub].size > 0)
        die ("archMap[%d].subArchitectures: not supported; Grove's filter lets the native architecture through "
             "and kills the others (x32 gets EPERM)",
             k);
      native_listed |= strcmp (name, NATIVE_SCMP) == 0;
      release (name);
    }
  if (!native_listed)
    die ("archMap: does not list %s, the architecture of this build", NATIVE_SCMP);
}

static void
read_profile (int root)
{
  static const char *const top_keys[] = { "comment", "defaultAction", "defaultErrnoRet", "archMap", "syscalls" };
  static const char *const rule_keys[] = { "comment", "names", "name", "action", "errnoRet", "args", "includes",
                                           "excludes" };
  int list, def_errno;
  uint32_t errno_default = EPERM, rule_errno_default;

  only_keys (root, "", top_keys, sizeof (top_keys) / sizeof (top_keys[0]));
  def_errno = grove_json_get (s, t, root, "defaultErrnoRet");
  if (def_errno >= 0 && t[def_errno].type != GROVE_J_NULL)
    errno_default = u32_at (def_errno, "defaultErrnoRet");
  default_ret = action_at (grove_json_get (s, t, root, "defaultAction"), "defaultAction", -1, NULL, errno_default);
  /* Docker's defaultErrnoRet is every ERRNO's default; runtime-spec's is the
   * default action's only, a rule's errnoRet defaulting to EPERM. */
  rule_errno_default = format == GROVE_PROFILE_OCI ? EPERM : errno_default;
  if (format == GROVE_PROFILE_OCI)
    oci_envelope (root);
  else
    docker_envelope (root);

  list = grove_json_get (s, t, root, "syscalls");
  if (format == GROVE_PROFILE_OCI && (list < 0 || t[list].type == GROVE_J_NULL))
    return; /* only the default action */
  if (list < 0 || t[list].type != GROVE_J_ARR)
    die ("syscalls: must be an array");
  for (int k = 0; k < t[list].size; k++)
    {
      int o = grove_json_at (t, list, k), names, one, ri;
      char field[96];
      struct rule *r;

      snprintf (field, sizeof (field), "syscalls[%d].", k);
      only_keys (o, field, rule_keys, sizeof (rule_keys) / sizeof (rule_keys[0]));
      if (nrules >= MAX_RULES)
        die ("syscalls: more than %d rules", MAX_RULES);
      ri = nrules;
      r = &rules[ri];
      memset (r, 0, sizeof (*r));
      r->src = k;
      {
        char efield[96];
        snprintf (field, sizeof (field), "syscalls[%d].action", k);
        snprintf (efield, sizeof (efield), "syscalls[%d].errnoRet", k);
        r->ret = action_at (grove_json_get (s, t, o, "action"), field, grove_json_get (s, t, o, "errnoRet"), efield,
                            rule_errno_default);
      }
      /* A string or a number here named no syscall, and the rule was kept
       * silently without any: a deny rule of the bundle's not applied.
       * Checked before includes/excludes may skip the rule (for another
       * architecture), so a malformed rule is refused on every one. */
      names = grove_json_get (s, t, o, "names");
      if (names >= 0 && t[names].type != GROVE_J_ARR && t[names].type != GROVE_J_NULL)
        die ("syscalls[%d].names: must be an array of syscall names", k);
      read_args (grove_json_get (s, t, o, "args"), k, r);
      snprintf (field, sizeof (field), "syscalls[%d].includes.", k);
      if (format == GROVE_PROFILE_DOCKER && !conditions (grove_json_get (s, t, o, "includes"), field, 1, r))
        continue;
      snprintf (field, sizeof (field), "syscalls[%d].excludes.", k);
      if (format == GROVE_PROFILE_DOCKER && !conditions (grove_json_get (s, t, o, "excludes"), field, 0, r))
        continue;
      nrules++;

      one = grove_json_get (s, t, o, "name");
      if (names < 0 && one < 0)
        die ("syscalls[%d]: has neither names nor name", k);
      for (int j = 0; j < (names >= 0 ? t[names].size : 0) + (one >= 0 ? 1 : 0); j++)
        {
          int tok = names >= 0 && j < t[names].size ? grove_json_at (t, names, j) : one;
          char *name;
          int nr;
          snprintf (field, sizeof (field), "syscalls[%d].names[%d]", k, j);
          name = str_at (tok, field);
          if (r->ret == SECCOMP_RET_USER_NOTIF && strcmp (name, "write") == 0)
            die ("%s: SCMP_ACT_NOTIFY cannot be used for write (the init writes to its parent before the listener "
                 "has the fd; runc refuses it too)",
                 field);
          nr = seccomp_syscall_resolve_name_arch (SCMP_ARCH_NATIVE, name);
          if (nr == __NR_SCMP_ERROR && warn_fn != NULL)
            {
              char msg[512];
              snprintf (msg, sizeof (msg), "%s%s: %s is unknown to libseccomp; skipped", prefix, field, name);
              warn_fn (msg);
            }
          for (int abi = ABI_NATIVE; abi < NABI; abi++)
            if (abi == ABI_NATIVE || abi_listed[abi])
              add_name (abi, ri, field, name);
          release (name);
        }
    }
  if (max_nrs[ABI_NATIVE] < 0 && format == GROVE_PROFILE_DOCKER)
    die ("syscalls: names no syscall of this architecture");
  if (has_notify && listener_tok < 0)
    die ("listenerPath: is required with SCMP_ACT_NOTIFY (the listener gets the notify fd)");
}

/* ---- code generation ------------------------------------------------------ */

static struct sock_filter insns[MAX_INSNS];
static int ninsns;
static const char *notes[MAX_INSNS]; /* a comment per instruction for the generated file */

struct gate_out
{
  int insn, cap, want, skip;
};
static struct gate_out gates_out[MAX_INSNS];
static int ngates_out;

static int
emit (uint16_t code, uint8_t jt, uint8_t jf, uint32_t k, const char *note)
{
  if (ninsns >= MAX_INSNS)
    die ("the program would exceed %d instructions", MAX_INSNS);
  insns[ninsns] = (struct sock_filter){ code, jt, jf, k };
  notes[ninsns] = note;
  return ninsns++;
}

static uint8_t
near (int from, int to)
{
  int d = to - from - 1;
  if (d < 0 || d > 255)
    die ("internal error: jump of %d instructions", d);
  return (uint8_t) d;
}

/* The actions of a syscall as a leaf: -1 when it needs its own block, else the
 * one return value every call of it gets. */
static int64_t
simple_ret (int nr)
{
  const struct sys *sc = &syscalls[nr];
  if (sc->nrules == 0)
    return default_ret;
  {
    const struct rule *r = &rules[sc->rules[0]];
    if (r->nconds == 0 && r->ngates == 0)
      return r->ret; /* the first rule always holds: the later ones never run */
  }
  return -1;
}

/* A jump of a condition to the next rule (the condition fails): fixed up
 * once the rule's end is known. jt: its true branch, else its false one. */
static void
to_next_rule (int at, int jt, int *fixups, int *nfix)
{
  fixups[(*nfix)++] = jt ? at + 1 : -(at + 1);
}

/* Grove's default filter (Docker's format): the low 32 bits only. The kernel
 * reads the int arguments the profile's rules are about (socket's family,
 * personality's persona, clone's flags) from them, so high bits set by the
 * caller cannot slip a call past a rule, as they do past a 64-bit compare. */
static void
emit_cond_low (const struct cond *cd, int *fixups, int *nfix)
{
  uint32_t v = (uint32_t) cd->value;
  emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (cd->index), "load argument (low 32 bits)");
  switch (cd->op)
    {
    case OP_EQ: /* jt: go on, jf: rule fails */
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, v, "=="), 0, fixups, nfix);
      break;
    case OP_NE:
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, v, "!="), 1, fixups, nfix);
      break;
    case OP_GT:
      to_next_rule (emit (BPF_JMP | BPF_JGT | BPF_K, 0, 0, v, ">"), 0, fixups, nfix);
      break;
    case OP_GE:
      to_next_rule (emit (BPF_JMP | BPF_JGE | BPF_K, 0, 0, v, ">="), 0, fixups, nfix);
      break;
    case OP_LT:
      to_next_rule (emit (BPF_JMP | BPF_JGE | BPF_K, 0, 0, v, "<"), 1, fixups, nfix);
      break;
    case OP_LE:
      to_next_rule (emit (BPF_JMP | BPF_JGT | BPF_K, 0, 0, v, "<="), 1, fixups, nfix);
      break;
    case OP_MASKED_EQ:
      emit (BPF_ALU | BPF_AND | BPF_K, 0, 0, v, "& mask");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint32_t) cd->value_two, "== (masked)"), 0, fixups, nfix);
      break;
    }
}

/* An OCI profile's condition on a 64-bit argument, as libseccomp compares it for runc: the high
 * half first, then the low one. Falls through to what follows when it holds. */
static void
emit_cond (const struct cond *cd, int *fixups, int *nfix)
{
  uint32_t hi = (uint32_t) (cd->value >> 32), lo = (uint32_t) cd->value;
  unsigned i = cd->index;
  int j;
  if (format == GROVE_PROFILE_DOCKER)
    {
      emit_cond_low (cd, fixups, nfix);
      return;
    }
  switch (cd->op)
    {
    case OP_EQ: /* hi == && lo == */
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI (i), "load argument (high 32 bits)");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, hi, "== (high)"), 0, fixups, nfix);
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (i), "load argument (low 32 bits)");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, lo, "=="), 0, fixups, nfix);
      break;
    case OP_NE: /* hi != || lo != */
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI (i), "load argument (high 32 bits)");
      emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 2, hi, "!= (high): holds");
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (i), "load argument (low 32 bits)");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, lo, "!="), 1, fixups, nfix);
      break;
    case OP_GT: /* hi > || (hi == && lo >) */
    case OP_GE:
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI (i), "load argument (high 32 bits)");
      emit (BPF_JMP | BPF_JGT | BPF_K, 3, 0, hi, "> (high): holds");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, hi, "== (high), else fails"), 0, fixups, nfix);
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (i), "load argument (low 32 bits)");
      j = emit (BPF_JMP | (cd->op == OP_GT ? BPF_JGT : BPF_JGE) | BPF_K, 0, 0, lo, cd->op == OP_GT ? ">" : ">=");
      to_next_rule (j, 0, fixups, nfix);
      break;
    case OP_LT: /* hi < || (hi == && lo <) */
    case OP_LE:
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI (i), "load argument (high 32 bits)");
      emit (BPF_JMP | BPF_JGE | BPF_K, 0, 3, hi, "< (high): holds");
      to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, hi, "== (high), else fails"), 0, fixups, nfix);
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (i), "load argument (low 32 bits)");
      j = emit (BPF_JMP | (cd->op == OP_LT ? BPF_JGE : BPF_JGT) | BPF_K, 0, 0, lo, cd->op == OP_LT ? "<" : "<=");
      to_next_rule (j, 1, fixups, nfix);
      break;
    case OP_MASKED_EQ: /* (arg & value) == valueTwo, on each half */
      {
        uint32_t mhi = hi, mlo = lo, dhi = (uint32_t) (cd->value_two >> 32), dlo = (uint32_t) cd->value_two;
        if (mhi != 0 || dhi != 0) /* else the high half always holds */
          {
            emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI (i), "load argument (high 32 bits)");
            emit (BPF_ALU | BPF_AND | BPF_K, 0, 0, mhi, "& mask (high)");
            to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, dhi, "== (masked, high)"), 0, fixups, nfix);
          }
        emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO (i), "load argument (low 32 bits)");
        emit (BPF_ALU | BPF_AND | BPF_K, 0, 0, mlo, "& mask");
        to_next_rule (emit (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, dlo, "== (masked)"), 0, fixups, nfix);
      }
      break;
    }
}

/* One syscall's rules, in order; the first that holds returns its action. */
static void
emit_block (int nr)
{
  const struct sys *sc = &syscalls[nr];
  for (int i = 0; i < sc->nrules; i++)
    {
      const struct rule *r = &rules[sc->rules[i]];
      int fixups[MAX_CONDS * 3 + MAX_GATES], nfix = 0, end;
      int gate_idx[MAX_GATES];

      for (int g = 0; g < r->ngates; g++)
        {
          gate_idx[g] = emit (BPF_JMP | BPF_JA, 0, 0, 0, "capability gate (set per container)");
          gates_out[ngates_out++] = (struct gate_out){ gate_idx[g], r->gates[g].cap, r->gates[g].want, 0 };
        }
      for (int c = 0; c < r->nconds; c++)
        emit_cond (&r->conds[c], fixups, &nfix);
      emit (BPF_RET | BPF_K, 0, 0, r->ret, "the rule's action");
      end = ninsns; /* the next rule, or the default */
      for (int f = 0; f < nfix; f++)
        {
          int at = fixups[f] > 0 ? fixups[f] - 1 : -fixups[f] - 1;
          if (fixups[f] > 0)
            insns[at].jt = near (at, end);
          else
            insns[at].jf = near (at, end);
        }
      for (int g = 0; g < r->ngates; g++)
        for (int o = 0; o < ngates_out; o++)
          if (gates_out[o].insn == gate_idx[g])
            gates_out[o].skip = end - gate_idx[g] - 1;
      if (r->nconds == 0 && r->ngates == 0)
        return; /* always holds */
    }
  emit (BPF_RET | BPF_K, 0, 0, default_ret, "no rule held: the default");
}

/* Ranges of syscall numbers [lo, hi] with one leaf each. */
struct range
{
  int lo, hi;
  int64_t ret; /* -1: the block of syscall lo (then lo == hi) */
};
static struct range ranges[MAX_NR];
static int nranges;

static void
build_ranges (void)
{
  for (int nr = 0; nr <= max_nr; nr++)
    {
      int64_t r = simple_ret (nr);
      if (r >= 0 && nranges > 0 && ranges[nranges - 1].ret == r && ranges[nranges - 1].hi == nr - 1)
        ranges[nranges - 1].hi = nr;
      else
        ranges[nranges++] = (struct range){ nr, nr, r };
    }
}

/* A balanced binary search: nr >= ranges[mid].lo ? right : left. The right
 * subtree is reached through a BPF_JA (32-bit offset), so no conditional jump
 * ever spans more than one instruction. */
static void
emit_tree (int a, int b)
{
  if (a == b)
    {
      if (ranges[a].ret >= 0)
        emit (BPF_RET | BPF_K, 0, 0, (uint32_t) ranges[a].ret, "leaf");
      else
        emit_block (ranges[a].lo);
      return;
    }
  {
    int mid = (a + b + 1) / 2, ja;
    emit (BPF_JMP | BPF_JGE | BPF_K, 0, 1, nr_base + (uint32_t) ranges[mid].lo, "nr >= ?");
    ja = emit (BPF_JMP | BPF_JA, 0, 0, 0, "to the upper half");
    emit_tree (a, mid - 1);
    insns[ja].k = (uint32_t) (ninsns - ja - 1);
    emit_tree (mid, b);
  }
}

/* One ABI's section, its number in the accumulator: the search over its
 * syscall numbers. */
static void
emit_section (int abi)
{
  syscalls = tables[abi];
  max_nr = max_nrs[abi];
  nr_base = abis[abi].base;
  nranges = 0;
  if (max_nr < 0)
    {
      emit (BPF_RET | BPF_K, 0, 0, default_ret, "no rules: the default");
      return;
    }
  /* Past every named syscall: ENOSYS for an allow-list (a newer libc falls
   * back), the default action for a profile whose default lets calls through. */
  emit (BPF_JMP | BPF_JGT | BPF_K, 0, 1, nr_base + (uint32_t) max_nr, "newer than every syscall the profile names?");
  if ((default_ret & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ALLOW
      || (default_ret & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_LOG)
    emit (BPF_RET | BPF_K, 0, 0, default_ret, "the default");
  else
    emit (BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS, "ENOSYS");
  build_ranges ();
  emit_tree (0, nranges - 1);
}

/* The native section first; a listed ABI's section is reached by a BPF_JA
 * where the unlisted one is killed (an x32 call gets EPERM from Docker's
 * format: the default filter's program is unchanged). */
static void
compile (void)
{
  int to_compat = -1, to_x32 = -1, native_nranges;
  emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof (struct seccomp_data, arch), "load arch");
  emit (BPF_JMP | BPF_JEQ | BPF_K, 1, 0, NATIVE_AUDIT_ARCH, "native?");
  if (abi_listed[ABI_COMPAT])
    to_compat = emit (BPF_JMP | BPF_JA, 0, 0, 0, "another architecture: to the compat ABI's section");
  else
    emit (BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS, "another architecture: kill");
  emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof (struct seccomp_data, nr), "load nr");
#ifdef X32_SYSCALL_BIT
  emit (BPF_JMP | BPF_JSET | BPF_K, 0, 1, X32_SYSCALL_BIT, "x32?");
  if (abi_listed[ABI_X32])
    to_x32 = emit (BPF_JMP | BPF_JA, 0, 0, 0, "x32: to its section");
  else if (format == GROVE_PROFILE_OCI) /* as libseccomp's bad-architecture action under runc */
    emit (BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS, "x32, not listed: kill");
  else
    emit (BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM, "x32: EPERM");
#endif
  emit_section (ABI_NATIVE);
  native_nranges = nranges;
  if (to_compat >= 0)
    {
      insns[to_compat].k = (uint32_t) (ninsns - to_compat - 1);
      emit (BPF_JMP | BPF_JEQ | BPF_K, 1, 0, abis[ABI_COMPAT].audit, "the compat ABI?");
      emit (BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS, "another architecture: kill");
      emit (BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof (struct seccomp_data, nr), "load nr");
      emit_section (ABI_COMPAT);
    }
  if (to_x32 >= 0)
    {
      insns[to_x32].k = (uint32_t) (ninsns - to_x32 - 1);
      emit_section (ABI_X32); /* the number (with the x32 bit) is still loaded */
    }
  /* What the result reports: the native section's. */
  max_nr = max_nrs[ABI_NATIVE];
  nranges = native_nranges;
}

const char *
grove_profile_cap_name (int n)
{
  return n >= 0 && (size_t) n < sizeof (cap_names) / sizeof (cap_names[0]) ? cap_names[n] : NULL;
}

/* The rules per syscall are only needed while compiling: freed after each
 * compilation, so nothing of it stays allocated between calls. */
static void
free_rules (void)
{
  for (int abi = 0; abi < NABI; abi++)
    for (int nr = 0; nr < MAX_NR; nr++)
      {
        free (tables[abi][nr].rules);
        tables[abi][nr].rules = NULL;
        tables[abi][nr].nrules = 0;
      }
}

int
grove_profile_compile (const char *text, grove_jtok_t *toks, int root, grove_profile_format_t fmt, const char *pfx,
                       void (*warn) (const char *msg), grove_profile_program_t *out, char *ebuf, size_t ecap)
{
  free_rules ();
  nrules = ninsns = ngates_out = nranges = 0;
  for (int abi = 0; abi < NABI; abi++)
    {
      max_nrs[abi] = -1;
      abi_listed[abi] = 0;
    }
  max_nr = -1;
  filter_flags = 0;
  has_notify = 0;
  listener_tok = listener_metadata_tok = -1;
  s = text;
  t = toks;
  format = fmt;
  prefix = pfx;
  warn_fn = warn;
  errbuf = ebuf;
  errcap = ecap;
  if (setjmp (fail) != 0)
    {
      free_rules ();
      return -1;
    }
#ifdef NATIVE_NONE
  die ("no seccomp filter for this architecture (x86_64 and aarch64 only)");
#endif
  if (root < 0 || t[root].type != GROVE_J_OBJ)
    die ("must be an object");
  read_profile (root);
  compile ();
  free_rules ();
  *out = (grove_profile_program_t){ insns, ninsns, notes, (const grove_profile_gate_t *) gates_out, ngates_out,
                                    nrules, max_nr, nranges,
                                    abi_listed[ABI_COMPAT] ? max_nrs[ABI_COMPAT] : -2,
                                    abi_listed[ABI_X32] ? max_nrs[ABI_X32] : -2,
                                    filter_flags,
                                    has_notify,
                                    has_notify ? listener_tok : -1,
                                    has_notify ? listener_metadata_tok : -1 };
  return 0;
}

