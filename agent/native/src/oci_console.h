/* grove-runtime run with process.terminal: true (no --console-socket): as
 * runc's foreground mode, this process receives the pty's master from the
 * init, puts the caller's terminal in raw mode and relays between its stdio
 * and the master until the container's side of the terminal is gone. */
#ifndef GROVE_OCI_CONSOLE_H
#define GROVE_OCI_CONSOLE_H

#include "error.h"

/* The caller's terminal, as runc finds it: stderr, stdout or stdin when one
 * is a terminal, else /dev/tty (-1 with err when there is none: run with a
 * terminal needs one, as runc's). Returns the fd (an fd of ours: 0-2, or an
 * opened /dev/tty). */
int grove_oci_console_host (grove_error_t *err);

/* The master the init sent on sock (SCM_RIGHTS); -1 with err. */
int grove_oci_console_recv (int sock, grove_error_t *err);

/* Relays stdin to master and master to stdout until the master reads EIO
 * (every holder of the slave has closed it), with host in raw mode but for
 * OPOST (as runc's; restored after), ONLCR cleared on the pty (as runc's run) and the pty's size set
 * from host now and on SIGWINCH. Closes master. */
void grove_oci_console_relay (int master, int host);

#endif
