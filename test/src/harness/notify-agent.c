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
#include <sys/ioctl.h>

#include "fd-receive.h"

int
main (int argc, char **argv)
{
  static char buf[65536];
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  char line[64];
  int fd, answer, nfds;
  ssize_t n;
  if (argc != 4)
    return 2;
  answer = atoi (argv[3]);
  n = receive_one (argv[1], buf, sizeof (buf) - 64, &fd, &nfds);
  if (n <= 0)
    die ("recvmsg");
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
