/* `grove-shim exec ID`: runs a command inside a running container. */
#ifndef GROVE_EXEC_H
#define GROVE_EXEC_H

#ifdef __cplusplus
extern "C" {
#endif

/* The exec mode's main (see exec.c for its descriptors and protocol). */
int grove_exec_main (int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
