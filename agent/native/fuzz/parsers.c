/* grove-parsers-fuzz: runs the runtime's C parsers on inputs read from stdin,
 * built with AddressSanitizer and UBSan (see build.sh); test/src/native-
 * parsers-fuzz.test.ts feeds it with fast-check.
 *
 * Input: records of one kind byte, a little-endian u32 length and that many
 * bytes. Each input is read into a buffer of exactly its length (no NUL
 * after it: the parsers take a length, and ASan must see a read past it).
 * Output: one line per record, written before the next is read, so a crash
 * belongs to the first record without an answer.
 *
 *   j  JSON: grove_json_parse with large and small token limits (the
 *      verdicts and tokens must agree), token invariants, then every token
 *      through grove_json_get / at / str / num / true.       -> "j N"
 *   J  the same, and the value re-serialised from the tokens as canonical
 *      JSON (so the test can compare it with JSON.parse's). -> "J N JSON"
 *   o  the OCI front end's config.json reader (grove_oci_bundle_load) and
 *      grove-runtime's seccomp step (grove_oci_seccomp), after the j
 *      checks; INSNS is the bundle's own seccomp program's length (0: none).
 *                                           -> "o N CODE INSNS MESSAGE"
 *   s  an OCI linux.seccomp object through the profile compiler, its program
 *      checked and run (seccomp-profile.c).
 *   d  the same for a profile in Docker's format, as the build compiles
 *      default.json; DEFAULT is 1 when the program is the build's.
 *            -> "s CODE INSNS RULES MAX_NR GATES WARNINGS DEFAULT MESSAGE"
 *
 * After an o, s or d record nothing may have leaked (LeakSanitizer).
 *   c  a key/value config blob: grove_config_next over it, then grove-shim's
 *      and the exec helper's parse_config.          -> "c PAIRS SHIM EXEC"
 *
 * A broken invariant aborts with a message: the test treats it as a crash. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/json.h"
#include "../src/util.h"
#include "fuzz.h"

#include <sanitizer/lsan_interface.h>

/* sanitizer/allocator_interface.h's (GCC does not ship that header). */
size_t __sanitizer_get_current_allocated_bytes (void);

#define broken grove_fuzz_broken

/* Leaks are checked after each OCI config and seccomp profile (check_leaks);
 * the other parsers' callers exit right after them. */
const char *
__asan_default_options (void)
{
  return "detect_leaks=1:abort_on_error=1:allocator_may_return_null=1";
}

const char *
__ubsan_default_options (void)
{
  return "halt_on_error=1:abort_on_error=1:print_stacktrace=1";
}

#define OCI_TOKENS 8192 /* GROVE_OCI_MAX_TOKENS (oci_config.h) */

void
grove_fuzz_broken (const char *fmt, ...)
{
  va_list ap;
  fputs ("grove-parsers-fuzz: invariant broken: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  abort ();
}

/* ---- output ---------------------------------------------------------------- */

struct out
{
  char *buf;
  size_t len, cap;
};

static void
put (struct out *o, const char *s, size_t n)
{
  if (o->len + n + 1 > o->cap)
    {
      o->cap = (o->len + n + 1) * 2;
      o->buf = realloc (o->buf, o->cap);
      if (o->buf == NULL)
        broken ("out of memory");
    }
  memcpy (o->buf + o->len, s, n);
  o->len += n;
}

static void
puts_ (struct out *o, const char *s)
{
  put (o, s, strlen (s));
}

/* A JSON string of n bytes, quotes included: only ", \ and control bytes escaped. */
static void
put_string (struct out *o, const char *s, size_t n)
{
  put (o, "\"", 1);
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char) s[i];
      if (c == '"' || c == '\\')
        {
          char e[2] = { '\\', (char) c };
          put (o, e, 2);
        }
      else if (c < 0x20)
        {
          char e[8];
          snprintf (e, sizeof (e), "\\u%04x", c);
          put (o, e, 6);
        }
      else
        put (o, (const char *) &c, 1);
    }
  put (o, "\"", 1);
}

/* ---- JSON ------------------------------------------------------------------ */

