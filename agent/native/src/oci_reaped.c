/* grove-runtime create for a caller that reaps the init (see oci_reaped.h).
 *
 * Standalone, `create` hands the container to a grove-shim of its own, which
 * is the init's parent, holds it until start and records its exit. A caller
 * that is a child subreaper and wants to be the parent itself (grove-shim's
 * runtime handler: its log pipe as the container's stdio, its pidfd, its
 * exit record) cannot use that monitor. With the annotation, create starts
 * the init itself, as `run` does, held before execve on a FIFO in the state
 * directory, and exits: the init is orphaned to the caller, as with runc.
 * start writes the FIFO, state and kill go by the recorded pid and its start
 * time (a recycled pid is not the container), delete removes the cgroup and
 * the directory. The cgroup is the one oci.c resolved (linux.cgroupsPath or
 * <--cgroup-parent>/<id>) and recorded as for any container. No exit status is kept (the caller has it), as with runc. */
#include "oci_reaped.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "container.h"
#include "json.h"
#include "util.h"

int
grove_oci_reaped_wanted (const grove_oci_bundle_t *b)
{
  int ann = grove_json_get (b->text, b->toks, 0, "annotations");
  cleanup_free char *v = ann >= 0 ? grove_json_str (b->text, b->toks,
                                                    grove_json_get (b->text, b->toks, ann, GROVE_OCI_REAPER_ANNOTATION))
                                  : NULL;
  return v != NULL && strcmp (v, "caller") == 0;
}

/* The start time of pid (/proc/PID/stat field 22), 0 when it is gone or a zombie. */
static unsigned long long
start_time (pid_t pid)
{
  char path[64], *text = NULL, *p;
  grove_error_t ignored;
  unsigned long long t = 0;
  char state = 0;
  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  if (grove_read_file (path, &text, &ignored) < 0)
    return 0;
  p = strrchr (text, ')'); /* comm may hold spaces and parentheses */
  if (p != NULL)
    sscanf (p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state, &t);
  free (text);
  return state == 'Z' || state == 'X' ? 0 : t;
}

int
grove_oci_reaped_create (grove_oci_bundle_t *b, const grove_cgroup_t *cg, const char *dir, pid_t *pid,
                         grove_error_t *err)
{
  const struct grove_cgroup_ops *ops = grove_cgroup_ops_for (cg->mode);
  char fifo[PATH_MAX];
  grove_container_t c;
  grove_error_t ignored;
  int hold;
  snprintf (fifo, sizeof (fifo), "%s/exec.fifo", dir);
  if (mkfifo (fifo, 0600) < 0)
    return grove_error_set (err, errno, "mkfifo %s", fifo);
  /* Read and write: the init never sees EOF while start has not written. */
  hold = open (fifo, O_RDWR | O_CLOEXEC);
  if (hold < 0)
    return grove_error_set (err, errno, "open %s", fifo);
  if (ops->setup (cg, &b->res, err) < 0 || grove_oci_xres_apply (cg, &b->xres, err) < 0)
    {
      grove_error_t ignored_too;
      close (hold);
      ops->remove (cg, &ignored_too);
      return -1;
    }
  b->cc.cgroup = cg;
  b->cc.log_path = "/dev/null";
  b->cc.inherit_stdio = 1; /* the caller's stdio is the container's (the command-line spec leaves it to the caller) */
  b->cc.hold_fd = hold;
  if (grove_container_start (&b->cc, &c, err) < 0)
    {
      close (hold);
      ops->remove (cg, &ignored);
      return -1;
    }
  close (hold);
  close (c.pidfd);
  /* The cgroup is where oci.c records it for every container (the state
   * directory's `cgroup` when linux.cgroupsPath named it, else the default). */
  if (grove_oci_reaped_record (dir, c.pid, err) < 0)
    {
      int killed;
      ops->kill (cg, SIGKILL, &killed, &ignored);
      ops->remove (cg, &ignored);
      return -1;
    }
  *pid = c.pid;
  return 0;
}

int
grove_oci_reaped_record (const char *dir, pid_t pid, grove_error_t *err)
{
  char file[PATH_MAX], rec[256];
  FILE *f;
  snprintf (rec, sizeof (rec), "%d %llu\n", (int) pid, start_time (pid));
  snprintf (file, sizeof (file), "%s/init", dir);
  f = fopen (file, "wxe");
  if (f == NULL || fputs (rec, f) < 0 || fclose (f) != 0)
    return grove_error_set (err, errno, "%s", file);
  return 0;
}

int
grove_oci_reaped_state (const char *dir, char *status, size_t status_cap, pid_t *pid, char *parent, char *name,
                        size_t name_cap)
{
  char file[PATH_MAX], fmt[64], *text = NULL;
  grove_error_t ignored;
  unsigned long long t = 0;
  int p = 0;
  snprintf (file, sizeof (file), "%s/init", dir);
  if (grove_read_file (file, &text, &ignored) < 0)
    return 0;
  snprintf (fmt, sizeof (fmt), "%%d %%llu %%%zus %%%zus", name_cap - 1, name_cap - 1);
  parent[0] = name[0] = '\0';
  sscanf (text, fmt, &p, &t, parent, name);
  free (text);
  *pid = 0;
  snprintf (status, status_cap, "stopped");
  if (p > 1 && t != 0 && start_time (p) == t)
    {
      snprintf (file, sizeof (file), "%s/exec.fifo", dir);
      snprintf (status, status_cap, "%s", access (file, F_OK) == 0 ? "created" : "running");
      *pid = p;
    }
  return 1;
}

int
grove_oci_reaped_start (const char *dir, const char *id, grove_error_t *err)
{
  char fifo[PATH_MAX], status[16], parent[65], name[65];
  pid_t pid;
  int fd;
  if (!grove_oci_reaped_state (dir, status, sizeof (status), &pid, parent, name, sizeof (name))
      || strcmp (status, "created") != 0)
    return grove_error_set (err, 0, "container %s is not in the created state", id);
  snprintf (fifo, sizeof (fifo), "%s/exec.fifo", dir);
  /* Non-blocking: ENXIO when no init holds it open any more. */
  fd = open (fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return grove_error_set (err, errno, "container %s: %s", id, fifo);
  if (grove_write_all (fd, "g", 1) < 0)
    {
      close (fd);
      return grove_error_set (err, errno, "container %s: start", id);
    }
  close (fd);
  unlink (fifo);
  return 0;
}

int
grove_oci_reaped_kill (const char *dir, const char *id, int sig, grove_error_t *err)
{
  char status[16], parent[65], name[65];
  pid_t pid;
  int fd, rc;
  if (!grove_oci_reaped_state (dir, status, sizeof (status), &pid, parent, name, sizeof (name)) || pid == 0)
    return grove_error_set (err, 0, "container %s is not running", id);
  fd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return grove_error_set (err, errno, "container %s is not running", id);
  /* Still the recorded process once the pidfd holds it (not a recycled pid). */
  if (!grove_oci_reaped_state (dir, status, sizeof (status), &pid, parent, name, sizeof (name)) || pid == 0)
    {
      close (fd);
      return grove_error_set (err, 0, "container %s is not running", id);
    }
  rc = grove_pidfd_signal (fd, sig, err);
  close (fd);
  return rc;
}
