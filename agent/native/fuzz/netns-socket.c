/* grove_netns_socket (netns.c) under AddressSanitizer, LeakSanitizer and
 * UBSan: every way it can fail, and many sockets made in a real network
 * namespace (argv[1]), each checked to belong to it, with no descriptor
 * left open afterwards. Prints "ok N" and exits 0, or names what broke and exits 1
 * (a sanitizer finding aborts). Built by build-netns-socket.sh; run by
 * test/src/native-netns-socket.test.ts. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns.h"

static int
open_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return -1;
  int n = 0;
  while (readdir (d) != NULL)
    n++;
  closedir (d);
  return n;
}

static int
expect_error (const char *path, int domain, int type, int errnum)
{
  grove_error_t err = { 0 };
  int fd = grove_netns_socket (path, domain, type, &err);
  if (fd >= 0 || err.errnum != errnum || err.msg[0] == '\0')
    {
      fprintf (stderr, "%s %d %d: got fd %d errno %d (%s), want errno %d\n", path, domain, type, fd, err.errnum,
               err.msg, errnum);
      if (fd >= 0)
        close (fd);
      return 1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: %s NETNS_PATH\n", argv[0]);
      return 2;
    }
  const char *netns = argv[1];
  int before = open_fds ();
  int failures = 0;
  failures += expect_error ("/nonexistent/netns", AF_INET, SOCK_STREAM, ENOENT);
  failures += expect_error ("/proc/self/exe", AF_INET, SOCK_STREAM, EINVAL); /* not a namespace */
  failures += expect_error (netns, AF_UNIX, SOCK_STREAM, EINVAL);
  failures += expect_error (netns, AF_INET, SOCK_RAW, EINVAL);
  /* A path longer than any buffer: the message is cut, never overrun. */
  char long_path[4096];
  memset (long_path, 'a', sizeof long_path - 1);
  long_path[0] = '/';
  long_path[sizeof long_path - 1] = '\0';
  failures += expect_error (long_path, AF_INET, SOCK_STREAM, ENAMETOOLONG);

  int made = 0;
  for (int i = 0; i < 500; i++)
    {
      grove_error_t err = { 0 };
      int domain = i % 3 == 0 ? AF_INET6 : AF_INET;
      int fd = grove_netns_socket (netns, domain, i % 2 ? SOCK_DGRAM : SOCK_STREAM, &err);
      if (fd < 0)
        {
          fprintf (stderr, "socket %d in %s: %s\n", i, netns, err.msg);
          return 1;
        }
      /* The socket belongs to that namespace (SIOCGSKNS: an fd of the socket's namespace). */
      int ns = ioctl (fd, SIOCGSKNS);
      struct stat got, want;
      if (ns < 0 || fstat (ns, &got) < 0 || stat (netns, &want) < 0 || got.st_ino != want.st_ino)
        {
          fprintf (stderr, "socket %d is not in %s (SIOCGSKNS: %s)\n", i, netns, ns < 0 ? strerror (errno) : "other");
          return 1;
        }
      close (ns);
      made++;
      close (fd);
    }
  int after = open_fds ();
  if (after != before)
    {
      fprintf (stderr, "open descriptors: %d before, %d after\n", before, after);
      failures++;
    }
  if (failures > 0)
    return 1;
  printf ("ok %d\n", made);
  return 0;
}