static int
same_tokens (const grove_jtok_t *a, const grove_jtok_t *b, int n)
{
  return memcmp (a, b, sizeof (*a) * (size_t) n) == 0;
}

/* The subtree at i: checks its invariants, calls every accessor on it and
 * (when o) re-serialises it. Returns the index after it. */
static int
walk (const char *s, size_t len, const grove_jtok_t *t, int n, int i, struct out *o)
{
  const grove_jtok_t *k = &t[i];
  long long num;
  char *str;
  if (i < 0 || i >= n)
    broken ("token %d of %d", i, n);
  if (k->start < 0 || k->start > k->end || (size_t) k->end > len || k->next <= i || k->next > n)
    broken ("token %d: start %d end %d next %d (len %zu, %d tokens)", i, k->start, k->end, k->next, len, n);

  str = grove_json_str (s, t, i);
  if ((str != NULL) != (k->type == GROVE_J_STR))
    broken ("grove_json_str on token %d of type %d", i, k->type);
  if (str != NULL && strlen (str) > (size_t) (k->end - k->start))
    broken ("grove_json_str on token %d: longer than its text", i);
  if (grove_json_num (s, t, i, &num) == 0 && k->type != GROVE_J_NUM)
    broken ("grove_json_num on token %d of type %d", i, k->type);
  if (grove_json_true (s, t, i) && k->type != GROVE_J_BOOL)
    broken ("grove_json_true on token %d of type %d", i, k->type);
  if (k->type != GROVE_J_OBJ && grove_json_get (s, t, i, "") != -1)
    broken ("grove_json_get on token %d of type %d", i, k->type);
  if (k->type != GROVE_J_ARR && grove_json_at (t, i, 0) != -1)
    broken ("grove_json_at on token %d of type %d", i, k->type);

  switch (k->type)
    {
    case GROVE_J_STR:
      if (k->start < 1 || s[k->start - 1] != '"' || s[k->end] != '"')
        broken ("string token %d is not between quotes", i);
      if (o != NULL)
        put_string (o, str, strlen (str));
      free (str);
      return i + 1;
    case GROVE_J_NUM:
    case GROVE_J_BOOL:
    case GROVE_J_NULL:
      if (k->next != i + 1 || k->end == k->start)
        broken ("scalar token %d: next %d, %d bytes", i, k->next, k->end - k->start);
      if (o != NULL)
        put (o, s + k->start, (size_t) (k->end - k->start));
      return i + 1;
    case GROVE_J_ARR:
      {
        int j = i + 1;
        if (o != NULL)
          puts_ (o, "[");
        for (int e = 0; e < k->size; e++)
          {
            if (grove_json_at (t, i, e) != j)
              broken ("grove_json_at (%d, %d) = %d, not %d", i, e, grove_json_at (t, i, e), j);
            if (o != NULL && e > 0)
              puts_ (o, ",");
            j = walk (s, len, t, n, j, o);
          }
        if (grove_json_at (t, i, k->size) != -1 || grove_json_at (t, i, -1) != -1)
          broken ("grove_json_at out of the %d elements of %d", k->size, i);
        if (j != k->next)
          broken ("array %d ends at %d, next says %d", i, j, k->next);
        if (o != NULL)
          puts_ (o, "]");
        return j;
      }
    case GROVE_J_OBJ:
      {
        int j = i + 1;
        if (o != NULL)
          puts_ (o, "{");
        for (int m = 0; m < k->size; m++)
          {
            /* The key as it is written: grove_json_get compares raw text and
             * answers the first member with it. */
            size_t kl;
            char *raw, *key;
            int v;
            if (j >= n || t[j].type != GROVE_J_STR)
              broken ("member %d of object %d has no string key", m, i);
            kl = (size_t) (t[j].end - t[j].start);
            raw = strndup (s + t[j].start, kl);
            if (raw == NULL)
              broken ("out of memory");
            v = grove_json_get (s, t, i, raw);
            if (strlen (raw) == kl
                && (v < 0 || v > j + 1 || t[v - 1].end - t[v - 1].start != (int) kl
                    || memcmp (s + t[v - 1].start, raw, kl) != 0))
              broken ("grove_json_get (%d, \"%s\") = %d, member at %d", i, raw, v, j + 1);
            free (raw);
            key = grove_json_str (s, t, j);
            if (o != NULL)
              {
                if (m > 0)
                  puts_ (o, ",");
                put_string (o, key, strlen (key));
                puts_ (o, ":");
              }
            free (key);
            j = walk (s, len, t, n, j + 1, o);
          }
        if (grove_json_get (s, t, i, "\x01 no such key") != -1)
          broken ("grove_json_get found a key no JSON text can hold");
        if (j != k->next)
          broken ("object %d ends at %d, next says %d", i, j, k->next);
        if (o != NULL)
          puts_ (o, "}");
        return j;
      }
    }
  broken ("token %d has type %d", i, k->type);
}

