/* notify-agent: a seccomp listener for test/src/runtime-oci-seccomp2.test.ts.
 *   notify-agent SOCKET OUT ERRNO
 * Listens on the unix socket SOCKET, takes one connection, receives the
 * container process state (runtime-spec "seccomp notify") with the notify fd
 * as SCM_RIGHTS, writes the state to OUT.json, then answers ONE notification:
 * ERRNO > 0 fails the call with it; 0 lets it go on (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 * OUT.json is written before the answer; OUT.done after it, with the
 * notified syscall's number. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
  static char buf[65536];
  char cbuf[CMSG_SPACE (sizeof (int) * 4)];
  struct iovec iov = { buf, sizeof (buf) - 1 };
  struct msghdr msg;
  struct cmsghdr *cm;
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  char line[64];
  int l, c, fd = -1, answer, nfds = 0;
  ssize_t n;
  if (argc != 4)
    return 2;
  answer = atoi (argv[3]);
  l = socket (AF_UNIX, SOCK_STREAM, 0);
  strncpy (addr.sun_path, argv[1], sizeof (addr.sun_path) - 1);
  if (l < 0 || bind (l, (struct sockaddr *) &addr, sizeof (addr)) < 0 || listen (l, 1) < 0)
    die ("listen");
  c = accept (l, NULL, NULL);
  if (c < 0)
    die ("accept");
  memset (&msg, 0, sizeof (msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof (cbuf);
  n = recvmsg (c, &msg, 0);
  if (n <= 0)
    die ("recvmsg");
  for (cm = CMSG_FIRSTHDR (&msg); cm != NULL; cm = CMSG_NXTHDR (&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      {
        nfds = (int) ((cm->cmsg_len - CMSG_LEN (0)) / sizeof (int));
        memcpy (&fd, CMSG_DATA (cm), sizeof (int));
      }
  snprintf (line, sizeof (line), "\n%d\n", nfds);
  memcpy (buf + n, line, strlen (line));
  write_file (argv[2], ".json", buf, (size_t) n + strlen (line));
  if (fd < 0)
    return 1;
  memset (&req, 0, sizeof (req));
  if (ioctl (fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
    die ("SECCOMP_IOCTL_NOTIF_RECV");
  memset (&resp, 0, sizeof (resp));
  resp.id = req.id;
  if (answer > 0)
    resp.error = -answer;
  else
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  if (ioctl (fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
    die ("SECCOMP_IOCTL_NOTIF_SEND");
  snprintf (line, sizeof (line), "%d\n", req.data.nr);
  write_file (argv[2], ".done", line, strlen (line));
  return 0;
}
