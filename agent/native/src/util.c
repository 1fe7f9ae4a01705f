#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void
grove_freep (void *p)
{
  free (*(void **) p);
}

void
grove_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
      /* Never close the same number twice: in a threaded process (the addon)
       * it may already be another thread's descriptor. */
      *fd = -1;
    }
}

void
grove_closedirp (DIR **dir)
{
  if (*dir != NULL)
    closedir (*dir);
}

static int
write_file (const char *path, const char *data, int missing_ok, grove_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  size_t len = strlen (data);
  ssize_t n;

  if (fd < 0)
    {
      if (missing_ok && errno == ENOENT)
        return 0;
      return grove_error_set (err, errno, "open %s", path);
    }
  do
    n = write (fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return grove_error_set (err, errno, "write `%s` to %s", data, path);
  if ((size_t) n != len)
    return grove_error_set (err, EIO, "short write to %s", path);
  return 1;
}

int
grove_write_file (const char *path, const char *data, grove_error_t *err)
{
  return write_file (path, data, 0, err) < 0 ? -1 : 0;
}

int
grove_write_file_if_exists (const char *path, const char *data, grove_error_t *err)
{
  return write_file (path, data, 1, err);
}

int
grove_read_file (const char *path, char **out, grove_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buf = NULL;
  size_t len = 0, cap = 0;

  if (fd < 0)
    return grove_error_set (err, errno, "open %s", path);
  for (;;)
    {
      ssize_t n;
      if (cap - len < 4096)
        {
          char *nbuf = realloc (buf, cap + 8192);
          if (nbuf == NULL)
            return grove_error_set (err, ENOMEM, "read %s", path);
          buf = nbuf;
          cap += 8192;
        }
      n = read (fd, buf + len, cap - len - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return grove_error_set (err, errno, "read %s", path);
      if (n == 0)
        break;
      len += (size_t) n;
    }
  buf[len] = '\0';
  *out = buf;
  buf = NULL;
  return 0;
}

int
grove_mkdir (const char *path, int mode, grove_error_t *err)
{
  if (mkdir (path, (mode_t) mode) < 0 && errno != EEXIST)
    return grove_error_set (err, errno, "mkdir %s", path);
  return 0;
}

int
grove_rmdir (const char *path, grove_error_t *err)
{
  /* The kernel usually frees the cgroup within a millisecond or two of the
   * last task's exit: retry soon, then back off (1, 2, 4 .. 20 ms; ~2 s in all). */
  long waited_ms = 0, step_ms = 1;
  for (;;)
    {
      struct timespec ts = { 0, step_ms * 1000 * 1000 };
      if (rmdir (path) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || waited_ms >= 2000)
        return grove_error_set (err, errno, "rmdir %s", path);
      nanosleep (&ts, NULL);
      waited_ms += step_ms;
      step_ms = step_ms * 2 > 20 ? 20 : step_ms * 2;
    }
}

int
grove_asprintf (char **out, grove_error_t *err, const char *fmt, ...)
{
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vasprintf (out, fmt, ap);
  va_end (ap);
  if (n < 0)
    {
      *out = NULL;
      return grove_error_set (err, ENOMEM, "format %s", fmt);
    }
  return 0;
}

int
grove_write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      buf += n;
      len -= (size_t) n;
    }
  return 0;
}

char *
grove_read_all (int fd, size_t *len)
{
  size_t cap = 65536, n = 0;
  char *buf = malloc (cap);
  if (buf == NULL)
    return NULL;
  for (;;)
    {
      ssize_t r;
      if (n == cap)
        {
          char *bigger = realloc (buf, cap * 2);
          if (bigger == NULL)
            {
              free (buf);
              return NULL;
            }
          buf = bigger;
          cap *= 2;
        }
      r = read (fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int saved = errno;
          free (buf);
          errno = saved;
          return NULL;
        }
      if (r == 0)
        break;
      n += (size_t) r;
    }
  *len = n;
  return buf;
}

int
grove_config_next (char *buf, size_t len, size_t *pos, char **key, char **val, const char *what,
                   grove_error_t *err)
{
  size_t i = *pos, klen;
  if (i >= len)
    return 0;
  *key = buf + i;
  klen = strnlen (*key, len - i);
  i += klen + 1;
  /* The last key may lack its NUL (the blob is not NUL-terminated): print only its bytes. */
  if (i >= len)
    return grove_error_set (err, EINVAL, "%s config: key %.*s without a value", what, (int) klen, *key);
  *val = buf + i;
  i += strnlen (*val, len - i) + 1;
  if (i > len)
    return grove_error_set (err, EINVAL, "%s config: unterminated value of %s", what, *key);
  *pos = i;
  return 1;
}

char **
grove_exec_candidates (const char *cmd, char *const *envp)
{
  const char *path = GROVE_DEFAULT_PATH;
  size_t count = 1, i = 0;
  char **list;

  if (strchr (cmd, '/') != NULL)
    {
      list = calloc (2, sizeof (char *));
      if (list != NULL && (list[0] = strdup (cmd)) == NULL)
        {
          free (list);
          list = NULL;
        }
      return list;
    }
  for (char *const *e = envp; e != NULL && *e != NULL; e++)
    if (strncmp (*e, "PATH=", 5) == 0)
      path = *e + 5;
  for (const char *p = path; *p != '\0'; p++)
    if (*p == ':')
      count++;
  list = calloc (count + 1, sizeof (char *));
  if (list == NULL)
    return NULL;
  for (const char *p = path;;)
    {
      const char *end = strchr (p, ':');
      size_t plen = end != NULL ? (size_t) (end - p) : strlen (p);
      if (plen > 0 && asprintf (&list[i], "%.*s/%s", (int) plen, p, cmd) >= 0)
        i++;
      if (end == NULL)
        break;
      p = end + 1;
    }
  return list;
}

int
grove_unix_connect (const char *path, grove_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;
  if (strlen (path) >= sizeof (addr.sun_path))
    return grove_error_set (err, ENAMETOOLONG, "console socket %s", path);
  memcpy (addr.sun_path, path, strlen (path) + 1);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return grove_error_set (err, errno, "console socket %s", path);
  if (connect (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0)
    {
      int e = errno;
      close (fd);
      return grove_error_set (err, e, "connect to the console socket %s", path);
    }
  return fd;
}
