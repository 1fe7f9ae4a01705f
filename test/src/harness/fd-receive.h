/* fd-receive.h: what the test's small receivers of an fd over a unix socket
 * share (console-receiver.c, notify-agent.c): each is built alone with cc, so
 * these are static functions in this header. */
#ifndef GROVE_TEST_FD_RECEIVE_H
#define GROVE_TEST_FD_RECEIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

static void
die (const char *what)
{
  perror (what);
  exit (1);
}

/* base + ext holds data once this returns (written aside, then renamed: a
 * reader never sees half of it). */
static void
write_file (const char *base, const char *ext, const char *data, size_t n)
{
  char path[4096], tmp[4200];
  FILE *f;
  snprintf (path, sizeof (path), "%s%s", base, ext);
  snprintf (tmp, sizeof (tmp), "%s.tmp", path);
  f = fopen (tmp, "w");
  if (f == NULL || fwrite (data, 1, n, f) != n || fclose (f) != 0 || rename (tmp, path) != 0)
    die (path);
}

/* Listens on the unix socket at path, takes one connection and receives one
 * message: its payload into buf (at most cap - 1 bytes; the length is
 * returned), the first fd it carries as SCM_RIGHTS in *fd (-1 without one)
 * and how many it carried in *nfds. The socket is closed and its file
 * removed; any failure ends the program. */
static ssize_t
receive_one (const char *path, char *buf, size_t cap, int *fd, int *nfds)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char cbuf[CMSG_SPACE (sizeof (int) * 4)];
  struct iovec iov = { buf, cap - 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof (cbuf) };
  struct cmsghdr *cm;
  int ls, conn;
  ssize_t n;

  *fd = -1;
  *nfds = 0;
  ls = socket (AF_UNIX, SOCK_STREAM, 0);
  snprintf (addr.sun_path, sizeof (addr.sun_path), "%s", path);
  if (ls < 0 || bind (ls, (struct sockaddr *) &addr, sizeof (addr)) < 0 || listen (ls, 1) < 0)
    die ("listen");
  conn = accept (ls, NULL, NULL);
  if (conn < 0)
    die ("accept");
  n = recvmsg (conn, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0)
    die ("recvmsg");
  for (cm = CMSG_FIRSTHDR (&msg); cm != NULL; cm = CMSG_NXTHDR (&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && *fd < 0)
      {
        *nfds = (int) ((cm->cmsg_len - CMSG_LEN (0)) / sizeof (int));
        memcpy (fd, CMSG_DATA (cm), sizeof (int));
      }
  close (conn);
  close (ls);
  unlink (path);
  return n;
}

#endif