/* Parses with every token limit that matters and walks the result: the count, or -1. */
static int
check_json (const char *s, size_t len, struct out *o)
{
  size_t cap = len + 1; /* every token takes at least one byte */
  grove_jtok_t *toks = malloc (sizeof (grove_jtok_t) * cap), *small = malloc (sizeof (grove_jtok_t) * cap);
  int n, limits[] = { 0, 1, 2, 3, 8, 64, OCI_TOKENS, -1, -2 };
  if (toks == NULL || small == NULL)
    broken ("out of memory");
  n = grove_json_parse (s, len, toks, (int) cap);
  if (n == 0 || n < -1 || (n > 0 && (size_t) n > len))
    broken ("grove_json_parse = %d on %zu bytes", n, len);
  /* A smaller limit answers the same or, below the count, -1 (-1 and -2: n-1 and n). */
  limits[7] = n - 1;
  limits[8] = n;
  for (size_t l = 0; l < sizeof (limits) / sizeof (limits[0]); l++)
    {
      int max = limits[l];
      if (max < 0 || (size_t) max > cap)
        continue;
      int m = grove_json_parse (s, len, small, max);
      int want = n >= 0 && n <= max ? n : -1;
      if (m != want)
        broken ("grove_json_parse with %d tokens = %d, with %zu = %d", max, m, cap, n);
      if (m > 0 && !same_tokens (toks, small, m))
        broken ("grove_json_parse with %d tokens gave other tokens", max);
    }
  if (n > 0)
    {
      if (walk (s, len, toks, n, 0, o) != n || toks[0].next != n)
        broken ("the top value does not cover all %d tokens", n);
    }
  free (toks);
  free (small);
  return n;
}

/* ---- key/value configs ----------------------------------------------------- */

static int
check_config (char *buf, size_t len)
{
  size_t pos = 0, prev = 0;
  int pairs = 0, more;
  char *key, *val;
  grove_error_t err;
  while ((more = grove_config_next (buf, len, &pos, &key, &val, "fuzz", &err)) > 0)
    {
      if (key != buf + prev || val <= key || pos > len || pos <= prev || val[strlen (val)] != '\0'
          || (size_t) (val - buf) + strlen (val) >= len)
        broken ("grove_config_next: pair %d at %zu..%zu of %zu", pairs, prev, pos, len);
      prev = pos;
      pairs++;
    }
  if (more < 0 && strstr (err.msg, "fuzz config") == NULL)
    broken ("grove_config_next failed without saying why: %s", err.msg);
  return more < 0 ? -1 : pairs;
}

/* Bytes allocated when the record's parsing started. */
static size_t allocated_before;

/* A leak in the record aborts, with LeakSanitizer's report. LeakSanitizer's
 * check (every block nothing points to any more) takes milliseconds, so it
 * runs only when the bytes allocated differ from before the record: the
 * parsers free what they allocate (profile.c its rules too, the bundle
 * reader everything in grove_oci_bundle_free), and a block kept on purpose
 * (the answer buffer growing, a libc cache) passes the full check. */
static void
check_leaks (void)
{
  if (__sanitizer_get_current_allocated_bytes () != allocated_before && __lsan_do_recoverable_leak_check () != 0)
    broken ("memory leaked (LeakSanitizer's report above)");
}

/* ---- main ------------------------------------------------------------------ */

