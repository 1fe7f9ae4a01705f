/* grove-runtime run's side of a terminal (see oci_console.h). */
#include "oci_console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "util.h"

int
grove_oci_console_host (grove_error_t *err)
{
  static const int fds[3] = { 2, 1, 0 };
  int fd;
  for (int k = 0; k < 3; k++)
    if (isatty (fds[k]))
      return fds[k];
  fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return grove_error_set (err, errno, "process.terminal: open /dev/tty (run with a terminal needs one on its stdio)");
  return fd;
}

int
grove_oci_console_recv (int sock, grove_error_t *err)
{
  char name[64], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { name, sizeof (name) };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof (cbuf) };
  struct cmsghdr *cm;
  ssize_t n;
  int fd;
  do
    n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  cm = n > 0 ? CMSG_FIRSTHDR (&msg) : NULL;
  if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
    return grove_error_set (err, n < 0 ? errno : 0, "process.terminal: the init sent no console");
  memcpy (&fd, CMSG_DATA (cm), sizeof (int));
  return fd;
}

static void
copy_size (int host, int master)
{
  struct winsize ws;
  if (ioctl (host, TIOCGWINSZ, &ws) == 0)
    ioctl (master, TIOCSWINSZ, &ws);
}

void
grove_oci_console_relay (int master, int host)
{
  struct termios saved, raw, pty;
  int restore = 0, in_open = 1, sfd;
  sigset_t mask;
  char buf[8192];
  if (tcgetattr (master, &pty) == 0)
    {
      pty.c_oflag &= ~(tcflag_t) ONLCR;
      tcsetattr (master, TCSANOW, &pty);
    }
  if (tcgetattr (host, &saved) == 0)
    {
      raw = saved;
      cfmakeraw (&raw);
      raw.c_oflag |= OPOST; /* as runc's (containerd/console's SetRaw): output still post-processed */
      restore = tcsetattr (host, TCSANOW, &raw) == 0;
    }
  sigemptyset (&mask);
  sigaddset (&mask, SIGWINCH);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  copy_size (host, master);
  for (;;)
    {
      struct pollfd p[3] = { { master, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 }, { sfd, POLLIN, 0 } };
      ssize_t n;
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (p[2].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof (si)) > 0)
            ;
          copy_size (host, master);
        }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        {
          n = read (0, buf, sizeof (buf));
          if (n > 0)
            grove_write_all (master, buf, (size_t) n);
          else if (n == 0 || errno != EINTR)
            in_open = 0; /* as runc: EOF on stdin leaves the terminal open */
        }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          n = read (master, buf, sizeof (buf));
          if (n > 0)
            {
              grove_write_all (1, buf, (size_t) n);
              continue;
            }
          if (n < 0 && errno == EINTR)
            continue;
          break; /* EIO: no slave left open */
        }
    }
  if (restore)
    tcsetattr (host, TCSANOW, &saved);
  if (sfd >= 0)
    close (sfd);
  close (master);
}
