/* Grove's seccomp profile compiler (seccomp/profile.c) on one profile, as
 * grove-runtime runs it on a bundle's linux.seccomp (OCI format) and the
 * build on default.json (Docker's format), and the program it answers
 * checked without trusting the compiler: every instruction one the
 * compiler may emit, every jump inside the program and forward, the last
 * instruction a return; run for every syscall number (with 64-bit
 * arguments too), the foreign
 * architecture and x32; and the same program back from its hex text
 * (grove_seccomp_to_hex / _from_hex, how grove-runtime hands it on). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../seccomp/profile.h"
#include "../src/json.h"
#include "../src/seccomp.h"
#include "fuzz.h"

#define MAX_TOKENS 65536 /* compile.c's */

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH_FOR_CHECK AUDIT_ARCH_X86_64
#else
#define NATIVE_AUDIT_ARCH_FOR_CHECK AUDIT_ARCH_AARCH64
#endif

static int warnings;

static void
warn (const char *msg)
{
  if (strncmp (msg, "default.json: syscalls[", 23) != 0)
    grove_fuzz_broken ("a warning that does not name the field: %s", msg);
  warnings++;
}

/* The program as the kernel's classic BPF checker and seccomp see it. */
static void
check_program (const struct sock_filter *f, int n)
{
  if (n < 1 || n > GROVE_PROFILE_MAX_INSNS)
    grove_fuzz_broken ("a program of %d instructions", n);
  if (BPF_CLASS (f[n - 1].code) != BPF_RET)
    grove_fuzz_broken ("the last instruction (%d) is not a return", n - 1);
  for (int i = 0; i < n; i++)
    {
      const struct sock_filter *p = &f[i];
      switch (p->code)
        {
        case BPF_LD | BPF_W | BPF_ABS:
          if (p->k >= sizeof (struct seccomp_data) || p->k % 4 != 0)
            grove_fuzz_broken ("insn %d loads offset %u", i, p->k);
          break;
        case BPF_JMP | BPF_JA:
          if ((unsigned long) i + 1 + p->k >= (unsigned long) n)
            grove_fuzz_broken ("insn %d jumps %u past the end (%d)", i, p->k, n);
          break;
        case BPF_JMP | BPF_JEQ | BPF_K:
        case BPF_JMP | BPF_JGT | BPF_K:
        case BPF_JMP | BPF_JGE | BPF_K:
        case BPF_JMP | BPF_JSET | BPF_K:
          if (i + 1 + p->jt >= n || i + 1 + p->jf >= n)
            grove_fuzz_broken ("insn %d jumps %u/%u past the end (%d)", i, p->jt, p->jf, n);
          break;
        case BPF_ALU | BPF_AND | BPF_K:
        case BPF_RET | BPF_K:
          break;
        default:
          grove_fuzz_broken ("insn %d has code 0x%x", i, p->code);
        }
    }
}

/* Runs the program (already checked) on one call. */
static uint32_t
run (const struct sock_filter *f, const struct seccomp_data *d)
{
  uint32_t a = 0;
  for (int pc = 0;; pc++)
    {
      const struct sock_filter *p = &f[pc];
      switch (p->code)
        {
        case BPF_LD | BPF_W | BPF_ABS:
          memcpy (&a, (const char *) d + p->k, 4);
          break;
        case BPF_JMP | BPF_JA:
          pc += (int) p->k;
          break;
        case BPF_JMP | BPF_JEQ | BPF_K:
          pc += a == p->k ? p->jt : p->jf;
          break;
        case BPF_JMP | BPF_JGT | BPF_K:
          pc += a > p->k ? p->jt : p->jf;
          break;
        case BPF_JMP | BPF_JGE | BPF_K:
          pc += a >= p->k ? p->jt : p->jf;
          break;
        case BPF_JMP | BPF_JSET | BPF_K:
          pc += (a & p->k) != 0 ? p->jt : p->jf;
          break;
        case BPF_ALU | BPF_AND | BPF_K:
          a &= p->k;
          break;
        default: /* BPF_RET | BPF_K */
          return p->k;
        }
    }
}

/* One ABI's section: every syscall number (base + nr) up to two past its
 * highest, with three sets of arguments; the calls past the highest all get
 * one answer. */
static void
check_section (const grove_profile_program_t *prog, uint32_t arch, uint32_t base, int max_nr, const char *abi)
{
  struct seccomp_data d;
  uint32_t past;
  memset (&d, 0, sizeof (d));
  d.arch = arch;
  d.nr = (int) (base + (uint32_t) (max_nr + 1));
  past = run (prog->insns, &d);
  for (int nr = 0; nr <= max_nr + 2; nr++)
    for (int args = 0; args < 4; args++)
      {
        uint32_t r;
        d.nr = (int) (base + (uint32_t) nr);
        /* The last set has high halves (64-bit values). */
        for (int i = 0; i < 6; i++)
          d.args[i] = args == 0   ? 0
                      : args == 1 ? 0xffffffffu
                      : args == 2 ? (uint64_t) nr * 0x10001u + (unsigned) i
                                  : (uint64_t) (nr + i) << 32 | 5u;
        r = run (prog->insns, &d);
        if (nr > max_nr && r != past)
          grove_fuzz_broken ("%s syscalls past the profile's %d get 0x%x and 0x%x", abi, max_nr, past, r);
      }
}

