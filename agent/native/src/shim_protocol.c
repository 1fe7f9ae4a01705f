/* The process keys of the runtime boundary's configuration: one parser for
 * grove-shim and the exec helper, one writer for grove-runtime (see
 * shim_protocol.h). */
#include "shim_protocol.h"
#include "seccomp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int
grove_parse_u64 (const char *val, uint64_t max, uint64_t *out)
{
  char *end;
  unsigned long long v;
  if (val[0] < '0' || val[0] > '9')
    return -1;
  errno = 0;
  v = strtoull (val, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = (uint64_t) v;
  return 0;
}

/* "RESOURCE:SOFT:HARD", each part a number. */
static int
parse_rlimit (char *val, grove_rlimit_t *r)
{
  char *soft = strchr (val, ':'), *hard;
  uint64_t resource;
  int ok;
  if (soft == NULL || (hard = strchr (soft + 1, ':')) == NULL)
    return -1;
  *soft = '\0';
  *hard = '\0';
  ok = grove_parse_u64 (val, 63, &resource) == 0 && grove_parse_u64 (soft + 1, UINT64_MAX, &r->soft) == 0
       && grove_parse_u64 (hard + 1, UINT64_MAX, &r->hard) == 0;
  *soft = ':';
  *hard = ':';
  r->resource = (int) resource;
  return ok ? 0 : -1;
}

/* "MASK", or "BOUNDING:EFFECTIVE:PERMITTED:INHERITABLE:AMBIENT", each a decimal mask. */
static int
parse_caps (char *val, grove_process_config_t *p)
{
  uint64_t *set[5] = { &p->caps, &p->caps_effective, &p->caps_permitted, &p->caps_inheritable, &p->caps_ambient };
  char *part = val;
  int n = 0, ok = 1;
  p->caps_sets = strchr (val, ':') != NULL;
  for (; ok && n < 5; n++)
    {
      char *colon = strchr (part, ':');
      if (colon != NULL)
        *colon = '\0';
      ok = grove_parse_u64 (part, UINT64_MAX, set[n]) == 0;
      if (colon != NULL)
        *colon = ':';
      if (colon == NULL)
        break;
      part = colon + 1;
    }
  /* One part, or exactly five. */
  return ok && (n == 0 || n == 4) ? 0 : -1;
}

int
grove_process_config_key (grove_process_config_t *p, const char *key, char *val, const char *what,
                          grove_error_t *err)
{
  uint64_t n;
  if (strcmp (key, GROVE_KEY_ARG) == 0 || strcmp (key, GROVE_KEY_ENV) == 0)
    {
      int arg = key[0] == 'a';
      size_t *count = arg ? &p->argc : &p->envc;
      if (*count >= GROVE_MAX_ARGS)
        return grove_error_set (err, E2BIG, "%s config: more than %d %s keys", what, GROVE_MAX_ARGS, key);
      (arg ? p->argv : p->envp)[(*count)++] = val;
      return 1;
    }
  if (strcmp (key, GROVE_KEY_CAPS) == 0)
    {
      if (parse_caps (val, p) < 0)
        return grove_error_set (err, EINVAL, "%s config: caps %s is not a decimal mask or five of them", what, val);
      p->caps_set = 1;
      return 1;
    }
  if (strcmp (key, GROVE_KEY_SECCOMP) == 0)
    {
      if (strncmp (val, "bpf:", 4) == 0)
        {
          if (grove_seccomp_hex_check (val + 4) < 0)
            return grove_error_set (err, EINVAL, "%s config: seccomp bpf: is not a program in hex", what);
          p->seccomp_bpf = val + 4;
          p->seccomp_unconfined = 0;
          return 1;
        }
      if (strcmp (val, "default") != 0 && strcmp (val, "unconfined") != 0)
        return grove_error_set (err, EINVAL, "%s config: seccomp %s is not default, unconfined or bpf:PROGRAM",
                                what, val);
      p->seccomp_unconfined = val[0] == 'u';
      p->seccomp_bpf = NULL;
      return 1;
    }
  if (strcmp (key, GROVE_KEY_SECCOMP_FLAGS) == 0)
    {
      if (grove_parse_u64 (val, 0xffff, &n) < 0)
        return grove_error_set (err, EINVAL, "%s config: seccomp_flags %s is not a decimal mask", what, val);
      p->seccomp_flags = (unsigned) n;
      return 1;
    }
  if (strcmp (key, GROVE_KEY_UID) == 0 || strcmp (key, GROVE_KEY_GID) == 0 || strcmp (key, GROVE_KEY_GROUP) == 0)
    {
      if (grove_parse_u64 (val, 0xfffffffeU, &n) < 0)
        return grove_error_set (err, EINVAL, "%s config: %s %s is not an id", what, key, val);
      if (key[0] == 'u')
        p->uid = (uid_t) n;
      else if (key[1] == 'i')
        p->gid = (gid_t) n;
      else if (p->ngroups >= GROVE_MAX_GROUPS)
        return grove_error_set (err, E2BIG, "%s config: more than %d group keys", what, GROVE_MAX_GROUPS);
      else
        p->groups[p->ngroups++] = (gid_t) n;
      return 1;
    }
  if (strcmp (key, GROVE_KEY_RLIMIT) == 0)
    {
      if (p->nrlimits >= GROVE_MAX_RLIMITS)
        return grove_error_set (err, E2BIG, "%s config: more than %d rlimit keys", what, GROVE_MAX_RLIMITS);
      if (parse_rlimit (val, &p->rlimits[p->nrlimits]) < 0)
        return grove_error_set (err, EINVAL, "%s config: rlimit %s is not RESOURCE:SOFT:HARD", what, val);
      p->nrlimits++;
      return 1;
    }
  return 0;
}

int
grove_process_config_finish (grove_process_config_t *p, const char *what, grove_error_t *err)
{
  if (p->argc == 0 || p->argv[0][0] == '\0')
    return grove_error_set (err, EINVAL, "%s config: arg is required (a non-empty argv[0])", what);
  p->argv[p->argc] = NULL;
  p->envp[p->envc] = NULL;
  return 0;
}

void
grove_process_config_apply (const grove_process_config_t *p, grove_container_config_t *cc)
{
  cc->argv = p->argv;
  cc->envp = p->envp;
  cc->caps_set = p->caps_set;
  cc->caps = p->caps;
  cc->caps_sets = p->caps_sets;
  cc->caps_effective = p->caps_effective;
  cc->caps_permitted = p->caps_permitted;
  cc->caps_inheritable = p->caps_inheritable;
  cc->caps_ambient = p->caps_ambient;
  cc->seccomp_unconfined = p->seccomp_unconfined;
  cc->seccomp_bpf = p->seccomp_bpf;
  cc->seccomp_flags = p->seccomp_flags;
  cc->uid = p->uid;
  cc->gid = p->gid;
  cc->groups = p->groups;
  cc->ngroups = p->ngroups;
  cc->rlimits = p->rlimits;
  cc->nrlimits = p->nrlimits;
}

void
grove_config_put (FILE *out, const char *key, const char *val)
{
  fputs (key, out);
  fputc (0, out);
  fputs (val, out);
  fputc (0, out);
}

void
grove_process_config_write (FILE *out, const grove_container_config_t *cc)
{
  char num[64];
  if (cc->caps_set && cc->caps_sets)
    {
      char sets[120];
      snprintf (sets, sizeof (sets), "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64, cc->caps,
                cc->caps_effective, cc->caps_permitted, cc->caps_inheritable, cc->caps_ambient);
      grove_config_put (out, GROVE_KEY_CAPS, sets);
    }
  else if (cc->caps_set)
    {
      snprintf (num, sizeof (num), "%" PRIu64, cc->caps);
      grove_config_put (out, GROVE_KEY_CAPS, num);
    }
  if (cc->seccomp_bpf != NULL)
    {
      fputs (GROVE_KEY_SECCOMP, out);
      fputc (0, out);
      fprintf (out, "bpf:%s", cc->seccomp_bpf);
      fputc (0, out);
      if (cc->seccomp_flags != 0)
        {
          snprintf (num, sizeof (num), "%u", cc->seccomp_flags);
          grove_config_put (out, GROVE_KEY_SECCOMP_FLAGS, num);
        }
    }
  else
    grove_config_put (out, GROVE_KEY_SECCOMP, cc->seccomp_unconfined ? "unconfined" : "default");
  snprintf (num, sizeof (num), "%u", (unsigned) cc->uid);
  grove_config_put (out, GROVE_KEY_UID, num);
  snprintf (num, sizeof (num), "%u", (unsigned) cc->gid);
  grove_config_put (out, GROVE_KEY_GID, num);
  for (size_t k = 0; k < cc->ngroups; k++)
    {
      snprintf (num, sizeof (num), "%u", (unsigned) cc->groups[k]);
      grove_config_put (out, GROVE_KEY_GROUP, num);
    }
  for (size_t k = 0; k < cc->nrlimits; k++)
    {
      snprintf (num, sizeof (num), "%d:%" PRIu64 ":%" PRIu64, cc->rlimits[k].resource, cc->rlimits[k].soft,
                cc->rlimits[k].hard);
      grove_config_put (out, GROVE_KEY_RLIMIT, num);
    }
  for (char *const *a = cc->argv; *a != NULL; a++)
    grove_config_put (out, GROVE_KEY_ARG, *a);
  for (char *const *e = cc->envp; *e != NULL; e++)
    grove_config_put (out, GROVE_KEY_ENV, *e);
}
