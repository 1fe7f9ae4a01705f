/* grove-runtime create without a monitor of its own, for a caller that reaps
 * the container's init (runc's model): the annotation
 * org.grove.runtime.reaper = "caller" in config.json. grove-shim's runtime
 * handler (shim_runtime.c) is such a caller: it is a child subreaper, so the
 * init that create leaves behind becomes its child, which it reaps and whose
 * output it logs. See oci_reaped.c. */
#ifndef GROVE_OCI_REAPED_H
#define GROVE_OCI_REAPED_H

#include <stddef.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "oci_config.h"

#define GROVE_OCI_REAPER_ANNOTATION "org.grove.runtime.reaper"

/* Whether b asks for it (the annotation is "caller"). */
int grove_oci_reaped_wanted (const grove_oci_bundle_t *b);

/* Creates the container in dir (which exists and holds spec.json) in cg
 * (resolved by the caller: linux.cgroupsPath or its default): the cgroup set
 * up, the init started with the caller's stdio and held on dir/exec.fifo
 * until start, dir/init recording "PID STARTTIME". On failure nothing of it
 * is left but dir. */
int grove_oci_reaped_create (grove_oci_bundle_t *b, const grove_cgroup_t *cg, const char *dir, pid_t *pid,
                             grove_error_t *err);

/* A container created this way (dir/init exists): 1 with its status
 * ("created", "running", "stopped") and pid (0 when stopped); 0 for any other
 * container. parent and name get the cgroup a record written before the
 * cgroup went into the state directory's `cgroup` holds ("PID STARTTIME
 * PARENT NAME"), else "". */
int grove_oci_reaped_state (const char *dir, char *status, size_t status_cap, pid_t *pid, char *parent, char *name,
                            size_t name_cap);

/* start: releases the held init. kill: a signal to the init (through a pidfd
 * of the recorded process). -1 with err when it is not created / not running. */
int grove_oci_reaped_start (const char *dir, const char *id, grove_error_t *err);
/* Records pid (and its start time) as the init of the container in dir, as
 * create does: state, kill and delete then find it (grove-runtime run's
 * container, whose parent is run). */
int grove_oci_reaped_record (const char *dir, pid_t pid, grove_error_t *err);
int grove_oci_reaped_kill (const char *dir, const char *id, int sig, grove_error_t *err);

#endif