/* The native section, and the other ABIs': killed (x32 in Docker's format:
 * EPERM) unless listed, then run as the native one. Another architecture is
 * killed. */
static void
check_runs (const grove_profile_program_t *prog, int docker)
{
  struct seccomp_data d;
  memset (&d, 0, sizeof (d));
#if defined(__x86_64__)
  d.arch = AUDIT_ARCH_MIPS;
  if (run (prog->insns, &d) != SECCOMP_RET_KILL_PROCESS)
    grove_fuzz_broken ("a foreign architecture's call is not killed");
  d.arch = AUDIT_ARCH_I386;
  if (prog->compat_max_nr == -2 && run (prog->insns, &d) != SECCOMP_RET_KILL_PROCESS)
    grove_fuzz_broken ("an x86 call is not killed though x86 is not listed");
  if (prog->compat_max_nr != -2)
    check_section (prog, AUDIT_ARCH_I386, 0, prog->compat_max_nr, "x86");
  d.arch = AUDIT_ARCH_X86_64;
  d.nr = 0x40000000 | 1;
  if (prog->x32_max_nr == -2 && run (prog->insns, &d) != (docker ? SECCOMP_RET_ERRNO | EPERM : SECCOMP_RET_KILL_PROCESS))
    grove_fuzz_broken ("an x32 call is not %s though x32 is not listed", docker ? "refused with EPERM" : "killed");
  if (prog->x32_max_nr != -2)
    check_section (prog, AUDIT_ARCH_X86_64, 0x40000000u, prog->x32_max_nr, "x32");
#else
  (void) docker;
  if (prog->compat_max_nr != -2)
    check_section (prog, AUDIT_ARCH_ARM, 0, prog->compat_max_nr, "arm");
#endif
  check_section (prog, NATIVE_AUDIT_ARCH_FOR_CHECK, 0, prog->max_nr, "native");
}

int
grove_fuzz_seccomp_profile (const char *s, size_t len, int docker, grove_fuzz_seccomp_t *out)
{
  grove_profile_program_t prog;
  struct sock_fprog back;
  char *hex;
  /* On the heap, and freed before the leak check (LeakSanitizer scans the
   * globals each time: a static array of 65536 tokens would slow it). */
  int cap = len + 1 < MAX_TOKENS ? (int) len + 1 : MAX_TOKENS, n, code;
  grove_jtok_t *toks = malloc (sizeof (*toks) * (size_t) cap);
  if (toks == NULL)
    grove_fuzz_broken ("out of memory");
  n = grove_json_parse (s, len, toks, cap);
  memset (out, 0, sizeof (*out));
  warnings = 0;
  if (n < 0)
    {
      free (toks);
      snprintf (out->msg, sizeof (out->msg), "invalid JSON");
      return -1;
    }
  code = grove_profile_compile (s, toks, 0, docker ? GROVE_PROFILE_DOCKER : GROVE_PROFILE_OCI,
                             docker ? "default.json: " : "config.json linux.seccomp.", docker ? warn : NULL, &prog,
                             out->msg, sizeof (out->msg));
  free (toks); /* the program is the compiler's own: it needs the text no more */
  if (code < 0)
    {
      out->warnings = warnings;
      return -1;
    }
  check_program (prog.insns, prog.ninsns);
  check_runs (&prog, docker);
  hex = grove_seccomp_to_hex (prog.insns, (unsigned) prog.ninsns);
  if (hex == NULL || grove_seccomp_hex_check (hex) < 0 || grove_seccomp_from_hex (hex, &back) < 0)
    grove_fuzz_broken ("the program of %d instructions does not come back from its hex", prog.ninsns);
  if (back.len != prog.ninsns || memcmp (back.filter, prog.insns, sizeof (*prog.insns) * (size_t) prog.ninsns) != 0)
    grove_fuzz_broken ("the program's hex gives another program");
  free (back.filter);
  free (hex);
  out->ninsns = prog.ninsns;
  out->nrules = prog.nrules;
  out->max_nr = prog.max_nr;
  out->ngates = prog.ngates;
  out->warnings = warnings;
  /* Whether this is the program the build made of default.json. */
  out->is_default = (unsigned) prog.ninsns == grove_seccomp_ninsns && (unsigned) prog.ngates == grove_seccomp_ngates
                    && memcmp (prog.insns, grove_seccomp_insns, sizeof (*prog.insns) * (size_t) prog.ninsns) == 0
                    && memcmp (prog.gates, grove_seccomp_gates, sizeof (*prog.gates) * (size_t) prog.ngates) == 0;
  return 0;
}
