/* OCI lifecycle hooks: the blob, the state JSON and the runner (hooks.h). */
#include "hooks.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

const char *const grove_hook_kind_names[GROVE_HOOK_KINDS]
    = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop" };

static char *const no_env[] = { NULL };

/* The next NULL-terminated list in h->strings: its start, or NULL when full. */
static char **
list_start (grove_hooks_t *h)
{
  return h->nstrings < GROVE_MAX_HOOK_STRINGS ? &h->strings[h->nstrings] : NULL;
}

static int
list_add (grove_hooks_t *h, char *s, grove_error_t *err)
{
  /* Room for s and the list's NULL. */
  if (h->nstrings + 2 > GROVE_MAX_HOOK_STRINGS)
    return grove_error_set (err, E2BIG, "hooks: more than %d args and env entries in all", GROVE_MAX_HOOK_STRINGS);
  h->strings[h->nstrings++] = s;
  h->strings[h->nstrings] = NULL;
  return 0;
}

/* Ends the hook being read: argv {path} without args, an empty env without env. */
static int
hook_finish (grove_hooks_t *h, grove_hook_t *hk, char **argv, char **envp, grove_error_t *err)
{
  if (hk == NULL)
    return 0;
  if (hk->path == NULL || hk->path[0] != '/')
    return grove_error_set (err, EINVAL, "hooks.%s: path must be absolute", grove_hook_kind_names[hk->kind]);
  if (argv == NULL)
    {
      argv = list_start (h);
      if (list_add (h, (char *) hk->path, err) < 0)
        return -1;
      h->nstrings++;
    }
  hk->argv = argv;
  hk->envp = envp != NULL ? envp : no_env;
  return 0;
}

int
grove_hooks_parse (grove_hooks_t *h, char *blob, size_t len, grove_error_t *err)
{
  grove_hook_t *hk = NULL;
  char **argv = NULL, **envp = NULL;
  char *p = blob, *end = blob + len;
  memset (h, 0, sizeof (*h));
  h->blob = blob;
  h->len = len;
  h->annotations = "{}";
  if (len == 0 || blob[len - 1] != '\0')
    return grove_error_set (err, EINVAL, "hooks: malformed");
  while (p < end)
    {
      char *key = p, *val = key + strlen (key) + 1;
      if (val >= end)
        return grove_error_set (err, EINVAL, "hooks: key %s without a value", key);
      p = val + strlen (val) + 1;
      if (strcmp (key, GROVE_HOOKS_KEY_ID) == 0)
        h->id = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_BUNDLE) == 0)
        h->bundle = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_ANNOTATIONS) == 0)
        h->annotations = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_LISTENER) == 0)
        h->listener = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_LISTENER_METADATA) == 0)
        h->listener_metadata = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_HOOK) == 0)
        {
          size_t k = 0;
          if (hook_finish (h, hk, argv, envp, err) < 0)
            return -1;
          while (k < GROVE_HOOK_KINDS && strcmp (grove_hook_kind_names[k], val) != 0)
            k++;
          if (k == GROVE_HOOK_KINDS || h->n == GROVE_MAX_HOOKS)
            return grove_error_set (err, EINVAL, "hooks: unknown kind %s or more than %d hooks", val, GROVE_MAX_HOOKS);
          hk = &h->hooks[h->n++];
          hk->kind = (grove_hook_kind_t) k;
          argv = envp = NULL;
        }
      else if (hk == NULL)
        return grove_error_set (err, EINVAL, "hooks: %s before the first hook", key);
      else if (strcmp (key, GROVE_HOOKS_KEY_PATH) == 0)
        hk->path = val;
      else if (strcmp (key, GROVE_HOOKS_KEY_TIMEOUT) == 0)
        hk->timeout_s = atoi (val);
      else if (strcmp (key, GROVE_HOOKS_KEY_ARG) == 0 || strcmp (key, GROVE_HOOKS_KEY_ENV) == 0)
        {
          /* A hook's args come together, then its env: one list each. */
          char ***list = key[0] == 'a' ? &argv : &envp;
          if (*list == NULL)
            {
              if (h->nstrings > 0)
                h->nstrings++; /* past the previous list's NULL */
              *list = list_start (h);
            }
          if (*list == NULL || list_add (h, val, err) < 0)
            return grove_error_set (err, E2BIG, "hooks: more than %d args and env entries in all",
                                    GROVE_MAX_HOOK_STRINGS);
        }
      else
        return grove_error_set (err, EINVAL, "hooks: unknown key %s", key);
    }
  return hook_finish (h, hk, argv, envp, err);
}

