/* A small JSON reader for grove-runtime's config.json (RFC 8259; no
 * allocation but the token array and unescaped strings). */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct parser
{
  const char *s;
  size_t len, pos;
  grove_jtok_t *toks;
  int max, n;
  int depth;
};

static int
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

static int
is_hex (char c)
{
  return is_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void
ws (struct parser *p)
{
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

static int value (struct parser *p);

static int
new_tok (struct parser *p, grove_jtype_t type)
{
  if (p->n >= p->max)
    return -1;
  p->toks[p->n] = (grove_jtok_t){ type, (int) p->pos, (int) p->pos, 0, 0 };
  return p->n++;
}

/* A string; escapes are checked (one of \" \\ \/ \b \f \n \r \t, or \u and
 * four hex digits) so that grove_json_str never reads past the token. */
static int
string (struct parser *p)
{
  int t = new_tok (p, GROVE_J_STR);
  if (t < 0)
    return -1;
  p->pos++; /* opening quote */
  p->toks[t].start = (int) p->pos;
  while (p->pos < p->len && p->s[p->pos] != '"')
    {
      if ((unsigned char) p->s[p->pos] < 0x20)
        return -1;
      if (p->s[p->pos] == '\\')
        {
          char e = p->pos + 1 < p->len ? p->s[p->pos + 1] : '\0';
          if (e == 'u')
            {
              for (int k = 2; k < 6; k++)
                if (p->pos + (size_t) k >= p->len || !is_hex (p->s[p->pos + (size_t) k]))
                  return -1;
              p->pos += 4;
            }
          else if (e == '\0' || strchr ("\"\\/bfnrt", e) == NULL)
            return -1;
          p->pos++;
        }
      p->pos++;
    }
  if (p->pos >= p->len)
    return -1;
  p->toks[t].end = (int) p->pos;
  p->pos++;
  p->toks[t].next = p->n;
  return t;
}

/* Consumes word (true, false, null) when the input has it at pos; a longer
 * word ("truex") then fails where a delimiter is expected. */
static int
literal (struct parser *p, const char *word)
{
  size_t n = strlen (word);
  if (p->len - p->pos < n || memcmp (p->s + p->pos, word, n) != 0)
    return 0;
  p->pos += n;
  return 1;
}

static int
digits (struct parser *p)
{
  size_t from = p->pos;
  while (p->pos < p->len && is_digit (p->s[p->pos]))
    p->pos++;
  return p->pos > from;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; 0, or -1. */
static int
number (struct parser *p)
{
  if (p->pos < p->len && p->s[p->pos] == '-')
    p->pos++;
  if (p->pos < p->len && p->s[p->pos] == '0')
    p->pos++;
  else if (!digits (p))
    return -1;
  if (p->pos < p->len && p->s[p->pos] == '.')
    {
      p->pos++;
      if (!digits (p))
        return -1;
    }
  if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
    {
      p->pos++;
      if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
        p->pos++;
      if (!digits (p))
        return -1;
    }
  return 0;
}

static int
value (struct parser *p)
{
  int t;
  if (++p->depth > 64)
    return -1;
  ws (p);
  if (p->pos >= p->len)
    return -1;
  switch (p->s[p->pos])
    {
    case '{':
    case '[':
      {
        int obj = p->s[p->pos] == '{';
        char close = obj ? '}' : ']';
        t = new_tok (p, obj ? GROVE_J_OBJ : GROVE_J_ARR);
        if (t < 0)
          return -1;
        p->pos++;
        ws (p);
        if (p->pos < p->len && p->s[p->pos] == close)
          p->pos++;
        else
          for (;;)
            {
              ws (p);
              if (obj)
                {
                  if (p->pos >= p->len || p->s[p->pos] != '"' || string (p) < 0)
                    return -1;
                  ws (p);
                  if (p->pos >= p->len || p->s[p->pos] != ':')
                    return -1;
                  p->pos++;
                }
              if (value (p) < 0)
                return -1;
              p->toks[t].size++;
              ws (p);
              if (p->pos < p->len && p->s[p->pos] == ',')
                {
                  p->pos++;
                  continue;
                }
              if (p->pos < p->len && p->s[p->pos] == close)
                {
                  p->pos++;
                  break;
                }
              return -1;
            }
        p->toks[t].end = (int) p->pos;
        p->toks[t].next = p->n;
        break;
      }
    case '"':
      t = string (p);
      break;
    default:
      t = new_tok (p, GROVE_J_NUM);
      if (t < 0)
        return -1;
      if (literal (p, "true") || literal (p, "false"))
        p->toks[t].type = GROVE_J_BOOL;
      else if (literal (p, "null"))
        p->toks[t].type = GROVE_J_NULL;
      else if (number (p) < 0)
        return -1;
      p->toks[t].end = (int) p->pos;
      p->toks[t].next = p->n;
    }
  p->depth--;
  return t;
}

int
grove_json_parse (const char *s, size_t len, grove_jtok_t *toks, int max)
{
  struct parser p = { s, len, 0, toks, max, 0, 0 };
  if (len > INT_MAX) /* token offsets are ints */
    return -1;
  if (value (&p) < 0)
    return -1;
  ws (&p);
  return p.pos == len ? p.n : -1;
}

int
grove_json_get (const char *s, const grove_jtok_t *t, int obj, const char *key)
{
  if (obj < 0 || t[obj].type != GROVE_J_OBJ)
    return -1;
  for (int i = obj + 1, k = 0; k < t[obj].size; k++)
    {
      int v = i + 1;
      size_t kl = (size_t) (t[i].end - t[i].start);
      if (kl == strlen (key) && memcmp (s + t[i].start, key, kl) == 0)
        return v;
      i = t[v].next;
    }
  return -1;
}

int
grove_json_at (const grove_jtok_t *t, int arr, int k)
{
  if (arr < 0 || t[arr].type != GROVE_J_ARR || k < 0 || k >= t[arr].size)
    return -1;
  int i = arr + 1;
  while (k-- > 0)
    i = t[i].next;
  return i;
}

char *
grove_json_str (const char *s, const grove_jtok_t *t, int i)
{
  char *out, *o;
  if (i < 0 || t[i].type != GROVE_J_STR)
    return NULL;
  out = o = malloc ((size_t) (t[i].end - t[i].start) + 1);
  if (out == NULL)
    return NULL;
  for (int k = t[i].start; k < t[i].end; k++)
    {
      char c = s[k];
      if (c == '\\' && k + 1 < t[i].end)
        {
          c = s[++k];
          switch (c)
            {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
              {
                /* \uXXXX: ASCII only; others become '?'. */
                unsigned v = k + 4 < t[i].end ? (unsigned) strtoul ((char[]){ s[k + 1], s[k + 2], s[k + 3], s[k + 4], 0 }, NULL, 16) : 0;
                c = v > 0 && v < 0x80 ? (char) v : '?';
                k += 4;
                break;
              }
            default: break; /* \" \\ \/ */
            }
        }
      *o++ = c;
    }
  *o = '\0';
  return out;
}

int
grove_json_num (const char *s, const grove_jtok_t *t, int i, long long *out)
{
  char buf[32];
  size_t l;
  char *end;
  if (i < 0 || t[i].type != GROVE_J_NUM)
    return -1;
  l = (size_t) (t[i].end - t[i].start);
  if (l == 0 || l >= sizeof (buf))
    return -1;
  memcpy (buf, s + t[i].start, l);
  buf[l] = '\0';
  errno = 0;
  *out = strtoll (buf, &end, 10);
  return *end == '\0' && errno != ERANGE ? 0 : -1; /* no silent clamp to LLONG_MAX */
}

int
grove_json_true (const char *s, const grove_jtok_t *t, int i)
{
  return i >= 0 && t[i].type == GROVE_J_BOOL && s[t[i].start] == 't';
}
