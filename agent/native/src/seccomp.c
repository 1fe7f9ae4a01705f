/* The default seccomp filter: Docker's default profile semantics (an
 * allow-list, default EPERM), compiled at build time from
 * agent/native/seccomp/default.json by agent/native/seccomp/compile.c. Only
 * the capability gates are set here, per container: no profile is parsed or
 * compiled when a container starts. */
#include "seccomp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
grove_seccomp_default (uint64_t caps, struct sock_fprog *prog)
{
  struct sock_filter *f;

  prog->len = 0;
  prog->filter = NULL;
  if (grove_seccomp_ninsns == 0)
    {
      errno = ENOSYS; /* not built for this architecture */
      return -1;
    }
  f = malloc (sizeof (*f) * grove_seccomp_ninsns);
  if (f == NULL)
    return -1;
  memcpy (f, grove_seccomp_insns, sizeof (*f) * grove_seccomp_ninsns);
  for (unsigned i = 0; i < grove_seccomp_ngates; i++)
    {
      const struct grove_seccomp_gate *g = &grove_seccomp_gates[i];
      int has = g->cap < 64 && (caps & (1ULL << g->cap)) != 0;
      f[g->insn].k = has == g->want ? 0 : (unsigned) g->skip;
    }
  prog->len = (unsigned short) grove_seccomp_ninsns;
  prog->filter = f;
  return 0;
}

#define HEX_PER_INSN 16
#define MAX_PROGRAM 4096 /* BPF_MAXINSNS */

static int
hex_digit (char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static uint64_t
hex_field (const char *p, int digits)
{
  uint64_t v = 0;
  for (int i = 0; i < digits; i++)
    v = v << 4 | (uint64_t) hex_digit (p[i]);
  return v;
}

int
grove_seccomp_hex_check (const char *hex)
{
  size_t n = strlen (hex);
  if (n == 0 || n % HEX_PER_INSN != 0 || n / HEX_PER_INSN > MAX_PROGRAM)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (hex_digit (hex[i]) < 0)
      return -1;
  return 0;
}

int
grove_seccomp_from_hex (const char *hex, struct sock_fprog *prog)
{
  size_t n;
  struct sock_filter *f;
  prog->len = 0;
  prog->filter = NULL;
  if (grove_seccomp_hex_check (hex) < 0)
    {
      errno = EINVAL;
      return -1;
    }
  n = strlen (hex) / HEX_PER_INSN;
  f = malloc (sizeof (*f) * n);
  if (f == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      const char *p = hex + i * HEX_PER_INSN;
      f[i] = (struct sock_filter){ (uint16_t) hex_field (p, 4), (uint8_t) hex_field (p + 4, 2),
                                   (uint8_t) hex_field (p + 6, 2), (uint32_t) hex_field (p + 8, 8) };
    }
  prog->len = (unsigned short) n;
  prog->filter = f;
  return 0;
}

char *
grove_seccomp_to_hex (const struct sock_filter *insns, unsigned n)
{
  char *hex = malloc ((size_t) n * HEX_PER_INSN + 1);
  if (hex == NULL)
    return NULL;
  hex[0] = '\0';
  for (unsigned i = 0; i < n; i++)
    snprintf (hex + (size_t) i * HEX_PER_INSN, HEX_PER_INSN + 1, "%04x%02x%02x%08x", insns[i].code, insns[i].jt,
              insns[i].jf, insns[i].k);
  return hex;
}