int
grove_hooks_load (grove_hooks_t *h, const char *file, grove_error_t *err)
{
  FILE *f = fopen (file, "re");
  char *blob = NULL;
  size_t cap = 0, len = 0;
  memset (h, 0, sizeof (*h));
  if (f == NULL)
    return grove_error_set (err, errno, "%s", file);
  for (;;)
    {
      size_t n;
      if (len == cap)
        {
          char *more = realloc (blob, cap = cap * 2 + 4096);
          if (more == NULL)
            {
              free (blob);
              fclose (f);
              return grove_error_set (err, ENOMEM, "%s", file);
            }
          blob = more;
        }
      n = fread (blob + len, 1, cap - len, f);
      len += n;
      if (n == 0)
        break;
    }
  fclose (f);
  return grove_hooks_parse (h, blob, len, err);
}

void
grove_hooks_free (grove_hooks_t *h)
{
  free (h->blob);
  memset (h, 0, sizeof (*h));
}

int
grove_hooks_has (const grove_hooks_t *h, grove_hook_kind_t kind)
{
  for (size_t i = 0; h != NULL && i < h->n; i++)
    if (h->hooks[i].kind == kind)
      return 1;
  return 0;
}

/* s as a JSON string (the id and bundle; annotations are JSON already). */
static size_t
put_json_string (char *buf, size_t pos, size_t cap, const char *s)
{
  int n = 0;
  if (pos < cap)
    buf[pos] = '"';
  pos++;
  for (; s != NULL && *s; s++)
    {
      if (*s == '"' || *s == '\\')
        n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, "\\%c", *s);
      else if ((unsigned char) *s < 0x20)
        n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, "\\u%04x", (unsigned char) *s);
      else
        n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, "%c", *s);
      pos += (size_t) n;
    }
  if (pos < cap)
    buf[pos] = '"';
  return pos + 1;
}

int
grove_hooks_state (const grove_hooks_t *h, const char *status, pid_t pid, char *buf, size_t cap)
{
  size_t pos;
  int n;
  n = snprintf (buf, cap, "{\"ociVersion\":\"1.0.2\",\"id\":");
  pos = put_json_string (buf, (size_t) n, cap, h->id);
  n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, ",\"status\":\"%s\"", status);
  pos += (size_t) n;
  if (pid > 0)
    {
      n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, ",\"pid\":%d", (int) pid);
      pos += (size_t) n;
    }
  n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, ",\"bundle\":");
  pos = put_json_string (buf, pos + (size_t) n, cap, h->bundle);
  n = snprintf (buf + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0, ",\"annotations\":%s}", h->annotations);
  pos += (size_t) n;
  return pos < cap ? (int) pos : -1;
}

