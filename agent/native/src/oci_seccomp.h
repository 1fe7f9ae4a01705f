/* grove-runtime: an OCI bundle's own seccomp profile (linux.seccomp). */
#ifndef GROVE_OCI_SECCOMP_H
#define GROVE_OCI_SECCOMP_H

#include "error.h"
#include "oci_config.h"

/* Compiles b's linux.seccomp (when it has one) with Grove's profile compiler
 * (seccomp/profile.c, the default profile's) and sets b->cc.seccomp_bpf to
 * the program and b->cc.seccomp_flags to its flags; the container's init
 * installs it in place of Grove's default filter. With SCMP_ACT_NOTIFY the
 * listenerPath and listenerMetadata go into the hooks blob (made with the
 * bundle's path and the container's id when it has no hooks). -1 with err
 * naming the field ("config.json linux.seccomp.syscalls[2].action: ..."). */
int grove_oci_seccomp (grove_oci_bundle_t *b, const char *bundle, const char *id, grove_error_t *err);

#endif
