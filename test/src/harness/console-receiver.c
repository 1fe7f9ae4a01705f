/* console-receiver: the receiving end of an OCI runtime's --console-socket,
 * for test/src/runtime-oci-terminal.test.ts.
 *   console-receiver SOCKET OUT PROMPT INPUT
 * Listens on the unix socket SOCKET, takes one connection and receives one
 * message with the pty's master as SCM_RIGHTS; writes the message's payload
 * (runc sends the master's name) to OUT.name. Then copies everything the
 * master gives to OUT.log until it reads EIO (no slave left open, the
 * container's process is gone), and once the output so far holds PROMPT
 * writes INPUT to the master, once; OUT.done once it has read EIO. Exits 0
 * then; 1 (with a message) on any error. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void
die (const char *what)
{
  perror (what);
  exit (1);
}

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

int
main (int argc, char **argv)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  static char out[65536];
  char name[256], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { name, sizeof (name) - 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof (cbuf) };
  struct cmsghdr *cm;
  size_t got = 0;
  int ls, conn, master, sent = 0;
  ssize_t n;

  if (argc != 5)
    {
      fprintf (stderr, "usage: console-receiver SOCKET OUT PROMPT INPUT\n");
      return 2;
    }
  ls = socket (AF_UNIX, SOCK_STREAM, 0);
  snprintf (addr.sun_path, sizeof (addr.sun_path), "%s", argv[1]);
  if (ls < 0 || bind (ls, (struct sockaddr *) &addr, sizeof (addr)) < 0 || listen (ls, 1) < 0)
    die ("listen");
  conn = accept (ls, NULL, NULL);
  if (conn < 0)
    die ("accept");
  n = recvmsg (conn, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0)
    die ("recvmsg");
  cm = CMSG_FIRSTHDR (&msg);
  if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
    {
      fprintf (stderr, "console-receiver: no fd in the message\n");
      return 1;
    }
  memcpy (&master, CMSG_DATA (cm), sizeof (int));
  close (conn);
  close (ls);
  unlink (argv[1]);
  write_file (argv[2], ".name", name, (size_t) n);
  for (;;)
    {
      n = read (master, out + got, sizeof (out) - 1 - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* EIO: the container's side is closed */
      got += (size_t) n;
      out[got] = '\0';
      write_file (argv[2], ".log", out, got);
      if (!sent && strstr (out, argv[3]) != NULL)
        {
          size_t len = strlen (argv[4]);
          if (write (master, argv[4], len) != (ssize_t) len)
            die ("write the input");
          sent = 1;
        }
      if (got + 1 >= sizeof (out))
        break;
    }
  write_file (argv[2], ".log", out, got);
  write_file (argv[2], ".done", "", 0);
  return 0;
}