int
grove_hooks_send_listener (const grove_hooks_t *h, pid_t pid, int notify_fd, grove_error_t *err)
{
  static char msg[16384];
  char state[8192];
  size_t pos;
  int n;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  union
  {
    struct cmsghdr c;
    char buf[CMSG_SPACE (sizeof (int))];
  } ctl;
  struct iovec iov;
  struct msghdr m;
  struct cmsghdr *c;
  cleanup_close int sock = -1;
  if (grove_hooks_state (h, "creating", pid, state, sizeof (state)) < 0)
    return grove_error_set (err, E2BIG, "linux.seccomp.listenerPath: the state (annotations) is too large");
  n = snprintf (msg, sizeof (msg), "{\"ociVersion\":\"1.0.2\",\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":",
                (int) pid);
  pos = put_json_string (msg, (size_t) n, sizeof (msg), h->listener_metadata != NULL ? h->listener_metadata : "");
  n = snprintf (msg + (pos < sizeof (msg) ? pos : sizeof (msg)), pos < sizeof (msg) ? sizeof (msg) - pos : 0,
                ",\"state\":%s}", state);
  pos += (size_t) n;
  if (pos >= sizeof (msg))
    return grove_error_set (err, E2BIG, "linux.seccomp.listenerMetadata: too large");
  if (strlen (h->listener) >= sizeof (addr.sun_path))
    return grove_error_set (err, ENAMETOOLONG, "linux.seccomp.listenerPath %s", h->listener);
  strcpy (addr.sun_path, h->listener);
  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect (sock, (struct sockaddr *) &addr, sizeof (addr)) < 0)
    return grove_error_set (err, errno, "linux.seccomp.listenerPath: connect to %s", h->listener);
  memset (&m, 0, sizeof (m));
  memset (&ctl, 0, sizeof (ctl));
  iov = (struct iovec){ msg, pos };
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof (ctl.buf);
  c = CMSG_FIRSTHDR (&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &notify_fd, sizeof (int));
  if (sendmsg (sock, &m, MSG_NOSIGNAL) != (ssize_t) pos)
    return grove_error_set (err, errno, "linux.seccomp.listenerPath: send the notify fd to %s", h->listener);
  return 0;
}

/* ---- the runner: system calls only --------------------------------------- */

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The hook's process: stdin the state socket, stdout and stderr ours, no
 * other descriptor, default signal mask, then execve. */
__attribute__ ((noreturn)) static void
hook_exec (const grove_hook_t *hk, int in)
{
  sigset_t none;
  if (dup2 (in, 0) < 0 || dup2 (2, 1) < 0)
    _exit (127);
  syscall (SYS_close_range, 3U, ~0U, 0);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  execve (hk->path, hk->argv, hk->envp);
  _exit (127);
}

/* Waits for pid up to timeout_s (0: for ever); 1 when it was killed for
 * running past it. Through a pidfd where there is one, else by polling. */
static int
hook_wait (pid_t pid, int timeout_s, int *status)
{
  long long deadline = now_ms () + (long long) timeout_s * 1000;
  int pidfd = timeout_s > 0 ? (int) syscall (SYS_pidfd_open, pid, 0) : -1, late = 0;
  while (timeout_s > 0)
    {
      long long left = deadline - now_ms ();
      if (left <= 0)
        {
          late = 1;
          kill (pid, SIGKILL);
          break;
        }
      if (pidfd >= 0)
        {
          struct pollfd pfd = { pidfd, POLLIN, 0 };
          if (poll (&pfd, 1, (int) left) > 0)
            break;
        }
      else
        {
          struct timespec ts = { 0, 10 * 1000 * 1000 };
          if (waitpid (pid, status, WNOHANG) == pid)
            return 0;
          nanosleep (&ts, NULL);
        }
    }
  if (pidfd >= 0)
    close (pidfd);
  while (waitpid (pid, status, 0) < 0 && errno == EINTR)
    ;
  return late;
}

