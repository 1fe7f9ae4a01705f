/* Runtime handlers: grove-shim starts a container through an OCI runtime's
 * command line and stays the container's parent.
 *
 * The shim makes itself a child subreaper, then runs
 *   RUNTIME --root ROOT --log BUNDLE/runtime.log create --bundle BUNDLE --pid-file BUNDLE/pid ID
 * with stdin /dev/null and stdout and stderr on the shim's log pipe: without
 * --console-socket the runtime passes its own stdio through to the container
 * (the command-line spec leaves stdio to the caller). When `create` exits, the
 * container's init, its child, is orphaned and the kernel hands it to the
 * nearest subreaper: this shim. So it reaps the init, owns its output and
 * signals it through a pidfd exactly as on the native path; `RUNTIME start`
 * then lets it exec, and `RUNTIME delete --force` removes the runtime's state
 * and cgroups once the init has been reaped. Signals go to the init's pidfd,
 * as `RUNTIME kill` would send them: one path whether or not the runtime's
 * state is still there. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim_runtime.h"
#include "util.h"

int
grove_shim_runtime_key (grove_shim_runtime_t *rt, const char *key, const char *val)
{
  if (strcmp (key, GROVE_KEY_RUNTIME) == 0)
    rt->path = val;
  else if (strcmp (key, GROVE_KEY_BUNDLE) == 0)
    rt->bundle = val;
  else if (strcmp (key, GROVE_KEY_RUNTIME_ROOT) == 0)
    rt->root = val;
  else
    return 0;
  return 1;
}

/* The last line of text (in place), without its newline. */
static const char *
last_line (char *text)
{
  char *end = text + strlen (text), *line;
  while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
    *--end = '\0';
  line = strrchr (text, '\n');
  return line != NULL ? line + 1 : text;
}

/* The runtime's error: the last line of its --log, or, for a runtime that
 * writes none, of what it wrote to stderr before any container ran (still in
 * the log pipe, read end log_r; -1: none). */
static void
runtime_error (const grove_shim_runtime_t *rt, int log_r, char *out, size_t cap)
{
  char path[4096], buf[4096];
  char *text = NULL;
  grove_error_t ignored;
  ssize_t n;
  out[0] = '\0';
  snprintf (path, sizeof (path), "%s/runtime.log", rt->bundle);
  if (grove_read_file (path, &text, &ignored) == 0)
    snprintf (out, cap, "%s", last_line (text));
  free (text);
  if (out[0] != '\0' || log_r < 0)
    return;
  n = read (log_r, buf, sizeof (buf) - 1);
  if (n > 0)
    {
      buf[n] = '\0';
      snprintf (out, cap, "%s", last_line (buf));
    }
}

/* The parent pid of pid (/proc/PID/stat's fourth field); -1 when unknown. */
static long
parent_of (pid_t pid)
{
  char path[64], *text = NULL, *p;
  grove_error_t ignored;
  long ppid = -1;
  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  if (grove_read_file (path, &text, &ignored) < 0)
    return -1;
  p = strrchr (text, ')'); /* comm may hold spaces and parentheses */
  if (p != NULL)
    sscanf (p + 1, " %*c %ld", &ppid);
  free (text);
  return ppid;
}

/* Runs RUNTIME --root ROOT --log BUNDLE/runtime.log ARGS... and waits for it:
 * stdin /dev/null, stdout and stderr on stdio_fd (-1: /dev/null too). */
