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

#include "fd-receive.h"

int
main (int argc, char **argv)
{
  static char out[65536];
  char name[256];
  size_t got = 0;
  int master, nfds, sent = 0;
  ssize_t n;

  if (argc != 5)
    {
      fprintf (stderr, "usage: console-receiver SOCKET OUT PROMPT INPUT\n");
      return 2;
    }
  n = receive_one (argv[1], name, sizeof (name), &master, &nfds);
  if (master < 0)
    {
      fprintf (stderr, "console-receiver: no fd in the message\n");
      return 1;
    }
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