static int
read_full (void *p, size_t n)
{
  size_t got = 0;
  while (got < n)
    {
      ssize_t r = read (0, (char *) p + got, n - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return got == 0 ? 0 : -1;
      got += (size_t) r;
    }
  return 1;
}

static void
write_line (struct out *o)
{
  put (o, "\n", 1);
  if (grove_write_all (1, o->buf, o->len) < 0)
    exit (1);
  o->len = 0;
}

int
main (void)
{
  const char *tmp = getenv ("TMPDIR");
  char *tmpl = NULL, *dir = NULL, *config = NULL;
  struct out o = { NULL, 0, 0 };

  if (asprintf (&tmpl, "%s/grove-parsers-fuzz-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") < 0)
    return 1;
  for (;;)
    {
      unsigned char head[5];
      char line[64];
      uint32_t len;
      char *buf;
      int r = read_full (head, sizeof (head));
      if (r == 0)
        break;
      if (r < 0)
        return 1;
      len = (uint32_t) head[1] | (uint32_t) head[2] << 8 | (uint32_t) head[3] << 16 | (uint32_t) head[4] << 24;
      buf = malloc (len > 0 ? len : 1);
      if (buf == NULL || read_full (buf, len) != 1)
        return 1;
      allocated_before = __sanitizer_get_current_allocated_bytes ();
      switch (head[0])
        {
        case 'j':
          snprintf (line, sizeof (line), "j %d", check_json (buf, len, NULL));
          puts_ (&o, line);
          break;
        case 'J':
          {
            struct out v = { NULL, 0, 0 };
            int n = check_json (buf, len, &v);
            snprintf (line, sizeof (line), "J %d ", n);
            puts_ (&o, line);
            if (v.len > 0)
              put (&o, v.buf, v.len);
            free (v.buf);
            break;
          }
        case 'o':
          {
            char msg[1024];
            int code, n, ninsns;
            FILE *f;
            if (dir == NULL)
              {
                if ((dir = mkdtemp (tmpl)) == NULL || asprintf (&config, "%s/config.json", dir) < 0)
                  return 1;
              }
            n = check_json (buf, len, NULL);
            f = fopen (config, "we");
            if (f == NULL || fwrite (buf, 1, len, f) != len || fclose (f) != 0)
              return 1;
            code = grove_fuzz_oci_config (dir, msg, sizeof (msg), &ninsns);
            for (char *c = msg; *c; c++)
              if (*c == '\n')
                *c = ' ';
            snprintf (line, sizeof (line), "o %d %d %d ", n, code, ninsns);
            puts_ (&o, line);
            puts_ (&o, msg);
            check_leaks ();
            break;
          }
        case 's':
        case 'd':
          {
            grove_fuzz_seccomp_t r;
            int code = grove_fuzz_seccomp_profile (buf, len, head[0] == 'd', &r);
            if (code < 0 && strncmp (r.msg, head[0] == 'd' ? "default.json: " : "config.json linux.seccomp.", 14) != 0
                && strcmp (r.msg, "invalid JSON") != 0)
              broken ("a refusal that does not name the field: %s", r.msg);
            for (char *c = r.msg; *c; c++)
              if (*c == '\n')
                *c = ' ';
            snprintf (line, sizeof (line), "%c %d %d %d %d %d %d %d ", head[0], code, r.ninsns, r.nrules, r.max_nr,
                      r.ngates, r.warnings, r.is_default);
            puts_ (&o, line);
            puts_ (&o, r.msg);
            check_leaks ();
            break;
          }
        case 'c':
          {
            grove_error_t err;
            int pairs = check_config (buf, len), shim, exec;
            shim = grove_fuzz_shim_config (buf, len, &err);
            exec = grove_fuzz_exec_config (buf, len, &err);
            snprintf (line, sizeof (line), "c %d %d %d", pairs, shim, exec);
            puts_ (&o, line);
            break;
          }
        default:
          fprintf (stderr, "grove-parsers-fuzz: unknown record kind %d\n", head[0]);
          return 2;
        }
      free (buf);
      write_line (&o);
    }
  if (dir != NULL)
    {
      unlink (config);
      rmdir (dir);
    }
  free (config);
  free (tmpl);
  free (o.buf);
  return 0;
}