static int
run_runtime (const grove_shim_runtime_t *rt, const char *const args[], int stdio_fd, int log_r, grove_error_t *err)
{
  char log[4096], last[512];
  const char *argv[16];
  size_t n = 0;
  int status;
  pid_t pid;
  snprintf (log, sizeof (log), "%s/runtime.log", rt->bundle);
  argv[n++] = rt->path;
  argv[n++] = "--root";
  argv[n++] = rt->root;
  argv[n++] = "--log";
  argv[n++] = log;
  for (size_t i = 0; args[i] != NULL && n < sizeof (argv) / sizeof (argv[0]) - 1; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  pid = fork ();
  if (pid < 0)
    return grove_error_set (err, errno, "%s %s: fork failed", rt->path, args[0]);
  if (pid == 0)
    {
      sigset_t none;
      int null_fd = open ("/dev/null", O_RDWR);
      int out = stdio_fd >= 0 ? stdio_fd : null_fd;
      if (null_fd < 0 || dup2 (null_fd, 0) < 0 || dup2 (out, 1) < 0 || dup2 (out, 2) < 0)
        _exit (127);
      /* Only stdio goes to the runtime (and through it to the container). */
      syscall (SYS_close_range, 3, ~0U, 0);
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      signal (SIGPIPE, SIG_DFL);
      execv (rt->path, (char *const *) argv);
      _exit (127);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return grove_error_set (err, errno, "%s %s: waitpid failed", rt->path, args[0]);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  runtime_error (rt, log_r, last, sizeof (last));
  if (WIFEXITED (status) && WEXITSTATUS (status) == 127 && last[0] == '\0')
    return grove_error_set (err, ENOENT, "runtime handler %s could not be executed", rt->path);
  return grove_error_set (err, EIO, "%s %s failed (%s %d): %s", rt->path, args[0],
                          WIFEXITED (status) ? "status" : "signal",
                          WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status), last);
}

int
grove_shim_runtime_start (const grove_shim_runtime_t *rt, const char *id, int stdio_fd, int log_r,
                          grove_container_t *c, grove_error_t *err)
{
  char pid_file[4096], *text = NULL;
  const char *create[] = { "create", "--bundle", rt->bundle, "--pid-file", pid_file, id, NULL };
  const char *start[] = { "start", id, NULL };
  long pid;
  if (rt->bundle == NULL || rt->root == NULL)
    return grove_error_set (err, EINVAL, "shim config: runtime needs bundle and runtime_root");
  snprintf (pid_file, sizeof (pid_file), "%s/pid", rt->bundle);
  if (prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    return grove_error_set (err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  if (run_runtime (rt, create, stdio_fd, log_r, err) < 0)
    return -1;
  if (grove_read_file (pid_file, &text, err) < 0)
    goto fail;
  pid = strtol (text, NULL, 10);
  free (text);
  if (pid <= 1)
    {
      grove_error_set (err, EINVAL, "%s: no pid in %s", rt->path, pid_file);
      goto fail;
    }
  c->pid = (pid_t) pid;
  /* A runtime that keeps its own monitor as the init's parent would leave the
   * shim unable to reap it: refused, not half run. (grove-runtime keeps none
   * when the bundle's annotation org.grove.runtime.reaper is "caller", which
   * the agent writes.) */
  if (parent_of (c->pid) != (long) getpid ())
    {
      grove_error_set (err, ECHILD,
                       "%s create left the container's init (pid %ld) under another parent (pid %ld): "
                       "the runtime keeps its own monitor, so grove-shim cannot be its parent",
                       rt->path, pid, parent_of (c->pid));
      goto fail;
    }
  c->pidfd = (int) syscall (SYS_pidfd_open, c->pid, 0);
  if (c->pidfd < 0)
    {
      grove_error_set (err, errno, "pidfd_open %ld", pid);
      goto fail;
    }
  if (run_runtime (rt, start, -1, -1, err) < 0)
    goto fail;
  return 0;
fail:
  /* Nothing is left behind: the created container goes (and its init is reaped). */
  grove_shim_runtime_delete (rt, id);
  if (c->pid > 1)
    waitpid (c->pid, NULL, WNOHANG);
  return -1;
}

void
grove_shim_runtime_delete (const grove_shim_runtime_t *rt, const char *id)
{
  const char *del[] = { "delete", "--force", id, NULL };
  grove_error_t ignored;
  (void) run_runtime (rt, del, -1, -1, &ignored);
}
