/* grove-seccomp-compile PROFILE.json OUT.c: compiles a seccomp profile in
 * Docker's format into the classic BPF program of this build's architecture,
 * written as a C source file (run by the build, never at container start).
 *
 *   compile.c ── libseccomp: syscall names -> numbers of the native arch
 *             ── default.json (checked in) -> grove_seccomp_insns[] + gates
 *
 * The program:
 *   arch != native                -> KILL_PROCESS
 *   x86_64: nr has the x32 bit    -> ERRNO(EPERM)
 *   nr > the highest named nr     -> ERRNO(ENOSYS)  (runc does the same: a libc
 *                                    falls back from a syscall newer than the profile)
 *   a binary search over ranges of syscall numbers; each leaf either returns
 *   (an unconditional rule or the default) or runs the syscall's rules in
 *   profile order, the first whose conditions hold deciding.
 *
 * A rule conditional on capabilities (includes.caps / excludes.caps) starts
 * with one "gate" per capability: a BPF_JA whose offset the runtime sets for
 * the container's capability set (0: the rule applies; past the rule: it does
 * not). So the program is built once here and only those constants change per
 * container (grove_seccomp_default in src/seccomp.c).
 *
 * Arguments are compared on their low 32 bits: every argument Docker's profile
 * checks is an int or unsigned int in the kernel (socket's family, personality)
 * or has all its flags there (clone), and the kernel ignores the high half, so
 * a caller cannot get past `family != 40` with 0x100000028. Values above
 * 0xffffffff are refused.
 *
 * The compiler itself is profile.c (shared with grove-runtime, which compiles
 * a bundle's linux.seccomp with it); this file is the build's front end.
 *
 * Errors name the field: "default.json: syscalls[3].args[0].op: ...". */
#include <errno.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/json.h"
#include "profile.h"

#define MAX_TOKENS 65536

static const char *profile_path;

__attribute__ ((noreturn, format (printf, 1, 2))) static void
die (const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "grove-seccomp-compile: %s: ", profile_path);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (1);
}

static void
warn (const char *msg)
{
  fprintf (stderr, "grove-seccomp-compile: %s\n", msg);
}

static grove_profile_program_t prog;
static void
write_out (const char *out_path)
{
  char tmp[4096];
  FILE *f;
  snprintf (tmp, sizeof (tmp), "%s.tmp", out_path);
  f = fopen (tmp, "w");
  if (f == NULL)
    die ("cannot write %s", tmp);
  fprintf (f, "/* Generated at build time by agent/native/seccomp/compile.c from %s: do not edit.\n", profile_path);
  fprintf (f, " * %d rules, syscalls 0..%d, %d ranges, %d instructions, %d capability gates. */\n", prog.nrules,
           prog.max_nr, prog.nranges, prog.ninsns, prog.ngates);
  fprintf (f, "#include \"seccomp.h\"\n\n");
  fprintf (f, "const struct sock_filter grove_seccomp_insns[] = {\n");
  for (int i = 0; i < prog.ninsns; i++)
    {
      const char *name = NULL;
      /* Name the syscall a leaf or block compares against, where there is one. */
      if (BPF_CLASS (prog.insns[i].code) == BPF_JMP && BPF_OP (prog.insns[i].code) == BPF_JGE && i > 0
          && strcmp (prog.notes[i], "nr >= ?") == 0)
        name = seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, (int) prog.insns[i].k);
      fprintf (f, "  { 0x%02x, %u, %u, 0x%08x }, /* %4d %s%s%s */\n", prog.insns[i].code, prog.insns[i].jt, prog.insns[i].jf,
               prog.insns[i].k, i, prog.notes[i], name != NULL ? " " : "", name != NULL ? name : "");
      free ((char *) name);
    }
  if (prog.ninsns == 0)
    fprintf (f, "  { 0, 0, 0, 0 },\n");
  fprintf (f, "};\nconst unsigned grove_seccomp_ninsns = %d;\n\n", prog.ninsns);
  fprintf (f, "const struct grove_seccomp_gate grove_seccomp_gates[] = {\n");
  for (int g = 0; g < prog.ngates; g++)
    fprintf (f, "  { %d, %d, %d, %d }, /* %s %s */\n", prog.gates[g].insn, prog.gates[g].cap, prog.gates[g].want,
             prog.gates[g].skip, prog.gates[g].want ? "with" : "without", grove_profile_cap_name (prog.gates[g].cap));
  if (prog.ngates == 0)
    fprintf (f, "  { -1, 0, 0, 0 },\n");
  fprintf (f, "};\nconst unsigned grove_seccomp_ngates = %d;\n", prog.ngates);
  if (fclose (f) != 0 || rename (tmp, out_path) != 0)
    die ("cannot write %s", out_path);
}

int
main (int argc, char **argv)
{
  FILE *f;
  struct stat st;
  char *buf;
  int n;

  if (argc != 3)
    {
      fprintf (stderr, "usage: grove-seccomp-compile PROFILE.json OUT.c\n");
      return 2;
    }
  profile_path = argv[1];
#if !defined(__x86_64__) && !defined(__aarch64__)
  fprintf (stderr, "grove-seccomp-compile: no seccomp filter for this architecture (x86_64 and aarch64 only)\n");
  write_out (argv[2]);
  return 0;
#endif
  f = fopen (profile_path, "r");
  if (f == NULL || fstat (fileno (f), &st) < 0)
    die ("cannot open: %s", strerror (errno));
  buf = malloc ((size_t) st.st_size + 1);
  grove_jtok_t *t = calloc (MAX_TOKENS, sizeof (*t));
  char msg[1024], prefix[4200];
  if (buf == NULL || t == NULL || fread (buf, 1, (size_t) st.st_size, f) != (size_t) st.st_size)
    die ("cannot read");
  fclose (f);
  buf[st.st_size] = '\0';
  n = grove_json_parse (buf, (size_t) st.st_size, t, MAX_TOKENS);
  if (n < 0 || t[0].type != GROVE_J_OBJ)
    die ("not a JSON object");
  snprintf (prefix, sizeof (prefix), "%s: ", profile_path);
  if (grove_profile_compile (buf, t, 0, GROVE_PROFILE_DOCKER, prefix, warn, &prog, msg, sizeof (msg)) < 0)
    {
      fprintf (stderr, "grove-seccomp-compile: %s\n", msg);
      return 1;
    }
  write_out (argv[2]);
  return 0;
}