static int
run_one (const grove_hook_t *hk, const char *state, grove_hook_failure_t *f)
{
  int sv[2], status = 0;
  pid_t pid;
  size_t len = strlen (state), sent = 0;
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return f->errnum = errno, -1;
  /* A raw fork: glibc's would take malloc's locks, which the container's
   * init (a copy of a possibly threaded parent) must not touch. */
  pid = (pid_t) syscall (SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0)
    hook_exec (hk, sv[1]);
  close (sv[1]);
  if (pid < 0)
    {
      f->errnum = errno;
      close (sv[0]);
      return -1;
    }
  /* A hook that does not read its stdin is fine: the write just fails. */
  while (sent < len)
    {
      ssize_t n = send (sv[0], state + sent, len - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      sent += (size_t) n;
    }
  close (sv[0]);
  if (hook_wait (pid, hk->timeout_s, &status))
    return f->errnum = ETIMEDOUT, -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return f->status = status, -1;
  return 0;
}

int
grove_hooks_run_raw (const grove_hooks_t *h, grove_hook_kind_t kind, const char *state, grove_hook_failure_t *f)
{
  size_t index = 0;
  for (size_t i = 0; h != NULL && i < h->n; i++)
    {
      if (h->hooks[i].kind != kind)
        continue;
      f->hook = &h->hooks[i];
      f->index = index++;
      f->errnum = 0;
      f->status = 0;
      if (run_one (&h->hooks[i], state, f) < 0)
        return -1;
    }
  return 0;
}

/* Appends src, or the decimal n when src is NULL; async-signal-safe. */
static size_t
append (char *buf, size_t pos, size_t cap, const char *src, long n)
{
  char digits[24];
  size_t d = sizeof (digits) - 1;
  if (src == NULL)
    {
      unsigned long u = n < 0 ? (unsigned long) -n : (unsigned long) n;
      digits[d] = '\0';
      do
        digits[--d] = (char) ('0' + u % 10);
      while ((u /= 10) != 0 && d > 1);
      if (n < 0)
        digits[--d] = '-';
      src = digits + d;
    }
  while (*src != '\0' && pos + 1 < cap)
    buf[pos++] = *src++;
  buf[pos] = '\0';
  return pos;
}

void
grove_hook_failure_text (const grove_hook_failure_t *f, char *buf, size_t cap)
{
  size_t pos = 0;
  if (cap == 0)
    return;
  buf[0] = '\0';
  pos = append (buf, pos, cap, "hook ", 0);
  pos = append (buf, pos, cap, grove_hook_kind_names[f->hook->kind], 0);
  pos = append (buf, pos, cap, "[", 0);
  pos = append (buf, pos, cap, NULL, (long) f->index);
  pos = append (buf, pos, cap, "] ", 0);
  pos = append (buf, pos, cap, f->hook->path, 0);
  if (f->errnum == ETIMEDOUT)
    {
      pos = append (buf, pos, cap, ": ran past its timeout of ", 0);
      pos = append (buf, pos, cap, NULL, f->hook->timeout_s);
      append (buf, pos, cap, " s", 0);
    }
  else if (f->errnum != 0)
    append (buf, pos, cap, ": could not run", 0);
  else if (WIFEXITED (f->status))
    {
      pos = append (buf, pos, cap, ": exit status ", 0);
      append (buf, pos, cap, NULL, WEXITSTATUS (f->status));
    }
  else
    {
      pos = append (buf, pos, cap, ": killed by signal ", 0);
      append (buf, pos, cap, NULL, WTERMSIG (f->status));
    }
}

int
grove_hooks_run (const grove_hooks_t *h, grove_hook_kind_t kind, const char *status, pid_t pid, grove_error_t *err)
{
  char state[8192], text[512];
  grove_hook_failure_t f;
  if (!grove_hooks_has (h, kind))
    return 0;
  if (grove_hooks_state (h, status, pid, state, sizeof (state)) < 0)
    return grove_error_set (err, E2BIG, "hooks.%s: the state (annotations) is too large", grove_hook_kind_names[kind]);
  if (grove_hooks_run_raw (h, kind, state, &f) == 0)
    return 0;
  grove_hook_failure_text (&f, text, sizeof (text));
  return grove_error_set (err, f.errnum == ETIMEDOUT ? 0 : f.errnum, "%s", text);
}
